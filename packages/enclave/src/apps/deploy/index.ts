/**
 * Deploy and upgrade as logged, receipted transactions of the administrative ledger (issue 5
 * item 5; docs/node-api.md "Apps", docs/app-abi.md §15).
 *
 * The administrative ledger is the ledger `$admin`: no app id can name it (app ids start with a
 * letter or digit), so no app's ledger calls reach it. Its tables:
 *
 * - `operator`: key `key` → the operator's 65-byte P-256 public key, recorded at the first start
 *   that gives one; a later start with another key is refused (OPERATOR_KEY_MISMATCH).
 * - `apps`: key = app id (UTF-8) → CBOR `{"v": 1, "codeId": bstr32, "size": uint}`, the current
 *   code. Each deploy or upgrade writes a new version of this key, so the key's version history
 *   IS the code history: every code id with the index of the transaction that made it current.
 * - `code`: key = codeId(32) ‖ u32be(i) → chunk i of the module (at most CODE_CHUNK bytes), so
 *   the node reloads every app at a restart. Encrypted at rest like every ledger value.
 *
 * A deploy request is `COSE_Sign1(ES256, operator key)` over deterministic CBOR
 * `{"v": 1, "app": text, "codeId": bstr32, "upgrade": bool, "prev": bstr (empty or 32),
 *   "prevIndex": uint, "service": bstr32, "salt": bstr32}`:
 * `prev`/`prevIndex` are the app's current code id and the index it took effect at (empty and 0
 * for a first deploy), so a replayed or stale request is refused (APP_DEPLOY_STALE), and
 * `service` is the service identity, so a request made for another service is refused too.
 *
 * The transaction commits with the app id as public metadata and the claims digest
 * `claimsDigest({salt, request, response: empty, codeId})` (docs/receipts.md §3), so the operator
 * can check that a receipt is of their own request.
 */
import { verify } from 'node:crypto';
import {
  bytesEqual,
  CloisterError,
  claimsDigest,
  decodeCbor,
  decodeMinimalSign1,
  EncodingError,
  encodeCbor,
  fromUtf8,
  InvalidInputError,
  sha256,
  sign1ToBeSigned,
  toHex,
  utf8,
} from '@cloister/core';
import { publicKeyFromRaw } from '@cloister/node-crypto';
import type { LedgerEngine, Transaction } from '../../ledger/ledger/index.js';
import { AppNotFoundError, type AppRuntime, checkAppId } from '../runtime/index.js';
import { DEFAULT_MAX_MODULE_BYTES } from '../sandbox/limits.js';

/** The administrative ledger's id: starts with `$`, so no app id can take it. */
export const ADMIN_LEDGER = '$admin';
export const OPERATOR_TABLE = 'operator';
export const APPS_TABLE = 'apps';
export const CODE_TABLE = 'code';
const OPERATOR_KEY = utf8('key');
/** Module bytes per `code` value (the ledger's value cap is 1 MiB). */
export const CODE_CHUNK = 1024 * 1024;
/** A deploy request (the COSE_Sign1) is at most this many bytes. */
export const MAX_DEPLOY_REQUEST_BYTES = 4096;
/** Code history versions read per app (`apps.info`), newest first. */
export const MAX_HISTORY = 1000;
/** Apps listed by `apps.info` with no app id. */
export const MAX_LISTED_APPS = 1000;
export const DEPLOY_REQUEST_VERSION = 1;

/** The deploy request is not signed by the recorded operator key. */
export class DeploySignatureError extends CloisterError {
  constructor(message: string) {
    super('APP_DEPLOY_SIGNATURE', message);
  }
}

/** The request does not match the app's current state (replayed, stale, other service). */
export class DeployStaleError extends CloisterError {
  constructor(message: string) {
    super('APP_DEPLOY_STALE', message);
  }
}

/** The module bytes do not hash to the signed code id. */
export class DeployCodeMismatchError extends CloisterError {
  constructor(signed: string, actual: string) {
    super(
      'APP_DEPLOY_CODE_MISMATCH',
      `the module's code id is ${actual}; the request signs ${signed}`,
    );
  }
}

export class OperatorKeyMismatchError extends CloisterError {
  constructor(recorded: Uint8Array) {
    super(
      'OPERATOR_KEY_MISMATCH',
      `this node's administrative ledger records another operator key (SHA-256 ${toHex(sha256(recorded))}); the node refuses to start with a different one`,
    );
  }
}

export class OperatorKeyMissingError extends CloisterError {
  constructor() {
    super('OPERATOR_KEY_MISSING', 'no operator key is recorded on this node: deploys are refused');
  }
}

/** The signed content of a deploy request. */
export interface DeployRequest {
  readonly v: number;
  readonly app: string;
  readonly codeId: Uint8Array;
  readonly upgrade: boolean;
  readonly prev: Uint8Array;
  readonly prevIndex: number;
  readonly service: Uint8Array;
  readonly salt: Uint8Array;
}

/** One version of an app's code: its code id and the index of the transaction that set it. */
export interface CodeVersion {
  readonly codeId: Uint8Array;
  readonly index: number;
}

export interface AppRecord {
  readonly app: string;
  /** Newest first. */
  readonly history: readonly CodeVersion[];
  /** False when the recorded module could not be loaded at this start (logged). */
  readonly loaded: boolean;
}

export interface DeployResult {
  readonly app: string;
  readonly codeId: Uint8Array;
  readonly txid: string;
  readonly index: number;
  /** The module's `cloister_migrate` ran in the upgrade's transaction. */
  readonly migrated: boolean;
}

export interface AppAdmin {
  /**
   * At start: records `operatorKey` (65 bytes; empty = none given) if none is recorded, refuses
   * another one, then reloads every recorded app into the runtime. Returns the number of apps
   * loaded and the txid of the recording ('' when nothing was recorded).
   */
  open(operatorKey: Uint8Array): Promise<{ apps: number; txid: string }>;
  deploy(request: Uint8Array, module: Uint8Array): Promise<DeployResult>;
  /** The public code history of `app`, or of every app when `app` is ''. */
  info(app: string): AppRecord[];
}

function checkPublicKey(key: Uint8Array): void {
  if (!(key instanceof Uint8Array) || key.length !== 65 || key[0] !== 0x04) {
    throw new InvalidInputError('an operator key is a 65-byte uncompressed P-256 public key');
  }
  try {
    publicKeyFromRaw(key);
  } catch {
    throw new InvalidInputError('the operator key is not a point on P-256');
  }
}

const REQUEST_FIELDS = ['v', 'app', 'codeId', 'upgrade', 'prev', 'prevIndex', 'service', 'salt'];

/** Strict decoding of the signed payload (every field, nothing else). */
export function decodeDeployRequest(payload: Uint8Array): DeployRequest {
  const m = decodeCbor(payload);
  if (!(m instanceof Map) || m.size !== REQUEST_FIELDS.length) {
    throw new EncodingError(`a deploy request is a map of ${REQUEST_FIELDS.join(', ')}`);
  }
  for (const k of m.keys()) {
    if (typeof k !== 'string' || !REQUEST_FIELDS.includes(k)) {
      throw new EncodingError(`a deploy request has no field ${String(k)}`);
    }
  }
  const v = m.get('v');
  if (v !== DEPLOY_REQUEST_VERSION) {
    throw new EncodingError(`deploy request version ${String(v)} is not supported (1 is)`);
  }
  const bstr = (name: string, sizes: readonly number[]): Uint8Array => {
    const x = m.get(name);
    if (!(x instanceof Uint8Array) || !sizes.includes(x.length)) {
      throw new EncodingError(`deploy request ${name} must be ${sizes.join(' or ')} bytes`);
    }
    return x;
  };
  const app = m.get('app');
  if (typeof app !== 'string') throw new EncodingError('deploy request app must be text');
  checkAppId(app);
  const upgrade = m.get('upgrade');
  if (typeof upgrade !== 'boolean') throw new EncodingError('deploy request upgrade is a bool');
  const prevIndex = m.get('prevIndex');
  if (typeof prevIndex !== 'number' || !Number.isSafeInteger(prevIndex) || prevIndex < 0) {
    throw new EncodingError('deploy request prevIndex is a whole number');
  }
  return {
    v,
    app,
    codeId: bstr('codeId', [32]),
    upgrade,
    prev: bstr('prev', [0, 32]),
    prevIndex,
    service: bstr('service', [32]),
    salt: bstr('salt', [32]),
  };
}

function encodeRecord(codeId: Uint8Array, size: number): Uint8Array {
  return encodeCbor(
    new Map<string, unknown>([
      ['v', 1],
      ['codeId', codeId],
      ['size', size],
    ]),
  );
}

function decodeRecord(bytes: Uint8Array): { codeId: Uint8Array; size: number } {
  const m = decodeCbor(bytes);
  const codeId = m instanceof Map ? m.get('codeId') : undefined;
  const size = m instanceof Map ? m.get('size') : undefined;
  if (
    !(m instanceof Map) ||
    m.get('v') !== 1 ||
    !(codeId instanceof Uint8Array) ||
    codeId.length !== 32 ||
    typeof size !== 'number'
  ) {
    throw new EncodingError('an app record of the administrative ledger is not in format v1');
  }
  return { codeId, size };
}

/**
 * The code id app `app` runs as recorded in the administrative ledger, read inside `tx` (so that
 * a deploy or upgrade of it conflicts with `tx`), or undefined when none is recorded. The app
 * runtime's `currentCode`.
 */
export function recordedCode(tx: Transaction, app: string): Uint8Array | undefined {
  const rec = tx.get(ADMIN_LEDGER, APPS_TABLE, utf8(app));
  return rec === undefined ? undefined : decodeRecord(rec).codeId;
}

function chunkKey(codeId: Uint8Array, i: number): Uint8Array {
  const k = new Uint8Array(36);
  k.set(codeId);
  new DataView(k.buffer).setUint32(32, i);
  return k;
}

export interface AppAdminOptions {
  readonly engine: LedgerEngine;
  readonly runtime: AppRuntime;
  /** SHA-256 of the service public key (a request names the service it is for). */
  readonly serviceIdentity: Uint8Array;
  /** Module size cap (default the sandbox's 8 MiB). */
  readonly maxModuleBytes?: number;
  /**
   * Whether app data may go to the host in the clear now (the app trace switch: simulation only).
   * A failed migration's message is the app's own text or names its tables, so it reaches the
   * host only then; otherwise the deploy fails with the same code and a fixed message.
   */
  readonly appDataToHost?: () => boolean;
  /** Fixed event names only. */
  readonly log?: (level: number, event: 'apps.reload-failed' | 'apps.deployed') => void;
}

export function createAppAdmin(o: AppAdminOptions): AppAdmin {
  const { engine, runtime } = o;
  const maxModule = o.maxModuleBytes ?? DEFAULT_MAX_MODULE_BYTES;
  const log = o.log ?? (() => {});
  // Deploys and opens run one at a time (each reads, then writes, a record of `$admin`).
  let queue: Promise<unknown> = Promise.resolve();
  /** Runs `f` after every deploy and open queued before it; a failure does not stop the queue. */
  function inTurn<T>(f: () => Promise<T>): Promise<T> {
    const p = queue.then(f);
    queue = p.catch(() => {});
    return p;
  }

  function operatorKey(tx?: Transaction): Uint8Array | undefined {
    if (tx) return tx.get(ADMIN_LEDGER, OPERATOR_TABLE, OPERATOR_KEY);
    return engine.at().get(ADMIN_LEDGER, OPERATOR_TABLE, OPERATOR_KEY);
  }

  function history(app: string, at?: number): CodeVersion[] {
    return engine
      .at(at)
      .history(ADMIN_LEDGER, APPS_TABLE, utf8(app), { limit: MAX_HISTORY })
      .flatMap((v) =>
        v.value === undefined ? [] : [{ codeId: decodeRecord(v.value).codeId, index: v.index }],
      );
  }

  function readModule(codeId: Uint8Array, size: number): Uint8Array {
    const view = engine.at();
    const out = new Uint8Array(size);
    for (let i = 0, at = 0; at < size; i++) {
      const chunk = view.get(ADMIN_LEDGER, CODE_TABLE, chunkKey(codeId, i));
      if (chunk === undefined || at + chunk.length > size) {
        throw new EncodingError(`the stored module ${toHex(codeId)} is incomplete`);
      }
      out.set(chunk, at);
      at += chunk.length;
    }
    if (!bytesEqual(sha256(out), codeId)) {
      throw new EncodingError(`the stored module ${toHex(codeId)} does not match its code id`);
    }
    return out;
  }

  /** Recorded app names, sorted: at most `max` (a listing), or every one (the reload at start). */
  function appNames(max = Number.POSITIVE_INFINITY): string[] {
    const names: string[] = [];
    const view = engine.at();
    let cursor: Uint8Array | undefined;
    do {
      const page = view.list(ADMIN_LEDGER, APPS_TABLE, {
        limit: 1000,
        ...(cursor ? { cursor } : {}),
      });
      for (const e of page.entries) names.push(fromUtf8(e.key));
      cursor = page.cursor;
    } while (cursor !== undefined && names.length < max);
    return names.sort();
  }

  async function openNow(key: Uint8Array): Promise<{ apps: number; txid: string }> {
    let txid = '';
    if (key.length > 0) {
      checkPublicKey(key);
      const recorded = operatorKey();
      if (recorded === undefined) {
        const tx = engine.begin({ reserved: true });
        tx.set(ADMIN_LEDGER, OPERATOR_TABLE, OPERATOR_KEY, key);
        txid = (await tx.commit()).txid;
      } else if (!bytesEqual(recorded, key)) {
        throw new OperatorKeyMismatchError(recorded);
      }
    }
    let apps = 0;
    for (const name of appNames()) {
      try {
        const rec = decodeRecord(
          engine.at().get(ADMIN_LEDGER, APPS_TABLE, utf8(name)) as Uint8Array,
        );
        runtime.install(await runtime.prepare(name, readModule(rec.codeId, rec.size)));
        apps++;
      } catch (e) {
        // A store that failed a read, or a record that failed its check, is not a module that
        // stopped loading: the start fails by name instead of serving the app as APP_NOT_FOUND.
        if (e instanceof CloisterError && (e.code === 'STORE' || e.code === 'LEDGER_INTEGRITY')) {
          throw e;
        }
        log(50, 'apps.reload-failed');
      }
    }
    return { apps, txid };
  }

  /**
   * What the host is told when a migrated upgrade fails: the code, and the message only while app
   * data may go to the host (app trace, simulation only). A migration's failure is the app's own
   * text, and a conflict or integrity error of its transaction names the app's tables.
   */
  function migrationFailure(e: unknown, what: string): unknown {
    if (!(e instanceof CloisterError)) return e;
    if (o.appDataToHost?.() === true) {
      return new CloisterError(e.code, `the upgrade's ${what}: ${e.message}`, { cause: e });
    }
    // No cause either: nothing of the app's text rides along.
    return new CloisterError(
      e.code,
      `the upgrade's ${what} with ${e.code}; its message stays in the enclave, as it can carry the app's data (run the upgrade on a simulation node started with --app-trace, or with cloister dev, to see it)`,
    );
  }

  async function deployNow(request: Uint8Array, module: Uint8Array): Promise<DeployResult> {
    if (!(request instanceof Uint8Array) || request.length > MAX_DEPLOY_REQUEST_BYTES) {
      throw new InvalidInputError(`a deploy request is at most ${MAX_DEPLOY_REQUEST_BYTES} bytes`);
    }
    if (!(module instanceof Uint8Array) || module.length === 0 || module.length > maxModule) {
      throw new InvalidInputError(`a module is 1 to ${maxModule} bytes`);
    }
    const opKey = operatorKey();
    if (opKey === undefined) throw new OperatorKeyMissingError();
    const cose = decodeMinimalSign1(request);
    const ok = verify(
      'sha256',
      sign1ToBeSigned(cose.protectedBytes, cose.payload),
      { key: publicKeyFromRaw(opKey), dsaEncoding: 'ieee-p1363' },
      cose.signature,
    );
    if (!ok) {
      throw new DeploySignatureError(
        "the deploy request's signature does not verify with the operator key this node records",
      );
    }
    const req = decodeDeployRequest(cose.payload);
    if (!bytesEqual(req.service, o.serviceIdentity)) {
      throw new DeployStaleError('the deploy request was made for another service');
    }
    const actual = sha256(module);
    if (!bytesEqual(actual, req.codeId)) {
      throw new DeployCodeMismatchError(toHex(req.codeId), toHex(actual));
    }
    const tx = engine.begin({ reserved: true });
    try {
      const key = utf8(req.app);
      tx.get(ADMIN_LEDGER, APPS_TABLE, key); // read in the transaction: a racing write conflicts
      const current = history(req.app, tx.snapshot)[0];
      if (current === undefined && req.upgrade) throw new AppNotFoundError(req.app);
      if (current !== undefined && !req.upgrade) {
        throw new DeployStaleError(
          `app '${req.app}' is already deployed (code ${toHex(current.codeId)}): an upgrade needs --upgrade`,
        );
      }
      const prevOk =
        current === undefined
          ? req.prev.length === 0 && req.prevIndex === 0
          : bytesEqual(req.prev, current.codeId) && req.prevIndex === current.index;
      if (!prevOk) {
        throw new DeployStaleError(
          `the request is for app '${req.app}' at ${req.prev.length === 0 ? 'no code' : `code ${toHex(req.prev)} (index ${req.prevIndex})`}, but it is at ${current === undefined ? 'no code' : `code ${toHex(current.codeId)} (index ${current.index})`}: a replayed or stale request`,
        );
      }
      if (current !== undefined && bytesEqual(current.codeId, req.codeId)) {
        throw new DeployStaleError(`app '${req.app}' already runs code ${toHex(req.codeId)}`);
      }
      const prepared = await runtime.prepare(req.app, module);
      const migrated = req.upgrade && prepared.hasMigrate;
      if (migrated) {
        try {
          runtime.migrate(prepared, tx);
        } catch (e) {
          throw migrationFailure(e, 'migrate() failed');
        }
      }
      tx.set(ADMIN_LEDGER, APPS_TABLE, key, encodeRecord(req.codeId, module.length));
      if (tx.get(ADMIN_LEDGER, CODE_TABLE, chunkKey(req.codeId, 0)) === undefined) {
        for (let i = 0, at = 0; at < module.length; i++, at += CODE_CHUNK) {
          tx.set(
            ADMIN_LEDGER,
            CODE_TABLE,
            chunkKey(req.codeId, i),
            module.subarray(at, Math.min(module.length, at + CODE_CHUNK)),
          );
        }
      }
      const claims = claimsDigest({
        salt: req.salt,
        request,
        response: new Uint8Array(0),
        codeId: req.codeId,
      });
      let r: Awaited<ReturnType<typeof tx.commit>>;
      try {
        r = await tx.commit({ app: req.app, claims });
      } catch (e) {
        // A migrated upgrade read the app's tables: a conflict names one of them.
        throw migrated ? migrationFailure(e, 'commit failed') : e;
      }
      runtime.install(prepared);
      log(30, 'apps.deployed');
      return { app: req.app, codeId: req.codeId, txid: r.txid, index: r.index, migrated };
    } catch (e) {
      if (tx.state === 'open') tx.abort();
      throw e;
    }
  }

  return {
    // On the deploys' queue too: two racing opens (a host sends apps.open twice at once) both
    // read "no key recorded" outside any transaction and both recorded theirs, so the second key
    // silently replaced the first. In turn, the second sees the first's key and is refused.
    open: (key) => inTurn(() => openNow(key)),
    deploy: (request, module) => inTurn(() => deployNow(request, module)),
    info(app) {
      if (app !== '') {
        checkAppId(app);
        const h = history(app);
        if (h.length === 0) throw new AppNotFoundError(app);
        return [{ app, history: h, loaded: runtime.app(app) !== undefined }];
      }
      return appNames(MAX_LISTED_APPS).map((name) => ({
        app: name,
        history: history(name),
        // What the runtime holds, not what was attempted: a reload that never ran shows too.
        loaded: runtime.app(name) !== undefined,
      }));
    },
  };
}

/** `apps.info`'s reply: CBOR `[[app, [[codeId, index], …newest first], loaded], …]`. */
export function encodeAppRecords(records: readonly AppRecord[]): Uint8Array {
  return encodeCbor(
    records.map((r) => [r.app, r.history.map((v) => [v.codeId, v.index]), r.loaded]),
  );
}
