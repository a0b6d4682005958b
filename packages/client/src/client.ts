/**
 * `connect(url, options)`: a verified secure connection to a node (docs/scp.md). Before the client
 * proves who it is — and long before any app data leaves it — the handshake checks the node's
 * evidence against the constraint, the service endorsement, the `SVC:` clause, the service
 * identity pinned for this URL (on first use, or as accepted) and the one acceptServiceChange
 * names. Receipts are verified here too, with the rollback and fork check of docs/receipts.md
 * ("Consistency") against the roots this client has seen.
 */
import {
  bytesEqual,
  type Claims,
  type Constraint,
  checkSignedRoot,
  decodeReceipt,
  exclusive,
  formatTxid,
  InvalidInputError,
  isCloisterError,
  isTxid,
  type PlatformVerifier,
  parseConstraint,
  parseTxid,
  ReceiptError,
  RollbackDetectedError,
  type ScpCrypto,
  ScpError,
  type ScpSession,
  type ScpSigner,
  type ServerAuth,
  signedRootOf,
  toHex,
  type VerifiedEvidence,
  type VerifiedReceipt,
  verifyReceipt,
  verifyServerAuth,
  webCryptoScp,
} from '@cloister/core';
import { AppClient } from './app.js';
import {
  type Answer,
  Connection,
  type ReconnectOptions,
  type SessionRequest,
} from './connection.js';
import {
  NetworkError,
  NodeError,
  ServiceChangedError,
  StateLockedError,
  UnexpectedServiceError,
} from './errors.js';
import { type ClientState, memoryState, type Transport } from './ports.js';

export interface ConnectOptions {
  /** What you accept: `C:`/`SEC:`… for the node, `APP:name=<code id>` for apps, `SVC:<hash>`. */
  readonly constraint: Constraint | string;
  /** The client's key (its public key is sent only encrypted; apps see a caller id derived from it). */
  readonly identity: ScpSigner;
  /** How to open a WebSocket; the "./node" and "./browser" entries pass theirs. */
  readonly transport: Transport;
  /** Pins and signed roots kept between runs (default: in memory, forgotten at exit). */
  readonly state?: ClientState;
  /**
   * Pad every record to its size bucket (docs/scp.md §4), so the host sees buckets, not exact
   * sizes. Off by default: measured on the SCP benchmark, padding cost queries about 8% of their
   * rate and pushed their p99/p50 to its goal's edge (docs/performance.md); turn it on where sizes
   * would tell the host something (amounts, names of varying length).
   */
  readonly padding?: boolean;
  /** Reconnect when the socket drops (default on, 6 attempts); false: a drop closes the client. */
  readonly reconnect?: ReconnectOptions | false;
  /** Platform verifiers for the evidence (default: core's simulation verifier). */
  readonly verifiers?: readonly PlatformVerifier[];
  /**
   * The service identity you expect, or a deliberate re-pin of this URL's service (after
   * checking with the operator). With an identity's 32 bytes (the one the operator gave you, or
   * ServiceChangedError.shown once the operator confirmed it), the URL must show exactly that
   * service, which is then pinned (replacing another pin): any other is refused before the client
   * key or any app data is sent, and nothing is pinned — SERVICE_CHANGED where another service
   * was pinned, else CONSTRAINT_MISMATCH (UnexpectedServiceError: no pin yet, or the pin is the
   * service shown), also on first use. `true` accepts whatever service the URL shows now and
   * pins it.
   */
  readonly acceptServiceChange?: boolean | Uint8Array;
  /** SCP primitives (default: WebCrypto). */
  readonly crypto?: ScpCrypto;
  /** Handshake time limit in ms (default 10000). */
  readonly handshakeTimeoutMs?: number;
}

/**
 * What connect did with the service pinned for the URL (Client.pin). `first-use`: no service was
 * pinned for the URL, the one shown is pinned now; `kept`: the pin was the service shown;
 * `replaced`: another pin (`previous`) was replaced at the caller's request (acceptServiceChange).
 */
export type PinInfo =
  | { readonly how: 'first-use' | 'kept' }
  | { readonly how: 'replaced'; readonly previous: Uint8Array };

/** What the handshake verified about the service and the node serving it. */
export interface ServiceInfo {
  /** SHA-256 of the service key: what is pinned, and what receipts must name. */
  readonly identity: Uint8Array;
  readonly key: Uint8Array;
  /** The node identity key the evidence binds (may change across reconnects, within the service). */
  readonly nodeKey: Uint8Array;
  readonly evidence: VerifiedEvidence;
}

export type StatusQuery =
  | { readonly txid: string }
  | { readonly app: string; readonly requestId: string };

export interface Status {
  /** For {app, requestId}: committed | unknown; for {txid}: signed | committed | unknown. */
  readonly state: 'signed' | 'committed' | 'unknown';
  readonly txid?: string;
}

export interface ReceiptOptions {
  /** Poll until the transaction is signed (RECEIPT_NOT_READY is retried with backoff). */
  readonly wait?: boolean;
  /** The transaction's claims (a transact result's `claims`): the receipt must commit to them. */
  readonly claims?: Claims;
  /**
   * Give up after about this many ms (default 60000; 1 to 2^31 - 1), by the clock: the polling
   * and its requests (a node that does not answer a receipt request fails it with NETWORK; one
   * that answers RECEIPT_NOT_READY until the end, with that). The root check after it (the
   * consistency proof, 5 s at most; the state lock) is not counted.
   */
  readonly waitMs?: number;
}

export interface ReceiptResult {
  /** The receipt bytes (docs/receipts.md): verifiable offline, later, by anyone. */
  readonly receipt: Uint8Array;
  readonly verified: VerifiedReceipt;
}

/** The ws:/wss: SCP endpoint for a node URL (http:→ws:, https:→wss:, path /v1/scp by default). */
export function scpUrl(url: string): string {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new InvalidInputError(
      `not a URL: ${url}; give the node's URL, e.g. http://127.0.0.1:7410`,
    );
  }
  const scheme = { 'http:': 'ws:', 'https:': 'wss:', 'ws:': 'ws:', 'wss:': 'wss:' }[u.protocol];
  if (scheme === undefined) {
    throw new InvalidInputError(`${url} is not an http(s) or ws(s) URL; give the node's URL`);
  }
  // The URL names the pin in the state file and appears in errors: it carries no secret. A node
  // takes none (the client proves who it is in the handshake, encrypted).
  if (u.username !== '' || u.password !== '') {
    throw new InvalidInputError(
      `${u.protocol}//…@${u.host}: a node URL carries no user name or password (the client's identity key authenticates it); remove them`,
    );
  }
  if (u.search !== '') {
    throw new InvalidInputError(
      `the node URL has a query string (${u.search.length} characters): a node takes none, and the URL is kept in the state file and in errors; remove it`,
    );
  }
  u.protocol = scheme;
  if (u.pathname === '/' || u.pathname === '') u.pathname = '/v1/scp';
  u.hash = '';
  return u.toString();
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/**
 * How long the root check waits for the node's consistency proof. Below the state lock's wait
 * (8 s, Node): a check that fetches holding the lock (after contention) cannot make another
 * process's wait run out.
 */
export const CONSISTENCY_TIMEOUT_MS = 5_000;

/** The least time left for which a receipt wait polls again (else RECEIPT_NOT_READY stands). */
const RECEIPT_LAST_POLL_MS = 250;

/** A client connected to one node; its calls survive reconnects. */
export class Client {
  /** The SCP endpoint (the key of this URL's pin). */
  readonly url: string;
  readonly constraint: Constraint;
  /** The URL as the caller gave it: what messages name (the user never typed the ws:// form). */
  private readonly given: string;
  private readonly o: ConnectOptions;
  private readonly state: ClientState;
  private readonly connection: Connection;
  private readonly apps = new Map<string, AppClient>();
  // Invariant: once set, every later handshake must show this service identity.
  private current: ServiceInfo | undefined;
  // What the first handshake did with the URL's pin (set with `current`).
  private pinned: PinInfo | undefined;

  private constructor(url: string, o: ConnectOptions) {
    this.url = scpUrl(url);
    this.given = url;
    this.o = o;
    this.constraint =
      typeof o.constraint === 'string' ? parseConstraint(o.constraint) : o.constraint;
    this.state = o.state ?? memoryState();
    const crypto = o.crypto ?? webCryptoScp;
    this.connection = new Connection({
      url: this.url,
      transport: o.transport,
      crypto,
      identity: o.identity,
      authorize: (a) => this.authorize(a),
      padding: o.padding === true,
      reconnect: o.reconnect ?? {},
      ...(o.handshakeTimeoutMs === undefined ? {} : { handshakeTimeoutMs: o.handshakeTimeoutMs }),
      checkReopened: (request) => this.checkLatestRoot(request),
    });
  }

  /** A request on whatever session is current (the connection opens one if needed). */
  private readonly anySession: SessionRequest = (op, args, deadline) =>
    this.connection.request(op, args, undefined, deadline);

  /** Connects and verifies (see connect). */
  static async connect(url: string, o: ConnectOptions): Promise<Client> {
    if (typeof o !== 'object' || o === null) {
      throw new InvalidInputError('connect needs options { constraint, identity }');
    }
    // Each option named on its own: a path where an identity goes surfaced as a CBOR error, and a
    // hex string where acceptServiceChange takes bytes was ignored (the change stayed refused).
    const id = o.identity as unknown as { publicKey?: unknown; sign?: unknown } | undefined;
    if (typeof id !== 'object' || id === null || !(id.publicKey instanceof Uint8Array)) {
      throw new InvalidInputError(
        typeof id === 'string'
          ? `identity is an Identity, not a path: load it first (loadIdentity(${JSON.stringify(id)}) in Node; browserIdentity(name) in browsers)`
          : 'connect needs an identity: loadIdentity(path) or generateIdentity() in Node, browserIdentity(name) in browsers',
      );
    }
    if (typeof id.sign !== 'function') {
      throw new InvalidInputError('identity must have a sign() method (an Identity from this SDK)');
    }
    const accept = o.acceptServiceChange as unknown;
    if (
      accept !== undefined &&
      typeof accept !== 'boolean' &&
      !(accept instanceof Uint8Array && accept.length === 32)
    ) {
      throw new InvalidInputError(
        `acceptServiceChange is true or the 32-byte service identity${typeof accept === 'string' ? ` (for the hex SERVICE_CHANGED shows: fromHex(${JSON.stringify(accept.slice(0, 64))}))` : ''}`,
      );
    }
    if (o.transport === undefined) {
      throw new InvalidInputError(
        'connect from @cloister/client needs a transport: import connect from @cloister/client/node or @cloister/client/browser, which bring theirs',
      );
    }
    const c = new Client(url, o);
    await c.connection.open();
    try {
      await c.checkLatestRoot(c.anySession);
    } catch (e) {
      await c.close().catch(() => {});
      throw e;
    }
    return c;
  }

  /**
   * When this client's state holds a signed root of the service (from a receipt it verified
   * earlier, in this process or another sharing the state), the node's newest signed root must
   * extend it: fetched as the receipt of the last signed entry, verified and checked like any
   * receipt (RollbackDetectedError for a node rolled back behind it or forked from it; the
   * newer root stored). DESIGN.md §2: a client remembers the last signed state it saw and asks
   * for a consistency proof from it — at connect, so a plain query or call to a restored copy is
   * refused too, not only a call that fetches its receipt. Nothing is asked of a service this
   * state has no root of. A reconnect runs it too, on the new session, before the calls waiting
   * are sent again (the host could route a reconnect to a restored copy).
   */
  private async checkLatestRoot(request: SessionRequest): Promise<void> {
    const service = this.current?.identity;
    const stored = service === undefined ? undefined : await this.state.roots.get(service);
    if (service === undefined || stored === undefined) return;
    const { result } = await request(
      'node.status',
      {},
      {
        ms: CONSISTENCY_TIMEOUT_MS,
        error: () =>
          new NetworkError(
            `${this.url} did not answer node.status within ${CONSISTENCY_TIMEOUT_MS / 1000} s (asked to check its signed root against the one this client saw)`,
          ),
      },
    );
    const { term, lastSigned } = result;
    if (
      !Number.isSafeInteger(term) ||
      (term as number) < 1 ||
      !Number.isSafeInteger(lastSigned) ||
      (lastSigned as number) < 0
    ) {
      throw new ScpError(
        'SCP_PROTOCOL',
        'the node answered node.status without term and lastSigned',
      );
    }
    if (lastSigned === 0) {
      throw new RollbackDetectedError(
        `${this.url} shows no signed entry of service ${toHex(service)}, whose signed log this client already saw: its data was rolled back or replaced`,
      );
    }
    // Its newest signature behind one already seen: an earlier receipt may be older than the
    // root stored, the node's newest signed root never is (proof or not).
    if ((lastSigned as number) < stored.size) {
      throw new RollbackDetectedError(
        `${this.given} shows service ${toHex(service)} signed up to tree size ${lastSigned}, older than the size ${stored.size} root ${toHex(stored.root)} already seen: its data was rolled back or replaced`,
      );
    }
    // The root check's own bound, not a receipt wait's minute: the entry is signed already.
    await this.receiptVia(
      formatTxid(term as number, lastSigned as number),
      { waitMs: CONSISTENCY_TIMEOUT_MS },
      request,
    );
  }

  /** The verified service (set once connected). */
  get service(): ServiceInfo {
    const c = this.current;
    if (c === undefined) throw new ScpError('SCP_CLOSED', 'the client is not connected');
    // Copies: the client checks reconnects and receipts against its own bytes, which a caller
    // that changes what it was handed must not move.
    return { ...c, identity: c.identity.slice(), key: c.key.slice(), nodeKey: c.nodeKey.slice() };
  }

  /**
   * What connect did with the service pinned for this URL: pinned it on first use, kept it, or
   * replaced it at your request (for a note such as the CLI's "pinned service … (first use)").
   */
  get pin(): PinInfo {
    const p = this.pinned;
    if (p === undefined) throw new ScpError('SCP_CLOSED', 'the client is not connected');
    return p.how === 'replaced' ? { how: p.how, previous: p.previous.slice() } : p;
  }

  /** The ScpCrypto this client verifies signatures with. */
  get crypto(): ScpCrypto {
    return this.o.crypto ?? webCryptoScp;
  }

  /** A handle on app `name`; its code is checked against the `APP:` clauses on first use. */
  app(name: string): AppClient {
    if (typeof name !== 'string' || name.length === 0) {
      throw new InvalidInputError('an app name must be a non-empty string');
    }
    let a = this.apps.get(name);
    if (a === undefined) {
      a = new AppClient(this, name);
      this.apps.set(name, a);
    }
    return a;
  }

  /**
   * The session calls go out on now, undefined between sessions (used by AppClient: an app check
   * refused on a session stays refused for that session, and a new session checks again).
   */
  get session(): ScpSession | undefined {
    return this.connection.session;
  }

  /** A request over the session (used by AppClient; ops are in docs/scp.md). */
  request(
    op: string,
    args: Record<string, unknown>,
    onNotify?: (json: string) => void,
    deadline?: { readonly ms: number; readonly error: () => unknown },
  ): Promise<Answer> {
    return this.connection.request(op, args, onNotify, deadline);
  }

  /** Where a transaction stands, by its txid or by its app's request id. */
  async status(q: StatusQuery): Promise<Status> {
    let args: Record<string, unknown>;
    if (typeof q === 'object' && q !== null && 'txid' in q) {
      parseTxid(q.txid);
      args = { txid: q.txid };
    } else if (typeof q === 'object' && q !== null && 'app' in q) {
      args = { app: q.app, requestId: q.requestId };
    } else {
      throw new InvalidInputError('status takes { txid } or { app, requestId }');
    }
    const { result } = await this.request('status', args);
    const state = result.state;
    if (state !== 'signed' && state !== 'committed' && state !== 'unknown') {
      throw new ScpError('SCP_PROTOCOL', 'the node answered status with an unknown state');
    }
    if (result.txid !== undefined && !isTxid(result.txid)) {
      throw new ScpError(
        'SCP_PROTOCOL',
        'the node answered status with a txid that is not term.index (two whole numbers from 1)',
      );
    }
    return result.txid === undefined ? { state } : { state, txid: result.txid as string };
  }

  /**
   * The receipt of `txid`, verified: evidence against the constraint, the pinned service, the
   * claims when given; then its signed root is checked against the last one this client saw for
   * the service (a consistency proof is fetched over the session): RollbackDetectedError when
   * the service went back or forked.
   */
  receipt(txid: string, o: ReceiptOptions = {}): Promise<ReceiptResult> {
    return this.receiptVia(txid, o, this.anySession);
  }

  /** receipt, with every request (the receipt, the consistency proof) through `request`. */
  private async receiptVia(
    txid: string,
    o: ReceiptOptions,
    request: SessionRequest,
  ): Promise<ReceiptResult> {
    parseTxid(txid);
    const bytes = await this.fetchReceipt(txid, o, request);
    const otherTxid = (sent: string) =>
      new ReceiptError('format', `the node sent the receipt of ${sent}, not ${txid}`);
    const verified = await verifyReceipt(bytes, {
      constraint: this.constraint,
      service: this.service.identity,
      ...(o.claims === undefined ? {} : { claims: o.claims }),
      ...(this.o.verifiers === undefined ? {} : { verifiers: this.o.verifiers }),
    }).catch((e: unknown) => {
      if (e instanceof ReceiptError && e.reason === 'claims') {
        // Claims are checked last: every other step passed, so the entry decodes. A receipt of
        // another transaction is named as such, not as the honest salt mix-up below.
        const { entry } = decodeReceipt(bytes);
        const sent = formatTxid(entry.term, entry.index);
        if (sent !== txid) throw otherTxid(sent);
        // The likeliest honest cause, said where it shows: a repeated request id answers the
        // first attempt's result, whose entry commits to the first attempt's salt.
        throw new ReceiptError(
          'claims',
          `${e.message.replace(/^receipt refused \(claims\): /, '')}; if this transaction repeated a request id (TransactResult.repeated), its entry commits to the first attempt's claims salt: give transact that salt (claimsSaltFor derives the same one every time, from the identity file in Node or the named identity in browsers)`,
          { cause: e },
        );
      }
      throw e;
    });
    if (verified.txid !== txid) throw otherTxid(verified.txid);
    // The proof between the receipt's root and the one stored, either way round (an earlier
    // transaction's receipt is signed at an earlier size), fetched inside the check, which starts
    // over if another process or tab sharing the state stored another root meanwhile (core's
    // checkSignedRoot: compare-and-set writes, the state's lock). A node that does not send the
    // proof within CONSISTENCY_TIMEOUT_MS fails the check with NETWORK.
    await checkSignedRoot(
      this.state.roots,
      signedRootOf(verified),
      async (from, to) => {
        let result: Record<string, unknown>;
        try {
          // Forgotten at the deadline: a stalled answer is neither kept nor sent again.
          ({ result } = await request(
            'consistency',
            { from, to },
            {
              ms: CONSISTENCY_TIMEOUT_MS,
              error: () =>
                new NetworkError(
                  `${this.url} did not send the consistency proof between tree sizes ${from} and ${to} within ${CONSISTENCY_TIMEOUT_MS / 1000} s`,
                ),
            },
          ));
        } catch (e) {
          // The node answered that it cannot prove between those sizes (INVALID_INPUT: a size
          // beyond its signed log, which a root already seen must not be): no proof, which the
          // check reports as a rollback. Any other failure (a lost connection, a node error) is
          // passed on as it is: it says nothing about the log.
          if (e instanceof NodeError && e.code === 'INVALID_INPUT') return undefined;
          throw e;
        }
        const p = result.proof;
        if (!Array.isArray(p) || !p.every((h) => h instanceof Uint8Array)) {
          throw new ScpError('SCP_PROTOCOL', 'the node answered consistency without a proof');
        }
        return p as Uint8Array[];
      },
      (f) => this.locked(f),
    );
    return { receipt: bytes, verified };
  }

  /** Runs `f` under the state's cross-process lock, when the state has one (ClientState.lock). */
  private locked<T>(f: () => Promise<T>): Promise<T> {
    return this.state.lock ? this.state.lock(f) : f();
  }

  /**
   * Why this client ended for good — close() was called, or, with `reconnect: false`, its
   * connection dropped (the error its calls failed with) — or undefined while calls can still go
   * out (with reconnect on, a dropped socket is not an end: the next call opens a new session).
   * An ended client never connects again: connect anew.
   */
  get ended(): unknown {
    return this.connection.ended;
  }

  /** Closes the connection; unanswered calls reject SCP_CLOSED. */
  close(): Promise<void> {
    return this.connection.close();
  }

  private async fetchReceipt(
    txid: string,
    o: ReceiptOptions,
    request: SessionRequest,
  ): Promise<Uint8Array> {
    const limit = o.waitMs ?? 60_000;
    if (!Number.isInteger(limit) || limit < 1 || limit > 2 ** 31 - 1) {
      throw new InvalidInputError('waitMs is a whole number of milliseconds, 1 to 2^31 - 1');
    }
    // By the clock: the requests count too (a node slow to answer them must not stretch the
    // wait). A monotonic clock, so a wall-clock step does not end or stretch it.
    const end = performance.now() + limit;
    let notReady: unknown;
    let delay = 50;
    for (;;) {
      const left = end - performance.now();
      // Too little time for another poll to come back: the node's own answer, not a timeout.
      if (notReady !== undefined && left < RECEIPT_LAST_POLL_MS) throw notReady;
      try {
        const { result } = await request(
          'receipt',
          { txid },
          {
            ms: Math.max(1, Math.ceil(left)),
            error: () =>
              new NetworkError(
                `${this.url} did not send the receipt of ${txid} within ${limit} ms`,
              ),
          },
        );
        if (!(result.receipt instanceof Uint8Array)) {
          throw new ScpError('SCP_PROTOCOL', 'the node answered receipt without receipt bytes');
        }
        return result.receipt;
      } catch (e) {
        if (!o.wait || !isCloisterError(e, 'RECEIPT_NOT_READY')) throw e;
        notReady = e;
      }
      const now = performance.now();
      if (now >= end) throw notReady;
      await sleep(Math.min(delay, end - now));
      delay = Math.min(delay * 2, 1000);
    }
  }

  /** The handshake's check, before the client key is sent: evidence and SVC: (core), then the pin. */
  private async authorize(a: ServerAuth): Promise<void> {
    const evidence = await verifyServerAuth(a, {
      constraint: this.constraint,
      ...(this.o.verifiers === undefined ? {} : { verifiers: this.o.verifiers }),
    });
    const shown = a.serviceIdentity;
    if (this.current !== undefined) {
      // A reconnect must reach the same service: in-flight calls are re-sent to it.
      if (!bytesEqual(this.current.identity, shown)) {
        throw new ServiceChangedError(
          `${this.given} now shows service ${toHex(shown)}, not ${toHex(this.current.identity)} it showed when this client connected`,
          this.current.identity,
          shown,
        );
      }
    } else {
      // Read, compare and pin as one step per pin store (and, across processes and tabs, under
      // the state's lock with a compare-and-set write): two connects to a URL never pinned cannot
      // both take "first use" and leave each client on another service.
      this.pinned = await exclusive(this.state.pins, () =>
        this.locked(async (): Promise<PinInfo> => {
          for (let attempt = 1; ; attempt++) {
            const pinned = await this.state.pins.get(this.url);
            const accept = this.o.acceptServiceChange;
            const changed = pinned !== undefined && !bytesEqual(pinned, shown);
            // The pin's origin (first use, or an accepted change) is not stored: worded neutrally.
            if (
              changed &&
              accept !== true &&
              !(accept instanceof Uint8Array && bytesEqual(accept, shown))
            ) {
              throw new ServiceChangedError(
                `${this.given} shows service ${toHex(shown)}, but ${toHex(pinned)} was pinned for it${accept instanceof Uint8Array ? `; the change accepted (--accept-service, acceptServiceChange) was to ${toHex(accept)}, not to this service` : ''}`,
                pinned,
                shown,
              );
            }
            // The service the caller named (as the operator gave it) is required on first use and
            // where the pin is the service shown too, not only for a change: a URL showing
            // another one is refused before the client key or any app data is sent.
            if (accept instanceof Uint8Array && !bytesEqual(accept, shown)) {
              throw new UnexpectedServiceError(
                pinned === undefined
                  ? `${this.given} shows service ${toHex(shown)}, not ${toHex(accept)} that --accept-service (acceptServiceChange) names: refused before your identity or any app data was sent, and nothing was pinned; check the URL and the service identity with the operator`
                  : `${this.given} shows service ${toHex(shown)}, the one pinned for it, not ${toHex(accept)} that --accept-service (acceptServiceChange) names: refused before your identity or any app data was sent, and the pin is unchanged; check the service identity with the operator, or leave the option out to use the pinned service`,
                accept,
                shown,
              );
            }
            if (pinned !== undefined && !changed) return { how: 'kept' };
            try {
              await this.state.pins.put(this.url, shown, pinned ?? null);
              return pinned === undefined
                ? { how: 'first-use' }
                : { how: 'replaced', previous: pinned.slice() };
            } catch (e) {
              // Pinned by another process or tab meanwhile: read it again (at most twice more).
              if (!(e instanceof StateLockedError) || attempt >= 3) throw e;
            }
          }
        }),
      );
    }
    this.current = {
      identity: shown.slice(),
      key: a.serviceKey.slice(),
      nodeKey: a.nodeKey.slice(),
      evidence,
    };
  }
}

/**
 * Opens a secure connection to the node at `url` (http(s) or ws(s)) and verifies it: resolves once
 * the handshake passed every check; rejects by name (CONSTRAINT_MISMATCH, SERVICE_CHANGED,
 * NETWORK, SCP_*) with nothing sent but the handshake. The node's verdict on the client's own
 * proof (CA) has no frame of its own in SCP: a refusal (the node's unauthenticated ALERT,
 * HandshakeRefusedError with the alert's code) rejects connect when it arrives in time, else the
 * calls sent in that session (and every later call while the node never accepted this client).
 */
export function connect(url: string, options: ConnectOptions): Promise<Client> {
  return Client.connect(url, options);
}
