/**
 * Instance reuse (docs/sandbox.md §5.1): what makes an instance of an instrumented module
 * resettable to its exact post-start state, decided once per module at compile time.
 *
 * A WebAssembly instance's mutable state is its memory (contents and size), its mutable globals,
 * its tables and the dropped flags of its passive data and element segments. JavaScript can read
 * and restore the first two (memory through its export, globals once exported), so a module is
 * reusable when nothing else can change:
 * - no function body contains `table.set`, `table.grow`, `table.fill`, `table.copy`,
 *   `table.init`, `elem.drop` or `data.drop` (the host never touches tables);
 * - no mutable global is a `v128` (JavaScript cannot read one).
 * `compileForReuse` then adds an export `cloister:global:<index>` for every mutable global (the
 * reserved prefix: no module can export such a name itself) and remembers the list with the
 * compiled module; `instantiate` (instance.ts) snapshots and restores through those exports.
 */
import { Reader, Writer } from './bytes.js';
import { parseModule, walk } from './module.js';
import { readInstr, readValType } from './opcodes.js';
import { RESERVED_EXPORT_PREFIX } from './validate.js';
import { Wasm, type WasmModule } from './wasm-api.js';

/** How a compiled module's instances are reset: the export names of its mutable globals. */
export interface ReusePlan {
  readonly globals: readonly string[];
}

/** Why a module's instances cannot be reused, or the plan. */
export type ReuseAnalysis =
  | { readonly reusable: true; readonly globals: readonly number[] }
  | { readonly reusable: false; readonly reason: string };

/**
 * The largest memory (at instantiation and after the start function) an instance may have to be
 * kept for reuse: a reset copies the post-start image back, so its cost grows with the memory.
 * 1 MiB (16 pages) restores in tens of microseconds at worst; larger memories are instantiated
 * fresh per call.
 */
export const MAX_REUSE_MEMORY_BYTES = 1024 * 1024;

const GLOBAL_EXPORT = `${RESERVED_EXPORT_PREFIX}global:`;

/** Instructions that change a table or a segment's dropped flag (prefixed: 0xFC << 16 | sub). */
const STATEFUL: Readonly<Record<number, string>> = {
  38: 'table.set',
  16515081: 'data.drop',
  16515084: 'table.init',
  16515085: 'elem.drop',
  16515086: 'table.copy',
  16515087: 'table.grow',
  16515089: 'table.fill',
};

const plans = new WeakMap<WasmModule, ReusePlan>();

/** Decides whether instances of `instrumented` (output of `instrumentModule`) can be reset. */
export function analyzeReuse(instrumented: Uint8Array): ReuseAnalysis {
  const m = parseModule(instrumented);
  for (const [i, b] of m.bodies.entries()) {
    let found: string | undefined;
    walk(new Reader(instrumented, b.code, b.end), `function ${i}`, (instr) => {
      found ??= STATEFUL[instr.op];
    });
    if (found !== undefined) {
      return { reusable: false, reason: `function ${i + m.importedFuncs} uses ${found}` };
    }
  }
  const globals: number[] = [];
  const section = m.sections.find((s) => s.id === 6);
  if (section !== undefined) {
    const r = new Reader(instrumented, section.start, section.end);
    const n = r.u32();
    for (let k = 0; k < n; k++) {
      const index = m.importedGlobals + k;
      const type = readValType(r, 'global section');
      const mutable = r.byte() === 1;
      while (readInstr(r, 'global section').op !== 0x0b) {
        // the constant expression, up to its `end`
      }
      if (!mutable) continue;
      if (type === 0x7b) return { reusable: false, reason: `global ${index} is a mutable v128` };
      globals.push(index);
    }
  }
  return { reusable: true, globals };
}

/**
 * Compiles `instrumented` as `new WebAssembly.Module` would; when its instances can be reset
 * (`analyzeReuse`), the module also exports every mutable global as `cloister:global:<index>`
 * and `instantiate` gives its instances a working `reset()`. Otherwise the module is compiled
 * unchanged and its instances' `reset()` always returns false.
 */
export function compileForReuse(instrumented: Uint8Array): WasmModule {
  const a = analyzeReuse(instrumented);
  if (!a.reusable) return new Wasm.Module(instrumented);
  const module = new Wasm.Module(exportGlobals(instrumented, a.globals));
  plans.set(module, { globals: a.globals.map((g) => `${GLOBAL_EXPORT}${g}`) });
  return module;
}

/** The reset plan of a module compiled by `compileForReuse`, or undefined. */
export function reusePlanOf(module: WasmModule): ReusePlan | undefined {
  return plans.get(module);
}

/** `bytes` with the export section extended by `cloister:global:<g>` for each global `g`. */
function exportGlobals(bytes: Uint8Array, globals: readonly number[]): Uint8Array {
  const m = parseModule(bytes);
  const exp = m.sections.find((s) => s.id === 7);
  // instrumentModule always writes an export section (the fuel global at least).
  if (exp === undefined) throw new Error('an instrumented module has an export section');
  const r = new Reader(bytes, exp.start, exp.end);
  const count = r.u32();
  const w = new Writer().u32(count + globals.length).bytes(bytes.subarray(r.pos, exp.end));
  for (const g of globals) w.name(`${GLOBAL_EXPORT}${g}`).byte(3).u32(g);
  const payload = w.finish();
  // The section header: id, then the payload size (LEB128) found just before exp.start.
  let head = exp.start - 1;
  while (head > 0 && (bytes[head - 1] as number) & 0x80) head--;
  const out = new Writer()
    .bytes(bytes.subarray(0, head - 1))
    .byte(7)
    .u32(payload.length)
    .bytes(payload)
    .bytes(bytes.subarray(exp.end));
  return out.finish();
}
