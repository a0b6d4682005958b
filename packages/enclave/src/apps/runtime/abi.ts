/**
 * ABI v1 constants (docs/app-abi.md): the import module, every import with its base fuel and its
 * per-byte rate, the statuses, the exports and the caps. The host functions live in host.ts.
 */

export const ABI_VERSION = 1;
export const SUPPORTED_ABI_VERSIONS: readonly number[] = [ABI_VERSION];
export const IMPORT_MODULE = 'cloister';

/** Negative returns a module branches on (§1.2). */
export const STATUS = { notFound: -1, exists: -2, wrongKind: -3, authFailed: -4 } as const;

export const EXPORTS = {
  version: 'cloister_abi_version',
  routes: 'cloister_routes',
  call: 'cloister_call',
  /** Optional, `[] → []`: run once in the upgrade's transaction (docs/app-abi.md §3.3). */
  migrate: 'cloister_migrate',
} as const;

/** Route kinds as `route` and `context_kind` number them. */
export const KIND = { query: 0, transaction: 1 } as const;

const i = 0x7f;
const I = 0x7e;
const F = 0x7c;

/** One import of ABI v1: its wasm type (value type codes) and its base fuel. */
export interface ImportSpec {
  readonly params: readonly number[];
  readonly results: readonly number[];
  /** Charged inside the module at the call site (the sandbox's `importCost`), §11. */
  readonly cost: number;
}

const spec = (params: number[], results: number[], cost: number): ImportSpec => ({
  params,
  results,
  cost,
});

/** Every import of ABI v1 by module then field; per-byte charges are made by the host (§11). */
export const IMPORTS: Readonly<Record<string, Readonly<Record<string, ImportSpec>>>> = {
  [IMPORT_MODULE]: {
    // The bases of the small imports are their measured time too (about 250 ns for a copy into
    // the module with the host's charge, 300 for result_set's checks), at about 1 unit a ns: at
    // 20 units a query looping on one held the enclave 6-12 times its fuel's worth (§11).
    buffer_read: spec([i], [], 250),
    call_args: spec([i], [], 250),
    route: spec([i, i, i, i], [], 250),
    result_set: spec([i, i], [], 300),
    notify: spec([i, i], [], 100),
    fail: spec([i, i, i, i], [], 100),
    context_kind: spec([], [i], 20),
    context_caller: spec([i], [], 250),
    // It fills the host buffer as context_caller does (the id's bytes, encoded once per call).
    context_request_id: spec([], [i], 250),
    context_index: spec([], [I], 20),
    context_time: spec([], [I], 20),
    ledger_get: spec([i, i, i, i], [i], 2_000),
    ledger_set: spec([i, i, i, i, i, i], [], 3_000),
    ledger_remove: spec([i, i, i, i], [], 2_000),
    ledger_history: spec([i, i, i, i, i], [i], 5_000),
    ledger_list: spec([i, i, i, i, i], [i], 5_000),
    ledger_prove: spec([i, i, i, i], [i], 20_000),
    ledger_state_hash: spec([i], [], 250),
    // node:crypto's hash object costs about 2 µs however little it hashes.
    sha256: spec([i, i, i], [], 2_000),
    random_bytes: spec([i, i], [], 300),
    // The key imports are priced at what they cost node:crypto, at the rate of the module's own
    // instructions (about 1 ns a unit): parsing a stored PKCS #8 key takes about 350 µs, a
    // signature or a key pair about 30-110 µs, a verification about 180 µs, an AES-GCM set-up
    // about 7 µs (docs/app-abi.md §11). At 2,000 units, a query looping on key_public ran for
    // 27 s on its default fuel and stalled every other client of the node.
    key_create: spec([i, i, i], [i], 150_000),
    key_public: spec([i, i], [i], 400_000),
    key_sign: spec([i, i, i, i], [i], 450_000),
    ecdsa_verify: spec([i, i, i, i, i, i], [i], 200_000),
    key_encrypt: spec([i, i, i, i, i, i], [i], 10_000),
    key_decrypt: spec([i, i, i, i, i, i], [i], 10_000),
  },
  env: {
    abort: spec([i, i, i, i], [], 100),
    trace: spec([i, i, F, F, F, F, F], [], 100),
    seed: spec([], [F], 200),
    // AssemblyScript 0.28 imports Date.now as module "env", field "Date.now".
    'Date.now': spec([], [F], 20),
  },
};

/** Value type names for messages. */
export function typeText(params: readonly number[], results: readonly number[]): string {
  const n = (t: number): string =>
    ({ 127: 'i32', 126: 'i64', 125: 'f32', 124: 'f64', 123: 'v128' })[t] ?? `0x${t.toString(16)}`;
  return `(${params.map(n).join(', ')}) -> (${results.map(n).join(', ')})`;
}

/**
 * Fuel per entry `ledger_list` or `ledger_history` reads, charged as it is read (before the next):
 * each is a verified read like `ledger_get`'s, and a listing also steps over removed keys, which
 * it returns nothing for (so a page's work is bounded by fuel, not by what it returns).
 */
export const FUEL_PER_ENTRY = 2_000;

/**
 * Bases from this size up are charged by the host function itself, not at the call site: a call
 * through `call_indirect` (an import placed in a table) skips call-site charges, and for these
 * imports that would be 10 units for up to 450,000 of work (a loop of `buffer_read` through a
 * table ran 13 times its fuel's worth at 1,000). Below it, the call site charges (no
 * JavaScript-side charge): only the context reads that return a number, about 20 ns each, so
 * `call_indirect` (10) pays at most twice too little for them.
 */
export const HOST_CHARGED_BASE = 100;

/**
 * Fuel for each key a transaction writes (sets or removes) that it had not written yet: its share
 * of the commit, which runs after the call (the trie update and the sealing of the records the key
 * rewrites, about 40-65 µs a key, measured). At ledger_set's 3,000 alone, 9,999 small writes cost
 * 30 million units and held the enclave about 650 ms at commit (a cost review).
 */
export const FUEL_PER_KEY_WRITTEN = 40_000;

/**
 * Fuel per byte of a result or notification, beside the copy's 1/16: the runtime checks each as
 * JSON text (strict UTF-8 decoding, JSON.parse, the depth scan), which costs 4-15 ns a byte warm
 * and up to about 65 under the garbage collection many small values make (measured). At the
 * copy's rate alone a query of 64 notifications of 64 KiB held the enclave 230 ms on 269,000
 * units (a cost review).
 */
export const JSON_FUEL_PER_BYTE = 8;

/**
 * Most env.trace lines one call hands on (with app trace on, simulation only); later ones are
 * dropped, still charged: fuel is the same with trace on or off. 690,000 lines of one call held
 * the node 2.5 s.
 */
export const MAX_TRACE_LINES = 1_000;

/** Every import a v1 module may use (the sandbox's allow-list). */
export const ALLOWED_IMPORTS: readonly { readonly module: string; readonly field: string }[] =
  Object.entries(IMPORTS).flatMap(([module, fields]) =>
    Object.keys(fields).map((field) => ({ module, field })),
  );

/** The base the sandbox charges at the call site (the sandbox's `importCost`). */
export function importCost(module: string, field: string): number {
  const cost = IMPORTS[module]?.[field]?.cost ?? 0;
  return cost < HOST_CHARGED_BASE ? cost : 0;
}

/** The base the host function charges when it runs (0 when the call site does). */
export function hostBase(module: string, field: string): number {
  const cost = IMPORTS[module]?.[field]?.cost ?? 0;
  return cost < HOST_CHARGED_BASE ? 0 : cost;
}

/** Caps of §12 (configurable through the runtime's options). */
export interface AbiLimits {
  readonly maxArgsBytes: number;
  readonly maxNotifications: number;
  readonly maxNotificationBytes: number;
  readonly maxRoutes: number;
  readonly maxRandomBytes: number;
  /** Deepest nesting of arrays and objects in arguments, a result or a notification. */
  readonly maxJsonDepth: number;
  readonly defaultFuel: number;
}

export const DEFAULT_ABI_LIMITS: AbiLimits = {
  maxArgsBytes: 1024 * 1024,
  maxNotifications: 64,
  maxNotificationBytes: 64 * 1024,
  maxRoutes: 256,
  maxRandomBytes: 65_536,
  maxJsonDepth: 64,
  defaultFuel: 100_000_000,
};

export const MAX_METHOD_BYTES = 128;
export const MAX_KEY_NAME_BYTES = 64;
export const MAX_APP_CODE_BYTES = 64;
export const MAX_APP_MESSAGE_BYTES = 1024;
export const MAX_REQUEST_ID_BYTES = 128;
export const MAX_CURSOR_BYTES = 128;
export const MAX_PAGE = 1000;
/** Characters AssemblyScript abort messages are cut to. */
export const MAX_ABORT_CHARS = 256;
export const VERSION_FUEL = 10_000;
export const ROUTES_FUEL = 10_000_000;

/** Reserved tables of the app's own ledger (never reachable through ledger calls). */
export const REQUESTS_TABLE = '$requests';
export const KEYS_TABLE = '$keys';

/** Key kinds of `key_create`. */
export const KEY_KIND = { ecdsaP256: 1, aes256gcm: 2 } as const;

export const CALLER_LABEL = 'cloister/caller/v1';

export const NAME_RE = /^[A-Za-z0-9_.-]+$/;
