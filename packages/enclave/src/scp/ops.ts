/**
 * The operations a client calls over an SCP session (docs/scp.md "Operations"): each validates
 * every field of its arguments (a named InvalidInputError otherwise; the session stays up) and
 * answers a result map, or throws the named error of the call. Nothing here sees the socket or
 * the record layer: `server.ts` opens requests in order and seals what this returns.
 *
 * - `app.info` {app} → {app, codeId, index, sig}: sig = the node key over
 *   appInfoPayload(sessionHash, app, codeId), so the client knows which code this session calls.
 * - `query`/`transact`: `codeId` is the code id the client checked; another deployed code id is
 *   APP_CODE_CHANGED and nothing runs. A transaction commits with the claims digest of
 *   {salt, request: claimsRequest(app, method, args, requestId), response: result, codeId}.
 * - `status`, `receipt`, `consistency`, `node.status`: the logchain service's public answers.
 */
import {
  appInfoPayload,
  bytesEqual,
  claimsRequest,
  fromHex,
  InvalidInputError,
  parseTxid,
  type ScpSigner,
  toHex,
  utf8,
} from '@cloister/core';
import type { AppAdmin } from '../apps/deploy/index.js';
import { MAX_REQUEST_ID_BYTES } from '../apps/runtime/abi.js';
import {
  AppCodeChangedError,
  AppNotFoundError,
  type AppRuntime,
  checkAppId,
} from '../apps/runtime/index.js';
import type { Service } from '../log/index.js';

/** What the ops need of the enclave: the running service, the app runtime and admin. */
export interface ScpOpsDeps {
  readonly service: Pick<Service, 'status' | 'receipt' | 'consistency' | 'serviceIdentity'>;
  readonly runtime: Pick<AppRuntime, 'app' | 'call' | 'requestStatus'>;
  readonly admin: Pick<AppAdmin, 'info'>;
  /** The node identity key (signs app.info). */
  readonly signer: ScpSigner;
}

/** One call's context: the session it arrived on. */
export interface OpContext {
  /** TH6 of the session (app.info binds it). */
  readonly sessionHash: Uint8Array;
  /** The client's identity key, verified in the handshake (65 bytes). */
  readonly clientKey: Uint8Array;
  /** Sends one notification of this call (a [3] record) before its response. */
  readonly notify: (json: string) => Promise<void>;
}

export type OpResult = Record<string, unknown>;

/** Code ids kept converted (ops.ts `codeIdBytes`). */
const CODE_IDS = 256;

type Args = ReadonlyMap<string, unknown>;

function argsOf(op: string, raw: unknown, allowed: readonly string[]): Args {
  const m =
    raw instanceof Map
      ? (raw as Map<unknown, unknown>)
      : new Map(Object.entries((raw ?? {}) as Record<string, unknown>));
  for (const k of m.keys()) {
    if (typeof k !== 'string' || !allowed.includes(k)) {
      throw new InvalidInputError(
        `${op} takes the fields ${allowed.length ? allowed.join(', ') : '(none)'}; remove the others`,
      );
    }
  }
  return m as Args;
}

function text(a: Args, op: string, name: string, maxBytes = 1024 * 1024 + 1024): string {
  const v = a.get(name);
  // A UTF-16 code unit is at most 3 UTF-8 bytes: short text needs no encoding to be checked.
  if (typeof v === 'string' && v.length * 3 <= maxBytes) return v;
  if (typeof v !== 'string' || utf8(v).length > maxBytes) {
    throw new InvalidInputError(`${op}: '${name}' must be text of at most ${maxBytes} bytes`);
  }
  return v;
}

function bytes32(a: Args, op: string, name: string): Uint8Array {
  const v = a.get(name);
  if (!(v instanceof Uint8Array) || v.length !== 32) {
    throw new InvalidInputError(`${op}: '${name}' must be a 32-byte byte string`);
  }
  return v;
}

function size(a: Args, op: string, name: string): number {
  const v = a.get(name);
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) {
    throw new InvalidInputError(`${op}: '${name}' must be a whole number (a signed tree size)`);
  }
  return v;
}

function appName(a: Args, op: string): string {
  const app = text(a, op, 'app', 64);
  checkAppId(app);
  return app;
}

function requestId(a: Args, op: string): string {
  const v = a.get('requestId');
  const n = typeof v === 'string' ? utf8(v).length : 0;
  if (typeof v !== 'string' || n < 1 || n > MAX_REQUEST_ID_BYTES) {
    throw new InvalidInputError(
      `${op}: 'requestId' must be 1..${MAX_REQUEST_ID_BYTES} bytes of UTF-8`,
    );
  }
  return v;
}

function txidOf(a: Args, op: string): { txid: string; term: number; index: number } {
  const v = a.get('txid');
  if (typeof v !== 'string') {
    throw new InvalidInputError(`${op}: 'txid' must be term.index, two whole numbers from 1 (1.5)`);
  }
  return { txid: v, ...parseTxid(v) };
}

/** The ops of docs/scp.md over `deps`; `run` throws the named error of a failed call. */
export function createScpOps(deps: ScpOpsDeps): {
  run(ctx: OpContext, op: string, args: unknown): Promise<OpResult>;
} {
  const { service, runtime, admin, signer } = deps;
  /**
   * Code id hex → bytes, read-only: every call converts the runtime's code id twice. Bounded:
   * cleared when it holds more than CODE_IDS entries (code ids change only with deployments).
   */
  const codeIds = new Map<string, Uint8Array>();
  function codeIdBytes(hex: string): Uint8Array {
    let b = codeIds.get(hex);
    if (b === undefined) {
      if (codeIds.size >= CODE_IDS) codeIds.clear();
      b = fromHex(hex);
      codeIds.set(hex, b);
    }
    return b;
  }

  /** The app's current code id, or AppNotFoundError (also for an app that failed to load). */
  function currentCode(app: string): Uint8Array {
    const info = runtime.app(app);
    if (info === undefined) throw new AppNotFoundError(app);
    return codeIdBytes(info.codeId);
  }

  function checkCode(app: string, expected: Uint8Array): Uint8Array {
    const current = currentCode(app);
    // Public values (code ids): an ordinary comparison is fine.
    if (!bytesEqual(current, expected)) throw new AppCodeChangedError(app, toHex(current));
    return current;
  }

  async function call(ctx: OpContext, a: Args, op: 'query' | 'transact'): Promise<OpResult> {
    const app = appName(a, op);
    const method = text(a, op, 'method', 256);
    const args = text(a, op, 'args');
    const codeId = bytes32(a, op, 'codeId');
    const id = op === 'transact' ? requestId(a, op) : undefined;
    const salt = op === 'transact' ? bytes32(a, op, 'salt') : undefined;
    checkCode(app, codeId);
    const r = await runtime.call({
      app,
      method,
      kind: op === 'query' ? 'query' : 'transaction',
      args,
      caller: ctx.clientKey,
      ...(id !== undefined && salt !== undefined
        ? { requestId: id, claims: { salt, request: claimsRequest(app, method, args, id) } }
        : {}),
    });
    for (const n of r.notifications) await ctx.notify(n);
    const out: OpResult = { result: r.result, codeId: codeIdBytes(r.codeId) };
    if (op === 'transact') {
      out.repeated = r.repeated;
      if (r.txid !== undefined) out.txid = r.txid;
    }
    return out;
  }

  function txStatus(a: Args): OpResult {
    const { term, index } = txidOf(a, 'status');
    const st = service.status();
    if (term !== st.term || index > st.index) return { state: 'unknown' };
    return { state: index <= st.lastSigned ? 'signed' : 'committed' };
  }

  return {
    async run(ctx, op, raw) {
      switch (op) {
        case 'app.info': {
          const a = argsOf(op, raw, ['app']);
          const app = appName(a, op);
          const codeId = currentCode(app);
          const version = admin.info(app)[0]?.history.find((v) => bytesEqual(v.codeId, codeId));
          if (version === undefined) throw new AppNotFoundError(app);
          const sig = await signer.sign(appInfoPayload(ctx.sessionHash, app, codeId));
          return { app, codeId, index: version.index, sig };
        }
        case 'query':
          return call(ctx, argsOf(op, raw, ['app', 'method', 'args', 'codeId']), op);
        case 'transact':
          return call(
            ctx,
            argsOf(op, raw, ['app', 'method', 'args', 'codeId', 'requestId', 'salt']),
            op,
          );
        case 'status': {
          const a = argsOf(op, raw, ['app', 'requestId', 'txid']);
          if (a.has('txid')) {
            if (a.size !== 1)
              throw new InvalidInputError('status takes {txid} or {app, requestId}');
            return txStatus(a);
          }
          const app = appName(a, op);
          const s = runtime.requestStatus(app, ctx.clientKey, requestId(a, op));
          return s.txid === undefined ? { state: s.state } : { state: s.state, txid: s.txid };
        }
        case 'receipt': {
          const { txid } = txidOf(argsOf(op, raw, ['txid']), op);
          return { receipt: service.receipt(txid) };
        }
        case 'consistency': {
          const a = argsOf(op, raw, ['from', 'to']);
          const from = size(a, op, 'from');
          const to = size(a, op, 'to');
          if (from > to)
            throw new InvalidInputError(`consistency: from (${from}) exceeds to (${to})`);
          return { proof: service.consistency(from, to) };
        }
        case 'node.status': {
          argsOf(op, raw, []);
          const st = service.status();
          return {
            index: st.index,
            term: st.term,
            lastSigned: st.lastSigned,
            stateHash: st.stateHash,
            treeRoot: st.treeRoot,
            serviceIdentity: service.serviceIdentity,
          };
        }
        default:
          throw new InvalidInputError(
            'unknown op: use app.info, query, transact, status, receipt, consistency or node.status',
          );
      }
    },
  };
}
