/**
 * Stored forms: the plaintext of a node's record (docs/ledger-format.md, "Stored forms").
 *
 *   leafStored   = leaf(97) ‖ salt(32) ‖ u32be(len key) ‖ key ‖ u32be(len value) ‖ value
 *   branchStored = branch encoding ‖ u16be(n) ‖ leafStored × n   (the embedded leaf children,
 *                                                                 in ascending slot order)
 *   record plaintext = leafStored | branchStored, nothing after it
 *
 * Decoding is strict and verifying: it checks every length, the canonical form of the branch
 * encoding, the node's SHA-256 against the hash the parent holds, every embedded leaf's hash
 * against the branch's child hash for its slot, and every leaf's commitments against its key and
 * value. Any failure is a LedgerIntegrityError; no input makes it throw anything else.
 */
import { bytesEqual } from '@cloister/core';
import { type IntegrityFailure, LedgerIntegrityError } from '../errors.js';
import {
  BRANCH_TAG,
  type Branch,
  digitAt,
  HASH_BYTES,
  keyCommitment,
  LEAF_BYTES,
  LEAF_TAG,
  type Leaf,
  PATH_BYTES,
  prefixBytes,
  type Radix,
  SALT_BYTES,
  sha256,
  type TrieNode,
  valueCommitment,
} from './node.js';

function u32(n: number): Uint8Array {
  return new Uint8Array([n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255]);
}

/** The stored form of a leaf. */
export function leafStored(l: Leaf): Uint8Array {
  const out = new Uint8Array(l.storedSize);
  out.set(l.encoding, 0);
  out.set(l.salt, LEAF_BYTES);
  let o = LEAF_BYTES + SALT_BYTES;
  out.set(u32(l.key.length), o);
  out.set(l.key, o + 4);
  o += 4 + l.key.length;
  out.set(u32(l.value.length), o);
  out.set(l.value, o + 4);
  return out;
}

/** The stored form of a branch with its embedded leaves. */
export function branchStored(b: Branch): Uint8Array {
  const leaves = b.embedded.filter((l): l is Leaf => l !== undefined);
  let n = b.encoding.length + 2;
  for (const l of leaves) n += l.storedSize;
  const out = new Uint8Array(n);
  out.set(b.encoding, 0);
  let o = b.encoding.length;
  out[o++] = leaves.length >> 8;
  out[o++] = leaves.length & 255;
  for (const l of leaves) {
    out.set(leafStored(l), o);
    o += l.storedSize;
  }
  return out;
}

export function storedForm(n: TrieNode): Uint8Array {
  return n.kind === 'leaf' ? leafStored(n) : branchStored(n);
}

/** Where the node being decoded sits, for error messages. */
export interface DecodeContext {
  readonly node: string;
  readonly position: string;
}

function fail(ctx: DecodeContext, failure: IntegrityFailure, detail: string): never {
  throw new LedgerIntegrityError({ failure, node: ctx.node, position: ctx.position, detail });
}

function readU32(b: Uint8Array, o: number): number {
  return (
    (((b[o] ?? 0) << 24) | ((b[o + 1] ?? 0) << 16) | ((b[o + 2] ?? 0) << 8) | (b[o + 3] ?? 0)) >>> 0
  );
}

/** Parses one leafStored at `o`; verifies the commitments. Returns the leaf and the end offset. */
function parseLeaf(b: Uint8Array, o: number, ctx: DecodeContext): [Leaf, number] {
  const fixed = LEAF_BYTES + SALT_BYTES + 4;
  if (b.length - o < fixed + 4 || b[o] !== LEAF_TAG)
    fail(ctx, 'malformed', 'a stored leaf is cut short or not a leaf');
  const keyLen = readU32(b, o + LEAF_BYTES + SALT_BYTES);
  const keyAt = o + fixed;
  if (b.length - keyAt < keyLen + 4)
    fail(ctx, 'malformed', 'a stored leaf key runs past the record');
  const valueLen = readU32(b, keyAt + keyLen);
  const valueAt = keyAt + keyLen + 4;
  if (b.length - valueAt < valueLen)
    fail(ctx, 'malformed', 'a stored leaf value runs past the record');
  const encoding = b.subarray(o, o + LEAF_BYTES);
  const salt = b.subarray(o + LEAF_BYTES, o + LEAF_BYTES + SALT_BYTES);
  const key = b.subarray(keyAt, keyAt + keyLen);
  const value = b.subarray(valueAt, valueAt + valueLen);
  const kc = encoding.subarray(1 + PATH_BYTES, 1 + PATH_BYTES + HASH_BYTES);
  const vc = encoding.subarray(1 + PATH_BYTES + HASH_BYTES);
  if (!bytesEqual(keyCommitment(salt, key), kc)) {
    fail(ctx, 'hash-mismatch', "a leaf's key commitment does not match its key and salt");
  }
  if (!bytesEqual(valueCommitment(salt, value), vc)) {
    fail(ctx, 'hash-mismatch', "a leaf's value commitment does not match its value and salt");
  }
  const leaf: Leaf = {
    kind: 'leaf',
    hash: sha256(encoding),
    encoding,
    path: encoding.subarray(1, 1 + PATH_BYTES),
    keyCommitment: kc,
    valueCommitment: vc,
    salt,
    key,
    value,
    storedSize: valueAt + valueLen - o,
  };
  return [leaf, valueAt + valueLen];
}

interface ParsedBranch {
  readonly depth: number;
  readonly prefix: Uint8Array;
  readonly children: (Uint8Array | undefined)[];
  readonly end: number;
}

/** Parses a canonical branch encoding at the start of `b` (docs/ledger-format.md, "Branch"). */
function parseBranch(b: Uint8Array, r: Radix, ctx: DecodeContext): ParsedBranch {
  const depth = b[1];
  if (depth === undefined || depth >= r.digits) fail(ctx, 'malformed', 'branch depth out of range');
  const pb = prefixBytes(depth, r);
  const head = 2 + pb + r.bitmapBytes;
  if (b.length < head) fail(ctx, 'malformed', 'branch header cut short');
  const prefix = new Uint8Array(PATH_BYTES);
  prefix.set(b.subarray(2, 2 + pb));
  const spare = pb * 8 - depth * r.bits;
  if (spare > 0 && ((prefix[pb - 1] ?? 0) & ((1 << spare) - 1)) !== 0) {
    fail(ctx, 'malformed', 'branch prefix has bits set past its depth');
  }
  const children: (Uint8Array | undefined)[] = new Array(r.arity).fill(undefined);
  let o = head;
  for (let i = 0; i < r.bitmapBytes; i++) {
    const byte = b[2 + pb + i] ?? 0;
    for (let bit = 0; bit < 8; bit++) {
      if (!(byte & (0x80 >> bit))) continue;
      const s = i * 8 + bit;
      if (s >= r.arity) fail(ctx, 'malformed', 'branch bitmap names a slot past the radix');
      if (b.length < o + HASH_BYTES) fail(ctx, 'malformed', 'branch child hashes cut short');
      children[s] = b.subarray(o, o + HASH_BYTES);
      o += HASH_BYTES;
    }
  }
  if ((o - head) / HASH_BYTES < 2)
    fail(ctx, 'malformed', 'a branch must have at least two children');
  return { depth, prefix, children, end: o };
}

/**
 * Decodes and verifies the record plaintext of the node whose hash is `expected`.
 * Throws LedgerIntegrityError (malformed / hash-mismatch) on anything else.
 */
export function decodeStored(
  bytes: Uint8Array,
  expected: Uint8Array,
  r: Radix,
  ctx: DecodeContext,
): TrieNode {
  if (bytes[0] === LEAF_TAG) {
    const [leaf, end] = parseLeaf(bytes, 0, ctx);
    if (end !== bytes.length) fail(ctx, 'malformed', 'bytes after the stored leaf');
    if (!bytesEqual(leaf.hash, expected)) {
      fail(ctx, 'hash-mismatch', 'the leaf does not hash to the value its parent holds');
    }
    return leaf;
  }
  if (bytes[0] !== BRANCH_TAG) fail(ctx, 'malformed', 'unknown node tag');
  const p = parseBranch(bytes, r, ctx);
  const encoding = bytes.subarray(0, p.end);
  const hash = sha256(encoding);
  if (!bytesEqual(hash, expected)) {
    fail(ctx, 'hash-mismatch', 'the branch does not hash to the value its parent holds');
  }
  if (bytes.length < p.end + 2) fail(ctx, 'malformed', 'embedded leaf count missing');
  const n = ((bytes[p.end] ?? 0) << 8) | (bytes[p.end + 1] ?? 0);
  const embedded: (Leaf | undefined)[] = new Array(r.arity).fill(undefined);
  let o = p.end + 2;
  let last = -1;
  for (let i = 0; i < n; i++) {
    const [leaf, end] = parseLeaf(bytes, o, ctx);
    const slot = digitAt(leaf.path, p.depth, r);
    const child = p.children[slot];
    if (slot <= last) fail(ctx, 'malformed', 'embedded leaves out of slot order');
    if (child === undefined || !bytesEqual(child, leaf.hash)) {
      fail(ctx, 'hash-mismatch', `the leaf embedded for slot ${slot} does not match the branch`);
    }
    embedded[slot] = leaf;
    last = slot;
    o = end;
  }
  if (o !== bytes.length) fail(ctx, 'malformed', 'bytes after the stored branch');
  const branch: Branch = {
    kind: 'branch',
    hash,
    encoding,
    depth: p.depth,
    prefix: p.prefix,
    children: p.children,
    embedded,
  };
  return branch;
}
