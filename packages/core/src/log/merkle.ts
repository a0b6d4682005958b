/**
 * The Merkle tree of the logchain: RFC 9162 §2.1 (Certificate Transparency v2), SHA-256.
 *
 *   leafHash  = SHA-256(0x00 ‖ leafInput)                 (§2.1.1, the leaf's domain separator)
 *   nodeHash  = SHA-256(0x01 ‖ left ‖ right)              (§2.1.1, interior nodes)
 *   MTH({})   = SHA-256("")                               (the empty tree)
 *   MTH(D[n]) = nodeHash(MTH(D[0:k]), MTH(D[k:n])), k the largest power of two < n.
 *
 * Leaf number i holds the log entry of index i + 1; tree size n covers entries 1..n.
 * Sizes and indexes are JavaScript safe integers; this module does its arithmetic with division,
 * never with 32-bit bit operators, so it is right beyond 2^31 leaves.
 *
 * Hashing: @noble/hashes by default (isomorphic). `leafHash` and `MerkleLog` also take a
 * one-shot SHA-256 function (`Sha256`), so a Node caller (the enclave) can pass node:crypto's,
 * which is 10-40x faster on short inputs; the results are the same bytes.
 */
import { sha256 as sha256Once } from '@noble/hashes/sha2.js';
import { bytesEqual, toHex } from '../bytes.js';
import { InvalidInputError } from '../errors.js';
import { sha256 } from '../hash.js';
import { LogProofError } from './errors.js';

const HASH = 32;
const NODE_PREFIX = Uint8Array.of(0x01);

/**
 * A one-shot SHA-256 of one byte string (FIPS 180-4). It must return the 32-byte digest as a
 * Uint8Array that the caller may keep (a Node Buffer is fine), and keep nothing of `data`.
 */
export interface Sha256 {
  (data: Uint8Array): Uint8Array;
  /** Optional: writes the digest of `data` at out[at .. at + 32), saving the caller a copy. */
  into?: (data: Uint8Array, out: Uint8Array, at: number) => void;
}

/** Core's default Sha256: @noble/hashes. */
export const defaultSha256: Sha256 = (data) => sha256Once(data);
/** A proof longer than this cannot belong to a tree of at most 2^53 leaves. */
const MAX_PROOF = 64;

/** MTH of the empty tree: SHA-256 of no bytes (RFC 9162 §2.1.1). */
export const EMPTY_TREE_ROOT: Uint8Array = sha256();

/** RFC 9162 §2.1.1: SHA-256(0x00 ‖ leafInput); `hash` defaults to core's SHA-256. */
export function leafHash(leafInput: Uint8Array, hash: Sha256 = defaultSha256): Uint8Array {
  if (!(leafInput instanceof Uint8Array)) throw new InvalidInputError('leafInput must be bytes');
  const b = new Uint8Array(1 + leafInput.length);
  b.set(leafInput, 1);
  return hash(b);
}

/** RFC 9162 §2.1.1: SHA-256(0x01 ‖ left ‖ right); both are 32-byte hashes. */
export function nodeHash(l: Uint8Array, r: Uint8Array): Uint8Array {
  checkHash(l, 'left hash');
  checkHash(r, 'right hash');
  return sha256(NODE_PREFIX, l, r);
}

function checkHash(h: unknown, what: string): asserts h is Uint8Array {
  if (!(h instanceof Uint8Array) || h.length !== HASH) {
    throw new InvalidInputError(`${what} must be a 32-byte hash`);
  }
}

function checkSize(n: unknown, what: string): asserts n is number {
  if (typeof n !== 'number' || !Number.isSafeInteger(n) || n < 0) {
    throw new InvalidInputError(`${what} must be a non-negative safe integer`);
  }
}

const half = (n: number): number => Math.floor(n / 2);
const odd = (n: number): boolean => n % 2 === 1;

/** The largest power of two strictly less than n (n >= 2). */
function splitPoint(n: number): number {
  let k = 1;
  while (k * 2 < n) k *= 2;
  return k;
}

/** One level of the tree: `length` hashes of 32 bytes, packed, capacity doubling. */
class Level {
  buf = new Uint8Array(HASH * 16);
  length = 0;

  push(h: Uint8Array): void {
    const at = this.grow(); // may replace buf
    this.buf.set(h, at);
  }

  /** Adds a slot for one more hash; its offset in `buf`. */
  grow(): number {
    if ((this.length + 1) * HASH > this.buf.length) {
      const next = new Uint8Array(this.buf.length * 2);
      next.set(this.buf.subarray(0, this.length * HASH));
      this.buf = next;
    }
    return this.length++ * HASH;
  }

  /** A view; callers that hand it out copy it. */
  at(i: number): Uint8Array {
    return this.buf.subarray(i * HASH, (i + 1) * HASH);
  }
}

/**
 * An append-only Merkle tree in memory that keeps every level: level k holds the hash of each
 * complete subtree of 2^k leaves (about 2n hashes in all). append is O(log n) hashes; root(size)
 * for any past size, and proofs, are O(log n) lookups plus at most O(log n) hashes.
 *
 * Invariant: levels[k].length === floor(size / 2^k) for every k, and levels[k][i] is the MTH of
 * leaves [i·2^k, (i+1)·2^k).
 */
export class MerkleLog {
  readonly #levels: Level[] = [new Level()];
  /** 0x01 ‖ left ‖ right, reused by append. */
  readonly #scratch: Uint8Array = Uint8Array.of(0x01, ...new Uint8Array(64));
  readonly #hash: Sha256;

  /** `hash`: the SHA-256 to use (default core's); every result is the same bytes. */
  constructor(options: { readonly hash?: Sha256 } = {}) {
    this.#hash = options.hash ?? defaultSha256;
  }

  /** Number of leaves. */
  get size(): number {
    return this.#levels[0]?.length ?? 0;
  }

  /** Appends one leaf hash (32 bytes, copied): leafHash(leafInput) of the next entry. */
  append(leafHash: Uint8Array): void {
    checkHash(leafHash, 'leaf hash');
    const scratch = this.#scratch;
    const hash = this.#hash;
    let l = this.#levels[0] as Level;
    l.push(leafHash);
    let level = 0;
    while (l.length % 2 === 0) {
      // nodeHash of the last two: 0x01 ‖ left ‖ right, in one buffer, hashed in one call.
      scratch.set(l.buf.subarray((l.length - 2) * HASH, l.length * HASH), 1);
      level++;
      let up = this.#levels[level];
      if (up === undefined) {
        up = new Level();
        this.#levels.push(up);
      }
      if (hash.into) {
        const at = up.grow();
        hash.into(scratch, up.buf, at);
      } else up.push(hash(scratch));
      l = up;
    }
  }

  /**
   * Drops the leaves after the first `size` (for a writer that staged appends a failed batch
   * did not make durable). Never needed by a reader.
   */
  truncate(size: number): void {
    checkSize(size, 'size');
    if (size > this.size)
      throw new InvalidInputError(`cannot truncate ${this.size} leaves to ${size}`);
    let n = size;
    for (const l of this.#levels) {
      l.length = n;
      n = half(n);
    }
  }

  /** RFC 9162 §2.1.1 MTH of the first `size` leaves (default: all). A fresh copy. */
  root(size: number = this.size): Uint8Array {
    this.#checkSize(size);
    if (size === 0) return EMPTY_TREE_ROOT.slice();
    return this.#mth(0, size).slice();
  }

  /** The leaf hash of leaf `leafIndex` (a copy). */
  leaf(leafIndex: number): Uint8Array {
    this.#checkLeaf(leafIndex, this.size);
    return (this.#levels[0] as Level).at(leafIndex).slice();
  }

  /**
   * RFC 9162 §2.1.3.1 PATH(m, D[n]): the inclusion proof of leaf `leafIndex` in the tree of the
   * first `size` leaves, bottom-up, fresh copies. 0 <= leafIndex < size <= this.size.
   */
  inclusionProof(leafIndex: number, size: number): Uint8Array[] {
    this.#checkSize(size);
    this.#checkLeaf(leafIndex, size);
    const out: Uint8Array[] = [];
    this.#path(leafIndex, 0, size, out);
    return out.reverse().map((h) => h.slice());
  }

  /**
   * RFC 9162 §2.1.4.1 PROOF(m, D[n]): the consistency proof between the trees of the first
   * `oldSize` and `newSize` leaves, 0 <= oldSize <= newSize <= this.size. Empty when
   * oldSize is 0 or equals newSize.
   */
  consistencyProof(oldSize: number, newSize: number): Uint8Array[] {
    this.#checkSize(newSize);
    checkSize(oldSize, 'old size');
    if (oldSize > newSize) {
      throw new InvalidInputError(`old size ${oldSize} is larger than new size ${newSize}`);
    }
    const out: Uint8Array[] = [];
    if (oldSize === 0 || oldSize === newSize) return out;
    this.#subproof(oldSize, 0, newSize, true, out);
    return out.reverse().map((h) => h.slice());
  }

  #checkSize(size: number): void {
    checkSize(size, 'tree size');
    if (size > this.size) {
      throw new InvalidInputError(`tree size ${size} is larger than the log (${this.size} leaves)`);
    }
  }

  #checkLeaf(leafIndex: number, size: number): void {
    checkSize(leafIndex, 'leaf index');
    if (leafIndex >= size) {
      throw new InvalidInputError(`leaf index ${leafIndex} is not in a tree of size ${size}`);
    }
  }

  /** MTH(D[lo:hi]) for 0 < hi - lo, lo aligned on the largest power of two <= hi - lo. */
  #mth(lo: number, hi: number): Uint8Array {
    const n = hi - lo;
    // A complete subtree is stored: find its level (n a power of two, lo a multiple of n).
    let level = 0;
    let width = 1;
    while (width < n) {
      width *= 2;
      level++;
    }
    if (width === n && lo % n === 0) return (this.#levels[level] as Level).at(lo / n);
    const k = splitPoint(n);
    const b = new Uint8Array(1 + 2 * HASH);
    b[0] = 0x01;
    b.set(this.#mth(lo, lo + k), 1);
    b.set(this.#mth(lo + k, hi), 1 + HASH);
    return this.#hash(b);
  }

  /** Pushes PATH(m, D[lo:hi]) top-down (the caller reverses). */
  #path(m: number, lo: number, hi: number, out: Uint8Array[]): void {
    const n = hi - lo;
    if (n === 1) return;
    const k = splitPoint(n);
    if (m < k) {
      out.push(this.#mth(lo + k, hi));
      this.#path(m, lo, lo + k, out);
    } else {
      out.push(this.#mth(lo, lo + k));
      this.#path(m - k, lo + k, hi, out);
    }
  }

  /** Pushes SUBPROOF(m, D[lo:hi], b) top-down (the caller reverses). */
  #subproof(m: number, lo: number, hi: number, b: boolean, out: Uint8Array[]): void {
    const n = hi - lo;
    if (m === n) {
      if (!b) out.push(this.#mth(lo, hi));
      return;
    }
    const k = splitPoint(n);
    if (m <= k) {
      out.push(this.#mth(lo + k, hi));
      this.#subproof(m, lo, lo + k, b, out);
    } else {
      out.push(this.#mth(lo, lo + k));
      this.#subproof(m - k, lo + k, hi, false, out);
    }
  }
}

function checkPath(path: unknown, what: string): asserts path is readonly Uint8Array[] {
  if (!Array.isArray(path)) throw new InvalidInputError(`${what} must be an array of hashes`);
  if (path.length > MAX_PROOF)
    throw new LogProofError(`${what} has ${path.length} hashes (at most ${MAX_PROOF})`);
  for (const h of path) {
    if (!(h instanceof Uint8Array) || h.length !== HASH) {
      throw new LogProofError(`${what} holds something other than a 32-byte hash`);
    }
  }
}

/**
 * RFC 9162 §2.1.3.2: the root that inclusion proof `path` gives for leaf `leafIndex` (0-based)
 * with hash `leafHash` in a tree of `size` leaves. The caller compares it with a root it
 * trusts (a signed one). Throws LogProofError when the path cannot be a proof for that leaf
 * and size (wrong length, index outside the tree).
 */
export function rootFromInclusion(
  leafIndex: number,
  size: number,
  leafHash: Uint8Array,
  path: readonly Uint8Array[],
): Uint8Array {
  checkSize(leafIndex, 'leaf index');
  checkSize(size, 'tree size');
  checkHash(leafHash, 'leaf hash');
  checkPath(path, 'inclusion proof');
  if (leafIndex >= size) {
    throw new LogProofError(`leaf index ${leafIndex} is not in a tree of size ${size}`);
  }
  let fn = leafIndex;
  let sn = size - 1;
  let r = leafHash;
  for (const p of path) {
    if (sn === 0) throw new LogProofError('inclusion proof is longer than the tree is deep');
    if (odd(fn) || fn === sn) {
      r = sha256(NODE_PREFIX, p, r);
      if (!odd(fn)) {
        while (!odd(fn) && fn !== 0) {
          fn = half(fn);
          sn = half(sn);
        }
      }
    } else {
      r = sha256(NODE_PREFIX, r, p);
    }
    fn = half(fn);
    sn = half(sn);
  }
  if (sn !== 0) throw new LogProofError('inclusion proof is shorter than the tree is deep');
  return r;
}

/**
 * RFC 9162 §2.1.4.2: checks that the tree of `newSize` leaves with root `newRoot` extends the
 * tree of `oldSize` leaves with root `oldRoot`. Returns when it does; throws LogProofError
 * otherwise (including a non-empty proof where none is due). oldSize 0 is consistent with
 * everything (empty proof).
 */
export function verifyConsistency(
  oldSize: number,
  newSize: number,
  oldRoot: Uint8Array,
  newRoot: Uint8Array,
  proof: readonly Uint8Array[],
): void {
  checkSize(oldSize, 'old size');
  checkSize(newSize, 'new size');
  checkHash(oldRoot, 'old root');
  checkHash(newRoot, 'new root');
  checkPath(proof, 'consistency proof');
  if (oldSize > newSize) {
    throw new LogProofError(`old size ${oldSize} is larger than new size ${newSize}`);
  }
  if (oldSize === newSize) {
    if (proof.length !== 0)
      throw new LogProofError('a consistency proof between equal sizes must be empty');
    if (!bytesEqual(oldRoot, newRoot)) {
      throw new LogProofError(`two different roots for the same size ${oldSize}`);
    }
    return;
  }
  if (oldSize === 0) {
    if (proof.length !== 0)
      throw new LogProofError('a consistency proof from size 0 must be empty');
    return;
  }
  if (proof.length === 0) throw new LogProofError('the consistency proof is empty');
  // 1. If oldSize is an exact power of two, the old root is the first node of the path.
  const path = isPowerOfTwo(oldSize) ? [oldRoot, ...proof] : [...proof];
  // 2-3.
  let fn = oldSize - 1;
  let sn = newSize - 1;
  while (odd(fn)) {
    fn = half(fn);
    sn = half(sn);
  }
  // 4.
  let fr = path[0] as Uint8Array;
  let sr = fr;
  // 5.
  for (let i = 1; i < path.length; i++) {
    const c = path[i] as Uint8Array;
    if (sn === 0) throw new LogProofError('consistency proof is longer than the tree is deep');
    if (odd(fn) || fn === sn) {
      fr = sha256(NODE_PREFIX, c, fr);
      sr = sha256(NODE_PREFIX, c, sr);
      while (!odd(fn) && fn !== 0) {
        fn = half(fn);
        sn = half(sn);
      }
    } else {
      sr = sha256(NODE_PREFIX, sr, c);
    }
    fn = half(fn);
    sn = half(sn);
  }
  // 6.
  if (sn !== 0) throw new LogProofError('consistency proof is shorter than the tree is deep');
  if (!bytesEqual(fr, oldRoot)) {
    throw new LogProofError(
      `consistency proof does not lead to the old root ${toHex(oldRoot)} (size ${oldSize})`,
    );
  }
  if (!bytesEqual(sr, newRoot)) {
    throw new LogProofError(
      `consistency proof does not lead to the new root ${toHex(newRoot)} (size ${newSize})`,
    );
  }
}

function isPowerOfTwo(n: number): boolean {
  let k = 1;
  while (k < n) k *= 2;
  return k === n;
}
