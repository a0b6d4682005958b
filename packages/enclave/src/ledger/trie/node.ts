/**
 * Trie nodes: the in-memory form, the canonical encoding that is hashed (docs/ledger-format.md,
 * "Nodes"), and the stored form the node layer encrypts (docs/ledger-format.md, "Stored forms").
 *
 * Paths are 32 bytes: the caller's HMAC of the user key under the table's path key (crypto.ts),
 * never the user key itself. Every node is position-independent: a leaf holds its whole path and
 * a branch its depth and the whole prefix above it, so moving a subtree never rewrites it.
 */
import { hash as nodeHash } from 'node:crypto';
import { InvalidInputError } from '@cloister/core';

export const PATH_BYTES = 32;
export const HASH_BYTES = 32;
export const SALT_BYTES = 32;
/** Domain-separation tags: the first byte of everything hashed (docs/ledger-format.md). */
export const LEAF_TAG = 0x01;
export const BRANCH_TAG = 0x02;
export const KEY_TAG = 0x03;
export const VALUE_TAG = 0x04;
/** 0x01 ‖ path ‖ key commitment ‖ value commitment. */
export const LEAF_BYTES = 1 + PATH_BYTES + 2 * HASH_BYTES;
/** The root of the empty trie: 32 zero bytes, the hash of no node. */
export const EMPTY_ROOT: Uint8Array = new Uint8Array(HASH_BYTES);
/** Largest key or value length the stored form can carry (u32 length fields). */
export const MAX_FIELD_BYTES = 0xffffffff;

/**
 * Digits per branch. Format v1 is RADIX_16 (4-bit digits); the others exist only for the radix
 * measurement in bench/trie.bench.ts (`--radix-study`) and are never stored or proved.
 */
export interface Radix {
  readonly bits: 1 | 2 | 4 | 8;
  /** 2^bits: slots per branch. */
  readonly arity: number;
  /** 256 / bits: digits in a path. */
  readonly digits: number;
  /** Bytes of a branch's child bitmap: max(1, arity / 8). */
  readonly bitmapBytes: number;
}

export function radix(bits: 1 | 2 | 4 | 8): Radix {
  const arity = 1 << bits;
  return { bits, arity, digits: 256 / bits, bitmapBytes: Math.max(1, arity / 8) };
}

export const RADIX_16: Radix = radix(4);

export interface Leaf {
  readonly kind: 'leaf';
  /** SHA-256 of `encoding`. */
  readonly hash: Uint8Array;
  /** The canonical 97 bytes. */
  readonly encoding: Uint8Array;
  readonly path: Uint8Array;
  /** SHA-256(0x03 ‖ salt ‖ key). */
  readonly keyCommitment: Uint8Array;
  /** SHA-256(0x04 ‖ salt ‖ value). */
  readonly valueCommitment: Uint8Array;
  readonly salt: Uint8Array;
  /** The user key (as the caller gave it, before HMAC). */
  readonly key: Uint8Array;
  readonly value: Uint8Array;
  /** Bytes of the stored form (leafStored). */
  readonly storedSize: number;
}

export interface Branch {
  readonly kind: 'branch';
  readonly hash: Uint8Array;
  readonly encoding: Uint8Array;
  /** The digit this branch splits on. Invariant: 0 <= depth < radix.digits, and deeper than its parent. */
  readonly depth: number;
  /** PATH_BYTES bytes: digits [0, depth) shared by every path below; every later bit is zero. */
  readonly prefix: Uint8Array;
  /** `arity` entries: the child hash of each slot, or undefined. Invariant: at least two defined. */
  readonly children: readonly (Uint8Array | undefined)[];
  /** `arity` entries: the leaf stored inside this branch's record, if any. Invariant: defined only
   * where `children` holds that leaf's hash. */
  readonly embedded: readonly (Leaf | undefined)[];
}

export type TrieNode = Leaf | Branch;

/** SHA-256 (FIPS 180-4) through node:crypto, one shot. */
export function sha256(data: Uint8Array): Uint8Array {
  return nodeHash('sha256', data, 'buffer');
}

function tagged(tag: number, salt: Uint8Array, data: Uint8Array): Uint8Array {
  const b = new Uint8Array(1 + SALT_BYTES + data.length);
  b[0] = tag;
  b.set(salt, 1);
  b.set(data, 1 + SALT_BYTES);
  return b;
}

export function keyCommitment(salt: Uint8Array, key: Uint8Array): Uint8Array {
  return sha256(tagged(KEY_TAG, salt, key));
}

export function valueCommitment(salt: Uint8Array, value: Uint8Array): Uint8Array {
  return sha256(tagged(VALUE_TAG, salt, value));
}

/** Digit `i` of a path or prefix (most significant bits first). */
export function digitAt(path: Uint8Array, i: number, r: Radix): number {
  const bit = i * r.bits;
  return ((path[bit >> 3] ?? 0) >> (8 - r.bits - (bit & 7))) & (r.arity - 1);
}

/** Number of leading digits `a` and `b` share, at most `max`. */
export function commonDigits(a: Uint8Array, b: Uint8Array, max: number, r: Radix): number {
  let i = 0;
  while (i < PATH_BYTES && a[i] === b[i]) i++;
  if (i === PATH_BYTES) return max;
  const x = ((a[i] ?? 0) ^ (b[i] ?? 0)) & 0xff;
  const digits = (i * 8 + (Math.clz32(x) - 24)) / r.bits;
  return Math.min(Math.floor(digits), max);
}

/** True when `path` starts with the first `depth` digits of `prefix`. */
export function hasPrefix(path: Uint8Array, prefix: Uint8Array, depth: number, r: Radix): boolean {
  return commonDigits(path, prefix, depth, r) === depth;
}

/** PATH_BYTES bytes holding the first `depth` digits of `source`, zeros after. */
export function truncatePrefix(source: Uint8Array, depth: number, r: Radix): Uint8Array {
  const out = new Uint8Array(PATH_BYTES);
  const bits = depth * r.bits;
  const whole = bits >> 3;
  out.set(source.subarray(0, whole));
  if (bits & 7) out[whole] = (source[whole] ?? 0) & (0xff << (8 - (bits & 7)));
  return out;
}

/** Bytes a branch's encoding spends on its prefix: ceil(depth * bits / 8). */
export function prefixBytes(depth: number, r: Radix): number {
  return (depth * r.bits + 7) >> 3;
}

export function checkPath(path: unknown, what = 'trie path'): asserts path is Uint8Array {
  if (!(path instanceof Uint8Array) || path.length !== PATH_BYTES) {
    throw new InvalidInputError(
      `${what} must be ${PATH_BYTES} bytes (the table's HMAC of the key)`,
    );
  }
}

/** A new leaf (docs/ledger-format.md, "Leaf"). */
export function makeLeaf(
  path: Uint8Array,
  salt: Uint8Array,
  key: Uint8Array,
  value: Uint8Array,
): Leaf {
  const kc = keyCommitment(salt, key);
  const vc = valueCommitment(salt, value);
  const encoding = new Uint8Array(LEAF_BYTES);
  encoding[0] = LEAF_TAG;
  encoding.set(path, 1);
  encoding.set(kc, 1 + PATH_BYTES);
  encoding.set(vc, 1 + PATH_BYTES + HASH_BYTES);
  return {
    kind: 'leaf',
    hash: sha256(encoding),
    encoding,
    path: encoding.subarray(1, 1 + PATH_BYTES),
    keyCommitment: kc,
    valueCommitment: vc,
    salt,
    key,
    value,
    storedSize: LEAF_BYTES + SALT_BYTES + 8 + key.length + value.length,
  };
}

/** A child of a branch under construction: a node, or the hash of an untouched stored child. */
export type ChildRef = TrieNode | Uint8Array;

/**
 * A new branch splitting on digit `depth`, its prefix taken from `prefixSource`. Leaf children
 * whose stored form is at most `inlineLimit` bytes are embedded in the branch's record.
 */
export function makeBranch(
  r: Radix,
  depth: number,
  prefixSource: Uint8Array,
  slots: readonly (ChildRef | undefined)[],
  inlineLimit: number,
): Branch {
  const prefix = truncatePrefix(prefixSource, depth, r);
  const children: (Uint8Array | undefined)[] = new Array(r.arity).fill(undefined);
  const embedded: (Leaf | undefined)[] = new Array(r.arity).fill(undefined);
  let count = 0;
  for (let s = 0; s < r.arity; s++) {
    const c = slots[s];
    if (c === undefined) continue;
    count++;
    if (c instanceof Uint8Array) {
      children[s] = c;
    } else {
      children[s] = c.hash;
      if (c.kind === 'leaf' && c.storedSize <= inlineLimit) embedded[s] = c;
    }
  }
  if (count < 2 || depth >= r.digits) throw new Error('makeBranch: a branch needs two children');
  const pb = prefixBytes(depth, r);
  const head = 2 + pb + r.bitmapBytes;
  const encoding = new Uint8Array(head + count * HASH_BYTES);
  const bitmap = new Uint8Array(r.bitmapBytes);
  encoding[0] = BRANCH_TAG;
  encoding[1] = depth;
  encoding.set(prefix.subarray(0, pb), 2);
  let o = head;
  for (let s = 0; s < r.arity; s++) {
    const h = children[s];
    if (h === undefined) continue;
    bitmap[s >> 3] = (bitmap[s >> 3] ?? 0) | (0x80 >> (s & 7));
    encoding.set(h, o);
    o += HASH_BYTES;
  }
  encoding.set(bitmap, 2 + pb);
  return { kind: 'branch', hash: sha256(encoding), encoding, depth, prefix, children, embedded };
}

/** Bytes of a branch's stored form (for cache accounting and the inline policy). */
export function branchStoredSize(b: Branch): number {
  let n = b.encoding.length + 2;
  for (const l of b.embedded) if (l) n += l.storedSize;
  return n;
}
