/**
 * One logical connection to a node over SCP (docs/scp.md): opens a socket through the Transport
 * port, runs core's clientHandshake (whose `authorize` the caller supplies), routes responses and
 * notifications to the calls waiting for them, and re-opens with capped exponential backoff and
 * jitter when the socket drops, re-sending every unanswered request as it was (a transaction keeps
 * its request id and salt, so the node applies it once). SCP has no frame saying the node accepted
 * CA: until a session's first server record opens, an ALERT is the node refusing the handshake
 * (HandshakeRefusedError, the alert's code); after it, an ALERT is out of protocol (SCP_PROTOCOL).
 */
import {
  CloisterError,
  clientHandshake,
  FRAME,
  isCloisterError,
  type ScpCrypto,
  ScpError,
  type ScpMessage,
  type ScpSession,
  type ScpSigner,
  type ServerAuth,
  tlsTrustProblem,
} from '@cloister/core';
import {
  ClientClosedError,
  HandshakeRefusedError,
  NetworkError,
  nodeError,
  OutcomeUnknownError,
} from './errors.js';
import type { Socket, Transport } from './ports.js';

export interface ReconnectOptions {
  /**
   * Attempts after a drop before the unanswered calls fail (default 6). Also the re-send budget of
   * one call: it goes out on at most 1 + attempts sessions, so a call whose every session ends
   * before its answer fails (NETWORK; OUTCOME_UNKNOWN for a transaction) instead of being sent
   * again for ever.
   */
  readonly attempts?: number;
  /** Delay before the first attempt, in ms (default 100); doubles per attempt, ±50% jitter. */
  readonly initialMs?: number;
  /** Cap on one delay, in ms (default 5000). */
  readonly maxMs?: number;
}

export interface ConnectionOptions {
  /** The WebSocket URL (ws: or wss:). */
  readonly url: string;
  readonly transport: Transport;
  readonly crypto: ScpCrypto;
  readonly identity: ScpSigner;
  /** Runs before the client proves who it is; throws to refuse the server (see clientHandshake). */
  authorize(auth: ServerAuth): Promise<void>;
  readonly padding: boolean;
  /** false: a drop fails the unanswered calls and closes the connection for good. */
  readonly reconnect: ReconnectOptions | false;
  /** How long a handshake may take, in ms (default 10000). */
  readonly handshakeTimeoutMs?: number;
  /**
   * Runs on every re-opened session (not the first: the caller checks that one once `open`
   * resolved) before the calls waiting are sent on it again; `request` sends on that session
   * only. A throw refuses the session: it is closed, and the calls waiting fail with the error
   * when it is not a passing network failure (then the next attempt checks again).
   */
  readonly checkReopened?: (request: SessionRequest) => Promise<void>;
}

/** A request on one given session, bounded by `deadline` (see Connection.request). */
export type SessionRequest = (
  op: string,
  args: Record<string, unknown>,
  deadline: { readonly ms: number; readonly error: () => unknown },
) => Promise<Answer>;

/** A response, with the session that carried it (app.info signatures bind its sessionHash). */
export interface Answer {
  readonly result: Record<string, unknown>;
  readonly session: ScpSession;
  /** The call's notifications (JSON text), in arrival order. */
  readonly notifications: readonly string[];
}

interface Live {
  readonly socket: Socket;
  readonly session: ScpSession;
  /** Set once, when the socket or session is gone; a dead Live is never used again. */
  dead: boolean;
  /** Why it died (set with dead): an open that finds its Live already dead throws this. */
  reason: unknown;
  /**
   * Set once, when the first server record opens: only then does the client know the node
   * accepted its CA (docs/scp.md §3). Before, an ALERT is the node refusing the handshake;
   * after, an ALERT is out of protocol (the host may have injected it).
   */
  accepted: boolean;
  /** Seals and sends in call order, so frames leave in sequence-number order. */
  sending: Promise<void>;
  /**
   * Ids of calls sent on this Live and given up at their deadline: their late answers are
   * expected and dropped (an answer to an id never sent still ends the session). A response
   * removes its id.
   */
  readonly forgotten: Set<number>;
}

/**
 * One call, from request() until its answer, its failure or close(). A class, not a literal with
 * closures: one object per call, every field set in the constructor (ARCHITECTURE.md "Objects
 * made per call are written out field by field").
 */
class Pending {
  readonly id: number;
  readonly op: string;
  readonly args: Record<string, unknown>;
  readonly onNotify: ((json: string) => void) | undefined;
  readonly notifications: string[] = [];
  readonly #settle: (a: Answer) => void;
  readonly #fail: (e: unknown) => void;
  /** The deadline's timer (cleared when the call settles), if it has one. */
  timer: ReturnType<typeof setTimeout> | undefined = undefined;
  /** The Live this request was last sent on (a re-open sends it again on the new one). */
  sentOn: Live | undefined = undefined;
  /** Sessions it was sent on. Invariant: at most the connection's maxSends. */
  sends = 0;
  /**
   * Attempts that reached sealing (their bytes may have left: the outcome of a transaction is
   * then unknown until answered), and the Live of the last one. Invariant: out <= sends.
   */
  out = 0;
  outOn: Live | undefined = undefined;

  constructor(
    id: number,
    op: string,
    args: Record<string, unknown>,
    onNotify: ((json: string) => void) | undefined,
    settle: (a: Answer) => void,
    fail: (e: unknown) => void,
  ) {
    this.id = id;
    this.op = op;
    this.args = args;
    this.onNotify = onNotify;
    this.#settle = settle;
    this.#fail = fail;
  }

  resolve(a: Answer): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.#settle(a);
  }

  reject(e: unknown): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.#fail(e);
  }
}

/**
 * Failures of one message before anything is sealed (the session says so: docs/scp.md §11): that
 * call fails alone and the session goes on.
 */
const MESSAGE_FAILURES: ReadonlySet<string> = new Set([
  'FRAME_TOO_LARGE',
  'INVALID_INPUT',
  'ENCODING',
]);

/**
 * Frames the client holds while its handshake's checks run (evidence, pin): the node sends two,
 * SH and SA; this leaves room for records the node may send right after reading CA.
 */
const MAX_HANDSHAKE_QUEUE = 8;

/** Calls given up on one session whose answers may still come; beyond, the session is replaced. */
const MAX_FORGOTTEN = 64;

/**
 * Failures a fresh connection may cure at once (re-sent within the reconnect budget); any other (a
 * trust failure, a bug) fails the calls waiting, and only a later call tries again.
 */
const TRANSIENT: ReadonlySet<string> = new Set([
  'NETWORK',
  // A node's close for a frame over MAX_FRAME: a host can inject one (the client's own messages
  // over the cap fail alone, before sealing, as MESSAGE_FAILURES).
  'FRAME_TOO_LARGE',
  'SCP_HANDSHAKE',
  'SCP_RECORD',
  'SCP_SEQUENCE',
  'SCP_PROTOCOL',
  'SCP_CLOSED',
  'SCP_SESSIONS',
]);

function transient(e: unknown): boolean {
  return isCloisterError(e) && TRANSIENT.has(e.code);
}

function why(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/** A uniform number in [0, 1) from crypto.getRandomValues (not Math.random). */
function jitter(): number {
  return (globalThis.crypto.getRandomValues(new Uint32Array(1))[0] as number) / 2 ** 32;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export class Connection {
  private readonly o: ConnectionOptions;
  // Invariant: live is undefined or an established, not dead Live.
  private live: Live | undefined;
  // Invariant: at most one open (or re-open loop) at a time; every caller waits on it.
  private opening: Promise<Live> | undefined;
  // Invariant: a request is here from its call until its answer, its failure or close().
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;
  // Set once: every later call rejects with it.
  private final: unknown;
  private connected = false;
  // Set once, when a session of this connection had a record opened: the node accepted this
  // client at least once. Until then a refused CA is final, as a failed connect would be.
  private everAccepted = false;
  // The options of every seal (one object, not one per record).
  private readonly sealOptions: { readonly pad: boolean };

  constructor(o: ConnectionOptions) {
    this.o = o;
    this.sealOptions = { pad: o.padding };
  }

  /** Opens the first session (one attempt: an unreachable node fails fast, by name). */
  async open(): Promise<void> {
    await this.ready();
  }

  /** Why the connection ended for good (close(), or a drop with reconnect off); else undefined. */
  get ended(): unknown {
    return this.final;
  }

  /** The session calls go out on now; undefined between sessions (the next call opens one). */
  get session(): ScpSession | undefined {
    return this.live?.session;
  }

  /**
   * Sends `op` and resolves its answer; rejects with the node's error or a connection failure.
   * With `deadline`, a call still unanswered after `ms` is forgotten (never sent again) and
   * rejects with `deadline.error()` (OUTCOME_UNKNOWN around it for a transaction that went out).
   */
  request(
    op: string,
    args: Record<string, unknown>,
    onNotify?: (json: string) => void,
    deadline?: { readonly ms: number; readonly error: () => unknown },
  ): Promise<Answer> {
    return this.call(op, args, onNotify, deadline, undefined);
  }

  /**
   * request, on session `on` alone when given (checkReopened, before it is current): the call
   * then waits in `pending` like any other, so its answer is routed to it, and is never sent on
   * another session (send skips a call already sent on the session it is given; its deadline
   * removes it).
   */
  private call(
    op: string,
    args: Record<string, unknown>,
    onNotify: ((json: string) => void) | undefined,
    deadline: { readonly ms: number; readonly error: () => unknown } | undefined,
    on: Live | undefined,
  ): Promise<Answer> {
    return new Promise<Answer>((settle, fail) => {
      const p = new Pending(this.nextId++, op, args, onNotify, settle, fail);
      this.pending.set(p.id, p);
      if (deadline !== undefined) {
        p.timer = setTimeout(() => {
          if (!this.pending.delete(p.id)) return;
          fail(this.lost(p, deadline.error()));
          const on = p.outOn;
          if (on === undefined || on.dead) return;
          on.forgotten.add(p.id);
          // A session whose node answers none of the calls given up on it is wedged (or a host
          // holds its records back): a new one, instead of an ever-growing set.
          if (on.forgotten.size > MAX_FORGOTTEN) {
            this.dropped(
              on,
              new NetworkError(
                `the node answered none of ${on.forgotten.size} calls given up on this connection: opening a new one`,
              ),
            );
          }
        }, deadline.ms);
      }
      if (on !== undefined) {
        this.send(on, p);
        return;
      }
      // An established session: send now (one promise hop less per call).
      if (this.final === undefined && this.live !== undefined) {
        this.send(this.live, p);
        return;
      }
      this.ready().then(
        (live) => this.send(live, p),
        (e: unknown) => {
          this.pending.delete(p.id);
          p.reject(e);
        },
      );
    });
  }

  /** Sends a close message, closes the socket and fails every unanswered call (SCP_CLOSED). */
  async close(): Promise<void> {
    if (this.final !== undefined) return;
    this.final = new ClientClosedError('the client is closed: connect again');
    this.failPending(new ClientClosedError('the client was closed before the node answered'));
    const live = this.live;
    this.live = undefined;
    if (live === undefined || live.dead) return;
    live.dead = true;
    try {
      // Padded like every other record of a padded session, for uniformity (the host learns of
      // the close anyway: the socket closes right after it).
      const frames = await live.session.seal(
        { type: 'close', code: 'SCP_CLOSED', message: 'the client closed the connection' },
        this.sealOptions,
      );
      for (const f of frames) live.socket.send(f);
    } catch {
      // the session is already unusable: closing the socket is all that is left
    }
    live.socket.close();
  }

  private ready(): Promise<Live> {
    if (this.final !== undefined) return Promise.reject(this.final);
    if (this.live !== undefined) return Promise.resolve(this.live);
    if (this.opening === undefined) {
      const p = this.connected && this.o.reconnect !== false ? this.reopen() : this.openOnce();
      this.opening = p.finally(() => {
        this.opening = undefined;
      });
    }
    return this.opening;
  }

  /** Re-opens after a drop: capped exponential backoff with jitter, then re-sends. */
  private async reopen(): Promise<Live> {
    const r = this.o.reconnect === false ? {} : this.o.reconnect;
    const attempts = r.attempts ?? 6;
    const initial = r.initialMs ?? 100;
    const cap = r.maxMs ?? 5000;
    let last: unknown;
    for (let i = 0; i < attempts; i++) {
      await sleep(Math.min(cap, initial * 2 ** i) * (0.5 + jitter()));
      if (this.final !== undefined) throw this.final;
      try {
        return await this.openOnce();
      } catch (e) {
        if (!transient(e)) {
          // A trust failure (another service, evidence that does not verify, another version)
          // fails the calls waiting, and the next call tries a fresh handshake: what failed is
          // unauthenticated, so a host must not be able to end this client with one frame. No
          // call is sent before a handshake verifies, so trying again leaks nothing.
          this.failPending(e);
          throw e;
        }
        last = e;
      }
    }
    const e = new NetworkError(
      `could not reconnect to ${this.o.url} after ${attempts} attempts (${why(last)})`,
      // The last failure's next step (a certificate out of date says who renews it).
      { cause: last, hint: isCloisterError(last, 'NETWORK') ? last.hint : undefined },
    );
    this.failPending(e);
    throw e;
  }

  /** One socket and one handshake; resolves the established Live and re-sends what waits. */
  private async openOnce(): Promise<Live> {
    let socket: Socket;
    try {
      socket = await this.o.transport(this.o.url);
    } catch (e) {
      // A certificate refused by TLS: the node answered, so say what is wrong with it (out of
      // date: its operator renews it; not trusted: NODE_EXTRA_CA_CERTS), not "is it running?".
      const code = (e as { code?: unknown } | undefined)?.code;
      const tls = tlsTrustProblem(typeof code === 'string' ? code : undefined);
      throw tls === undefined
        ? new NetworkError(`could not reach ${this.o.url}: ${why(e)}`, { cause: e })
        : new NetworkError(`could not reach ${this.o.url}: ${tls.why}`, {
            cause: e,
            hint: tls.hint,
          });
    }
    const live = await this.handshake(socket);
    // Refused (an ALERT) or dropped between the handshake's end and here: never make it current.
    if (live.dead && this.final === undefined) throw live.reason;
    if (this.final !== undefined) {
      live.dead = true; // closed (or failed) while the handshake ran
      socket.close();
      throw this.final;
    }
    if (this.connected && this.o.checkReopened !== undefined) {
      // Before any waiting call goes out on a session the host may have routed elsewhere.
      try {
        await this.o.checkReopened((op, args, deadline) =>
          this.call(op, args, undefined, deadline, live),
        );
      } catch (e) {
        live.dead = true;
        live.reason = e;
        socket.close();
        throw e;
      }
      if (live.dead) throw live.reason;
      if (this.final !== undefined) {
        live.dead = true;
        socket.close();
        throw this.final;
      }
    }
    this.connected = true;
    this.live = live;
    for (const p of this.pending.values()) this.send(live, p);
    return live;
  }

  private handshake(socket: Socket): Promise<Live> {
    const { url, crypto, identity, authorize } = this.o;
    const ms = this.o.handshakeTimeoutMs ?? 10_000;
    return new Promise<Live>((resolve, reject) => {
      const hs = clientHandshake({ crypto, identity, authorize });
      let live: Live | undefined;
      let settled = false;
      // Frames and the close are handled strictly in arrival order, one at a time: through a
      // promise chain while anything is asynchronous (the handshake, a session on asynchronous
      // crypto), directly once the session opens records synchronously and the chain is empty.
      let chain = Promise.resolve();
      let queued = 0;
      const dequeue = (): void => {
        queued -= 1;
      };
      const fail = (e: unknown): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        socket.close();
        reject(e);
      };
      const timer = setTimeout(
        () => fail(new NetworkError(`${url} did not complete the handshake within ${ms} ms`)),
        ms,
      );
      const onFrame = async (frame: Uint8Array): Promise<void> => {
        if (live !== undefined) return this.onFrame(live, frame);
        if (settled) return;
        const r = await hs.receive(frame);
        for (const f of r.send) socket.send(f);
        if (r.session === undefined) return;
        live = {
          socket,
          session: r.session,
          dead: false,
          reason: undefined,
          accepted: false,
          forgotten: new Set(),
          sending: Promise.resolve(),
        };
        settled = true;
        clearTimeout(timer);
        resolve(live);
      };
      socket.onmessage = (frame) => {
        if (live !== undefined && queued === 0 && live.session.openSync !== undefined) {
          // As the chain's catch below: nothing thrown here may reach the socket's event emitter.
          try {
            this.onFrame(live, frame);
          } catch (e) {
            fail(e);
          }
          return;
        }
        // Before the session exists the node sends SH and SA (or one ALERT): more than a few
        // frames waiting behind the handshake's checks are a host flooding this client.
        if (live === undefined && queued >= MAX_HANDSHAKE_QUEUE) {
          fail(
            new ScpError(
              'SCP_PROTOCOL',
              `${url} sent more than ${MAX_HANDSHAKE_QUEUE} frames before the handshake completed`,
            ),
          );
          return;
        }
        queued += 1;
        chain = chain
          .then(() => onFrame(frame))
          .catch(fail)
          .finally(dequeue);
      };
      socket.onclose = (reason) => {
        chain = chain.then(() => {
          const e = new NetworkError(
            `the connection to ${url} closed${live === undefined ? ' during the handshake' : ''}${reason ? ` (${reason})` : ''}`,
          );
          if (live === undefined) fail(e);
          else this.dropped(live, e);
        });
      };
      hs.start().then((ch) => {
        if (!settled) socket.send(ch);
      }, fail);
    });
  }

  private send(live: Live, p: Pending): void {
    if (p.sentOn === live || live.dead || !this.pending.has(p.id)) return;
    if (p.sends >= this.maxSends()) {
      // Every session it went out on ended before its answer (a node that keeps closing on it,
      // or an answer this client cannot read): stop here. A transaction keeps its request id:
      // its status tells whether it applied.
      const last = p.sentOn?.reason;
      this.pending.delete(p.id);
      p.reject(
        this.lost(
          p,
          new NetworkError(
            `the call was sent on ${p.sends} connections and each ended before its answer (the last: ${why(last)}); it is not sent again`,
            { cause: last },
          ),
        ),
      );
      return;
    }
    p.sends += 1;
    p.sentOn = live;
    const message: ScpMessage = { type: 'request', id: p.id, op: p.op, args: p.args };
    if (live.session.sealSync !== undefined) {
      // Synchronous crypto: sealed and sent now, so frames leave in call order without a chain.
      let frames: Uint8Array[];
      p.out += 1;
      p.outOn = live;
      try {
        frames = live.session.sealSync(message, this.sealOptions);
      } catch (e) {
        if (!this.messageFailed(p, e)) this.dropped(live, e);
        return;
      }
      for (const f of frames) live.socket.send(f);
      return;
    }
    live.sending = live.sending.then(async () => {
      if (live.dead || !this.pending.has(p.id)) {
        // Never left: the re-open sends it again, or it was given up (its deadline) meanwhile.
        p.sends -= 1;
        return;
      }
      // From here its bytes may leave; once sealing starts it must (sequence numbers).
      p.out += 1;
      p.outOn = live;
      try {
        const frames = await live.session.seal(message, this.sealOptions);
        if (!live.dead) for (const f of frames) live.socket.send(f);
      } catch (e) {
        if (!this.messageFailed(p, e)) this.dropped(live, e);
      }
    });
  }

  /** 1 + the reconnect attempts (1 without reconnects): the sessions one call may go out on. */
  private maxSends(): number {
    const r = this.o.reconnect;
    return r === false ? 1 : 1 + (r?.attempts ?? 6);
  }

  /** True (and `p` rejected alone) when `e` is its message's own failure, not the session's. */
  private messageFailed(p: Pending, e: unknown): boolean {
    if (!isCloisterError(e) || !MESSAGE_FAILURES.has(e.code)) return false;
    this.pending.delete(p.id);
    p.sends -= 1; // this attempt never left; an earlier one may have
    p.out -= 1;
    p.reject(this.lost(p, e));
    return true;
  }

  private onFrame(live: Live, frame: Uint8Array): Promise<void> | undefined {
    if (live.dead) return;
    if (frame[0] === FRAME.ALERT) {
      if (live.accepted) {
        this.dropped(
          live,
          new ScpError(
            'SCP_PROTOCOL',
            "an ALERT arrived after the node's first authenticated record: alerts only end handshakes, so the host may have injected it; the session is closed (connect again)",
          ),
        );
      } else {
        this.refused(live, HandshakeRefusedError.of(frame));
      }
      return;
    }
    if (live.session.openSync !== undefined) {
      let messages: ScpMessage[];
      try {
        messages = live.session.openSync(frame);
      } catch (e) {
        this.dropped(live, e);
        return;
      }
      this.onOpened(live, messages);
      return;
    }
    return live.session.open(frame).then(
      (messages) => this.onOpened(live, messages),
      (e: unknown) => this.dropped(live, e),
    );
  }

  private onOpened(live: Live, messages: ScpMessage[]): void {
    live.accepted = true;
    this.everAccepted = true;
    for (const m of messages) this.onMessage(live, m);
  }

  private onMessage(live: Live, m: ScpMessage): void {
    if (m.type === 'close') {
      this.dropped(live, nodeError(m.code, `the node closed the session: ${m.message}`));
      return;
    }
    if (m.type === 'request') {
      this.dropped(live, new ScpError('SCP_PROTOCOL', 'the node sent a request; only clients do'));
      return;
    }
    const p = this.pending.get(m.id);
    if (p === undefined && live.forgotten.has(m.id)) {
      // The answer to a call given up at its deadline: late, not forged.
      if (m.type === 'response') live.forgotten.delete(m.id);
      return;
    }
    if (p === undefined || p.sentOn !== live) {
      this.dropped(
        live,
        new ScpError('SCP_PROTOCOL', `the node answered request ${m.id}, never sent`),
      );
      return;
    }
    if (m.type === 'notify') {
      p.notifications.push(m.json);
      p.onNotify?.(m.json);
      return;
    }
    this.pending.delete(m.id);
    if (m.ok) {
      const result = m.result instanceof Map ? Object.fromEntries(m.result) : m.result;
      p.resolve({ result, session: live.session, notifications: p.notifications });
    } else {
      p.reject(nodeError(m.code, m.message));
    }
  }

  /**
   * The node refused this Live's CA (its ALERT came before any record): the calls sent on it fail
   * with the alert's error, not re-sent (the refusal is the answer). Before the node ever accepted
   * this client the refusal is final, as a failed connect is; after, the next call re-opens.
   */
  private refused(live: Live, e: HandshakeRefusedError): void {
    if (live.dead) return;
    live.dead = true;
    live.reason = e;
    if (this.live === live) this.live = undefined;
    live.socket.close();
    if (this.final !== undefined) return;
    if (this.everAccepted) this.failPending(e);
    else this.fail(e);
  }

  /** The Live is gone: close it; re-open now when calls wait, else on the next call. */
  private dropped(live: Live, e: unknown): void {
    if (live.dead) return;
    live.dead = true;
    live.reason = e;
    if (this.live === live) this.live = undefined;
    live.socket.close();
    if (this.final !== undefined) return;
    const named =
      e instanceof CloisterError ? e : new NetworkError(`the connection failed: ${why(e)}`);
    if (this.o.reconnect === false) {
      this.fail(named);
      return;
    }
    if (!transient(e)) {
      // Not one a fresh session cures at once (a node's close with another code, a bug): the
      // calls waiting fail with it, and the next call opens a new session. A host may be behind
      // such a close, so it never ends the client for good.
      this.failPending(named);
      return;
    }
    if (this.pending.size > 0) this.ready().catch(() => undefined); // the calls carry the error
  }

  private fail(e: unknown): void {
    if (this.final === undefined) this.final = e;
    this.failPending(e);
  }

  private failPending(e: unknown): void {
    const all = [...this.pending.values()];
    this.pending.clear();
    for (const p of all) p.reject(this.lost(p, e));
  }

  /**
   * What a call that fails for its connection's sake rejects with. A query has no effect to lose;
   * a transaction that went out may have been committed before its answer was lost — even when
   * the node seems to refuse afterwards (an ALERT is not authenticated, and a host can withhold
   * the answer and forge one) —, so it fails with OUTCOME_UNKNOWN and its request id, never with
   * an error that invites a retry under a new one.
   */
  private lost(p: Pending, e: unknown): unknown {
    if (p.op !== 'transact' || p.out === 0) return e;
    const { app, requestId } = p.args;
    if (typeof app !== 'string' || typeof requestId !== 'string') return e;
    return new OutcomeUnknownError(app, requestId, e);
  }
}
