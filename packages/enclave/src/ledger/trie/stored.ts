/**
 * Stored forms: the plaintext of a node's record (docs/ledger-format.md, "Stored forms").
 *
 *   leafStored   = leaf(97) ‖ salt(32) ‖ u32be(len key) ‖ key ‖ u32be(len value) ‖ value
 *   branchStored = branch encoding ‖ u16be(n) ‖ leafStored × n   (the embedded leaf children,
 *                                                                 in ascending slot order)
 *   record plaintext = leafStored | branchStored, nothing after it
 *
 * Decoding is strict and verifying: every length, the canonical form of the branch encoding, the
 * node's SHA-256 against the hash the parent holds, every embedded leaf's hash against the
 * branch's child hash for its slot. A leaf's key, salt and value are checked against its
 * commitments by `checkLeaf` before they are used (the trie does it on every read that returns or
 * proves a leaf); leaves only carried into a new record are copied byte for byte. Any failure is a
 * LedgerIntegrityError; no input makes decoding throw anything else.
 */
import { bytesEqual } from '@cloister/core';
import { type IntegrityFailure, LedgerIntegrityError } from '../errors.js';
import {
  BRANCH_TAG,
  Branch,
  childHash,
  digitAt,
  HASH_BYTES,
  LEAF_TAG,
  type Leaf,
  parseLeafStored,
  prefixBytes,
  type Radix,
  sha256,
  type TrieNode,
} from './node.js';

/** The stored form of a branch with its embedded leaves. */
export function branchStored(b: Branch): Uint8Array {
  let n = 0;
  let size = b.encoding.length + 2;
  for (const l of b.embedded ?? []) {
    if (l === undefined) continue;
    n++;
    size += l.stored.length;
  }
  const out = new Uint8Array(size);
  out.set(b.encoding, 0);
  let o = b.encoding.length;
  out[o++] = n >> 8;
  out[o++] = n & 255;
  for (const l of b.embedded ?? []) {
    if (l === undefined) continue;
    out.set(l.stored, o);
    o += l.stored.length;
  }
  return out;
}

export function storedForm(n: TrieNode): Uint8Array {
  return n.kind === 'leaf' ? n.stored : branchStored(n);
}

/** Where the node being decoded sits, for error messages. */
export interface DecodeContext {
  readonly node: string;
  readonly position: string;
}

function fail(ctx: DecodeContext, failure: IntegrityFailure, detail: string): never {
  throw new LedgerIntegrityError({ failure, node: ctx.node, position: ctx.position, detail });
}

/** Checks a leaf's salt, key and value against its commitments (once). */
export function checkLeaf(leaf: Leaf, ctx: DecodeContext): void {
  if (leaf.checked) return;
  if (!leaf.commitmentsHold()) {
    fail(ctx, 'hash-mismatch', "a leaf's key or value does not match its commitments");
  }
  leaf.checked = true;
}

/** Checks the canonical branch encoding at the start of `b`; returns its length. */
function branchLength(b: Uint8Array, r: Radix, ctx: DecodeContext): number {
  const depth = b[1];
  if (depth === undefined || depth >= r.digits) fail(ctx, 'malformed', 'branch depth out of range');
  const pb = prefixBytes(depth, r);
  const bitmapAt = 2 + pb;
  if (b.length < bitmapAt + r.bitmapBytes) fail(ctx, 'malformed', 'branch header cut short');
  const spare = pb * 8 - depth * r.bits;
  if (spare > 0 && ((b[1 + pb] ?? 0) & ((1 << spare) - 1)) !== 0) {
    fail(ctx, 'malformed', 'branch prefix has bits set past its depth');
  }
  let count = 0;
  for (let i = 0; i < r.bitmapBytes; i++) {
    const byte = b[bitmapAt + i] ?? 0;
    if (r.arity < 8 && byte & (0xff >> r.arity)) {
      fail(ctx, 'malformed', 'branch bitmap names a slot past the radix');
    }
    for (let x = byte; x; x &= x - 1) count++;
  }
  if (count < 2) fail(ctx, 'malformed', 'a branch must have at least two children');
  const end = bitmapAt + r.bitmapBytes + count * HASH_BYTES;
  if (b.length < end) fail(ctx, 'malformed', 'branch child hashes cut short');
  return end;
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
    const parsed = parseLeafStored(bytes, 0);
    if (typeof parsed === 'string') fail(ctx, 'malformed', parsed);
    const [leaf, end] = parsed;
    if (end !== bytes.length) fail(ctx, 'malformed', 'bytes after the stored leaf');
    if (!bytesEqual(leaf.hash, expected)) {
      fail(ctx, 'hash-mismatch', 'the leaf does not hash to the value its parent holds');
    }
    leaf.hasRecord = true;
    return leaf;
  }
  if (bytes[0] !== BRANCH_TAG) fail(ctx, 'malformed', 'unknown node tag');
  const end = branchLength(bytes, r, ctx);
  const encoding = bytes.subarray(0, end);
  const hash = sha256(encoding);
  if (!bytesEqual(hash, expected)) {
    fail(ctx, 'hash-mismatch', 'the branch does not hash to the value its parent holds');
  }
  if (bytes.length < end + 2) fail(ctx, 'malformed', 'embedded leaf count missing');
  const n = ((bytes[end] ?? 0) << 8) | (bytes[end + 1] ?? 0);
  const depth = bytes[1] ?? 0;
  let embedded: (Leaf | undefined)[] | undefined;
  let o = end + 2;
  let last = -1;
  const shell = new Branch(encoding, hash, r, undefined);
  for (let i = 0; i < n; i++) {
    const parsed = parseLeafStored(bytes, o);
    if (typeof parsed === 'string') fail(ctx, 'malformed', parsed);
    const [leaf, next] = parsed;
    const slot = digitAt(leaf.path, depth, r);
    if (slot <= last) fail(ctx, 'malformed', 'embedded leaves out of slot order');
    const child = childHash(shell, slot, r);
    if (child === undefined || !bytesEqual(child, leaf.hash)) {
      fail(ctx, 'hash-mismatch', `the leaf embedded for slot ${slot} does not match the branch`);
    }
    embedded ??= new Array(r.arity).fill(undefined);
    embedded[slot] = leaf;
    last = slot;
    o = next;
  }
  if (o !== bytes.length) fail(ctx, 'malformed', 'bytes after the stored branch');
  return embedded === undefined ? shell : new Branch(encoding, hash, r, embedded);
}
