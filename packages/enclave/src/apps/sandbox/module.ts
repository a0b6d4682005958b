/**
 * The section-level parse of a module (core spec §5.5): enough structure to check the deploy
 * policy and to rewrite function bodies — types, imports, limits, counts, exports, start and the
 * byte ranges of everything else, which the rewriter copies verbatim. Every function body is
 * walked instruction by instruction here too, so a refused opcode anywhere is found at deploy.
 */
import { Reader } from './bytes.js';
import { MalformedModuleError, ModuleLimitError, UnsupportedFeatureError } from './errors.js';
import { type Instr, OP, readInstr, readValType } from './opcodes.js';

export interface FuncType {
  readonly params: readonly number[];
  readonly results: readonly number[];
}

export interface Limits {
  readonly min: number;
  readonly max?: number;
}

export interface Import {
  readonly module: string;
  readonly field: string;
  readonly kind: 'function' | 'table' | 'memory' | 'global';
  /** The type index of an imported function. */
  readonly type?: number;
}

export interface Export {
  readonly name: string;
  readonly kind: number;
  readonly index: number;
}

export interface Section {
  readonly id: number;
  /** Payload range (after the id and size). */
  readonly start: number;
  readonly end: number;
}

export interface Body {
  /** Range of the body (after its size prefix): locals then instructions. */
  readonly start: number;
  readonly end: number;
  /** Where the instructions begin. */
  readonly code: number;
  /** Declared locals (not parameters). */
  readonly locals: number;
}

export interface ParsedModule {
  readonly bytes: Uint8Array;
  readonly sections: readonly Section[];
  readonly types: readonly FuncType[];
  readonly imports: readonly Import[];
  readonly importedFuncs: number;
  readonly importedGlobals: number;
  /** Type index of each defined function. */
  readonly funcs: readonly number[];
  /** Imported tables first, then defined ones (the table index space); likewise memories. */
  readonly tables: readonly { readonly ref: number; readonly limits: Limits }[];
  readonly memories: readonly Limits[];
  readonly globals: number;
  readonly exports: readonly Export[];
  readonly start?: number;
  readonly bodies: readonly Body[];
}

/** Section order (core spec §5.5.2, datacount between element and code); 13 is the EH tag section. */
const ORDER = [1, 2, 3, 4, 5, 13, 6, 7, 8, 9, 12, 10, 11];
/**
 * V8's own cap on the locals of a function, its parameters included; checked here so the refusal
 * names the function. The instrumentation adds SCRATCH_LOCALS of its own, so a module gets that
 * many fewer: one accepted here always compiles once instrumented.
 */
export const MAX_LOCALS = 50_000;
/** Locals the instrumentation adds to every function (instrument.ts: `f`, `n`, `d`). */
export const SCRATCH_LOCALS = 3;

/** Parses `bytes`; throws MalformedModuleError / UnsupportedFeatureError by name. */
export function parseModule(bytes: Uint8Array): ParsedModule {
  const r = new Reader(bytes);
  const head = r.take(Math.min(8, bytes.length));
  const magic = [0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00];
  if (head.length < 8 || magic.some((b, i) => head[i] !== b)) {
    throw new MalformedModuleError('not a WebAssembly version 1 binary (magic or version)');
  }
  const m = {
    bytes,
    sections: [] as Section[],
    types: [] as FuncType[],
    imports: [] as Import[],
    importedFuncs: 0,
    importedGlobals: 0,
    funcs: [] as number[],
    tables: [] as { ref: number; limits: Limits }[],
    memories: [] as Limits[],
    globals: 0,
    exports: [] as Export[],
    start: undefined as number | undefined,
    bodies: [] as Body[],
  };
  let last = -1;
  while (!r.done) {
    const id = r.byte();
    const size = r.u32();
    const start = r.pos;
    r.take(size);
    const sr = new Reader(bytes, start, start + size);
    const where = `section ${id} at byte ${start}`;
    if (id !== 0) {
      const rank = ORDER.indexOf(id);
      if (rank < 0) throw new MalformedModuleError(`unknown section id ${id} at byte ${start}`);
      if (rank <= last) throw new MalformedModuleError(`${where} is out of order or repeated`);
      last = rank;
    }
    parseSection(id, sr, m, where);
    if (!sr.done) throw new MalformedModuleError(`${where} has trailing bytes`);
    m.sections.push({ id, start, end: start + size });
  }
  if (m.funcs.length !== m.bodies.length) {
    throw new MalformedModuleError(
      `${m.funcs.length} functions declared, ${m.bodies.length} bodies`,
    );
  }
  if (m.memories.length > 1) throw new UnsupportedFeatureError('multi-memory', 'memories');
  return m;
}

type Mutable = {
  -readonly [K in keyof ParsedModule]: ParsedModule[K] extends readonly (infer T)[]
    ? T[]
    : ParsedModule[K];
};

function parseSection(id: number, r: Reader, m: Mutable, where: string): void {
  switch (id) {
    case 0:
      r.name();
      r.take(r.end - r.pos);
      return;
    case 1:
      vec(r, () => m.types.push(funcType(r, where)));
      return;
    case 2:
      vec(r, () => importEntry(r, m, where));
      return;
    case 3:
      vec(r, () => m.funcs.push(r.u32()));
      return;
    case 4:
      vec(r, () => m.tables.push(table(r, where)));
      return;
    case 5:
      vec(r, () => m.memories.push(limits(r, `memory (${where})`, 'memory')));
      return;
    case 6:
      vec(r, () => {
        global(r, where);
        m.globals++;
      });
      return;
    case 7:
      vec(r, () => {
        const name = r.name();
        const kind = r.byte();
        if (kind === 4) throw new UnsupportedFeatureError('exception handling', `export "${name}"`);
        if (kind > 3) throw new MalformedModuleError(`export "${name}" has unknown kind ${kind}`);
        m.exports.push({ name, kind, index: r.u32() });
      });
      return;
    case 8:
      m.start = r.u32();
      return;
    case 13:
      throw new UnsupportedFeatureError('exception handling', 'tag section');
    case 10:
      vec(r, () => {
        const type = m.types[m.funcs[m.bodies.length] as number];
        m.bodies.push(body(r, m.bodies.length + m.importedFuncs, type?.params.length ?? 0));
      });
      return;
    default: // element (9), data (11), datacount (12): copied verbatim, checked by V8
      r.take(r.end - r.pos);
  }
}

function vec(r: Reader, each: () => void): void {
  const n = r.u32();
  for (let i = 0; i < n; i++) each();
}

function funcType(r: Reader, where: string): FuncType {
  const form = r.byte();
  if (form === 0x4e || form === 0x50 || form === 0x4f || form === 0x5e || form === 0x5f) {
    throw new UnsupportedFeatureError('GC types', where);
  }
  if (form !== 0x60) throw new MalformedModuleError(`type form 0x${form.toString(16)} (${where})`);
  const params: number[] = [];
  const results: number[] = [];
  vec(r, () => params.push(readValType(r, where)));
  vec(r, () => results.push(readValType(r, where)));
  return { params, results };
}

function limits(r: Reader, where: string, what: 'memory' | 'table'): Limits {
  const flags = r.byte();
  if (flags === 0x02 || flags === 0x03)
    throw new UnsupportedFeatureError('shared memory (threads)', where);
  if (flags >= 0x04 && flags <= 0x07) {
    throw new UnsupportedFeatureError(what === 'memory' ? 'memory64' : 'table64 (memory64)', where);
  }
  if (flags > 0x01)
    throw new UnsupportedFeatureError(`${what} limits flags 0x${flags.toString(16)}`, where);
  const min = r.u32();
  if (flags === 0x00) return { min };
  const max = r.u32();
  if (max < min) throw new MalformedModuleError(`${where}: maximum ${max} below minimum ${min}`);
  return { min, max };
}

function table(r: Reader, where: string): { ref: number; limits: Limits } {
  const ref = r.byte();
  if (ref === 0x40) throw new UnsupportedFeatureError('typed function references', where);
  if (ref !== 0x70 && ref !== 0x6f)
    throw new UnsupportedFeatureError('typed references / GC', where);
  return { ref, limits: limits(r, `table (${where})`, 'table') };
}

function global(r: Reader, where: string): void {
  readValType(r, where);
  const mut = r.byte();
  if (mut > 1) throw new UnsupportedFeatureError('shared globals (threads)', where);
  constExpr(r, where);
}

function constExpr(r: Reader, where: string): void {
  for (;;) {
    const i = readInstr(r, `constant expression (${where})`);
    if (i.op === OP.end) return;
  }
}

function importEntry(r: Reader, m: Mutable, where: string): void {
  const module = r.name();
  const field = r.name();
  const kind = r.byte();
  const what = `import "${module}"."${field}"`;
  switch (kind) {
    case 0:
      m.imports.push({ module, field, kind: 'function', type: r.u32() });
      m.importedFuncs++;
      return;
    case 1:
      m.imports.push({ module, field, kind: 'table' });
      m.tables.push(table(r, what));
      return;
    case 2:
      m.imports.push({ module, field, kind: 'memory' });
      m.memories.push(limits(r, what, 'memory'));
      return;
    case 3:
      m.imports.push({ module, field, kind: 'global' });
      readValType(r, what);
      if (r.byte() > 1) throw new UnsupportedFeatureError('shared globals (threads)', what);
      m.importedGlobals++;
      return;
    case 4:
      throw new UnsupportedFeatureError('exception handling', what);
    default:
      throw new MalformedModuleError(`${what} has unknown kind ${kind} (${where})`);
  }
}

function body(r: Reader, func: number, params: number): Body {
  const size = r.u32();
  const start = r.pos;
  const end = start + size;
  r.take(size);
  const br = new Reader(r.bytes, start, end);
  const where = `function ${func}`;
  let locals = 0;
  vec(br, () => {
    locals += br.u32();
    readValType(br, where);
  });
  const room = MAX_LOCALS - SCRATCH_LOCALS - params;
  if (locals > room) {
    throw new ModuleLimitError(
      `${where} declares ${locals} locals, above ${room} (V8's ${MAX_LOCALS}, less its ${params} parameters and the sandbox's ${SCRATCH_LOCALS})`,
    );
  }
  const code = br.pos;
  walk(br, where, () => {});
  return { start, end, code, locals };
}

/**
 * Walks one body's instructions to its final `end`, calling `visit` with each instruction and the
 * opcode of the construct it closes (for `end`/`else`). Throws if the nesting does not close
 * exactly at the body's end.
 */
export function walk(
  r: Reader,
  where: string,
  visit: (i: Instr, closes: number | undefined) => void,
): void {
  // Invariant: `open` holds the opcodes of the constructs enclosing the next instruction; the
  // function itself is the bottom entry (-1).
  const open: number[] = [-1];
  while (open.length > 0) {
    if (r.done) throw new MalformedModuleError(`${where} ends inside a block`);
    const i = readInstr(r, where);
    let closes: number | undefined;
    if (i.op === OP.block || i.op === OP.loop || i.op === OP.if) open.push(i.op);
    else if (i.op === OP.end) closes = open.pop();
    else if (i.op === OP.else) {
      closes = open[open.length - 1];
      if (closes !== OP.if)
        throw new MalformedModuleError(`${where}: else without if (byte ${i.start})`);
    }
    visit(i, closes);
  }
  if (!r.done) throw new MalformedModuleError(`${where} has bytes after its end`);
}
