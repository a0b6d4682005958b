/**
 * Trie nodes: the in-memory form, the canonical encoding that is hashed (docs/ledger-format.md,
 * "Nodes"), and the leaf's stored form (docs/ledger-format.md, "Stored forms").
 *
 * Paths are 32 bytes: the caller's HMAC of the user key under the table's path key (crypto.ts),
 * never the user key itself. Every node is position-independent: a leaf holds its whole path and
 * a branch its depth and the whole prefix above it, so moving a subtree never rewrites it.
 *
 * Nodes are views over one buffer each (a leaf over its stored form, a branch over its encoding):
 * a commit creates thousands of them, so the representation avoids small allocations.
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
/** Offset of the key length in a leaf's stored form: after the encoding and the salt. */
const KEY_LEN_AT = LEAF_BYTES + SALT_BYTES;
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

/** SHA-256 (FIPS 180-4) through node:crypto, one shot. */
export function sha256(data: Uint8Array): Uint8Array {
  return nodeHash('sha256', data, 'buffer');
}

function readU32(b: Uint8Array, o: number): number {
  return (
    (((b[o] ?? 0) << 24) | ((b[o + 1] ?? 0) << 16) | ((b[o + 2] ?? 0) << 8) | (b[o + 3] ?? 0)) >>> 0
  );
}

function writeU32(b: Uint8Array, o: number, n: number): void {
  b[o] = n >>> 24;
  b[o + 1] = (n >>> 16) & 255;
  b[o + 2] = (n >>> 8) & 255;
  b[o + 3] = n & 255;
}

/**
 * A leaf over its stored form: leaf(97) ‖ salt(32) ‖ u32be(len key) ‖ key ‖ u32be(len value) ‖
 * value. Its hash covers the first 97 bytes only.
 */
export class Leaf {
  readonly kind = 'leaf';
  /** SHA-256 of `encoding`. */
  readonly hash: Uint8Array;
  /** The whole stored form. */
  readonly stored: Uint8Array;
  /**
   * Whether key, salt and value were checked against the commitments. Invariant: true for every
   * leaf built here; a decoded leaf is checked (trie.ts) before its key or value is used.
   */
  checked: boolean;
  /**
   * Whether this leaf was read from a record of its own (so that record exists: records are never
   * deleted). A new branch may then point at it without embedding it.
   */
  hasRecord = false;
  /**
   * For a leaf read out of its parent's record on demand (embeddedChild): that branch and the
   * slot, where the parent remembers that the leaf's commitments were checked.
   */
  readonly owner: Branch | undefined;
  readonly ownerSlot: number;

  /** Bytes of its stored form (what embedding it in a parent's record costs). */
  get storedBytes(): number {
    return this.stored.length;
  }

  constructor(
    stored: Uint8Array,
    hash: Uint8Array,
    checked: boolean,
    owner?: Branch,
    ownerSlot = -1,
  ) {
    this.stored = stored;
    this.hash = hash;
    this.checked = checked;
    this.owner = owner;
    this.ownerSlot = ownerSlot;
  }

  /** Records that key, salt and value match the commitments (checkLeaf). */
  markChecked(): void {
    this.checked = true;
    if (this.owner !== undefined) this.owner.checkedLeaves |= 1 << this.ownerSlot;
  }

  // Views made on demand, not kept: a cached leaf then costs two objects fewer (node-cache.ts).
  /** The canonical 97 bytes: 0x01 ‖ path ‖ key commitment ‖ value commitment. */
  get encoding(): Uint8Array {
    return this.stored.subarray(0, LEAF_BYTES);
  }
  get path(): Uint8Array {
    return this.stored.subarray(1, 1 + PATH_BYTES);
  }

  get keyCommitment(): Uint8Array {
    return this.stored.subarray(1 + PATH_BYTES, 1 + PATH_BYTES + HASH_BYTES);
  }
  get valueCommitment(): Uint8Array {
    return this.stored.subarray(1 + PATH_BYTES + HASH_BYTES, LEAF_BYTES);
  }
  get salt(): Uint8Array {
    return this.stored.subarray(LEAF_BYTES, KEY_LEN_AT);
  }
  /** The user key (as the caller gave it, before HMAC). */
  get key(): Uint8Array {
    return this.stored.subarray(KEY_LEN_AT + 4, KEY_LEN_AT + 4 + readU32(this.stored, KEY_LEN_AT));
  }
  get value(): Uint8Array {
    const at = KEY_LEN_AT + 4 + readU32(this.stored, KEY_LEN_AT);
    return this.stored.subarray(at + 4, at + 4 + readU32(this.stored, at));
  }
  /** True when salt, key and value match the commitments in the encoding. */
  commitmentsHold(): boolean {
    const salt = this.salt;
    return (
      sameBytes(keyCommitment(salt, this.key), this.keyCommitment) &&
      sameBytes(valueCommitment(salt, this.value), this.valueCommitment)
    );
  }
}

/**
 * A branch over its canonical encoding: 0x02 ‖ depth ‖ prefix (ceil(depth·bits/8) bytes) ‖
 * bitmap ‖ child hashes in ascending slot order.
 *
 * Two forms. A branch an update builds holds its embedded children as nodes (`embedded`). A
 * branch decoded from a record (or re-read from the record an update just built: the compact
 * form the node cache keeps) holds the record's bytes (`rec`): its embedded leaves stay there as
 * bytes and are read out on demand (embeddedChild), so a cached bottom branch is one buffer and
 * one object, not one object per leaf; only embedded branches (the packed top levels) are nodes.
 */
export class Branch {
  readonly kind = 'branch';
  readonly hash: Uint8Array;
  readonly encoding: Uint8Array;
  /** The digit this branch splits on. Invariant: 0 <= depth < digits, deeper than its parent. */
  readonly depth: number;
  /** Offset of the bitmap in `encoding`. Invariant: at least two bits set. */
  readonly bitmapAt: number;
  /** The children stored inside this branch's record as nodes, per slot (built: every embedded
   * child; decoded: embedded branches only); undefined when there is none.
   * Invariant: embedded[s] is defined only where slot s holds that node's hash. */
  readonly embedded: readonly (TrieNode | undefined)[] | undefined;
  /** Decoded form: the buffer holding this branch's stored form at [recAt, recAt + storedBytes). */
  readonly rec: Uint8Array | undefined;
  readonly recAt: number;
  /** Decoded form: bit s set when slot s holds a leaf embedded in `rec` (verified on decode). */
  readonly leafSlots: number;
  /** Decoded form: bit s set once the embedded leaf of slot s had its commitments checked. */
  checkedLeaves = 0;
  /** Bytes of its stored form: encoding ‖ u16be(m) ‖ the embedded children's stored forms. */
  readonly storedBytes: number;
  /** Nodes in its stored form: itself and everything it embeds, recursively. */
  readonly storedNodes: number;
  /**
   * Whether this branch was read from a record of its own (not embedded in its parent's): that
   * record exists, so a new parent may point at it without embedding it.
   */
  hasRecord = false;

  constructor(
    encoding: Uint8Array,
    hash: Uint8Array,
    r: Radix,
    embedded: readonly (TrieNode | undefined)[] | undefined,
    decoded?: { rec: Uint8Array; at: number; end: number; leafSlots: number; nodes: number },
  ) {
    this.encoding = encoding;
    this.hash = hash;
    this.depth = encoding[1] ?? 0;
    this.bitmapAt = 2 + prefixBytes(this.depth, r);
    this.embedded = embedded;
    if (decoded !== undefined) {
      this.rec = decoded.rec;
      this.recAt = decoded.at;
      this.leafSlots = decoded.leafSlots;
      this.storedBytes = decoded.end - decoded.at;
      this.storedNodes = decoded.nodes;
      return;
    }
    this.rec = undefined;
    this.recAt = 0;
    this.leafSlots = 0;
    let size = encoding.length + 2;
    let nodes = 1;
    if (embedded !== undefined) {
      for (const c of embedded) {
        if (c === undefined) continue;
        size += c.storedBytes;
        nodes += c.kind === 'leaf' ? 1 : c.storedNodes;
      }
    }
    this.storedBytes = size;
    this.storedNodes = nodes;
  }

  /** Digits [0, depth) shared by every path below (a view of the encoding; later bits zero). */
  get prefix(): Uint8Array {
    return this.encoding.subarray(2, this.bitmapAt);
  }
}

/** Length of the stored leaf at `o` of `b` (already validated by the decoder). */
export function storedLeafLength(b: Uint8Array, o: number): number {
  const keyLen = readU32(b, o + KEY_LEN_AT);
  return KEY_LEN_AT + 8 + keyLen + readU32(b, o + KEY_LEN_AT + 4 + keyLen);
}

/** The leaf stored at `at` (`len` bytes) of `b`'s record `rec`, in `slot`, as a view. */
function leafView(
  b: Branch,
  rec: Uint8Array,
  at: number,
  len: number,
  slot: number,
  r: Radix,
): Leaf {
  const hash = childHash(b, slot, r) as Uint8Array;
  const checked = (b.checkedLeaves & (1 << slot)) !== 0;
  return new Leaf(rec.subarray(at, at + len), hash, checked, b, slot);
}

/**
 * The child embedded in `b`'s record for `slot`, or undefined: a node of `embedded`, or a leaf
 * read out of `rec` (a new view each call; its hash is the child hash `b` holds for the slot,
 * which the decoder checked the leaf against).
 */
export function embeddedChild(b: Branch, slot: number, r: Radix): TrieNode | undefined {
  const e = b.embedded?.[slot];
  const rec = b.rec;
  if (e !== undefined || rec === undefined || !(b.leafSlots & (1 << slot))) return e;
  let at = firstEmbedded(b);
  const n = embeddedCount(b);
  for (let i = 0; i < n; i++) {
    const len = embeddedLength(b, rec, at, r);
    if (len < 0) return undefined;
    if (rec[at] === LEAF_TAG && digitAtOff(rec, at + 1, b.depth, r) === slot) {
      return leafView(b, rec, at, len, slot, r);
    }
    at += len;
  }
  return undefined;
}

/**
 * The leaves embedded as bytes in the record of the decoded branch `b` whose slots are KEEP in
 * `slots`, as leaf views (what embeddedChild gives for each), by slot; one pass over the record.
 */
function keptLeaves(b: Branch, slots: readonly Slot[], r: Radix): (Leaf | undefined)[] {
  const out: (Leaf | undefined)[] = new Array(r.arity);
  const rec = b.rec as Uint8Array;
  let at = firstEmbedded(b);
  const n = embeddedCount(b);
  for (let i = 0; i < n; i++) {
    const len = embeddedLength(b, rec, at, r);
    if (len < 0) break;
    if (rec[at] === LEAF_TAG) {
      const s = digitAtOff(rec, at + 1, b.depth, r);
      if (slots[s] === KEEP) out[s] = leafView(b, rec, at, len, s, r);
    }
    at += len;
  }
  return out;
}

// The walk over a decoded branch's record shared by embeddedChild and keptLeaves (section 3 of
// docs/ledger-format.md: branchStored = branch ‖ u16be(m) ‖ m stored children).

/** Offset in `b.rec` of the first child `b`'s record embeds. */
function firstEmbedded(b: Branch): number {
  return b.recAt + b.encoding.length + 2;
}

/** How many children `b`'s record embeds. */
function embeddedCount(b: Branch): number {
  const rec = b.rec as Uint8Array;
  const at = b.recAt + b.encoding.length;
  return ((rec[at] ?? 0) << 8) | (rec[at + 1] ?? 0);
}

/**
 * Bytes of the embedded child at `at` of `rec`: a leaf's stored length, or an embedded branch's
 * (the decoder put every one in `b.embedded`); -1 for a branch it did not decode.
 */
function embeddedLength(b: Branch, rec: Uint8Array, at: number, r: Radix): number {
  if (rec[at] === LEAF_TAG) return storedLeafLength(rec, at);
  const inner = b.embedded?.[digitAtOff(rec, at + 2, b.depth, r)];
  return inner === undefined ? -1 : inner.storedBytes;
}

/** Digit `i` of the path or prefix starting at `o` of `b`. */
export function digitAtOff(b: Uint8Array, o: number, i: number, r: Radix): number {
  const bit = i * r.bits;
  return ((b[o + (bit >> 3)] ?? 0) >> (8 - r.bits - (bit & 7))) & (r.arity - 1);
}

/** True when the path (or prefix) at `o` of `p` starts with the `depth` digits of `b`'s prefix. */
export function inPrefix(p: Uint8Array, o: number, b: Branch, r: Radix): boolean {
  const bits = b.depth * r.bits;
  const full = bits >> 3;
  const e = b.encoding;
  for (let i = 0; i < full; i++) if (p[o + i] !== e[2 + i]) return false;
  const rest = bits & 7;
  if (rest === 0) return true;
  return (((p[o + full] ?? 0) ^ (e[2 + full] ?? 0)) & (0xff << (8 - rest)) & 0xff) === 0;
}

export type TrieNode = Leaf | Branch;

/** Set bits per byte value. */
const POPCOUNT = Uint8Array.from({ length: 256 }, (_, i) => {
  let n = 0;
  for (let x = i; x; x >>= 1) n += x & 1;
  return n;
});

/** The hash of the child in `slot`, or undefined when the slot is empty. */
export function childHash(b: Branch, slot: number, r: Radix): Uint8Array | undefined {
  const o = childOffset(b, slot, r);
  return o < 0 ? undefined : b.encoding.subarray(o, o + HASH_BYTES);
}

/** Offset in `b.encoding` of the hash of the child in `slot`, or -1 when the slot is empty. */
export function childOffset(b: Branch, slot: number, r: Radix): number {
  const e = b.encoding;
  const at = b.bitmapAt + (slot >> 3);
  const byte = e[at] ?? 0;
  if (!(byte & (0x80 >> (slot & 7)))) return -1;
  let rank = POPCOUNT[byte & ~(0xff >> (slot & 7)) & 0xff] ?? 0;
  for (let i = b.bitmapAt; i < at; i++) rank += POPCOUNT[e[i] ?? 0] ?? 0;
  return b.bitmapAt + r.bitmapBytes + rank * HASH_BYTES;
}

/** True when `slot` of `b` holds a child. */
export function hasChild(b: Branch, slot: number, r: Radix): boolean {
  return (
    ((b.encoding[b.bitmapAt + (slot >> 3)] ?? 0) & (0x80 >> (slot & 7))) !== 0 && slot < r.arity
  );
}

/** Number of children of a branch. */
export function childCount(b: Branch, r: Radix): number {
  return (b.encoding.length - b.bitmapAt - r.bitmapBytes) / HASH_BYTES;
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** Scratch for the input of a commitment (reused: hashed at once, never kept). */
const scratch = new Uint8Array(1 + SALT_BYTES + 1024);

function tagged(tag: number, salt: Uint8Array, data: Uint8Array): Uint8Array {
  const size = 1 + SALT_BYTES + data.length;
  const b = size <= scratch.length ? scratch.subarray(0, size) : new Uint8Array(size);
  b[0] = tag;
  b.set(salt, 1);
  b.set(data, 1 + SALT_BYTES);
  return b;
}

/** SHA-256(0x03 ‖ salt ‖ key). */
export function keyCommitment(salt: Uint8Array, key: Uint8Array): Uint8Array {
  return sha256(tagged(KEY_TAG, salt, key));
}

/** SHA-256(0x04 ‖ salt ‖ value). */
export function valueCommitment(salt: Uint8Array, value: Uint8Array): Uint8Array {
  return sha256(tagged(VALUE_TAG, salt, value));
}

/** Digit `i` of a path or prefix (most significant bits first). */
export function digitAt(path: Uint8Array, i: number, r: Radix): number {
  const bit = i * r.bits;
  return ((path[bit >> 3] ?? 0) >> (8 - r.bits - (bit & 7))) & (r.arity - 1);
}

/** Number of leading digits `a` and `b` share, at most `max` (bytes past an end count as 0). */
export function commonDigits(a: Uint8Array, b: Uint8Array, max: number, r: Radix): number {
  let i = 0;
  while (i < PATH_BYTES && (a[i] ?? 0) === (b[i] ?? 0)) i++;
  if (i === PATH_BYTES) return max;
  const x = ((a[i] ?? 0) ^ (b[i] ?? 0)) & 0xff;
  const digits = Math.floor((i * 8 + (Math.clz32(x) - 24)) / r.bits);
  return Math.min(digits, max);
}

/** True when `path` starts with the first `depth` digits of `prefix`. */
export function hasPrefix(path: Uint8Array, prefix: Uint8Array, depth: number, r: Radix): boolean {
  return commonDigits(path, prefix, depth, r) === depth;
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

/** A new leaf (docs/ledger-format.md, "Leaf"), built in one buffer: its stored form. */
export function makeLeaf(
  path: Uint8Array,
  salt: Uint8Array,
  key: Uint8Array,
  value: Uint8Array,
): Leaf {
  const stored = new Uint8Array(KEY_LEN_AT + 8 + key.length + value.length);
  stored[0] = LEAF_TAG;
  stored.set(path, 1);
  stored.set(keyCommitment(salt, key), 1 + PATH_BYTES);
  stored.set(valueCommitment(salt, value), 1 + PATH_BYTES + HASH_BYTES);
  stored.set(salt, LEAF_BYTES);
  writeU32(stored, KEY_LEN_AT, key.length);
  stored.set(key, KEY_LEN_AT + 4);
  writeU32(stored, KEY_LEN_AT + 4 + key.length, value.length);
  stored.set(value, KEY_LEN_AT + 8 + key.length);
  return new Leaf(stored, sha256(stored.subarray(0, LEAF_BYTES)), true);
}

/**
 * Parses one leaf stored form at `o` of `b` without checking commitments. Returns the leaf and
 * its end, or a reason string when the bytes are not a stored leaf.
 */
export function parseLeafStored(b: Uint8Array, o: number): [Leaf, number] | string {
  const end = storedLeafEnd(b, o);
  if (typeof end === 'string') return end;
  const stored = b.subarray(o, end);
  return [new Leaf(stored, sha256(stored.subarray(0, LEAF_BYTES)), false), end];
}

/** The end of the stored leaf at `o` of `b`, or a reason string when the bytes are not one. */
export function storedLeafEnd(b: Uint8Array, o: number): number | string {
  if (b.length - o < KEY_LEN_AT + 8 || b[o] !== LEAF_TAG)
    return 'a stored leaf is cut short or not a leaf';
  const keyLen = readU32(b, o + KEY_LEN_AT);
  if (b.length - o - KEY_LEN_AT - 8 < keyLen) return 'a stored leaf key runs past the record';
  const valueAt = o + KEY_LEN_AT + 8 + keyLen;
  const valueLen = readU32(b, valueAt - 4);
  if (b.length - valueAt < valueLen) return 'a stored leaf value runs past the record';
  return valueAt + valueLen;
}

/** A child of a branch under construction: a node, or the hash of an untouched stored child. */
export type ChildRef = TrieNode | Uint8Array;

/** In makeBranch's slots: keep the base branch's child (and its embedding) as it is. */
export const KEEP: unique symbol = Symbol('keep');
export type Slot = ChildRef | typeof KEEP | undefined;

/**
 * A new branch splitting on digit `depth`, its prefix the first `depth` digits of
 * `prefixSource`. A child given as a node is embedded in the branch's record when its stored
 * form is at most `inlineLimit` bytes (a leaf) or `branchInlineLimit` bytes (a branch, with what
 * it embeds); a KEEP slot copies `base`'s child and embedding.
 * Precondition: at least two slots set; depth < r.digits; KEEP only where `base` has a child.
 */
export function makeBranch(
  r: Radix,
  depth: number,
  prefixSource: Uint8Array,
  slots: readonly Slot[],
  inlineLimit: number,
  base?: Branch,
  branchInlineLimit = 0,
): Branch {
  let count = 0;
  for (const c of slots) if (c !== undefined) count++;
  if (count < 2 || depth >= r.digits) throw new Error('makeBranch: a branch needs two children');
  const pb = prefixBytes(depth, r);
  const bitmapAt = 2 + pb;
  const encoding = new Uint8Array(bitmapAt + r.bitmapBytes + count * HASH_BYTES);
  encoding[0] = BRANCH_TAG;
  encoding[1] = depth;
  encoding.set(prefixSource.subarray(0, pb), 2);
  const spare = pb * 8 - depth * r.bits;
  if (spare > 0) encoding[1 + pb] = (encoding[1 + pb] ?? 0) & (0xff << spare);
  let embedded: (TrieNode | undefined)[] | undefined;
  // The leaves a decoded base embeds as bytes, for its KEEP slots: read out in one pass over its
  // record (embeddedChild per slot would rescan the record from its start each time).
  const kept =
    base?.rec !== undefined && base.leafSlots !== 0 ? keptLeaves(base, slots, r) : undefined;
  let o = bitmapAt + r.bitmapBytes;
  for (let s = 0; s < r.arity; s++) {
    const c = slots[s];
    if (c === undefined) continue;
    encoding[bitmapAt + (s >> 3)] = (encoding[bitmapAt + (s >> 3)] ?? 0) | (0x80 >> (s & 7));
    let inner: TrieNode | undefined;
    if (c === KEEP) {
      const at = base === undefined ? -1 : childOffset(base, s, r);
      if (at < 0 || base === undefined) throw new Error('makeBranch: KEEP of an empty slot');
      // Copied in place: no view per kept child hash.
      const from = base.encoding;
      for (let i = 0; i < HASH_BYTES; i++) encoding[o + i] = from[at + i] as number;
      inner = kept?.[s] ?? base.embedded?.[s];
    } else if (c instanceof Uint8Array) {
      encoding.set(c, o);
    } else {
      encoding.set(c.hash, o);
      if (c.storedBytes <= (c.kind === 'leaf' ? inlineLimit : branchInlineLimit)) inner = c;
    }
    if (inner !== undefined) {
      embedded ??= new Array(r.arity).fill(undefined);
      embedded[s] = inner;
    }
    o += HASH_BYTES;
  }
  return new Branch(encoding, sha256(encoding), r, embedded);
}
