/**
 * The enclave's SCP server (docs/scp.md): a table of sessions fed with the frames the host
 * relays (`scp.open`, `scp.frame`, `scp.close`), answering with frames for the socket
 * (`send` → `scp.send`) and the end of a session (`end` → `scp.end`).
 *
 * Order: the boundary delivers a session's frames in arrival order, and each session processes
 * them strictly in that order through a promise chain, across the asynchronous handshake steps
 * and record opening. Requests opened from records then run concurrently (at most
 * MAX_CONCURRENT per session; beyond, the session stops opening frames until one finishes, so
 * `scp.frame` answers later and the host stops reading the socket). Everything a session sends
 * goes through one output chain, so records leave in the order they were sealed. On a session
 * whose crypto is synchronous (ScpSession.openSync/sealSync, the enclave's node:crypto), a frame
 * with nothing of its session waiting before it is opened and its request started in the call,
 * and records are sealed and sent in the call: the same order without a promise per frame; the
 * chains then hold only what must wait (the handshake, requests beyond MAX_CONCURRENT).
 *
 * Failures: a handshake failure sends ALERT and ends the session; a record-layer failure
 * (SCP_RECORD, SCP_SEQUENCE, SCP_PROTOCOL, …) sends a close record [5] when the send side still
 * works, then ends it. An op's failure is only an error response [2, id, false, [code, message]]:
 * the session stays up. Error responses carry a code from the registry and a message; errors that
 * are not the caller's concern carry a fixed message. Log lines are fixed event names only.
 */

import { RemoteError } from '@cloister/boundary';
import {
  CloisterError,
  encodeAlert,
  Fifo,
  MAX_FRAME,
  MAX_QUEUED_FRAMES,
  paddedLength,
  type ScpCrypto,
  ScpError,
  type ScpLimits,
  type ScpMessage,
  type ScpSession,
  type ScpSigner,
  type ServerHandshake,
  serverHandshake,
} from '@cloister/core';
import type { AppAdmin } from '../apps/deploy/index.js';
import type { AppRuntime } from '../apps/runtime/index.js';
import type { Service } from '../log/index.js';
import { createScpOps, type OpResult } from './ops.js';

/** Sessions at most (open or in their handshake); beyond, `open` throws SCP_SESSIONS. */
export const DEFAULT_MAX_SESSIONS = 10_000;
/** Requests of one session running at once. */
export const MAX_CONCURRENT = 32;
/**
 * Requests of all sessions running at once, and the bytes of the records they came in: the
 * per-session cap alone let 160 sessions of 32 requests of 1 MiB fill the enclave's heap (a
 * review's demonstration; the node stopped). Beyond, a request waits its turn, its session opens
 * no frame meanwhile, and the host's relay stops reading. Turns go round the sessions: a waiting
 * session has exactly one request in line (it opens nothing else while it waits), a session that
 * got its turn lines up again behind the others for its next request, and the head of the line
 * keeps its place until room frees for it; so a session's request waits at most one turn of each
 * other waiting session (docs/scp.md §5, "Turns"), whatever the host relays or others send.
 */
export const MAX_RUNNING_TOTAL = 256;
export const MAX_RUNNING_BYTES = 64 * 1024 * 1024;
/** Frames a session holds unprocessed at most: core's, which bounds the relay's cap too. */
export { MAX_QUEUED_FRAMES };

/** Record overhead: the frame type byte and the 16-byte tag. */
const RECORD_OVERHEAD = 17;
const RESOLVED: Promise<void> = Promise.resolve();

export interface ScpServerOptions {
  readonly crypto: ScpCrypto;
  /** The node identity key: signs the handshake and app.info. */
  readonly signer: ScpSigner;
  readonly service: Pick<
    Service,
    'servicePublicKey' | 'serviceIdentity' | 'endorsement' | 'status' | 'receipt' | 'consistency'
  >;
  readonly runtime: Pick<AppRuntime, 'app' | 'call' | 'requestStatus'>;
  readonly admin: Pick<AppAdmin, 'info'>;
  /** One frame for the session's socket (`scp.send`); called in the order frames must leave. */
  readonly send: (session: number, frame: Uint8Array) => void;
  /** The session is over: the host closes its socket after the frames sent before (`scp.end`). */
  readonly end: (session: number, code: string) => void;
  /** Fixed event names only. */
  readonly log?: (level: number, event: string) => void;
  readonly maxSessions?: number;
  /** Node-wide running requests and their records' bytes (MAX_RUNNING_TOTAL, MAX_RUNNING_BYTES). */
  readonly maxRunning?: number;
  readonly maxRunningBytes?: number;
  /** Record-layer limits (tests lower them). */
  readonly limits?: ScpLimits;
}

export interface ScpServer {
  /** A new session (in its handshake); throws ScpError SCP_SESSIONS when the table is full. */
  open(): number;
  /**
   * Processes one frame of `session` after its earlier frames; settles once it is processed
   * (a failure is the session's: it ends, and this still resolves). undefined: the frame was
   * processed in the call (nothing waited before it and nothing of it waits; the usual case on a
   * synchronous session). A frame of a session that ended is ignored; of a session never
   * opened, InvalidInputError.
   */
  frame(session: number, frame: Uint8Array): Promise<void> | undefined;
  /** The socket is gone: forgets the session (idempotent). Running calls finish unanswered. */
  close(session: number): void;
  /** Sessions in the table. */
  readonly size: number;
}

interface Slot {
  readonly id: number;
  /** Invariant: exactly one of handshake and session is set while the slot is in the table. */
  handshake: ServerHandshake | undefined;
  session: ScpSession | undefined;
  clientKey: Uint8Array | undefined;
  /** Tail of the frame chain: each frame is processed after the previous one. */
  inbox: Promise<void>;
  /** Frames in the chain, not yet processed. 0: a frame may be processed in the call. */
  queued: number;
  /** Tail of the output chain: seals and sends in call order. */
  outbox: Promise<void>;
  /**
   * Requests running, by message id (each answer names its id, so no two in flight share one).
   * Invariant: size <= MAX_CONCURRENT.
   */
  readonly running: Map<number, Promise<void>>;
  /** Set once the session ended (by either side or a failure); nothing is sent after. */
  ended: boolean;
  /**
   * Its request waits in the server's line of turns. Invariant: a session is in the line at most
   * once (the request waiting there holds up its session's frames), so the line, served in
   * order, goes round the waiting sessions.
   */
  inLine: boolean;
}

/** A request waiting for room: its session, its record's size, and how to let it go on. */
interface Turn {
  readonly s: Slot;
  readonly size: number;
  /** true: room was reserved for it (counted in running and runningBytes); false: it passes. */
  readonly go: (reserved: boolean) => void;
}

/** Codes whose messages are about the caller's own request, so they go to the client as is. */
const CLIENT_CODES: ReadonlySet<string> = new Set([
  'INVALID_INPUT',
  'ENCODING',
  'NOT_FOUND',
  'LEDGER_INDEX',
  'UNKNOWN_TRANSACTION',
  'RECEIPT_NOT_READY',
  'LOG_PROOF',
  'TX_CONFLICT',
  'TX_TOO_LARGE',
  'FRAME_TOO_LARGE',
  'APP_CODE_CHANGED',
  'REQUEST_ID_REUSED',
  'APP_NOT_FOUND',
  'APP_METHOD_UNKNOWN',
  'APP_METHOD_KIND',
  'APP_TRAP',
  'APP_FUEL_EXHAUSTED',
  'APP_STACK_DEPTH',
  'APP_ABORT',
  'APP_ERROR',
  'APP_QUERY_WRITE',
  'APP_RESULT_INVALID',
  'APP_RESULT_TOO_LARGE',
  'APP_INSTANCE_POISONED',
  'APP_ABI',
  'LEDGER_RESERVED',
  'LEDGER_CURSOR',
]);

/**
 * True when `e`, or an error it wraps, is the host's answer to a boundary call (a store read, the
 * clock): its code and text are the host's choice, so they never reach a client as the enclave's.
 */
function fromHost(e: unknown): boolean {
  let x: unknown = e;
  for (let depth = 0; x instanceof Error && depth < 8; depth++, x = x.cause) {
    if (x instanceof RemoteError) return true;
  }
  return false;
}

function errorReply(e: unknown): { code: string; message: string } {
  if (fromHost(e)) {
    return {
      code: 'ENCLAVE_FAILED',
      message: 'the node could not answer this call (its host failed a request)',
    };
  }
  if (e instanceof CloisterError) {
    return CLIENT_CODES.has(e.code)
      ? { code: e.code, message: e.message }
      : { code: e.code, message: `the node could not answer this call (${e.code})` };
  }
  return { code: 'ENCLAVE_FAILED', message: 'the node could not answer this call' };
}

export function createScpServer(o: ScpServerOptions): ScpServer {
  const maxSessions = o.maxSessions ?? DEFAULT_MAX_SESSIONS;
  const log = o.log ?? (() => {});
  const ops = createScpOps(o);
  const sessions = new Map<number, Slot>();
  /** Invariant: every id below nextId was handed out once; ids are never reused. */
  let nextId = 1;
  // Invariant: the requests started and not yet finished, across sessions, and the sum of
  // their records' sizes; running <= maxRunning, runningBytes <= maxRunningBytes unless one
  // request alone passes it.
  let running = 0;
  let runningBytes = 0;
  // The line of turns: requests waiting for room, one per waiting session (Slot.inLine), served
  // in order. Invariant: between events the line is empty, or its head does not fit (`admits` is
  // false for it) or is of a session gone since (passed over at the next finish, which must come:
  // its head waited for room, so something runs).
  const turns = new Fifo<Turn>();
  /** Room for a request of `size` bytes (one always fits when none runs). */
  const maxRunning = o.maxRunning ?? MAX_RUNNING_TOTAL;
  const maxRunningBytes = o.maxRunningBytes ?? MAX_RUNNING_BYTES;
  const admits = (size: number): boolean =>
    running === 0 || (running < maxRunning && runningBytes + size <= maxRunningBytes);
  /** Lines `s`'s request of `size` bytes up; resolves true once room is reserved for it. */
  function lineUp(s: Slot, size: number): Promise<boolean> {
    if (s.inLine)
      throw new CloisterError('ENCLAVE_FAILED', 'a secure session lined up twice for a turn');
    s.inLine = true;
    return new Promise<boolean>((go) => turns.push({ s, size, go }));
  }
  /**
   * Lets the line go on while its head fits, reserving the room of each request it lets go (so
   * several go at once when several fit, and none goes past the bounds). A gone session passes
   * its turn; a head that does not fit keeps its place: nobody passes it.
   */
  function wakeNext(): void {
    for (let t = turns.peek(); t !== undefined; t = turns.peek()) {
      const gone = t.s.ended;
      if (!gone && !admits(t.size)) return;
      turns.shift();
      t.s.inLine = false;
      if (!gone) {
        running += 1;
        runningBytes += t.size;
      }
      t.go(!gone);
    }
  }

  function finish(s: Slot, code: string): void {
    if (s.ended) return;
    s.ended = true;
    sessions.delete(s.id);
    o.end(s.id, code);
  }

  /** Seals `m` after everything sealed before and sends its frame(s); rejects if sealing fails. */
  function output(s: Slot, m: ScpMessage, pad: boolean): Promise<void> {
    const session = s.session;
    if (session?.sealSync !== undefined) {
      // Synchronous crypto: sealed and sent in the call, so in call order, without the chain.
      if (s.ended) return RESOLVED;
      try {
        for (const f of session.sealSync(m, { pad })) o.send(s.id, f);
      } catch (e) {
        return Promise.reject(e);
      }
      return RESOLVED;
    }
    const p = s.outbox.then(async () => {
      if (s.ended || session === undefined) return;
      const frames = await session.seal(m, { pad });
      if (s.ended) return;
      for (const f of frames) o.send(s.id, f);
    });
    s.outbox = p.catch(() => {});
    return p;
  }

  /** Ends a session after a record-layer failure: a close record when possible, then the end. */
  async function fail(s: Slot, e: unknown): Promise<void> {
    if (s.ended) return;
    const code = e instanceof ScpError ? e.code : 'SCP_PROTOCOL';
    const message = e instanceof ScpError ? e.message : 'the session failed; open a new connection';
    log(40, 'scp.session-failed');
    await output(s, { type: 'close', code, message }, false).catch(() => {});
    finish(s, code);
  }

  async function request(
    s: Slot,
    m: Extract<ScpMessage, { type: 'request' }>,
    pad: boolean,
  ): Promise<void> {
    const clientKey = s.clientKey;
    const session = s.session;
    if (clientKey === undefined || session === undefined) return;
    let reply: ScpMessage;
    try {
      const result: OpResult = await ops.run(
        {
          sessionHash: session.sessionHash,
          clientKey,
          notify: (json) => output(s, { type: 'notify', id: m.id, json }, pad),
        },
        m.op,
        m.args,
      );
      reply = { type: 'response', id: m.id, ok: true, result };
    } catch (e) {
      if (s.ended) return;
      if (e instanceof ScpError && e.code !== 'FRAME_TOO_LARGE') return fail(s, e);
      reply = { type: 'response', id: m.id, ok: false, ...errorReply(e) };
    }
    try {
      await output(s, reply, pad);
    } catch (e) {
      // A result too large for one frame: the session is intact, the client gets the error.
      if (e instanceof ScpError && e.code === 'FRAME_TOO_LARGE') {
        const err = { type: 'response', id: m.id, ok: false, ...errorReply(e) } as const;
        return output(s, err, pad).catch((e2: unknown) => fail(s, e2));
      }
      return fail(s, e);
    }
  }

  async function handshake(s: Slot, hs: ServerHandshake, frame: Uint8Array): Promise<void> {
    let r: Awaited<ReturnType<ServerHandshake['receive']>>;
    try {
      r = await hs.receive(frame);
    } catch (e) {
      const code = e instanceof ScpError ? e.code : 'SCP_HANDSHAKE';
      const message = e instanceof ScpError ? e.message : 'the handshake failed';
      log(40, 'scp.handshake-failed');
      if (!s.ended) o.send(s.id, encodeAlert(code, message));
      finish(s, code);
      return;
    }
    if (s.ended) return;
    for (const f of r.send) o.send(s.id, f);
    if (r.session !== undefined && r.clientKey !== undefined) {
      s.session = r.session;
      s.clientKey = r.clientKey;
      s.handshake = undefined;
    }
  }

  /**
   * Processes one frame; undefined when it was done in the call (a synchronous session with room
   * for its requests), else a promise settling once it is processed.
   */
  function process(s: Slot, frame: Uint8Array): Promise<void> | undefined {
    if (s.ended) return undefined;
    if (s.handshake !== undefined) return handshake(s, s.handshake, frame);
    const session = s.session;
    if (session === undefined) return undefined;
    if (session.openSync !== undefined) {
      let messages: ScpMessage[];
      try {
        messages = session.openSync(frame);
      } catch (e) {
        return fail(s, e);
      }
      return dispatch(s, padsAnswers(frame), messages, frame.length);
    }
    return session.open(frame).then(
      (messages) => dispatch(s, padsAnswers(frame), messages, frame.length),
      (e: unknown) => fail(s, e),
    );
  }

  /**
   * Starts the requests of one opened record (`size` bytes), from `messages[from]` on. Beyond
   * MAX_CONCURRENT of its session it waits for one of them; without room node-wide
   * (MAX_RUNNING_TOTAL, MAX_RUNNING_BYTES) or with others in line, it lines up and starts once
   * the line reaches it and room is reserved (this session opens no frame meanwhile); then it
   * goes on from the next message. undefined when everything started in the call.
   */
  function dispatch(
    s: Slot,
    pad: boolean,
    messages: ScpMessage[],
    size: number,
    from = 0,
  ): Promise<void> | undefined {
    for (let i = from; i < messages.length; i++) {
      const m = messages[i] as ScpMessage;
      if (s.ended) return undefined;
      if (m.type === 'close') {
        finish(s, 'OK');
        return undefined;
      }
      if (m.type !== 'request') {
        return fail(s, new ScpError('SCP_PROTOCOL', `a client sends requests, not a ${m.type}`));
      }
      if (s.running.size >= MAX_CONCURRENT) {
        return Promise.race(s.running.values()).then(() => dispatch(s, pad, messages, size, i));
      }
      if (s.running.has(m.id)) return fail(s, idInUse(m.id));
      if (turns.size > 0 || !admits(size)) {
        return lineUp(s, size).then((reserved) => {
          if (!reserved) return undefined; // gone while in line: its turn passed
          if (s.ended) {
            // Gone after its turn came: the room reserved for it goes to the next in line.
            running -= 1;
            runningBytes -= size;
            wakeNext();
            return undefined;
          }
          start(s, m, pad, size, true);
          return dispatch(s, pad, messages, size, i + 1);
        });
      }
      start(s, m, pad, size, false);
    }
    return undefined;
  }

  /** Mirrors the client's padding: a record whose plaintext fills a bucket gets padded answers. */
  function padsAnswers(frame: Uint8Array): boolean {
    const pt = frame.length - RECORD_OVERHEAD;
    return pt > 0 && paddedLength(pt) === pt;
  }

  /** Starts `m`; `reserved`: the line already counted it in running and runningBytes. */
  function start(
    s: Slot,
    m: Extract<ScpMessage, { type: 'request' }>,
    pad: boolean,
    size: number,
    reserved: boolean,
  ): void {
    if (!reserved) {
      running += 1;
      runningBytes += size;
    }
    s.running.set(
      m.id,
      request(s, m, pad).finally(() => {
        s.running.delete(m.id);
        running -= 1;
        runningBytes -= size;
        wakeNext();
      }),
    );
  }

  function idInUse(id: number): ScpError {
    return new ScpError(
      'SCP_PROTOCOL',
      `request id ${id} is already in flight on this session (each answer names its request's id)`,
    );
  }

  return {
    open() {
      if (sessions.size >= maxSessions) {
        log(40, 'scp.sessions-full');
        throw new ScpError(
          'SCP_SESSIONS',
          `this node has ${maxSessions} secure sessions open; retry later`,
        );
      }
      const endorsement = o.service.endorsement();
      const s: Slot = {
        id: nextId++,
        handshake: serverHandshake({
          crypto: o.crypto,
          nodeSigner: o.signer,
          serviceKey: o.service.servicePublicKey,
          evidence: endorsement.ev,
          endorsement: endorsement.end,
          ...(o.limits ? { limits: o.limits } : {}),
        }),
        session: undefined,
        clientKey: undefined,
        inbox: RESOLVED,
        queued: 0,
        outbox: Promise.resolve(),
        running: new Map(),
        ended: false,
        inLine: false,
      };
      sessions.set(s.id, s);
      return s.id;
    },
    frame(id, frame) {
      const s = sessions.get(id);
      if (s === undefined) {
        if (Number.isSafeInteger(id) && id >= 1 && id < nextId) return Promise.resolve();
        return Promise.reject(new CloisterError('INVALID_INPUT', 'no such secure session'));
      }
      if (!(frame instanceof Uint8Array)) {
        return Promise.reject(new CloisterError('INVALID_INPUT', 'a frame is bytes'));
      }
      // The host relay holds at most its in-flight cap of frames per socket and MAX_FRAME bytes
      // each; a host that sends more is not believed: the session ends instead of the enclave
      // holding whatever it is sent while the session waits (a commit the host delays).
      if (frame.length > MAX_FRAME) {
        return fail(s, new ScpError('FRAME_TOO_LARGE', `a frame is at most ${MAX_FRAME} bytes`));
      }
      if (s.queued >= MAX_QUEUED_FRAMES) {
        return fail(
          s,
          new ScpError(
            'SCP_PROTOCOL',
            `more than ${MAX_QUEUED_FRAMES} frames wait on this session: open a new connection`,
          ),
        );
      }
      let p: Promise<void>;
      if (s.queued === 0) {
        // Nothing waits before this frame: process it now; chain only what is left to do.
        let r: Promise<void> | undefined;
        try {
          r = process(s, frame);
        } catch (e) {
          r = Promise.reject(e);
        }
        if (r === undefined) return undefined;
        p = r;
      } else {
        p = s.inbox.then(() => process(s, frame));
      }
      s.queued += 1;
      s.inbox = p
        .catch((e: unknown) => fail(s, e))
        .then(() => {
          s.queued -= 1;
        });
      return s.inbox;
    },
    close(id) {
      const s = sessions.get(id);
      if (s === undefined) return;
      s.ended = true;
      sessions.delete(id);
    },
    get size() {
      return sessions.size;
    },
  };
}
