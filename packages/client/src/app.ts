/**
 * Calls to one app over a verified connection. The first use reads `app.info`: the code id the
 * node runs for the app, signed by the node key over this session's hash, and checks it against
 * the constraint's `APP:` clauses. Only then is any argument sealed; a refusal rejects before
 * a single byte of app data leaves the client. Every call names the code id it checked, so a
 * node that has since upgraded the app answers APP_CODE_CHANGED instead of running other code;
 * the client then re-reads and re-checks app.info and retries once. A refused check (the `APP:`
 * clause, or the node's signature) is remembered for the session it was read on: later calls
 * fail with the same error without sending anything; a new session (a reconnect) checks again.
 */
import {
  AppCodeMismatchError,
  appInfoPayload,
  bytesEqual,
  type Claims,
  checkAppClause,
  claimsRequest,
  InvalidInputError,
  isCloisterError,
  isTxid,
  ScpError,
  type ScpSession,
  utf8,
} from '@cloister/core';
import type { Client } from './client.js';
import type { Answer } from './connection.js';
import { NetworkError, RepeatedRequestCodeError } from './errors.js';

/** What the node signed about an app, checked against the constraint. */
export interface AppInfo {
  readonly app: string;
  /** SHA-256 of the app's module: what `APP:<name>=<code id>` clauses name. */
  readonly codeId: Uint8Array;
  /** Index of the deploy entry in the log (its receipt proves when this code was deployed). */
  readonly index: number;
}

export interface CallOptions {
  /** Called with each notification the app emits during the call (a throwing listener is ignored). */
  readonly onNotification?: (value: unknown) => void;
  /**
   * Give up waiting after this many milliseconds (default: wait as long as the connection lives).
   * A query then fails with NETWORK; a transaction that went out fails with OUTCOME_UNKNOWN: it
   * may still commit, so look it up or retry with its request id. The call is not sent again.
   */
  readonly timeoutMs?: number;
}

export interface TransactOptions extends CallOptions {
  /** Idempotency key, 1..128 UTF-8 bytes (default: a random UUID). Retry with the same one. */
  readonly requestId?: string;
  /** 32-byte claims salt (default: random). Pass the first attempt's when retrying by hand. */
  readonly salt?: Uint8Array;
}

export interface QueryResult {
  /** The app's result, parsed from `json`. */
  readonly result: unknown;
  readonly json: string;
  readonly codeId: Uint8Array;
  readonly notifications: readonly unknown[];
}

export interface TransactResult extends QueryResult {
  /** "term.index" of the transaction's log entry (its receipt: client.receipt(txid)). */
  readonly txid: string;
  readonly requestId: string;
  /** True when the node had already applied this request id: this is the stored answer. */
  readonly repeated: boolean;
  /** What the entry commits to (claimsDigest); give it to client.receipt to check the receipt. */
  readonly claims: Claims;
}

function protocol(message: string): ScpError {
  return new ScpError('SCP_PROTOCOL', message);
}

function parseJson(text: unknown, what: string): unknown {
  if (typeof text !== 'string') throw protocol(`the node's ${what} is not JSON text`);
  try {
    return JSON.parse(text);
  } catch {
    throw protocol(`the node's ${what} is not valid JSON`);
  }
}

function argsJson(args: unknown): string {
  let json: string | undefined;
  try {
    json = JSON.stringify(args === undefined ? {} : args);
  } catch (e) {
    throw new InvalidInputError(
      `the call's arguments cannot be written as JSON: ${(e as Error).message}`,
    );
  }
  if (json === undefined) throw new InvalidInputError('the call arguments must be a JSON value');
  return json;
}

function codeIdOf(v: unknown, what: string): Uint8Array {
  if (!(v instanceof Uint8Array) || v.length !== 32) throw protocol(`${what} must be 32 bytes`);
  return v;
}

export class AppClient {
  readonly name: string;
  private readonly client: Client;
  // Invariant: when set, codeId passed checkAppClause and its signature verified.
  private checked: AppInfo | undefined;
  private checking: Promise<AppInfo> | undefined;
  // Invariant: when set, the app.info read on `session` was refused with `error` (APP: clause or
  // signature); while `session` is the client's current one, info() rejects with it, sends nothing.
  private refusal: { readonly session: ScpSession; readonly error: unknown } | undefined;

  constructor(client: Client, name: string) {
    this.client = client;
    this.name = name;
  }

  /**
   * The app's signed code id, checked against the constraint (read once, then on
   * APP_CODE_CHANGED). A copy: calls keep checking against the client's own.
   */
  info(): Promise<AppInfo> {
    return this.verifiedInfo().then((i) => ({ ...i, codeId: i.codeId.slice() }));
  }

  private verifiedInfo(): Promise<AppInfo> {
    if (this.checked !== undefined) return Promise.resolve(this.checked);
    const r = this.refusal;
    if (r !== undefined && r.session === this.client.session) return Promise.reject(r.error);
    if (this.checking === undefined) {
      this.checking = this.readInfo().finally(() => {
        this.checking = undefined;
      });
    }
    return this.checking;
  }

  /** Runs query `method` with `args` (any JSON value); nothing is written. */
  query(method: string, args?: unknown, o: CallOptions = {}): Promise<QueryResult> {
    let json: string;
    let end: number | undefined;
    try {
      json = argsJson(args);
      end = deadlineOf(o);
    } catch (e) {
      return Promise.reject(e);
    }
    return this.withCode((codeId) => this.queryWith(method, json, codeId, o, end), end);
  }

  private queryWith(
    method: string,
    json: string,
    codeId: Uint8Array,
    o: CallOptions,
    end: number | undefined,
  ): Promise<QueryResult> {
    const args = { app: this.name, method, args: json, codeId };
    return this.call('query', args, o, end).then((a) => this.result(a, codeId));
  }

  /**
   * Runs transaction `method`; resolves once it is committed. Retried (on reconnect or by hand)
   * with the same request id, it applies once: a repeat answers the stored result.
   */
  async transact(method: string, args?: unknown, o: TransactOptions = {}): Promise<TransactResult> {
    const json = argsJson(args);
    const requestId = o.requestId ?? globalThis.crypto.randomUUID();
    requestIdBytes(requestId);
    if (o.salt !== undefined && (!(o.salt instanceof Uint8Array) || o.salt.length !== 32)) {
      throw new InvalidInputError('a claims salt is 32 bytes');
    }
    const salt = o.salt?.slice() ?? this.client.crypto.random(32);
    const end = deadlineOf(o);
    return this.withCode(async (codeId) => {
      const a = await this.call(
        'transact',
        { app: this.name, method, args: json, codeId, requestId, salt },
        o,
        end,
      );
      const { txid, repeated } = a.result;
      if (typeof txid !== 'string') throw protocol('the node answered transact without a txid');
      if (!isTxid(txid)) {
        throw protocol('the node answered transact with a txid that is not "term.index"');
      }
      if (typeof repeated !== 'boolean')
        throw protocol('the node answered transact without repeated');
      // A repeat answers the stored first outcome with the code id that produced it, which is
      // another one when the app was upgraded since: accepted only if the constraint admits it
      // (the receipt's claims then prove it was committed with that code id).
      const r = this.result(a, codeId, repeated ? { requestId, txid } : undefined);
      const claims: Claims = {
        salt,
        request: claimsRequest(this.name, method, json, requestId),
        response: utf8(r.json),
        codeId: r.codeId,
      };
      // Written out whole: `{ ...r, txid }` gives each result a hidden class of its own on
      // Node 20 (docs/performance.md, "Hidden classes").
      const { result, json: text, codeId: ran, notifications } = r;
      return { result, json: text, codeId: ran, notifications, txid, requestId, repeated, claims };
    }, end);
  }

  private async readInfo(): Promise<AppInfo> {
    const { result, session } = await this.client.request('app.info', { app: this.name });
    if (result.app !== this.name) throw protocol(`the node answered app.info for another app`);
    const codeId = codeIdOf(result.codeId, 'app.info codeId');
    const { index, sig } = result;
    if (typeof index !== 'number' || !Number.isSafeInteger(index) || index < 1) {
      throw protocol('app.info index must be a positive integer');
    }
    if (!(sig instanceof Uint8Array) || sig.length !== 64)
      throw protocol('app.info sig must be 64 bytes');
    const payload = appInfoPayload(session.sessionHash, this.name, codeId);
    try {
      if (!(await this.client.crypto.verify(session.peerKey, payload, sig))) {
        throw protocol(`the node's signature on the code id of app ${this.name} does not verify`);
      }
      checkAppClause(this.client.constraint, this.name, codeId);
    } catch (e) {
      // The node signed (or failed to sign) this for the session: asking again on it is pointless.
      this.refusal = { session, error: e };
      throw e;
    }
    this.refusal = undefined;
    this.checked = { app: this.name, codeId: codeId.slice(), index };
    return this.checked;
  }

  /**
   * Runs `f` with the checked code id; on APP_CODE_CHANGED reads and checks app.info again and
   * runs it once more. Without a promise hop when the code id is checked already (queries are the
   * hot path).
   */
  private withCode<T>(f: (codeId: Uint8Array) => Promise<T>, end?: number): Promise<T> {
    const known = this.checked;
    if (known === undefined) {
      return this.checkedInfo(end).then((checked) =>
        f(checked.codeId).then(undefined, (e: unknown) => this.afterCodeChange(e, checked, f, end)),
      );
    }
    return f(known.codeId).then(undefined, (e: unknown) => this.afterCodeChange(e, known, f, end));
  }

  /**
   * What a call run with the code id `checked` does on failure `e`: on APP_CODE_CHANGED, reads
   * and checks app.info again and runs `f` once more; any other error is the call's.
   */
  private afterCodeChange<T>(
    e: unknown,
    checked: AppInfo,
    f: (codeId: Uint8Array) => Promise<T>,
    end: number | undefined,
  ): Promise<T> {
    if (!isCloisterError(e, 'APP_CODE_CHANGED')) return Promise.reject(e);
    if (this.checked === checked) this.checked = undefined;
    return this.checkedInfo(end).then((i) => f(i.codeId));
  }

  /** The checked app info, within the call's deadline when it has one. */
  private checkedInfo(end: number | undefined): Promise<AppInfo> {
    // The call's deadline covers reading app.info too (nothing of the call is sent meanwhile).
    if (end === undefined) return this.verifiedInfo();
    return beforeDeadline(
      this.verifiedInfo(),
      end,
      () =>
        new NetworkError(`no answer to app.info of app ${this.name} before the call's deadline`),
    );
  }

  private call(
    op: 'query' | 'transact',
    args: Record<string, unknown>,
    o: CallOptions,
    end?: number,
  ): Promise<Answer> {
    const listener = o.onNotification;
    const onNotify =
      listener === undefined
        ? undefined
        : (json: string): void => {
            try {
              listener(JSON.parse(json));
            } catch {
              // a bad notification fails the call below; a listener's own error is its own
            }
          };
    // `args` names the app already (written out by the caller: no spread per call).
    if (end === undefined) return this.client.request(op, args, onNotify);
    const what = `${op} ${String(args.method)} of app ${this.name}`;
    const left = end - performance.now();
    if (left <= 0) {
      // Spent reading app.info (or on an earlier attempt): not sent.
      return Promise.reject(new NetworkError(`no answer to ${what} within ${o.timeoutMs} ms`));
    }
    return this.client.request(op, args, onNotify, {
      ms: left,
      error: () => new NetworkError(`no answer to ${what} within ${o.timeoutMs} ms`),
    });
  }

  /**
   * The answer's result; its code id must be `codeId`, or for a repeat (`repeat`: the stored
   * outcome of an earlier attempt) one the constraint admits.
   */
  private result(
    a: Answer,
    codeId: Uint8Array,
    repeat?: { readonly requestId: string; readonly txid: string },
  ): QueryResult {
    const ran = codeIdOf(a.result.codeId, 'the answer codeId');
    if (!bytesEqual(ran, codeId)) {
      if (repeat === undefined) throw protocol('the node ran another code id than the one checked');
      try {
        checkAppClause(this.client.constraint, this.name, ran);
      } catch (e) {
        // Not a downgrade: the request id was applied before an upgrade, and its stored outcome
        // is the earlier code's. Said so, with both ways on (the code stays APP_CODE_MISMATCH).
        if (!(e instanceof AppCodeMismatchError)) throw e;
        throw new RepeatedRequestCodeError(e, this.name, repeat.requestId, repeat.txid);
      }
    }
    const json = a.result.result;
    const result = parseJson(json, 'result');
    const notifications = a.notifications.map((n) => parseJson(n, 'notification'));
    return { result, json: json as string, codeId: ran, notifications };
  }
}

/** The UTF-8 bytes of a request id; InvalidInputError unless it is text of 1 to 128 bytes. */
function requestIdBytes(requestId: unknown): Uint8Array {
  const b = typeof requestId === 'string' ? utf8(requestId) : undefined;
  if (b === undefined || b.length < 1 || b.length > 128) {
    throw new InvalidInputError('a request id is 1 to 128 bytes of UTF-8 text');
  }
  return b;
}

/**
 * The message both entries' `claimsSaltFor` MAC (docs/scp.md §6): u16be(|service|) ‖ service ‖
 * u16be(|app|) ‖ utf8(app) ‖ utf8(requestId). InvalidInputError for a service identity or app
 * name longer than 65,535 bytes, an empty app name, or a request id outside 1..128 bytes.
 */
export function claimsSaltMessage(
  serviceIdentity: Uint8Array,
  app: string,
  requestId: string,
): Uint8Array<ArrayBuffer> {
  const appBytes = utf8(app);
  if (!(serviceIdentity instanceof Uint8Array) || serviceIdentity.length > 0xffff) {
    throw new InvalidInputError('a service identity is the bytes of client.service.identity');
  }
  if (appBytes.length === 0 || appBytes.length > 0xffff) {
    throw new InvalidInputError('an app name is 1 to 65,535 bytes of UTF-8 text');
  }
  const idBytes = requestIdBytes(requestId);
  const s = serviceIdentity.length;
  const out = new Uint8Array(4 + s + appBytes.length + idBytes.length);
  out[0] = s >> 8;
  out[1] = s & 0xff;
  out.set(serviceIdentity, 2);
  out[2 + s] = appBytes.length >> 8;
  out[3 + s] = appBytes.length & 0xff;
  out.set(appBytes, 4 + s);
  out.set(idBytes, 4 + s + appBytes.length);
  return out;
}

/** The deadline of a call's `timeoutMs` on the monotonic clock (performance.now()), or undefined. */
function deadlineOf(o: CallOptions): number | undefined {
  const ms = o.timeoutMs;
  if (ms === undefined) return undefined;
  if (!Number.isInteger(ms) || ms < 1 || ms > 2 ** 31 - 1) {
    throw new InvalidInputError('timeoutMs is a whole number of milliseconds, 1 to 2^31 - 1');
  }
  return performance.now() + ms;
}

/** `p`, or `error()` once `end` (performance.now()) has passed first. */
function beforeDeadline<T>(p: Promise<T>, end: number, error: () => Error): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  return Promise.race([
    p,
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(error()), Math.max(0, end - performance.now()));
    }),
  ]).finally(() => clearTimeout(timer));
}
