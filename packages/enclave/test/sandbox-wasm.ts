/**
 * TEST ONLY: a tiny WebAssembly encoder, so sandbox tests build their (hostile) modules from a
 * few readable lines without a toolchain. Instructions are byte arrays; `wasm()` adds types,
 * sections and sizes. It encodes only what the tests use, and writes no validation of its own:
 * V8 and the sandbox validate what comes out.
 */

export const T = { i32: 0x7f, i64: 0x7e, f32: 0x7d, f64: 0x7c, v128: 0x7b, funcref: 0x70 } as const;

export function uleb(n: number): number[] {
  const out: number[] = [];
  let v = n >>> 0;
  do {
    let b = v & 0x7f;
    v >>>= 7;
    if (v !== 0) b |= 0x80;
    out.push(b);
  } while (v !== 0);
  return out;
}

export function sleb(n: number | bigint): number[] {
  const out: number[] = [];
  let v = BigInt(n);
  for (;;) {
    const b = Number(v & 0x7fn);
    v >>= 7n;
    const done = (v === 0n && (b & 0x40) === 0) || (v === -1n && (b & 0x40) !== 0);
    out.push(done ? b : b | 0x80);
    if (done) return out;
  }
}

const str = (s: string): number[] => {
  const b = Array.from(new TextEncoder().encode(s));
  return [...uleb(b.length), ...b];
};
const vec = (items: number[][]): number[] => [...uleb(items.length), ...items.flat()];

/** Instructions by name; immediates through the functions below. */
export const I = {
  unreachable: 0x00,
  nop: 0x01,
  else: 0x05,
  end: 0x0b,
  return: 0x0f,
  drop: 0x1a,
  select: 0x1b,
  i32Load: [0x28, 0x02, 0x00],
  i32Store: [0x36, 0x02, 0x00],
  memorySize: [0x3f, 0x00],
  memoryGrow: [0x40, 0x00],
  i32Eqz: 0x45,
  i32Eq: 0x46,
  i32Ne: 0x47,
  i32LtS: 0x48,
  i32LtU: 0x49,
  i32GtS: 0x4a,
  i32GeU: 0x4f,
  i32Add: 0x6a,
  i32Sub: 0x6b,
  i32Mul: 0x6c,
  i32DivS: 0x6d,
  i32DivU: 0x6e,
  i32RemU: 0x70,
  i32And: 0x71,
  i32Or: 0x72,
  i32Xor: 0x73,
  i32Shl: 0x74,
  i32ShrS: 0x75,
  i32ShrU: 0x76,
  i32Rotl: 0x77,
  i64Add: 0x7c,
  memoryFill: [0xfc, 0x0b, 0x00],
  memoryCopy: [0xfc, 0x0a, 0x00, 0x00],
} as const;

export const i32 = (n: number): number[] => [0x41, ...sleb(n)];
export const i64 = (n: number | bigint): number[] => [0x42, ...sleb(n)];
export const get = (i: number): number[] => [0x20, ...uleb(i)];
export const set = (i: number): number[] => [0x21, ...uleb(i)];
export const tee = (i: number): number[] => [0x22, ...uleb(i)];
export const call = (f: number): number[] => [0x10, ...uleb(f)];
export const br = (l: number): number[] => [0x0c, ...uleb(l)];
export const brIf = (l: number): number[] => [0x0d, ...uleb(l)];
/** Block type: omitted = empty, else one value type. */
export const block = (t?: number): number[] => [0x02, t ?? 0x40];
export const loop = (t?: number): number[] => [0x03, t ?? 0x40];
export const if_ = (t?: number): number[] => [0x04, t ?? 0x40];

/** Flattens instruction pieces (bytes, arrays of bytes) into one array. */
export const code = (...parts: (number | readonly number[])[]): number[] =>
  parts.flat() as number[];

export interface FuncDef {
  readonly params?: readonly number[];
  readonly results?: readonly number[];
  readonly locals?: readonly number[];
  /** The body's instructions, without the final `end`. */
  readonly body: readonly number[];
  readonly export?: string;
}

export interface ModuleDef {
  readonly imports?: readonly {
    module: string;
    field: string;
    params?: readonly number[];
    results?: readonly number[];
  }[];
  readonly funcs: readonly FuncDef[];
  /** Raw limits bytes for one memory, e.g. [0x00, 1] or [0x01, 1, 2]. */
  readonly memory?: readonly number[];
  /** Raw limits bytes for one funcref table. */
  readonly table?: readonly number[];
  /** Function indices of one active element segment at table 0, offset 0. */
  readonly elements?: readonly number[];
  /** Index (in the function index space) of the start function. */
  readonly start?: number;
  /** Extra raw sections appended as given ([id, ...payload] without size), for hostile tests. */
  readonly raw?: readonly { id: number; payload: readonly number[] }[];
}

/** Encodes `def` as a module (sections in spec order). */
export function wasm(def: ModuleDef): Uint8Array {
  const types: string[] = [];
  const typeOf = (p: readonly number[] = [], r: readonly number[] = []): number => {
    const key = JSON.stringify([p, r]);
    let i = types.indexOf(key);
    if (i < 0) i = types.push(key) - 1;
    return i;
  };
  const imports = (def.imports ?? []).map((im) => [
    ...str(im.module),
    ...str(im.field),
    0x00,
    ...uleb(typeOf(im.params, im.results)),
  ]);
  const funcTypes = def.funcs.map((f) => uleb(typeOf(f.params, f.results)));
  const nImports = imports.length;
  const exports = def.funcs.flatMap((f, i) =>
    f.export ? [[...str(f.export), 0x00, ...uleb(i + nImports)]] : [],
  );
  if (def.memory) exports.push([...str('memory'), 0x02, 0x00]);
  const bodies = def.funcs.map((f) => {
    const locals = (f.locals ?? []).map((t) => [1, t]);
    const b = [...vec(locals), ...f.body, 0x0b];
    return [...uleb(b.length), ...b];
  });
  const typeEntries = types.map((k) => {
    const [p, r] = JSON.parse(k) as [number[], number[]];
    return [0x60, ...uleb(p.length), ...p, ...uleb(r.length), ...r];
  });
  const sections: [number, number[]][] = [[1, vec(typeEntries)]];
  if (nImports) sections.push([2, vec(imports)]);
  sections.push([3, vec(funcTypes)]);
  if (def.table) sections.push([4, vec([[0x70, ...def.table]])]);
  if (def.memory) sections.push([5, vec([[...def.memory]])]);
  sections.push([7, vec(exports)]);
  if (def.start !== undefined) sections.push([8, uleb(def.start)]);
  if (def.elements) {
    // Flags 0: active, table 0, offset (i32.const 0), a vector of function indices.
    sections.push([9, vec([[0x00, 0x41, 0x00, 0x0b, ...vec(def.elements.map((f) => uleb(f)))]])]);
  }
  sections.push([10, vec(bodies)]);
  for (const r of def.raw ?? []) sections.push([r.id, [...r.payload]]);
  const out = [0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00];
  for (const [id, payload] of sections) out.push(id, ...uleb(payload.length));
  const head = Uint8Array.from(out);
  // Assembled by copying, not spreading: a large payload would overflow the call stack.
  const size = head.length + sections.reduce((n, [, p]) => n + p.length + 6, 0);
  const bytes = new Uint8Array(size);
  let at = 8;
  bytes.set(head.subarray(0, 8));
  for (const [id, payload] of sections) {
    const h = [id, ...uleb(payload.length)];
    bytes.set(h, at);
    bytes.set(payload, at + h.length);
    at += h.length + payload.length;
  }
  return bytes.slice(0, at);
}
