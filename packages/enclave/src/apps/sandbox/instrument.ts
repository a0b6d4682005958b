/**
 * Fuel and depth instrumentation: a small rewriter over the binary format (docs/sandbox.md
 * "Instrumentation"). It decodes only what it must — section boundaries, limits, function bodies
 * instruction by instruction — copies every other byte verbatim, and re-encodes the sections it
 * changes with fresh sizes. No function, global or type index moves: the three sandbox globals and
 * any wrapper types are appended after the module's own, so no existing immediate needs rewriting.
 *
 * Output is a pure function of the input bytes and options (no maps iterated in insertion-unstable
 * order, no clock, no randomness): the same module instruments to the same bytes on every node.
 */
import { Reader, Writer } from './bytes.js';
import { DEFAULT_MAX_MEMORY_PAGES, DEFAULT_MAX_TABLE_ELEMENTS, PAGE_BYTES } from './limits.js';
import {
  type Body,
  type Limits,
  type ParsedModule,
  parseModule,
  SCRATCH_LOCALS,
  walk,
} from './module.js';
import { costOf, type Instr, OP } from './opcodes.js';
import { planCharges } from './plan.js';
import { checkCaps, checkWithV8, RESERVED_EXPORT_PREFIX } from './validate.js';

/** Names of the exports the instrumentation adds. */
export const SANDBOX_EXPORTS = {
  fuel: `${RESERVED_EXPORT_PREFIX}fuel`,
  depth: `${RESERVED_EXPORT_PREFIX}depth`,
  status: `${RESERVED_EXPORT_PREFIX}status`,
  memory: `${RESERVED_EXPORT_PREFIX}memory`,
  start: `${RESERVED_EXPORT_PREFIX}start`,
} as const;

/** Values of the status global, set just before the module traps on purpose. */
export const STATUS = { running: 0, outOfFuel: 1, tooDeep: 2 } as const;

/** Bulk memory operations cost one unit per this many bytes (memset/memcpy speed vs ALU). */
export const BYTES_PER_FUEL = 16;
/** `memory.grow` costs as much per page as filling the page would. */
export const FUEL_PER_PAGE = PAGE_BYTES / BYTES_PER_FUEL;
/** Table operations cost one unit per element. */
export const FUEL_PER_TABLE_ELEMENT = 1;

export interface InstrumentOptions {
  /** Memory cap in pages, given to a memory that declares no maximum. */
  readonly maxMemoryPages?: number;
  /** Table cap in elements, given to a table that declares no maximum. */
  readonly maxTableElements?: number;
  /** Extra static fuel for each direct call to an imported (host) function. */
  readonly importCost?: (module: string, field: string) => number;
}

/**
 * Returns `bytes` with fuel metering and a counted call depth woven in. Assumes `validateModule`
 * accepted the module (the import allow-list is not rechecked) but refuses by name anything it
 * cannot instrument. Custom sections are dropped; the start function is not run at
 * instantiation but exported as `cloister:start`, which `instantiate` calls with fuel.
 */
export function instrumentModule(bytes: Uint8Array, options: InstrumentOptions = {}): Uint8Array {
  // The original must be valid on its own: an invalid module that names global index g (the
  // fuel global-to-be) would become valid after instrumentation and could refill its own fuel.
  checkWithV8(bytes);
  const m = parseModule(bytes);
  checkCaps(m, options);
  const g = m.importedGlobals + m.globals;
  const ctx: Ctx = { m, fuel: g, depth: g + 1, status: g + 2, extraTypes: [], options };
  const code = codeSection(ctx);
  const out = new Writer().bytes(bytes.subarray(0, 8));
  const payloads = new Map<number, Uint8Array>();
  for (const s of m.sections) {
    if (s.id !== 0 && s.id !== 8) payloads.set(s.id, bytes.subarray(s.start, s.end));
  }
  payloads.set(10, code);
  payloads.set(1, typeSection(ctx, payloads.get(1)));
  payloads.set(6, globalSection(payloads.get(6)));
  payloads.set(7, exportSection(ctx, payloads.get(7)));
  if (m.memories.length > m.imports.filter((i) => i.kind === 'memory').length) {
    payloads.set(5, limitsSection(m.memories, options.maxMemoryPages ?? DEFAULT_MAX_MEMORY_PAGES));
  }
  if (m.tables.length > m.imports.filter((i) => i.kind === 'table').length) {
    payloads.set(4, tableSection(m, options.maxTableElements ?? DEFAULT_MAX_TABLE_ELEMENTS));
  }
  for (const id of [1, 2, 3, 4, 5, 6, 7, 9, 12, 10, 11]) {
    const p = payloads.get(id);
    if (p) out.byte(id).u32(p.length).bytes(p);
  }
  const result = out.finish();
  checkWithV8(result);
  return result;
}

interface Ctx {
  readonly m: ParsedModule;
  readonly fuel: number;
  readonly depth: number;
  readonly status: number;
  /** Result lists of `[] -> results` types appended for multi-value wrapper blocks. */
  readonly extraTypes: (readonly number[])[];
  readonly options: InstrumentOptions;
}

/** Re-encodes a vector section: old count + added, old entries verbatim, then `added`. */
function extendVec(old: Uint8Array | undefined, added: number, tail: Uint8Array): Uint8Array {
  let count = 0;
  let rest: Uint8Array = new Uint8Array(0);
  if (old) {
    const r = new Reader(old);
    count = r.u32();
    rest = old.subarray(r.pos);
  }
  return new Writer()
    .u32(count + added)
    .bytes(rest)
    .bytes(tail)
    .finish();
}

function typeSection(ctx: Ctx, old: Uint8Array | undefined): Uint8Array {
  const w = new Writer();
  for (const results of ctx.extraTypes) {
    w.byte(0x60).u32(0).u32(results.length);
    for (const t of results) w.byte(t);
  }
  return extendVec(old, ctx.extraTypes.length, w.finish());
}

function globalSection(old: Uint8Array | undefined): Uint8Array {
  // fuel: mut i64 = 0; depth, status: mut i32 = 0. The host sets them before every call.
  const i64 = [0x7e, 0x01, 0x42, 0x00, 0x0b];
  const i32 = [0x7f, 0x01, 0x41, 0x00, 0x0b];
  return extendVec(old, 3, Uint8Array.from([...i64, ...i32, ...i32]));
}

function exportSection(ctx: Ctx, old: Uint8Array | undefined): Uint8Array {
  const w = new Writer();
  let n = 3;
  w.name(SANDBOX_EXPORTS.fuel).byte(3).u32(ctx.fuel);
  w.name(SANDBOX_EXPORTS.depth).byte(3).u32(ctx.depth);
  w.name(SANDBOX_EXPORTS.status).byte(3).u32(ctx.status);
  if (ctx.m.memories.length > 0) {
    w.name(SANDBOX_EXPORTS.memory).byte(2).u32(0);
    n++;
  }
  if (ctx.m.start !== undefined) {
    w.name(SANDBOX_EXPORTS.start).byte(0).u32(ctx.m.start);
    n++;
  }
  return extendVec(old, n, w.finish());
}

function writeLimits(w: Writer, l: Limits, cap: number): void {
  w.byte(0x01)
    .u32(l.min)
    .u32(l.max ?? cap);
}

function limitsSection(all: readonly Limits[], cap: number): Uint8Array {
  const w = new Writer().u32(1);
  writeLimits(w, all[all.length - 1] as Limits, cap);
  return w.finish();
}

function tableSection(m: ParsedModule, cap: number): Uint8Array {
  const imported = m.imports.filter((i) => i.kind === 'table').length;
  const own = m.tables.slice(imported);
  const w = new Writer().u32(own.length);
  for (const t of own) writeLimits(w.byte(t.ref), t.limits, cap);
  return w.finish();
}

function codeSection(ctx: Ctx): Uint8Array {
  const w = new Writer().u32(ctx.m.bodies.length);
  ctx.m.bodies.forEach((b, i) => {
    const body = rewriteBody(ctx, b, i);
    w.u32(body.length).bytes(body);
  });
  return w.finish();
}

/** The wrapper block's type: empty, one value type, or an appended `[] -> results` type. */
function wrapperType(ctx: Ctx, results: readonly number[]): number[] {
  if (results.length === 0) return [0x40];
  if (results.length === 1) return [results[0] as number];
  const same = (r: readonly number[]): boolean =>
    r.length === results.length && r.every((t, i) => t === results[i]);
  let idx = ctx.m.types.findIndex((t) => t.params.length === 0 && same(t.results));
  if (idx < 0) {
    let extra = ctx.extraTypes.findIndex(same);
    if (extra < 0) extra = ctx.extraTypes.push(results) - 1;
    idx = ctx.m.types.length + extra;
  }
  return Array.from(new Writer().sleb(idx).finish());
}

/**
 * One body. Charge points sit before the first instruction, at the start of every loop body
 * (so each iteration pays), at the start of each `if` arm and after the `end` of every block or
 * if (join points). Each charge pays for the straight-line run up to the next charge point,
 * including code after a `br_if` (overcharging a taken branch keeps the count static).
 */
function rewriteBody(ctx: Ctx, b: Body, index: number): Uint8Array {
  const { m } = ctx;
  const type = m.types[m.funcs[index] as number];
  if (!type) throw new Error(`function ${index} has no type`); // parse/V8 would have refused
  const instrs: Instr[] = [];
  const closes: (number | undefined)[] = [];
  const where = `function ${index + m.importedFuncs}`;
  walk(new Reader(m.bytes, b.code, b.end), where, (i, c) => {
    instrs.push(i);
    closes.push(c);
  });
  const costs = planCharges(instrs, closes, staticCost(ctx));
  const hasCalls = instrs.some((i) => i.op === OP.call || i.op === OP.callIndirect);
  // A function with a loop keeps its fuel in a local (a register) and writes it back to the
  // global only where someone else may read it: calls, exits, and the out-of-fuel trap.
  const cached = instrs.some((i) => i.op === OP.loop);
  const e = new Emitter(ctx, type.params.length + b.locals, cached);
  const lr = new Reader(m.bytes, b.start, b.code);
  const groups = lr.u32();
  e.w
    .u32(groups + 2)
    .bytes(m.bytes.subarray(lr.pos, b.code))
    // The scratch locals (Emitter): one i64 `f`, then SCRATCH_LOCALS - 1 i32s `n`, `d` (the
    // count module.ts leaves room for when it checks a function's locals).
    .bytes(Uint8Array.of(1, 0x7e, SCRATCH_LOCALS - 1, 0x7f));
  if (cached) e.load();
  // A function that calls is counted against the depth; its entry charge shares the check.
  if (hasCalls) e.enter(costs.get(0) ?? 0);
  e.w.byte(OP.block).bytes(Uint8Array.from(wrapperType(ctx, type.results)));
  instrs.forEach((i, k) => {
    const cost = costs.get(k);
    if (cost && !(k === 0 && hasCalls)) e.charge(cost);
    const raw = m.bytes.subarray(i.start, i.end);
    if (k === instrs.length - 1) {
      e.w.bytes(raw); // closes the wrapper block
      if (cached) e.flush();
      if (hasCalls) e.leave();
      e.w.byte(OP.end);
      return;
    }
    const isCall = i.op === OP.call || i.op === OP.callIndirect;
    if (cached && (isCall || i.op === OP.return)) e.flush();
    if (i.op === OP.return && hasCalls) e.leave();
    const dyn = DYNAMIC[i.op];
    if (dyn) e.chargeDynamic(dyn);
    e.w.bytes(raw);
    if (cached && isCall) e.load();
  });
  return e.w.finish();
}

/** Static cost of an instruction, plus the policy's extra for calls to host functions. */
function staticCost(ctx: Ctx): (i: Instr) => number {
  const { m, options } = ctx;
  const funcImports = m.imports.filter((x) => x.kind === 'function');
  return (i) => {
    const c = costOf(i.op);
    if (i.op !== OP.call || i.callee === undefined || !options.importCost) return c;
    const imp = funcImports[i.callee];
    return imp ? c + Math.max(0, Math.floor(options.importCost(imp.module, imp.field))) : c;
  };
}

type Dynamic = 'bytes' | 'pages' | 'elements';
const DYNAMIC: Readonly<Record<number, Dynamic>> = {
  [OP.memoryGrow]: 'pages',
  [OP.memoryInit]: 'bytes',
  [OP.memoryCopy]: 'bytes',
  [OP.memoryFill]: 'bytes',
  [OP.tableInit]: 'elements',
  [OP.tableCopy]: 'elements',
  [OP.tableGrow]: 'elements',
  [OP.tableFill]: 'elements',
};

/**
 * Writes the injected sequences; each is stack-neutral and valid even in unreachable code. Three
 * scratch locals follow the function's own: `f` (i64, the fuel left after a charge), `n` (i32, the
 * operand of a dynamic charge) and `d` (i32, the depth left when the function was entered).
 */
class Emitter {
  readonly w = new Writer();
  private readonly ctx: Ctx;
  private readonly f: number;
  private readonly n: number;
  private readonly d: number;
  /** Fuel lives in `f` between charges; the global is current only after `flush`. */
  private readonly cached: boolean;

  constructor(ctx: Ctx, firstScratch: number, cached: boolean) {
    this.ctx = ctx;
    this.cached = cached;
    this.f = firstScratch;
    this.n = firstScratch + 1;
    this.d = firstScratch + 2;
  }

  /** fuel -= cost; if (fuel < 0) { status = outOfFuel; unreachable } */
  charge(cost: number): void {
    this.fuel().byte(0x42).sleb(cost).byte(0x7d);
    this.settle();
    this.trapIf(STATUS.outOfFuel);
  }

  /** f = fuel */
  load(): void {
    this.w.byte(0x23).u32(this.ctx.fuel).byte(0x21).u32(this.f);
  }

  /** fuel = f */
  flush(): void {
    this.w.byte(0x20).u32(this.f).byte(0x24).u32(this.ctx.fuel);
  }

  /** Pushes the current fuel: the local when cached, else the global. */
  private fuel(): Writer {
    return this.cached ? this.w.byte(0x20).u32(this.f) : this.w.byte(0x23).u32(this.ctx.fuel);
  }

  /** The same, with the cost computed from the i32 count on top of the stack (left in place). */
  chargeDynamic(kind: Dynamic): void {
    const w = this.w;
    w.byte(0x22).u32(this.n); // local.tee: keep the operand for the operation itself
    this.fuel().byte(0x20).u32(this.n).byte(0xad); // i64.extend_i32_u
    if (kind === 'bytes') w.byte(0x42).sleb(Math.log2(BYTES_PER_FUEL)).byte(0x88); // i64.shr_u
    if (kind === 'pages') w.byte(0x42).sleb(FUEL_PER_PAGE).byte(0x7e); // i64.mul
    w.byte(0x7d); // i64.sub
    this.settle();
    this.trapIf(STATUS.outOfFuel);
  }

  /**
   * Function entry with depth counting, one branch for both limits:
   * d = depth; depth = d - 1; fuel -= cost;
   * if ((fuel < 0) | (d == 0)) { status = d == 0 ? tooDeep : outOfFuel; unreachable }
   */
  enter(cost: number): void {
    const { depth, status } = this.ctx;
    const w = this.w;
    w.byte(0x23).u32(depth).byte(0x22).u32(this.d).byte(0x41).byte(0x01).byte(0x6b);
    w.byte(0x24).u32(depth);
    this.fuel().byte(0x42).sleb(cost).byte(0x7d);
    this.settle();
    w.byte(0x20).u32(this.d).byte(0x45).byte(0x72); // local.get d; i32.eqz; i32.or
    w.byte(0x04).byte(0x40);
    if (this.cached) this.flush();
    w.byte(0x41).sleb(STATUS.tooDeep).byte(0x41).sleb(STATUS.outOfFuel);
    w.byte(0x20).u32(this.d).byte(0x45).byte(0x1b); // select(tooDeep, outOfFuel, d == 0)
    w.byte(0x24).u32(status).byte(0x00).byte(0x0b);
  }

  /** depth = d: restores the depth this call was entered with (no load needed). */
  leave(): void {
    this.w.byte(0x20).u32(this.d).byte(0x24).u32(this.ctx.depth);
  }

  /** Stores the new fuel (in `f`, and in the global unless cached); leaves `fuel < 0` (i32). */
  private settle(): void {
    this.w.byte(0x22).u32(this.f);
    if (!this.cached) this.w.byte(0x24).u32(this.ctx.fuel).byte(0x20).u32(this.f);
    this.w.byte(0x42).byte(0x00).byte(0x53); // i64.const 0; i64.lt_s
  }

  /** if (top) { fuel = f; status = s; unreachable }: the host reads fuel and status after. */
  private trapIf(status: number): void {
    this.w.byte(0x04).byte(0x40);
    if (this.cached) this.flush();
    this.w.byte(0x41).sleb(status).byte(0x24).u32(this.ctx.status);
    this.w.byte(0x00).byte(0x0b);
  }
}
