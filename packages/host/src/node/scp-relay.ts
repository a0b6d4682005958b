/**
 * The host's relay of secure connections (docs/node-api.md "Secure connections", docs/scp.md):
 * WebSocket `/v1/scp` on the node's HTTP(S) server. The host sees only opaque SCP frames; the
 * enclave runs the protocol. One socket = one enclave session:
 *
 * - connect → `scp.open` (the enclave numbers the session, or refuses with SCP_SESSIONS when its
 *   table is full: the socket is closed with 1013 and that code as the reason);
 * - each binary message → `scp.frame`, issued in arrival order (the enclave keeps that order);
 * - socket gone → `scp.close` (after the frames before it);
 * - the enclave's `scp.send` events → `ws.send`, in order; `scp.end` → close after them.
 *
 * Limits, each refused by name and counted (fixed reasons, never a client's address): at most
 * `maxConnections` sockets, `maxConnectionsPerAddress` from one client address (shareKeyOf: an
 * IPv6 client's /64 is one; an upgrade beyond
 * either is answered 503 SCP_SESSIONS and closed); a socket that has not finished its handshake
 * (the client's CA frame) within `handshakeMs` is closed (1008); a message
 * at most MAX_FRAME bytes (ws closes with 1009); text messages are a protocol error (1003); a
 * socket with no message either way for `idleMs` is closed (1001); a client that does not read
 * (more than `maxBufferedBytes` waiting in the socket) is closed (1008); at most `maxInFlight`
 * frames per socket wait for the enclave, beyond which the socket stops reading (TCP pushes back)
 * and the frames ws had already read wait in the host, so the enclave never holds more.
 *
 * Fairness: frames that cannot go to the enclave at once wait in the host and are issued by
 * deficit round robin over client addresses, then over the sockets of one address, each frame
 * costing its size or the enclave's time it took, within a node-wide budget (relay-share.ts, the
 * scheduler; docs/node-api.md "Secure connections", "Fair share"). This module owns the sockets
 * and feeds it.
 */
import { type IncomingMessage, type Server, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import type { Duplex } from 'node:stream';
import {
  ERROR_CODES,
  FRAME,
  InvalidInputError,
  MAX_FRAME,
  MAX_QUEUED_FRAMES,
} from '@cloister/core';
import { type RawData, WebSocket, WebSocketServer } from 'ws';
import { shareKeyOf } from './client-key.js';
import type { Logger } from './logger.js';
import type { NodeMetrics } from './metrics.js';
import { rawErrorAnswer } from './raw-answer.js';
import { createRelayShare, type Lane } from './relay-share.js';

export { RELAY_BYTES_PER_MS, RELAY_QUANTUM } from './relay-share.js';

export const SCP_PATH = '/v1/scp';

/** The longest upgrade URL, as the HTTP API's (DEFAULT_HTTP_LIMITS.maxUrlBytes). */
const MAX_UPGRADE_URL_BYTES = 2048;

export interface ScpRelayLimits {
  /** Open sockets at most (default 10,000: the enclave's session cap). */
  readonly maxConnections: number;
  /** Milliseconds without a message either way before a socket is closed (default 120 s). */
  readonly idleMs: number;
  /** Bytes queued to a client that does not read before it is closed (default 8 MiB). */
  readonly maxBufferedBytes: number;
  /** Frames of one socket waiting for the enclave before the socket stops reading (default 32). */
  readonly maxInFlight: number;
  /**
   * Bytes of frames of all sockets waiting for the enclave at once (default 2 × MAX_FRAME, about
   * 2 MiB: the enclave has the next largest frame at hand while it processes one), counted at
   * the enclave's measured time per byte when that is above RELAY_BYTES_PER_MS; a frame that
   * would pass it waits in the host, its socket stops reading, and waiting sockets are served by
   * deficit round robin. Per-socket caps alone let 160 sockets of 32 frames of 1 MiB fill the
   * enclave's heap (a review's demonstration: the node stopped). It is also the depth of the
   * boundary's FIFO in front of a newly issued frame (the enclave runs a query in the call that
   * delivers its frame): at 64 MiB, eight sockets flooding 256 KB queries kept an honest query
   * waiting about 2 s behind them.
   */
  readonly maxInFlightBytes: number;
  /**
   * Bytes of frames of all sockets waiting in the host for their turn (default 256 MiB): a frame
   * that would pass it closes its socket (1013 NODE_BUSY: try again later). A held socket keeps
   * the frame ws had read (up to 1 MiB); thousands of them grew the host by gigabytes.
   */
  readonly maxHeldBytes: number;
  /**
   * Bytes of frames of one client's sockets (its address, as `shareBy` counts clients) waiting
   * in the host (default 32 MiB, an eighth of maxHeldBytes): a frame that would pass it closes
   * its socket (1013 NODE_BUSY). Without it, one address's 256 sockets holding a 1 MiB frame
   * each filled maxHeldBytes, and every other client's next held frame closed its socket.
   */
  readonly maxHeldBytesPerAddress: number;
  /**
   * Open sockets from one client address at most (default 256): one client must not take every
   * session of the node (a review opened 10,000 idle ones from one address in 5 s). Counted by
   * `shareKeyOf` of the remote address, as the fair share goes: an IPv6 client holds its whole
   * /64, and counted by exact address it would get 256 sockets from each of its 2^64 addresses.
   */
  readonly maxConnectionsPerAddress: number;
  /**
   * Milliseconds a socket has to finish its handshake (send CA) before it is closed (30 s: an
   * honest handshake under a flood took up to 5 s in a review; slots held by half-open
   * handshakes are freed well within the idle timeout).
   */
  readonly handshakeMs: number;
  /**
   * What the round robin shares first (default 'address'): 'address' gives each client address
   * (an IPv4 address, an IPv4-mapped IPv6 address as its IPv4, the /64 of an IPv6 address) one
   * turn a round, shared by its sockets in turn, so a client opening many sockets does not get
   * many turns; 'socket' gives each socket a turn. Behind a reverse proxy every socket has the
   * proxy's address, and 'address' then is 'socket' (one address, its sockets in turn); 'socket'
   * is for clients that share one address and should not share a turn (a NAT of many users).
   */
  readonly shareBy: 'address' | 'socket';
}

export const DEFAULT_SCP_RELAY_LIMITS: ScpRelayLimits = {
  maxConnections: 10_000,
  idleMs: 120_000,
  maxBufferedBytes: 8 * 1024 * 1024,
  maxInFlight: 32,
  maxInFlightBytes: 2 * MAX_FRAME,
  maxHeldBytes: 256 * 1024 * 1024,
  maxHeldBytesPerAddress: 32 * 1024 * 1024,
  maxConnectionsPerAddress: 256,
  handshakeMs: 30_000,
  shareBy: 'address',
};

/** The enclave's side of the relay: the three `scp.*` calls. */
export interface ScpEnclave {
  /** `scp.open`: a new session number; rejects SCP_SESSIONS when the enclave is full. */
  open(): Promise<number>;
  /** `scp.frame`: settles once the enclave processed the frame; rejects only if the call failed. */
  frame(session: number, frame: Uint8Array): Promise<void>;
  /** `scp.close`: the socket is gone; the enclave forgets the session. */
  close(session: number): Promise<void>;
}

export interface ScpRelayDeps {
  readonly enclave: ScpEnclave;
  readonly metrics: NodeMetrics;
  readonly log: Logger;
  readonly limits?: Partial<ScpRelayLimits>;
  /**
   * Milliseconds from any fixed origin, never going back (default `performance.now`): the relay
   * measures with it how long the enclave's work for frames took. Tests inject their own.
   */
  readonly clock?: () => number;
}

/** The relay attached to a server; the node feeds it the enclave's events. */
export interface ScpRelay {
  /** `scp.send`: one frame for the session's socket (dropped if the socket is gone). */
  send(session: number, frame: Uint8Array): void;
  /** `scp.end`: closes the session's socket after the frames sent before (`code` 'OK' = normal). */
  end(session: number, code: string): void;
  /** Open sockets. */
  readonly connections: number;
  /** Closes every socket (1001) and stops accepting new ones. */
  close(): void;
}

/** WebSocket close codes (RFC 6455 §7.4.1) the relay uses. */
const CLOSE = {
  normal: 1000,
  goingAway: 1001,
  protocol: 1002,
  unsupported: 1003,
  policy: 1008,
  tryAgain: 1013,
  internal: 1011,
} as const;

/** How long a stopping node waits for a client to answer its close before dropping the socket. */
const CLOSE_GRACE_MS = 1000;

/**
 * Fixed reasons a socket is closed (values of cloister_scp_closed_total's `reason`, except
 * `ended`, counted by the enclave's code in cloister_scp_ended_total, and `stopping`, the node's
 * own stop, counted in neither).
 */
export type ScpCloseReason =
  | 'sessions'
  | 'text'
  | 'idle'
  | 'handshake'
  | 'backpressure'
  | 'busy'
  | 'enclave'
  | 'ended'
  | 'protocol'
  | 'stopping';

interface Conn {
  readonly ws: WebSocket;
  /** Set once `scp.open` answered; undefined before (frames wait on `opened`). */
  session: number | undefined;
  readonly opened: Promise<number | undefined>;
  /** Its lane in the fair share: every frame it reads goes through it. */
  readonly lane: Lane;
  idle: NodeJS.Timeout | undefined;
  /** Until the client's CA passes: the handshake deadline. */
  handshake: NodeJS.Timeout | undefined;
  /** Its client (shareKeyOf its remote address), counted in `perAddress` while the socket is open (never logged). */
  readonly address: string;
  closed: boolean;
}

/**
 * Attaches the relay to `server`: WebSocket upgrades on SCP_PATH become sessions, on other paths
 * they are answered 404. A request asking for another protocol (`Upgrade: h2c`, as `curl --http2`
 * sends) is served as plain HTTP/1.1, which RFC 9110 §7.8 lets a server do, when it has no body
 * (GET, HEAD): Node stops parsing a request at an upgrade, so a body would never reach the
 * handler; other methods are answered 400. The server keeps serving HTTP as before.
 */
export function attachScpRelay(server: Server, deps: ScpRelayDeps): ScpRelay {
  const limits = { ...DEFAULT_SCP_RELAY_LIMITS, ...deps.limits };
  const clock = deps.clock ?? (() => performance.now());
  // The enclave ends a session holding more than MAX_QUEUED_FRAMES frames: half of it keeps an
  // honest relay clear of that; 0 would never send a frame.
  const maxInFlight = limits.maxInFlight;
  if (!Number.isInteger(maxInFlight) || maxInFlight < 1 || maxInFlight > MAX_QUEUED_FRAMES / 2) {
    throw new InvalidInputError(
      `scp relay maxInFlight must be a whole number from 1 to ${MAX_QUEUED_FRAMES / 2}`,
    );
  }
  const { enclave, metrics, log } = deps;
  const wss = new WebSocketServer({
    noServer: true,
    maxPayload: MAX_FRAME,
    perMessageDeflate: false, // compression would leak plaintext sizes less, but costs CPU and
    // invites decompression bombs; SCP frames are ciphertext and do not compress anyway
    clientTracking: false,
    // SCP defines no WebSocket subprotocol: select none (ws would otherwise echo the first one a
    // client offers, as if the node spoke it); an RFC 6455 client that asked for one then fails.
    handleProtocols: () => false,
  });
  const conns = new Set<Conn>();
  const bySession = new Map<number, Conn>();
  // Open sockets by client (shareKeyOf the remote address; kept in memory only: no address
  // reaches logs or metrics).
  const perAddress = new Map<string, number>();
  // Numbers the sockets' own shares with shareBy 'socket' (never an address).
  let nextSocket = 0;
  // Which socket's frame goes to the enclave next: relay-share.ts.
  const fair = createRelayShare(
    { ...limits, maxHeldBytesPerShare: limits.maxHeldBytesPerAddress },
    clock,
  );
  metrics.relayBudget.read = fair.budget;
  let stopped = false;
  // Bound once: a labelled inc() hashes its labels on every call, twice per relayed call.
  const framesIn = metrics.scpFrames.labels({ direction: 'in' });
  const framesOut = metrics.scpFrames.labels({ direction: 'out' });

  // An upgraded socket is read by no one, so the peer's FIN is never seen: after an answer the
  // socket is destroyed once flushed, or it (and its file descriptor) would stay open for as
  // long as the peer likes, and hold up the server's close.
  const refuseUpgrade = (
    socket: Duplex,
    status: number,
    code: string,
    message: string,
    headers: Readonly<Record<string, string>> = {},
  ) => {
    socket.once('finish', () => socket.destroy());
    socket.end(rawErrorAnswer(status, code, message, headers));
  };

  const withoutUpgrade = (req: IncomingMessage, socket: Duplex): void => {
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      refuseUpgrade(
        socket,
        400,
        'INVALID_INPUT',
        `this node upgrades only to WebSocket (at ${SCP_PATH}): send the ${req.method} request without an Upgrade header`,
      );
      return;
    }
    const res = new ServerResponse(req);
    res.shouldKeepAlive = false;
    res.assignSocket(socket as Socket);
    res.on('finish', () => {
      res.detachSocket(socket as Socket);
      (socket as Socket).destroySoon();
    });
    server.emit('request', req, res);
  };

  const onUpgrade = (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    socket.on('error', () => {}); // a reset peer is not the node's problem
    const asked = String(req.headers.upgrade ?? '').toLowerCase();
    if (!asked.split(',').some((p) => p.trim() === 'websocket')) {
      withoutUpgrade(req, socket);
      return;
    }
    const path = (req.url ?? '/').split('?', 1)[0];
    if (path !== SCP_PATH) {
      refuseUpgrade(socket, 404, 'NOT_FOUND', `no WebSocket endpoint here; use ${SCP_PATH}`);
      return;
    }
    // What `ws` would refuse with an HTML page of its own: refused here with the documented JSON
    // error, as every other answer of the node (a clean-room review met ws's text/html).
    if (Buffer.byteLength(req.url ?? '') > MAX_UPGRADE_URL_BYTES) {
      refuseUpgrade(
        socket,
        414,
        'REQUEST_TOO_LARGE',
        `URL is longer than ${MAX_UPGRADE_URL_BYTES} bytes`,
      );
      return;
    }
    if (req.method !== 'GET') {
      refuseUpgrade(
        socket,
        405,
        'INVALID_INPUT',
        `a WebSocket upgrade is a GET, not ${req.method}`,
      );
      return;
    }
    const key = req.headers['sec-websocket-key'];
    if (typeof key !== 'string' || !/^[A-Za-z0-9+/]{22}==$/.test(key.trim())) {
      refuseUpgrade(
        socket,
        400,
        'INVALID_INPUT',
        'a WebSocket upgrade carries Sec-WebSocket-Key: the base64 of 16 random bytes (RFC 6455 §4.1)',
      );
      return;
    }
    if (req.headers['sec-websocket-version'] !== '13') {
      // RFC 6455 §4.4: the versions the server speaks, in a header the client can act on.
      refuseUpgrade(
        socket,
        426,
        'INVALID_INPUT',
        'this node speaks WebSocket version 13 (RFC 6455): send Sec-WebSocket-Version: 13',
        { 'sec-websocket-version': '13' },
      );
      return;
    }
    const address = shareKeyOf((req.socket as Socket).remoteAddress ?? '');
    /** Refuses the upgrade for a full cap: counted, logged by fixed event name, 503. */
    const full = (reason: 'address' | 'cap', event: string, message: string): void => {
      metrics.scpRefused.inc({ reason });
      log.warn(
        { event },
        `secure connection refused: ${reason === 'cap' ? 'connection' : 'per-address'} cap`,
      );
      refuseUpgrade(socket, 503, 'SCP_SESSIONS', message);
    };
    if (!stopped && (perAddress.get(address) ?? 0) >= limits.maxConnectionsPerAddress) {
      full(
        'address',
        'scp.refused-address-cap',
        `this node serves at most ${limits.maxConnectionsPerAddress} secure connections from one address; close some, or retry later`,
      );
      return;
    }
    if (stopped || conns.size >= limits.maxConnections) {
      full(
        'cap',
        'scp.refused-cap',
        `this node serves at most ${limits.maxConnections} secure connections; retry later`,
      );
      return;
    }
    wss.handleUpgrade(req, socket, head, (ws) => accept(ws, address));
  };
  server.on('upgrade', onUpgrade);

  function finish(c: Conn, reason: ScpCloseReason, code: number, text: string): void {
    if (c.closed) return;
    c.closed = true;
    c.lane.close();
    if (reason !== 'stopping' && reason !== 'ended') metrics.scpClosed.inc({ reason });
    if (c.ws.readyState === WebSocket.OPEN || c.ws.readyState === WebSocket.CONNECTING) {
      c.ws.close(code, text);
      // Read again (its messages are dropped now), or a socket the relay paused would never see
      // the client's close frame, and would go only when ws's close timer ends it.
      c.ws.resume();
    }
  }

  function touch(c: Conn): void {
    if (c.idle) c.idle.refresh();
  }

  function accept(ws: WebSocket, address: string): void {
    const opened = enclave.open().then(
      (session) => {
        if (c.closed) {
          // The socket went away while the enclave opened its session: forget it at once.
          void enclave.close(session).catch(() => {});
          return undefined;
        }
        c.session = session;
        bySession.set(session, c);
        return session;
      },
      (e: unknown) => {
        const code = codeOf(e);
        const full = code === 'SCP_SESSIONS';
        metrics.scpRefused.inc({ reason: full ? 'sessions' : 'enclave' });
        log.warn({ event: full ? 'scp.refused-sessions' : 'scp.open-failed', code }, 'scp');
        finish(c, full ? 'sessions' : 'enclave', full ? CLOSE.tryAgain : CLOSE.internal, code);
        return undefined;
      },
    );
    const c: Conn = {
      ws,
      session: undefined,
      opened,
      lane: fair.lane(limits.shareBy === 'socket' ? `socket ${nextSocket++}` : address, {
        // Issued in arrival order: once the session is known, every frame goes straight to the
        // enclave (whose boundary keeps the order); before, frames wait on `opened`, whose
        // callbacks run in the order they were added, and no frame can skip them (session is set
        // in the first of those callbacks).
        send: (frame) =>
          c.session !== undefined
            ? enclave.frame(c.session, frame)
            : opened.then((session) =>
                session === undefined ? undefined : enclave.frame(session, frame),
              ),
        failed: (e) => {
          log.error({ event: 'scp.frame-failed', code: codeOf(e) }, 'scp relay');
          finish(c, 'enclave', CLOSE.internal, 'ENCLAVE_FAILED');
        },
        overflow: () => finish(c, 'busy', CLOSE.tryAgain, 'NODE_BUSY'),
        pause: () => ws.pause(),
        resume: () => ws.resume(),
        isPaused: () => ws.isPaused,
      }),
      idle: undefined,
      handshake: undefined,
      address,
      closed: false,
    };
    conns.add(c);
    perAddress.set(address, (perAddress.get(address) ?? 0) + 1);
    metrics.scpConnections.inc();
    c.handshake = setTimeout(
      () => finish(c, 'handshake', CLOSE.policy, 'the handshake did not finish in time'),
      limits.handshakeMs,
    );
    c.handshake.unref();
    c.idle = setTimeout(() => finish(c, 'idle', CLOSE.goingAway, 'idle'), limits.idleMs);
    c.idle.unref();

    ws.on('message', (data: RawData, isBinary: boolean) => {
      if (c.closed) return;
      touch(c);
      if (!isBinary) {
        finish(c, 'text', CLOSE.unsupported, 'SCP frames are binary messages');
        return;
      }
      const frame = toBytes(data);
      framesIn.inc();
      // The client's last handshake frame (its type byte is plaintext) ends the deadline.
      if (c.handshake !== undefined && frame[0] === FRAME.CA) {
        clearTimeout(c.handshake);
        c.handshake = undefined;
      }
      c.lane.receive(frame);
    });
    ws.on('error', () => {
      // ws reports protocol violations (oversize 1009, bad framing 1002) here and closes itself.
      if (!c.closed) metrics.scpClosed.inc({ reason: 'protocol' });
      c.closed = true;
      c.lane.close();
    });
    ws.on('close', () => {
      c.closed = true;
      c.lane.release();
      if (c.idle) clearTimeout(c.idle);
      if (c.handshake) clearTimeout(c.handshake);
      const left = (perAddress.get(c.address) ?? 1) - 1;
      if (left <= 0) perAddress.delete(c.address);
      else perAddress.set(c.address, left);
      conns.delete(c);
      metrics.scpConnections.dec();
      // After the frames issued before: the enclave forgets the session.
      void c.opened.then((session) => {
        if (session === undefined) return;
        bySession.delete(session);
        return enclave.close(session).catch(() => {});
      });
    });
  }

  return {
    send(session, frame) {
      const c = bySession.get(session);
      if (c === undefined || c.closed || c.ws.readyState !== WebSocket.OPEN) return;
      if (c.ws.bufferedAmount + frame.length > limits.maxBufferedBytes) {
        log.warn({ event: 'scp.closed-backpressure' }, 'client does not read; closing');
        finish(c, 'backpressure', CLOSE.policy, 'the client does not read its frames');
        return;
      }
      touch(c);
      framesOut.inc();
      c.ws.send(frame, { binary: true });
    },
    end(session, code) {
      const c = bySession.get(session);
      if (c === undefined) return;
      const ok = code === 'OK';
      // The reason is a code name from the registry (or OK), never data; anything else is dropped.
      const reason = ok || Object.hasOwn(ERROR_CODES, code) ? code : 'SCP_CLOSED';
      metrics.scpEnded.inc({ code: reason });
      // The enclave's own log line (scp.handshake-failed, scp.session-failed) names no reason.
      if (!ok)
        log.info({ event: 'scp.ended', code: reason }, 'secure session ended by the enclave');
      finish(c, 'ended', ok ? CLOSE.normal : CLOSE.policy, reason);
    },
    get connections() {
      return conns.size;
    },
    close() {
      stopped = true;
      server.off('upgrade', onUpgrade);
      for (const c of conns) {
        finish(c, 'stopping', CLOSE.goingAway, 'node stopping');
        // A client that does not answer the close must not hold the node's shutdown.
        setTimeout(() => c.ws.terminate(), CLOSE_GRACE_MS).unref();
      }
      wss.close();
    },
  };
}

function toBytes(data: RawData): Uint8Array {
  const buf = Array.isArray(data)
    ? Buffer.concat(data)
    : Buffer.isBuffer(data)
      ? data
      : Buffer.from(data);
  return new Uint8Array(buf.buffer, buf.byteOffset, buf.length);
}

function codeOf(e: unknown): string {
  const code = (e as { code?: unknown } | undefined)?.code;
  return typeof code === 'string' && Object.hasOwn(ERROR_CODES, code) ? code : 'ENCLAVE_FAILED';
}
