/**
 * The app runtime (docs/app-abi.md, DESIGN.md §4): deploys modules (validate, check the import
 * types and the ABI version, instrument, register routes) and runs calls on instances that are
 * fresh or reset to their fresh state.
 *
 * - A **transaction** runs in one ledger transaction of the app's own ledger: all or nothing. Any
 *   failure (trap, fuel, abort, app error, a host error) aborts it, so no write survives; success
 *   commits it and returns its transaction id. A request id makes it exactly-once per caller: the
 *   outcome is written to the reserved table `$requests` in the same transaction, and a repeated
 *   (caller, request id) gets that first outcome without running the module.
 * - A **query** reads the latest committed state through a transaction that is never committed;
 *   every write is refused (`APP_QUERY_WRITE`).
 * - Instances: after a successful call its instance is reset to its post-start state
 *   (docs/sandbox.md §5.1) and kept for the app's next call, up to `instancePool` idle instances
 *   per app; a failed call's instance is dropped. A reused instance is indistinguishable from a
 *   fresh one: same result, same fuel (test/app-runtime-reuse.test.ts).
 *
 * `deploy` keeps modules in memory, keyed by app id; the code id is SHA-256 of the original module
 * bytes. The node's deploy and upgrade (a logged transaction of the administrative ledger,
 * `../deploy/`) use the three steps underneath: `prepare` (validate, instrument, version, routes;
 * registers nothing), `migrate` (the optional `cloister_migrate` export, in the upgrade's own
 * ledger transaction) and `install` (register or replace, once that transaction committed).
 */
import { createHash } from 'node:crypto';
import {
  CloisterError,
  claimsDigest,
  fromHex,
  InvalidInputError,
  isCloisterError,
  sha256,
  toHex,
  utf8,
} from '@cloister/core';
import type { LedgerEngine, Transaction } from '../../ledger/ledger/index.js';
import { pooledRandom } from '../../random.js';
import {
  DEFAULT_MAX_RESULT_BYTES,
  instantiate,
  instrumentModule,
  type SandboxInstance,
  type SandboxLimits,
  type SandboxPolicy,
  validateModule,
} from '../sandbox/index.js';
import { compileForReuse } from '../sandbox/reuse.js';
import type { WasmModule } from '../sandbox/wasm-api.js';
import {
  type AbiLimits,
  ALLOWED_IMPORTS,
  CALLER_LABEL,
  DEFAULT_ABI_LIMITS,
  EXPORTS,
  IMPORTS,
  importCost,
  ROUTES_FUEL,
  SUPPORTED_ABI_VERSIONS,
  typeText,
  VERSION_FUEL,
} from './abi.js';
import {
  AbiError,
  AbiVersionError,
  AppCodeChangedError,
  AppError,
  AppNotFoundError,
  MethodKindError,
  MethodUnknownError,
  ResultInvalidError,
} from './errors.js';
import {
  type AbiBinding,
  abiBinding,
  abiImports,
  type CallKind,
  type CallState,
  jsonTextProblem,
  type Route,
} from './host.js';
import { checkRequestId, outcomeTxid, readOutcome, requestKey, storeOutcome } from './requests.js';

export interface AppRuntimeOptions {
  readonly engine: LedgerEngine;
  /** The leader's clock in ms (untrusted; forced monotonic here). Default: always 0. */
  readonly now?: () => number;
  /** The enclave's generator (default node:crypto, drawn 4 KiB at a time: random.ts). */
  readonly random?: (n: number) => Uint8Array;
  readonly limits?: Partial<AbiLimits>;
  /** Deploy caps of the sandbox (module size, memory, table). */
  readonly policy?: Omit<SandboxPolicy, 'allowedImports'>;
  /** Run caps of the sandbox (call depth, result size, start fuel). */
  readonly sandbox?: SandboxLimits;
  /** Debug sink for AssemblyScript `trace` (off by default). */
  readonly trace?: (app: string, message: string, values: readonly number[]) => void;
  /** Re-runs of a transaction that lost a commit conflict (default 3). */
  readonly conflictRetries?: number;
  /**
   * Idle instances kept per app for reuse (default `DEFAULT_INSTANCE_POOL`); 0 runs every call
   * on a fresh instance.
   */
  readonly instancePool?: number;
  /**
   * The app's current code id as the administrative ledger records it, read inside `tx` (the
   * deploy admin's record; undefined for an app it does not record). Every transaction call reads
   * it, so an upgrade that commits after the call's snapshot makes the call conflict, and a call
   * whose code is no longer current stops with APP_CODE_CHANGED instead of running (or re-running
   * after a conflict) old code on the upgraded state.
   */
  readonly currentCode?: (tx: Transaction, app: string) => Uint8Array | undefined;
}

export interface RouteInfo {
  readonly name: string;
  readonly kind: CallKind;
}

export interface DeployedApp {
  readonly app: string;
  /** SHA-256 of the original module bytes, hex. */
  readonly codeId: string;
  readonly abiVersion: number;
  readonly routes: readonly RouteInfo[];
}

export interface AppCall {
  readonly app: string;
  readonly method: string;
  readonly kind: CallKind;
  /** Argument JSON text. */
  readonly args: string;
  /** The client's identity key (65-byte uncompressed P-256 point). */
  readonly caller: Uint8Array;
  /** Client-chosen, 1..128 bytes UTF-8: makes a transaction exactly-once per caller. */
  readonly requestId?: string;
  /** Fuel for the call (default `limits.defaultFuel`). */
  readonly fuel?: number;
  /**
   * Transactions: the entry commits to `claimsDigest({salt, request, response: utf8(result),
   * codeId})` (docs/receipts.md §3), so the client can check its receipt is of this call. A
   * repeated request id returns the first outcome (and so the first claims: the client reuses its
   * salt and request). salt: 32 bytes.
   */
  readonly claims?: { readonly salt: Uint8Array; readonly request: Uint8Array };
}

/** What is known of a (caller, request id) of an app (`requestStatus`). */
export interface RequestStatus {
  /** 'committed': its outcome is in the app's `$requests`; 'unknown': nothing is. */
  readonly state: 'committed' | 'unknown';
  /** Its transaction id (with 'committed'): the commit that stored the outcome. */
  readonly txid?: string;
}

export interface AppCallResult {
  /** Result JSON text (`null` when the app set none). */
  readonly result: string;
  /** Transaction id `term.index` (transactions, repeated ones included: the first run's). */
  readonly txid?: string;
  /** Notification JSON texts for the caller, in order. */
  readonly notifications: readonly string[];
  /** True when this is the stored first outcome of a repeated request id. */
  readonly repeated: boolean;
  /** Fuel the call used (0 for a repeated request). */
  readonly fuelUsed: number;
  /**
   * The code id (hex) that produced the result: the app's current code, or for a repeated
   * request the code of its first run when it was recorded (the claims were made with it).
   */
  readonly codeId: string;
}

/** A module validated and instrumented for app `info.app`, not registered yet (`prepare`). */
export interface PreparedApp {
  readonly info: DeployedApp;
  /** The module exports `cloister_migrate: [] → []` (run by `migrate` at an upgrade). */
  readonly hasMigrate: boolean;
}

export interface AppRuntime {
  /** Validates, instruments and registers `wasm` as app `name`. Throws the named deploy errors. */
  deploy(name: string, wasm: Uint8Array): Promise<DeployedApp>;
  /** Everything `deploy` checks, without registering (an app of that name may exist). */
  prepare(name: string, wasm: Uint8Array): Promise<PreparedApp>;
  /**
   * Runs `cloister_migrate` of `prepared` (if it exports one) on a fresh instance, as a
   * transaction of its app inside `tx` (the caller's ledger transaction: the upgrade's own);
   * returns the fuel used (0 without the export). Throws the call's named error.
   */
  migrate(prepared: PreparedApp, tx: Transaction, fuel?: number): number;
  /** Registers `prepared`, replacing the app's current code if any. */
  install(prepared: PreparedApp): DeployedApp;
  /** Runs one call; throws the named error of a failed call (nothing of it written). */
  call(request: AppCall): Promise<AppCallResult>;
  /** A deployed app, or undefined. */
  app(name: string): DeployedApp | undefined;
  /** The caller id an app sees for `identityKey` (docs/app-abi.md §5.1). */
  callerId(app: string, identityKey: Uint8Array): Uint8Array;
  /**
   * Whether the transaction with request id `requestId` of `caller` (65-byte identity key) on
   * `app` committed, read from the app's `$requests` at the latest committed state. Throws
   * AppNotFoundError for an app not deployed, InvalidInputError for a malformed id or key.
   */
  requestStatus(app: string, caller: Uint8Array, requestId: string): RequestStatus;
}

interface Deployed {
  readonly info: DeployedApp;
  readonly module: WasmModule;
  readonly routes: ReadonlyMap<string, Route>;
}

/** An idle instance of an installed app, reset to its post-start state, with its imports. */
interface Pooled {
  readonly instance: SandboxInstance;
  readonly binding: AbiBinding;
}

interface Installed extends Deployed {
  /** Idle instances, most recently used last. */
  readonly idle: Pooled[];
  /** What an idle instance's imports are bound to: no caller, no ledger, no arguments. */
  readonly idleState: CallState;
}

/**
 * Idle instances kept per app. A call runs `cloister_call` synchronously, so a steady load uses
 * one; the pool is bounded so that memory per app stays small (each instance holds its memory).
 */
export const DEFAULT_INSTANCE_POOL = 4;

const APP_ID_RE = /^[A-Za-z0-9][A-Za-z0-9_.-]*$/;
const MAX_APP_ID_BYTES = 64;
const decoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

const CALLER_LABEL_BYTES = utf8(CALLER_LABEL);

/**
 * docs/app-abi.md §5.1: SHA-256("cloister/caller/v1" ‖ 0x00 ‖ u16be(|app id|) ‖ app id ‖ identity
 * key), with node:crypto's SHA-256 (several times faster than the portable one on this input).
 */
export function callerIdOf(app: string, identityKey: Uint8Array): Uint8Array {
  const a = utf8(app);
  const h = createHash('sha256');
  h.update(CALLER_LABEL_BYTES);
  h.update(Uint8Array.of(0, a.length >> 8, a.length & 0xff));
  h.update(a);
  h.update(identityKey);
  const d = h.digest();
  return new Uint8Array(d.buffer, d.byteOffset, d.length);
}

export function createAppRuntime(options: AppRuntimeOptions): AppRuntime {
  const { engine } = options;
  const limits: AbiLimits = { ...DEFAULT_ABI_LIMITS, ...options.limits };
  const sandboxLimits: SandboxLimits = options.sandbox ?? {};
  const maxResultBytes = sandboxLimits.maxResultBytes ?? DEFAULT_MAX_RESULT_BYTES;
  const random = options.random ?? pooled();
  const now = options.now ?? (() => 0);
  const retries = options.conflictRetries ?? 3;
  const poolSize = options.instancePool ?? DEFAULT_INSTANCE_POOL;
  if (!Number.isSafeInteger(poolSize) || poolSize < 0) {
    throw new InvalidInputError('instancePool is a non-negative integer');
  }
  const apps = new Map<string, Installed>();
  let lastTime = 0;

  const clock = (): number => {
    const t = Math.floor(now());
    if (Number.isSafeInteger(t) && t > lastTime) lastTime = t;
    return lastTime;
  };

  const baseState = (
    app: string,
    kind: CallKind,
    phase: 'deploy' | 'call',
    tx: Transaction | undefined,
  ): CallState => ({
    phase,
    app,
    kind,
    engine,
    tx,
    callerId: new Uint8Array(32),
    requestId: undefined,
    time: lastTime,
    args: new Uint8Array(0),
    limits,
    maxResultBytes,
    random,
    trace:
      options.trace === undefined
        ? undefined
        : (message, values) => options.trace?.(app, message, values),
    result: undefined,
    notifications: [],
    routes: undefined,
  });

  const prepared = new WeakMap<PreparedApp, Deployed & { readonly migrate: boolean }>();

  async function deploy(name: string, wasm: Uint8Array): Promise<DeployedApp> {
    checkAppId(name);
    if (apps.has(name)) throw new InvalidInputError(`app '${name}' is already deployed`);
    return install(await prepare(name, wasm));
  }

  function install(p: PreparedApp): DeployedApp {
    const d = prepared.get(p);
    if (d === undefined) throw new InvalidInputError('not a module prepared by this runtime');
    apps.set(d.info.app, {
      info: d.info,
      module: d.module,
      routes: d.routes,
      idle: [],
      idleState: baseState(d.info.app, 'query', 'deploy', undefined),
    });
    return d.info;
  }

  function migrate(p: PreparedApp, tx: Transaction, fuel?: number): number {
    const d = prepared.get(p);
    if (d === undefined) throw new InvalidInputError('not a module prepared by this runtime');
    if (!d.migrate) return 0;
    const state: CallState = {
      ...baseState(d.info.app, 'transaction', 'call', tx),
      time: clock(),
    };
    const inst = instantiate(d.module, abiImports(state), sandboxLimits);
    return inst.call(EXPORTS.migrate, [], fuel ?? limits.defaultFuel).fuelUsed;
  }

  async function prepare(name: string, wasm: Uint8Array): Promise<PreparedApp> {
    checkAppId(name);
    if (!(wasm instanceof Uint8Array)) throw new InvalidInputError('a module is a Uint8Array');
    const parsed = validateModule(wasm, { ...options.policy, allowedImports: ALLOWED_IMPORTS });
    // Import types: a JavaScript host function accepts any signature, so check them here.
    for (const imp of parsed.imports) {
      const want = IMPORTS[imp.module]?.[imp.field];
      const type = imp.type === undefined ? undefined : parsed.types[imp.type];
      if (want === undefined || type === undefined) continue;
      if (!sameType(type, want)) {
        throw new AbiError(
          `${imp.module}.${imp.field}`,
          `imported as ${typeText(type.params, type.results)}; ABI v1 says ${typeText(want.params, want.results)}`,
        );
      }
    }
    const funcType = (exportName: string) => {
      const e = parsed.exports.find((x) => x.name === exportName && x.kind === 0);
      if (e === undefined) return undefined;
      const typeIndex =
        e.index < parsed.importedFuncs
          ? parsed.imports.filter((x) => x.kind === 'function')[e.index]?.type
          : parsed.funcs[e.index - parsed.importedFuncs];
      return typeIndex === undefined ? undefined : parsed.types[typeIndex];
    };
    const version = funcType(EXPORTS.version);
    if (version === undefined || !sameType(version, { params: [], results: [0x7f] })) {
      throw new AbiVersionError(`the module exports no function ${EXPORTS.version} () -> i32`);
    }
    for (const [exportName, params] of [
      [EXPORTS.routes, []],
      [EXPORTS.call, [0x7f, 0x7f]],
    ] as const) {
      const t = funcType(exportName);
      if (t === undefined || !sameType(t, { params, results: [] })) {
        throw new AbiError(
          'exports',
          `the module exports no function ${exportName} ${typeText(params, [])}`,
        );
      }
    }
    const migrateType = funcType(EXPORTS.migrate);
    if (
      parsed.exports.some((x) => x.name === EXPORTS.migrate) &&
      (migrateType === undefined || !sameType(migrateType, { params: [], results: [] }))
    ) {
      throw new AbiError('exports', `${EXPORTS.migrate}, when exported, is a function () -> ()`);
    }
    const instrumented = instrumentModule(wasm, {
      importCost,
      ...(options.policy?.maxMemoryPages === undefined
        ? {}
        : { maxMemoryPages: options.policy.maxMemoryPages }),
      ...(options.policy?.maxTableElements === undefined
        ? {}
        : { maxTableElements: options.policy.maxTableElements }),
    });
    const module = compileForReuse(instrumented);

    const vState = baseState(name, 'query', 'deploy', undefined);
    const vInstance = atDeploy('start function', () =>
      instantiate(module, abiImports(vState), sandboxLimits),
    );
    const got = atDeploy(
      EXPORTS.version,
      () => vInstance.call(EXPORTS.version, [], VERSION_FUEL).result,
    );
    if (typeof got !== 'number' || !SUPPORTED_ABI_VERSIONS.includes(got)) {
      throw new AbiVersionError(
        `ABI version ${String(got)} is not supported (this node supports ${SUPPORTED_ABI_VERSIONS.join(', ')})`,
        typeof got === 'number' ? got : undefined,
      );
    }
    const rState = baseState(name, 'query', 'deploy', undefined);
    rState.routes = [];
    const rInstance = instantiate(module, abiImports(rState), sandboxLimits);
    atDeploy(EXPORTS.routes, () => rInstance.call(EXPORTS.routes, [], ROUTES_FUEL));
    const routes = new Map(rState.routes.map((r) => [r.name, r]));
    const info: DeployedApp = {
      app: name,
      codeId: toHex(sha256(wasm)),
      abiVersion: got,
      routes: rState.routes.map((r) => ({ name: r.name, kind: r.kind })),
    };
    const p: PreparedApp = { info, hasMigrate: migrateType !== undefined };
    prepared.set(p, { info, module, routes, migrate: migrateType !== undefined });
    return p;
  }

  /**
   * Runs the module on an idle instance of the app, or a fresh one; returns the fuel used. Throws
   * the call's error, and the instance is dropped. After success the instance is reset to its
   * post-start state and kept, if it can be (docs/sandbox.md §5.1) and the pool has room.
   */
  function run(d: Installed, route: Route, state: CallState, fuel: number): number {
    let p = d.idle.pop();
    if (p === undefined) {
      const binding = abiBinding(state);
      p = { instance: instantiate(d.module, binding.imports, sandboxLimits), binding };
    } else {
      p.binding.bind(state);
    }
    const { fuelUsed } = p.instance.call(EXPORTS.call, [route.id, state.args.length], fuel);
    p.binding.bind(d.idleState);
    if (d.idle.length < poolSize && p.instance.reset()) d.idle.push(p);
    return fuelUsed;
  }

  function outcomeOf(state: CallState): { result: string; notifications: string[] } {
    const result = state.result ?? utf8('null');
    const problem = jsonTextProblem(result, limits.maxJsonDepth);
    if (problem !== undefined) throw new ResultInvalidError('result', problem);
    return {
      result: decoder.decode(result),
      notifications: state.notifications.map((n) => decoder.decode(n)),
    };
  }

  /** The stored first outcome of `reqKey` on `d`'s app (requests.ts), answered as a repeat. */
  function storedOutcome(
    tx: Transaction,
    d: Installed,
    app: string,
    reqKey: Uint8Array,
    method: string,
    args: Uint8Array,
  ): AppCallResult | undefined {
    const stored = readOutcome(tx, app, reqKey, method, args);
    if (stored === undefined) return undefined;
    return {
      result: stored.result,
      notifications: stored.notifications,
      txid: stored.txid,
      repeated: true,
      fuelUsed: 0,
      codeId: stored.codeId ?? d.info.codeId,
    };
  }

  /**
   * A retried transaction is answered from its stored outcome before the checks of the code it
   * would run now: after an upgrade renamed its method, made it a query, or tightened the
   * argument limits, the retry of a request that committed must still learn that it did, not
   * get an error that reads as "not applied" (docs/app-abi.md §5.3).
   */
  function repeatedEarly(request: AppCall, d: Installed): AppCallResult | undefined {
    const { requestId } = request;
    if (request.kind !== 'transaction' || requestId === undefined) return undefined;
    if (typeof request.method !== 'string' || typeof request.args !== 'string') return undefined;
    if (!(request.caller instanceof Uint8Array) || request.caller.length !== 65) return undefined;
    checkRequestId(requestId);
    const reqKey = requestKey(callerIdOf(request.app, request.caller), requestId);
    const tx = engine.begin({ reserved: true });
    try {
      return storedOutcome(tx, d, request.app, reqKey, request.method, utf8(request.args));
    } finally {
      tx.abort();
    }
  }

  async function call(request: AppCall): Promise<AppCallResult> {
    const d = apps.get(request.app);
    if (d === undefined) throw new AppNotFoundError(String(request.app));
    const early = repeatedEarly(request, d);
    if (early !== undefined) return early;
    const route = d.routes.get(request.method);
    if (route === undefined) {
      throw new MethodUnknownError(request.app, String(request.method), [...d.routes.values()]);
    }
    if (request.kind !== 'query' && request.kind !== 'transaction') {
      throw new InvalidInputError("a call's kind is 'query' or 'transaction'");
    }
    if (route.kind !== request.kind) {
      throw new MethodKindError(request.app, route.name, route.kind, request.kind);
    }
    if (!(request.caller instanceof Uint8Array) || request.caller.length !== 65) {
      throw new InvalidInputError('the caller is a 65-byte identity public key');
    }
    const args = typeof request.args === 'string' ? utf8(request.args) : undefined;
    if (args === undefined) throw new InvalidInputError('the arguments must be JSON text');
    if (args.length > limits.maxArgsBytes) {
      throw new InvalidInputError(
        `the arguments are ${args.length} bytes; at most ${limits.maxArgsBytes} are accepted`,
      );
    }
    const problem = jsonTextProblem(args, limits.maxJsonDepth);
    if (problem !== undefined) {
      throw new InvalidInputError(
        problem === 'is not valid JSON text'
          ? 'the arguments are not JSON text: send one JSON value, for example {} or {"name":"x"}'
          : `the arguments nest arrays and objects deeper than ${limits.maxJsonDepth} levels: flatten them (maxJsonDepth)`,
      );
    }
    const requestId = request.requestId;
    if (requestId !== undefined) checkRequestId(requestId);
    const claims = request.claims;
    if (
      claims !== undefined &&
      (route.kind !== 'transaction' ||
        !(claims.salt instanceof Uint8Array) ||
        claims.salt.length !== 32 ||
        !(claims.request instanceof Uint8Array))
    ) {
      throw new InvalidInputError(
        'claims are for transactions: a 32-byte salt and the request bytes',
      );
    }
    const fuel = request.fuel ?? limits.defaultFuel;
    const callerId = callerIdOf(request.app, request.caller);
    const time = clock();
    const fresh = (tx: Transaction): CallState => ({
      ...baseState(request.app, route.kind, 'call', tx),
      callerId,
      requestId,
      time,
      args,
      notifications: [],
    });

    if (route.kind === 'query') {
      const tx = engine.begin({ reserved: true });
      try {
        const state = fresh(tx);
        const fuelUsed = run(d, route, state, fuel);
        const { result, notifications } = outcomeOf(state);
        // Every field written out: a spread followed by new fields (`{ ...o, fuelUsed }`) gives
        // each result a hidden class of its own on Node 20 (docs/performance.md, "Hidden classes").
        return { result, notifications, repeated: false, fuelUsed, codeId: d.info.codeId };
      } finally {
        tx.abort();
      }
    }

    const reqKey = requestId === undefined ? undefined : requestKey(callerId, requestId);
    for (let attempt = 0; ; attempt++) {
      const tx = engine.begin({ reserved: true });
      try {
        if (reqKey !== undefined) {
          // Again inside the transaction: another call with this request id may have committed
          // since repeatedEarly looked (a conflict then retries into this answer).
          const repeated = storedOutcome(tx, d, request.app, reqKey, route.name, args);
          if (repeated !== undefined) {
            tx.abort();
            return repeated;
          }
        }
        const code = options.currentCode?.(tx, request.app);
        if (code !== undefined && toHex(code) !== d.info.codeId) {
          throw new AppCodeChangedError(request.app, toHex(code));
        }
        const state = fresh(tx);
        const fuelUsed = run(d, route, state, fuel);
        const outcome = outcomeOf(state);
        if (reqKey !== undefined) {
          storeOutcome(tx, request.app, reqKey, {
            result: outcome.result,
            notifications: outcome.notifications,
            codeId: d.info.codeId,
            method: route.name,
            args,
          });
        }
        const digest =
          claims === undefined
            ? undefined
            : claimsDigest({
                salt: claims.salt,
                request: claims.request,
                response: utf8(outcome.result),
                codeId: fromHex(d.info.codeId),
              });
        const committed = await tx.commit({
          app: request.app,
          ...(digest === undefined ? {} : { claims: digest }),
        });
        return {
          result: outcome.result,
          notifications: outcome.notifications,
          txid: committed.txid,
          repeated: false,
          fuelUsed,
          codeId: d.info.codeId,
        };
      } catch (e) {
        if (tx.state === 'open') tx.abort();
        if (isCloisterError(e, 'TX_CONFLICT') && attempt < retries) continue;
        throw e;
      }
    }
  }

  function requestStatus(app: string, caller: Uint8Array, requestId: string): RequestStatus {
    if (!apps.has(app)) throw new AppNotFoundError(String(app));
    if (!(caller instanceof Uint8Array) || caller.length !== 65) {
      throw new InvalidInputError('the caller is a 65-byte identity public key');
    }
    checkRequestId(requestId);
    const reqKey = requestKey(callerIdOf(app, caller), requestId);
    const tx = engine.begin({ reserved: true });
    let txid: string | undefined;
    try {
      txid = outcomeTxid(tx, app, reqKey);
    } finally {
      tx.abort();
    }
    return txid === undefined ? { state: 'unknown' } : { state: 'committed', txid };
  }

  return {
    deploy,
    prepare,
    migrate,
    install,
    call,
    app: (name) => apps.get(name)?.info,
    callerId: callerIdOf,
    requestStatus,
  };
}

/** Throws InvalidInputError unless `name` is a valid app id (docs/app-abi.md §14). */
export function checkAppId(name: string): void {
  if (typeof name !== 'string' || !APP_ID_RE.test(name) || utf8(name).length > MAX_APP_ID_BYTES) {
    throw new InvalidInputError(
      `an app id is 1..${MAX_APP_ID_BYTES} characters of [A-Za-z0-9_.-], starting with a letter or digit`,
    );
  }
}

function sameType(
  a: { readonly params: readonly number[]; readonly results: readonly number[] },
  b: { readonly params: readonly number[]; readonly results: readonly number[] },
): boolean {
  return (
    a.params.length === b.params.length &&
    a.results.length === b.results.length &&
    a.params.every((t, i) => t === b.params[i]) &&
    a.results.every((t, i) => t === b.results[i])
  );
}

/**
 * Runs a step of `prepare` that runs the module's own code, naming the step in what it throws: a
 * module whose start function or `cloister_routes` calls `fail` or traps otherwise read "the app
 * refused the call" at deploy, where there is no call. The code stays (APP_ERROR, APP_TRAP,
 * FUEL_EXHAUSTED…); an AbiError already speaks of deploy and passes as it is. The app's text may
 * ride along: at deploy the module sees no caller, time, randomness or ledger (docs/app-abi.md
 * §3.1), so it is a function of the module the operator uploaded.
 */
function atDeploy<T>(step: string, run: () => T): T {
  try {
    return run();
  } catch (e) {
    if (!(e instanceof CloisterError) || e instanceof AbiError) throw e;
    const what = e instanceof AppError ? `fail(${e.appCode}, ${e.appMessage})` : e.message;
    throw new CloisterError(e.code, `the module's ${step} failed at deploy: ${what}`, {
      cause: e,
      hint: `Fix the module: its start function, ${EXPORTS.version} and ${EXPORTS.routes} run at every deploy and start, with no call, and must not fail (docs/app-abi.md §3.1).`,
    });
  }
}

/** `random` from the pool: one node:crypto call per 4 KiB drawn, not one per `seed` (random.ts). */
function pooled(): (n: number) => Uint8Array {
  const draw = pooledRandom();
  return (n) => {
    const out = new Uint8Array(n);
    draw(out);
    return out;
  };
}
