/**
 * TEST ONLY: builds ABI v1 modules (docs/app-abi.md) with the tiny encoder of sandbox-wasm.ts.
 * `abiKit(strings)` places the strings in a data segment and fixes the import order (every import
 * of ABI v1, in `IMPORTS` order), so route bodies can name imports and strings before the module
 * is assembled; `kit.module({ routes })` writes `cloister_abi_version`, `cloister_routes` (one
 * `route` call per route, id = its position) and `cloister_call` (dispatch on the id).
 */
import { IMPORTS } from '../src/apps/runtime/index.js';
import { code, get, I, i32, if_, sleb, T, uleb, wasm } from './sandbox-wasm.js';

/** Where route bodies may write scratch bytes (above the strings). */
export const SCRATCH = 16_384;
export const SCRATCH2 = 32_768;

export interface AbiRoute {
  readonly name: string;
  readonly kind: 'query' | 'transaction';
  /** Body instructions; locals 0 = route id, 1 = args_len, then `locals`. */
  readonly body: readonly number[];
}

export interface AbiModuleOptions {
  readonly routes: readonly AbiRoute[];
  /** The version `cloister_abi_version` returns; 'none' omits the export. Default 1. */
  readonly version?: number | 'none';
  /** Extra locals of cloister_call (indices from 2). */
  readonly locals?: readonly number[];
  /** Imports added after the ABI's (their indices follow `kit.importCount`). */
  readonly extraImports?: readonly {
    module: string;
    field: string;
    params?: readonly number[];
    results?: readonly number[];
  }[];
  /** Replace the declared type of an ABI import (`module.field`), for hostile tests. */
  readonly typeOverride?: Readonly<
    Record<string, { params: readonly number[]; results: readonly number[] }>
  >;
  /** Raw cloister_routes body (default: one `route` call per route). */
  readonly routesBody?: readonly number[];
  /** ABI imports placed in a funcref table (index = position), for `call_indirect`. */
  readonly tabled?: readonly string[];
}

export interface AbiKit {
  /** `call` of ABI import `name` ('ledger_get', 'env.abort', 'env.Date.now'). */
  call(name: string): number[];
  /** Pushes the string's pointer and length. */
  str(name: string): number[];
  ptr(name: string): number;
  len(name: string): number;
  readonly importCount: number;
  /** `call_indirect` through table slot `slot`, typed as ABI import `name`. */
  callIndirect(name: string, slot: number): number[];
  module(options: AbiModuleOptions): Uint8Array;
}

const ALL = Object.entries(IMPORTS).flatMap(([module, fields]) =>
  Object.entries(fields).map(([field, spec]) => ({ module, field, spec })),
);
const nameOf = (m: string, f: string): string => (m === 'cloister' ? f : `${m}.${f}`);

export function abiKit(strings: Readonly<Record<string, string | Uint8Array>> = {}): AbiKit {
  const te = new TextEncoder();
  const placed = new Map<string, { ptr: number; bytes: Uint8Array }>();
  let at = 16;
  for (const [k, v] of Object.entries(strings)) {
    const bytes = typeof v === 'string' ? te.encode(v) : v;
    placed.set(k, { ptr: at, bytes });
    at += bytes.length + 8;
  }
  if (at > SCRATCH) throw new Error('test strings overflow into the scratch area');
  const index = (name: string): number => {
    const i = ALL.findIndex((x) => nameOf(x.module, x.field) === name);
    if (i < 0) throw new Error(`no ABI import ${name}`);
    return i;
  };
  const s = (name: string) => {
    const p = placed.get(name);
    if (!p) throw new Error(`no test string ${name}`);
    return p;
  };
  const kit: AbiKit = {
    call: (name) => [0x10, ...uleb(index(name))],
    str: (name) => [...i32(s(name).ptr), ...i32(s(name).bytes.length)],
    ptr: (name) => s(name).ptr,
    len: (name) => s(name).bytes.length,
    importCount: ALL.length,
    callIndirect(name, slot) {
      // The module's type section lists the imports' signatures first, each once, in import
      // order (sandbox-wasm.ts `wasm`): the type index of `name` is its signature's rank there.
      const key = (x: (typeof ALL)[number]): string =>
        JSON.stringify([x.spec.params, x.spec.results]);
      const keys = [...new Set(ALL.map(key))];
      const type = keys.indexOf(key(ALL[index(name)] as (typeof ALL)[number]));
      return [...i32(slot), 0x11, ...uleb(type), 0x00];
    },
    module(o) {
      const imports = [
        ...ALL.map(({ module, field, spec }) => {
          const t = o.typeOverride?.[nameOf(module, field)] ?? spec;
          return { module, field, params: [...t.params], results: [...t.results] };
        }),
        ...(o.extraImports ?? []),
      ];
      const routesBody =
        o.routesBody ??
        o.routes.flatMap((r, id) => {
          const name = te.encode(r.name);
          const ptr = SCRATCH + id * 256;
          // Write the name with i32.store8 byte by byte, then call route.
          const store = [...name].flatMap((b, j) => [...i32(ptr + j), ...i32(b), 0x3a, 0x00, 0x00]);
          return [
            ...store,
            ...i32(r.kind === 'query' ? 0 : 1),
            ...i32(ptr),
            ...i32(name.length),
            ...i32(id),
            ...kit.call('route'),
          ];
        });
      const dispatch = o.routes.flatMap((r, id) =>
        code(get(0), i32(id), I.i32Eq, if_(), r.body, I.end),
      );
      const funcs = [
        ...(o.version === 'none'
          ? []
          : [{ results: [T.i32], body: i32(o.version ?? 1), export: 'cloister_abi_version' }]),
        { body: routesBody, export: 'cloister_routes' },
        {
          params: [T.i32, T.i32],
          locals: o.locals ?? [],
          body: dispatch,
          export: 'cloister_call',
        },
      ];
      const segments = [...placed.values()].map(({ ptr, bytes }) => [
        0x00,
        0x41,
        ...sleb(ptr),
        0x0b,
        ...uleb(bytes.length),
        ...bytes,
      ]);
      const data = [...uleb(segments.length), ...segments.flat()];
      const tabled = o.tabled ?? [];
      return wasm({
        imports,
        funcs,
        memory: [0x00, 1],
        ...(tabled.length > 0
          ? { table: [0x00, tabled.length], elements: tabled.map((t) => index(t)) }
          : {}),
        raw: [{ id: 11, payload: data }],
      });
    },
  };
  return kit;
}

/** A route body: the call's arguments copied to SCRATCH2, then `after`. */
function argsThen(kit: AbiKit, ...after: number[][]): number[] {
  return [...i32(SCRATCH2), ...kit.call('call_args'), ...after.flat()];
}

/** A query body whose result is its arguments. */
export function echoBody(kit: AbiKit): number[] {
  return argsThen(kit, [...i32(SCRATCH2), ...get(1), ...kit.call('result_set')]);
}

/**
 * A transaction body that sets key `k` of table `t` to its arguments (the kit's strings `t` and
 * `k`), then runs `after`.
 */
export function putArgsBody(kit: AbiKit, ...after: number[][]): number[] {
  return argsThen(
    kit,
    [...kit.str('t'), ...kit.str('k'), ...i32(SCRATCH2), ...get(1), ...kit.call('ledger_set')],
    ...after,
  );
}
