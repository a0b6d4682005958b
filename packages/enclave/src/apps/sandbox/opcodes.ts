/**
 * One instruction at a time: decode its immediates (core spec §5.4, plus the bulk-memory,
 * reference-types, sign-extension, saturating-conversion and fixed-width SIMD extensions) and say
 * what it costs. Proposals the sandbox refuses (threads, exception handling, tail calls, typed
 * function references, GC, relaxed SIMD, multi-memory) fail here by name, so no later stage ever
 * sees an instruction it does not understand.
 */

import type { Reader } from './bytes.js';
import { MalformedModuleError, UnsupportedFeatureError } from './errors.js';

/** Prefixed opcodes are `prefix << 16 | sub`; single-byte opcodes are themselves. */
export const OP = {
  unreachable: 0x00,
  block: 0x02,
  loop: 0x03,
  if: 0x04,
  else: 0x05,
  end: 0x0b,
  br: 0x0c,
  brIf: 0x0d,
  brTable: 0x0e,
  return: 0x0f,
  call: 0x10,
  callIndirect: 0x11,
  memoryGrow: 0x40,
  memoryInit: 0xfc0008,
  memoryCopy: 0xfc000a,
  memoryFill: 0xfc000b,
  tableInit: 0xfc000c,
  tableCopy: 0xfc000e,
  tableGrow: 0xfc000f,
  tableFill: 0xfc0011,
} as const;

/** A decoded instruction: its opcode, where it sits, and the callee of a `call`. */
export interface Instr {
  readonly op: number;
  readonly start: number;
  readonly end: number;
  readonly callee?: number;
}

/** Value types the sandbox accepts (numbers, v128, funcref, externref). */
export function isValType(b: number): boolean {
  return (b >= 0x7b && b <= 0x7f) || b === 0x70 || b === 0x6f;
}

/** Reads one value type, refusing the GC proposal's reference types by name. */
export function readValType(r: Reader, where: string): number {
  const b = r.byte();
  if (isValType(b)) return b;
  if (b === 0x63 || b === 0x64 || (b >= 0x65 && b <= 0x6e) || b === 0x71 || b === 0x72) {
    throw new UnsupportedFeatureError('typed references / GC', where);
  }
  throw new MalformedModuleError(`unknown value type 0x${b.toString(16)} (${where})`);
}

function memarg(r: Reader, where: string): void {
  const align = r.u32();
  // Bit 6 of the alignment field announces a memory index (multi-memory proposal).
  if (align & 0x40) throw new UnsupportedFeatureError('multi-memory', where);
  r.u32(); // offset
}

function memIndexZero(r: Reader, where: string): void {
  if (r.u32() !== 0) throw new UnsupportedFeatureError('multi-memory', where);
}

const REFUSED_SINGLE: Readonly<Record<number, string>> = {
  6: 'exception handling',
  7: 'exception handling',
  8: 'exception handling',
  9: 'exception handling',
  10: 'exception handling',
  24: 'exception handling',
  25: 'exception handling',
  31: 'exception handling',
  18: 'tail calls',
  19: 'tail calls',
  20: 'typed function references',
  21: 'tail calls',
  211: 'typed references / GC',
  212: 'typed function references',
  213: 'typed function references',
  214: 'typed function references',
  251: 'GC',
  254: 'threads (atomics)',
};

/** Where an instruction sits, for messages (built only when something is refused). */
function at(where: string, start: number): string {
  return `${where}, byte ${start}`;
}

/** Decodes the instruction at `r.pos`; `where` names the function for messages. */
export function readInstr(r: Reader, where: string): Instr {
  const start = r.pos;
  const b = r.byte();
  let op = b;
  let callee: number | undefined;
  switch (b) {
    case 0x02:
    case 0x03:
    case 0x04:
      blockType(r, at(where, start));
      break;
    case 0x0c:
    case 0x0d:
    case 0x20:
    case 0x21:
    case 0x22:
    case 0x23:
    case 0x24:
    case 0x25:
    case 0x26:
    case 0xd2:
      r.u32();
      break;
    case 0x10:
      callee = r.u32();
      break;
    case 0x0e: {
      const n = r.u32();
      for (let i = 0; i <= n; i++) r.u32();
      break;
    }
    case 0x11:
      r.u32();
      r.u32();
      break;
    case 0x1c: {
      const n = r.u32();
      for (let i = 0; i < n; i++) readValType(r, at(where, start));
      break;
    }
    case 0x3f:
    case 0x40:
      memIndexZero(r, at(where, start));
      break;
    case 0x41:
      r.skipSigned(32);
      break;
    case 0x42:
      r.skipSigned(64);
      break;
    case 0x43:
      r.take(4);
      break;
    case 0x44:
      r.take(8);
      break;
    case 0xd0: {
      const ht = r.s33();
      if (ht !== -16 && ht !== -17)
        throw new UnsupportedFeatureError('typed references / GC', at(where, start));
      break;
    }
    case 0xfc:
      op = 0xfc0000 | readFc(r, at(where, start));
      break;
    case 0xfd:
      op = 0xfd0000 | readFd(r, at(where, start));
      break;
    default: {
      const refused = REFUSED_SINGLE[b];
      if (refused) throw new UnsupportedFeatureError(refused, at(where, start));
      if (b >= 0x28 && b <= 0x3e) memarg(r, at(where, start));
      else if (!(b <= 0x01 || b === 0x05 || b === 0x0b || b === 0x0f || b === 0x1a || b === 0x1b)) {
        if (!((b >= 0x45 && b <= 0xc4) || b === 0xd1)) {
          throw new MalformedModuleError(
            `unknown opcode 0x${b.toString(16)} (${at(where, start)})`,
          );
        }
      }
    }
  }
  return callee === undefined ? { op, start, end: r.pos } : { op, start, end: r.pos, callee };
}

function blockType(r: Reader, where: string): void {
  const bt = r.s33();
  // -64 is 0x40 (empty); -1..-5 are i32 i64 f32 f64 v128; -16/-17 funcref/externref; >= 0 a type.
  if (bt >= 0 || bt === -64 || (bt >= -5 && bt <= -1) || bt === -16 || bt === -17) return;
  throw new UnsupportedFeatureError('typed references / GC', where);
}

function readFc(r: Reader, where: string): number {
  const sub = r.u32();
  switch (sub) {
    case 8: // memory.init dataidx memidx
      r.u32();
      memIndexZero(r, where);
      break;
    case 9: // data.drop
    case 13: // elem.drop
    case 15: // table.grow
    case 16: // table.size
    case 17: // table.fill
      r.u32();
      break;
    case 10: // memory.copy
      memIndexZero(r, where);
      memIndexZero(r, where);
      break;
    case 11: // memory.fill
      memIndexZero(r, where);
      break;
    case 12: // table.init elemidx tableidx
    case 14: // table.copy dst src
      r.u32();
      r.u32();
      break;
    default:
      if (sub > 7) throw new MalformedModuleError(`unknown opcode 0xfc ${sub} (${where})`);
  }
  return sub;
}

function readFd(r: Reader, where: string): number {
  const sub = r.u32();
  if (sub >= 0x100) throw new UnsupportedFeatureError('relaxed SIMD', where);
  if (sub <= 11 || sub === 92 || sub === 93) memarg(r, where);
  else if (sub === 12 || sub === 13) r.take(16);
  else if (sub >= 21 && sub <= 34) r.byte();
  else if (sub >= 84 && sub <= 91) {
    memarg(r, where);
    r.byte();
  }
  return sub;
}

/**
 * Static fuel per instruction, by class (docs/sandbox.md "Cost table"). One unit is about one
 * simple ALU instruction; structure (block, loop, else, end, nop) is free. Dynamic parts (bytes
 * touched by bulk operations, pages grown) are charged separately by the instrumentation.
 */
export const COST = {
  simple: 1,
  memory: 2,
  multiply: 3,
  float: 3,
  divide: 10,
  call: 5,
  callIndirect: 10,
  branchTable: 3,
  simd: 2,
  simdMemory: 3,
  bulkBase: 10,
  /**
   * `memory.grow` goes through V8's runtime and, even for 0 pages, replaces the memory's buffer
   * (about 300 ns); `table.set` of a function reference pays the GC's write barrier (about 25
   * ns). At the bulk base and the memory class, loops of them ran 12-22 and 6 times their fuel's
   * worth (measured, docs/sandbox.md §3).
   */
  memoryGrow: 300,
  tableSet: 25,
} as const;

/** The static cost of one instruction. */
export function costOf(op: number): number {
  if (op > 0xffff) return prefixedCost(op);
  if (op === 0x01 || op === 0x02 || op === 0x03 || op === 0x05 || op === 0x0b) return 0;
  if (op === OP.call) return COST.call;
  if (op === OP.callIndirect) return COST.callIndirect;
  if (op === OP.brTable) return COST.branchTable;
  if (op === OP.memoryGrow) return COST.memoryGrow;
  if (op === 0x26) return COST.tableSet;
  if ((op >= 0x28 && op <= 0x3e) || op === 0x25) return COST.memory;
  if (op === 0x6c || op === 0x7e) return COST.multiply;
  if ((op >= 0x6d && op <= 0x70) || (op >= 0x7f && op <= 0x82)) return COST.divide;
  if (op === 0x91 || op === 0x95 || op === 0x9f || op === 0xa3) return COST.divide; // sqrt, div
  if ((op >= 0x8b && op <= 0xa6) || (op >= 0xa7 && op <= 0xbb)) return COST.float;
  return COST.simple;
}

function prefixedCost(op: number): number {
  const sub = op & 0xffff;
  if (op >>> 16 === 0xfd) {
    const mem = sub <= 11 || sub === 92 || sub === 93 || (sub >= 84 && sub <= 91);
    return mem ? COST.simdMemory : COST.simd;
  }
  if (sub <= 7) return COST.float; // saturating float-to-int
  if (sub === 9 || sub === 13 || sub === 16) return COST.simple; // data.drop, elem.drop, table.size
  return COST.bulkBase;
}
