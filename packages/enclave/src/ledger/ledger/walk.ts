/**
 * Ordered iteration over a trie through its public proofs (docs/ledger-format.md §6, §11): the
 * trie verifies every node it reads to build a proof; this module only reads the documented proof
 * encoding of nodes the trie produced itself, so it adds no trust. Order is path order (bytewise
 * on the 32-byte HMAC paths).
 */
const PATH = 32;
const LEAF_BYTES = 97;

type WalkNode =
  | { readonly kind: 'leaf'; readonly path: Uint8Array }
  | {
      readonly kind: 'branch';
      readonly depth: number;
      readonly prefix: Uint8Array;
      readonly bitmap: number;
    };

function digit(path: Uint8Array, i: number): number {
  const b = path[i >> 1] ?? 0;
  return i & 1 ? b & 15 : b >> 4;
}

/** The nodes of a proof (format 1, radix 16), root first. */
export function proofNodes(proof: Uint8Array): WalkNode[] {
  const n = proof[2 + PATH] ?? 0;
  const out: WalkNode[] = [];
  let o = 3 + PATH;
  for (let i = 0; i < n; i++) {
    if (proof[o] === 0x01) {
      out.push({ kind: 'leaf', path: proof.subarray(o + 1, o + 1 + PATH) });
      o += LEAF_BYTES;
      continue;
    }
    const depth = proof[o + 1] ?? 0;
    const pb = (depth + 1) >> 1;
    const bitmap = ((proof[o + 2 + pb] ?? 0) << 8) | (proof[o + 3 + pb] ?? 0);
    let count = 0;
    for (let s = 0; s < 16; s++) if (bitmap & (0x8000 >> s)) count++;
    out.push({ kind: 'branch', depth, prefix: proof.subarray(o + 2, o + 2 + pb), bitmap });
    o += 4 + pb + 32 * count;
  }
  return out;
}

export function comparePaths(a: Uint8Array, b: Uint8Array): number {
  for (let i = 0; i < PATH; i++) {
    const d = (a[i] ?? 0) - (b[i] ?? 0);
    if (d !== 0) return d;
  }
  return 0;
}

/** path + 1 as a 256-bit number, or undefined after the last path. */
export function nextPath(path: Uint8Array): Uint8Array | undefined {
  const out = Uint8Array.from(path);
  for (let i = PATH - 1; i >= 0; i--) {
    if (out[i] !== 255) {
      out[i] = (out[i] ?? 0) + 1;
      return out;
    }
    out[i] = 0;
  }
  return undefined;
}

/** The lowest path with the first `depth` digits of `prefix`, then `slot` (if given), then 0s. */
function lowest(prefix: Uint8Array, depth: number, slot?: number): Uint8Array {
  const out = new Uint8Array(PATH);
  out.set(prefix.subarray(0, (depth + 1) >> 1));
  if (depth & 1) out[depth >> 1] = (out[depth >> 1] ?? 0) & 0xf0;
  if (slot !== undefined) {
    const i = depth >> 1;
    out[i] = depth & 1 ? (out[i] ?? 0) | slot : slot << 4;
  }
  return out;
}

function nextSlot(bitmap: number, after: number): number | undefined {
  for (let s = after + 1; s < 16; s++) if (bitmap & (0x8000 >> s)) return s;
  return undefined;
}

/**
 * The smallest leaf path >= `target` in the trie whose proofs `prove` gives, or undefined.
 * Each recursion goes one branch deeper, so at most about twice the depth of proofs.
 */
export function firstAtOrAfter(
  prove: (path: Uint8Array) => Uint8Array,
  target: Uint8Array,
): Uint8Array | undefined {
  const nodes = proofNodes(prove(target));
  const last = nodes[nodes.length - 1];
  if (last === undefined) return undefined;
  if (last.kind === 'leaf') {
    if (comparePaths(last.path, target) >= 0) return Uint8Array.from(last.path);
  } else {
    let diverge = -1;
    for (let i = 0; i < last.depth && diverge < 0; i++) {
      if (digit(last.prefix, i) !== digit(target, i)) diverge = i;
    }
    if (diverge >= 0) {
      if (digit(last.prefix, diverge) > digit(target, diverge)) {
        return firstAtOrAfter(prove, lowest(last.prefix, last.depth));
      }
    } else {
      const s = nextSlot(last.bitmap, digit(target, last.depth));
      if (s !== undefined) return firstAtOrAfter(prove, lowest(last.prefix, last.depth, s));
    }
  }
  for (let i = nodes.length - 2; i >= 0; i--) {
    const b = nodes[i];
    if (b?.kind !== 'branch') continue;
    const s = nextSlot(b.bitmap, digit(target, b.depth));
    if (s !== undefined) return firstAtOrAfter(prove, lowest(b.prefix, b.depth, s));
  }
  return undefined;
}
