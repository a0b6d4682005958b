/**
 * Where a function body pays its fuel (docs/sandbox.md "Where fuel is charged").
 *
 * Structured control flow only jumps backwards to a loop header; every other branch goes forward.
 * So between two entries of the same loop header (or one entry of the function), each instruction
 * that sits directly in that loop — not inside a nested loop — runs at most once. Charging the sum
 * of those instructions at the header is therefore an upper bound of what one iteration runs,
 * with one check per iteration instead of one per basic block. A nested loop pays for its own
 * body at its own header.
 *
 * The price is overcharging the arm of an `if` that was not taken. An arm whose own cost reaches
 * `ARM_CHARGE_MIN` gets its own charge point, so the overcharge of one `if` stays below that bound
 * and a large rarely-taken arm costs nothing unless it runs.
 */
import { type Instr, OP } from './opcodes.js';

/** An `if`/`else` arm at least this costly pays for itself when (and only when) it runs. */
export const ARM_CHARGE_MIN = 64;

/**
 * Returns, for each instruction index that is a charge point, the static fuel to charge just
 * before that instruction. `closes[k]` is the opcode of the construct instruction k closes (for
 * `else` and `end`), -1 for the function's own end.
 */
export function planCharges(
  instrs: readonly Instr[],
  closes: readonly (number | undefined)[],
  cost: (i: Instr) => number,
): Map<number, number> {
  const armCost = armCosts(instrs, closes, cost);
  const charges = new Map<number, number>();
  // Invariant: owners[top] is the charge point paying for the next instruction; loops and if
  // arms push an entry (their own charge point, or the enclosing one for a cheap arm).
  const owners: number[] = [0];
  const add = (owner: number, c: number): void => {
    if (c > 0) charges.set(owner, (charges.get(owner) ?? 0) + c);
  };
  const arm = (start: number): number => {
    const enclosing = owners[owners.length - 1] as number;
    return (armCost.get(start) ?? 0) >= ARM_CHARGE_MIN ? start : enclosing;
  };
  instrs.forEach((i, k) => {
    add(owners[owners.length - 1] as number, cost(i));
    if (i.op === OP.loop) owners.push(k + 1);
    else if (i.op === OP.if) owners.push(arm(k + 1));
    else if (i.op === OP.else) {
      owners.pop();
      owners.push(arm(k + 1));
    } else if (i.op === OP.end && (closes[k] === OP.loop || closes[k] === OP.if)) owners.pop();
  });
  return charges;
}

/** The cost of each if/else arm (keyed by its first instruction), nested loops excluded. */
function armCosts(
  instrs: readonly Instr[],
  closes: readonly (number | undefined)[],
  cost: (i: Instr) => number,
): Map<number, number> {
  const out = new Map<number, number>();
  // Invariant: frames[top] accumulates the innermost open loop or arm; the bottom is the body.
  const frames: { loop: boolean; start: number; cost: number }[] = [
    { loop: false, start: 0, cost: 0 },
  ];
  const close = (): void => {
    const f = frames.pop();
    if (!f || f.loop) return;
    out.set(f.start, f.cost);
    const parent = frames[frames.length - 1];
    if (parent) parent.cost += f.cost;
  };
  instrs.forEach((i, k) => {
    const top = frames[frames.length - 1];
    if (top) top.cost += cost(i);
    if (i.op === OP.loop) frames.push({ loop: true, start: k + 1, cost: 0 });
    else if (i.op === OP.if) frames.push({ loop: false, start: k + 1, cost: 0 });
    else if (i.op === OP.else) {
      close();
      frames.push({ loop: false, start: k + 1, cost: 0 });
    } else if (i.op === OP.end && (closes[k] === OP.loop || closes[k] === OP.if)) close();
  });
  return out;
}
