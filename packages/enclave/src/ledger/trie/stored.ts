/**
 * Stored forms: the plaintext of a node's record (docs/ledger-format.md, "Stored forms").
 *
 *   leafStored   = leaf(97) ‖ salt(32) ‖ u32be(len key) ‖ key ‖ u32be(len value) ‖ value
 *   branchStored = branch encoding ‖ u16be(n) ‖ (leafStored | branchStored) × n
 *                  (the embedded children, in ascending slot order; an embedded branch carries
 *                  its own embedded children, recursively)
 *   record plaintext = leafStored | branchStored, nothing after it
 *
 * Decoding is strict and verifying: every length, the canonical form of each branch encoding, the
 * node's SHA-256 against the hash the parent holds, every embedded node's hash against its
 * branch's child hash for its slot (a branch before anything it embeds is parsed). A leaf's key, salt and value are checked against its
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
  digitAtOff,
  HASH_BYTES,
  LEAF_BYTES,
  LEAF_TAG,
  Leaf,
  parseLeafStored,
  prefixBytes,
  type Radix,
  sha256,
  storedLeafEnd,
  type TrieNode,
} from './node.js';

/** Writes the stored form of `b` (with everything it embeds) at `o` of `out`; returns its end. */
function writeBranchStored(b: Branch, out: Uint8Array, o: number): number {
  if (b.rec !== undefined) {
    // A decoded branch: its stored form is the bytes it was decoded from.
    out.set(b.rec.subarray(b.recAt, b.recAt + b.storedBytes), o);
    return o + b.storedBytes;
  }
  out.set(b.encoding, o);
  o += b.encoding.length;
  const countAt = o;
  let n = 0;
  o += 2;
  const embedded = b.embedded;
  if (embedded !== undefined) {
    for (let s = 0; s < embedded.length; s++) {
      const c = embedded[s];
      if (c === undefined) continue;
      n++;
      if (c.kind === 'leaf') {
        out.set(c.stored, o);
        o += c.stored.length;
      } else {
        o = writeBranchStored(c, out, o);
      }
    }
  }
  out[countAt] = n >> 8;
  out[countAt + 1] = n & 255;
  return o;
}

/**
 * The stored form of a branch with its embedded children (leaves and small branches). With
 * `spare`, the returned array has that many bytes more after the stored form (for the hash of a
 * cached compact branch, compactBranch).
 */
export function branchStored(b: Branch, spare = 0): Uint8Array {
  const out = new Uint8Array(b.storedBytes + spare);
  writeBranchStored(b, out, 0);
  return spare === 0 ? out : out.subarray(0, b.storedBytes);
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

/**
 * Checks a leaf's salt, key and value against its commitments (once). `ctx` names where the leaf
 * sits; a function is called only if the check fails (a read must not build strings).
 */
export function checkLeaf(leaf: Leaf, ctx: DecodeContext | (() => DecodeContext)): void {
  if (leaf.checked) return;
  if (!leaf.commitmentsHold()) {
    fail(
      typeof ctx === 'function' ? ctx() : ctx,
      'hash-mismatch',
      "a leaf's key or value does not match its commitments",
    );
  }
  leaf.markChecked();
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
 * A copy of the hash of a record's top node, kept with the record's bytes: in the 32 bytes after
 * the view `bytes` when the caller reserved them (`hashRoom`: the trie reads records into such
 * buffers, so a cached record is one buffer), else in a small array of its own.
 */
function ownHash(bytes: Uint8Array, h: Uint8Array, hashRoom: boolean): Uint8Array {
  const out = hashRoom
    ? new Uint8Array(bytes.buffer, bytes.byteOffset + bytes.length, HASH_BYTES)
    : new Uint8Array(HASH_BYTES);
  out.set(h);
  return out;
}

/**
 * Parses the stored branch at `o` of `bytes` whose hash must be `expected` (or, when `expected`
 * is undefined, whose hash is the child hash of `parent` for the slot its prefix names), with
 * everything it embeds, each embedded child checked against the child hash of its slot. Returns
 * it and its end. Embedded leaves stay bytes of `bytes` (Branch, decoded form); embedded
 * branches become nodes over the same bytes.
 *
 * `verify` false is for a record this enclave has just built from verified nodes (the compact
 * form an update caches): the same parse and checks of form, without the SHA-256 of each node.
 */
function parseBranchStored(
  bytes: Uint8Array,
  o: number,
  expected: Uint8Array | undefined,
  parent: Branch | undefined,
  r: Radix,
  ctx: DecodeContext,
  verify: boolean,
  hashRoom = false,
): [Branch, number] {
  const end = o + branchLength(bytes.subarray(o), r, ctx);
  const encoding = bytes.subarray(o, end);
  let hash: Uint8Array;
  if (expected !== undefined) {
    if (verify && !bytesEqual(sha256(encoding), expected)) {
      fail(ctx, 'hash-mismatch', 'the branch does not hash to the value its parent holds');
    }
    hash = ownHash(bytes, expected, hashRoom);
  } else {
    const slot = parent === undefined ? -1 : digitAtOff(encoding, 2, parent.depth, r);
    const child = parent === undefined ? undefined : childHash(parent, slot, r);
    if (child === undefined || (verify && !bytesEqual(child, sha256(encoding)))) {
      fail(ctx, 'hash-mismatch', `the branch embedded for slot ${slot} does not match its parent`);
    }
    hash = child;
  }
  if (bytes.length < end + 2) fail(ctx, 'malformed', 'embedded node count missing');
  const n = ((bytes[end] ?? 0) << 8) | (bytes[end + 1] ?? 0);
  const depth = bytes[o + 1] ?? 0;
  // Leaves stay in the record only while their slots fit the bit mask of Branch.leafSlots.
  const lazy = r.arity <= 16;
  let embedded: (TrieNode | undefined)[] | undefined;
  let leafSlots = 0;
  let nodes = 1;
  let at = end + 2;
  let last = -1;
  const shell = new Branch(encoding, hash, r, undefined);
  for (let i = 0; i < n; i++) {
    const tag = bytes[at];
    let slot: number;
    if (tag === BRANCH_TAG) {
      // Its hash is checked against this branch's slot before anything it embeds is parsed, so
      // nesting follows real (hash-linked) nodes only.
      if (bytes.length - at < 2) fail(ctx, 'malformed', 'an embedded branch is cut short');
      slot = digitAtOff(bytes, at + 2, depth, r);
      if (slot <= last) fail(ctx, 'malformed', 'embedded nodes out of slot order');
      let node: Branch;
      [node, at] = parseBranchStored(bytes, at, undefined, shell, r, ctx, verify);
      embedded ??= new Array(r.arity).fill(undefined);
      embedded[slot] = node;
      nodes += node.storedNodes;
    } else {
      const next = storedLeafEnd(bytes, at);
      if (typeof next === 'string') fail(ctx, 'malformed', next);
      slot = digitAtOff(bytes, at + 1, depth, r);
      if (slot <= last) fail(ctx, 'malformed', 'embedded nodes out of slot order');
      const child = childHash(shell, slot, r);
      if (
        child === undefined ||
        (verify && !bytesEqual(child, sha256(bytes.subarray(at, at + LEAF_BYTES))))
      ) {
        fail(ctx, 'hash-mismatch', `the leaf embedded for slot ${slot} does not match the branch`);
      }
      if (lazy) leafSlots |= 1 << slot;
      else {
        embedded ??= new Array(r.arity).fill(undefined);
        embedded[slot] = new Leaf(bytes.subarray(at, next), child, false);
      }
      nodes++;
      at = next;
    }
    last = slot;
  }
  const branch = new Branch(encoding, hash, r, embedded, {
    rec: bytes,
    at: o,
    end: at,
    leafSlots,
    nodes,
  });
  return [branch, at];
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
  hashRoom = false,
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
  const [branch, end] = parseBranchStored(bytes, 0, expected, undefined, r, ctx, true, hashRoom);
  if (end !== bytes.length) fail(ctx, 'malformed', 'bytes after the stored branch');
  branch.hasRecord = true;
  return branch;
}

/**
 * The compact (decoded) form of a branch this enclave built: parsed from the record `plaintext`
 * just made from it (branchStored), without hashing again. What an update puts in the node cache,
 * so a cached new branch costs what a cached decoded one does. `hasRecord` stays false, as on the
 * built branch: its record is not known to be written until the caller writes the update.
 * Precondition: the bytes after `plaintext` in its buffer, if any, belong to it (branchStored
 * with `spare`): the hash is kept there.
 */
export function compactBranch(
  plaintext: Uint8Array,
  hash: Uint8Array,
  r: Radix,
  built?: Branch,
): Branch {
  const ctx = { node: 'new', position: 'new' };
  const room = plaintext.buffer.byteLength - plaintext.byteOffset - plaintext.length >= HASH_BYTES;
  const [branch, end] = parseBranchStored(plaintext, 0, hash, undefined, r, ctx, false, room);
  if (end !== plaintext.length) fail(ctx, 'malformed', 'bytes after the stored branch');
  if (built !== undefined) inheritChecked(branch, built);
  return branch;
}

/**
 * Marks the embedded leaves of the compact branch `dst` whose commitments are known to hold: those
 * whose node in `src` (the branch `dst` was built from, byte for byte by branchStored) was checked
 * (a leaf this enclave built from its key and value, or one a read had checked). Without it a
 * table this engine wrote would pay two SHA-256 per leaf on its first read.
 */
function inheritChecked(dst: Branch, src: Branch): void {
  // A decoded source keeps its leaves as bytes, with their checked bits.
  let mask = src.rec !== undefined ? src.checkedLeaves : 0;
  const se = src.embedded;
  const de = dst.embedded;
  if (se !== undefined) {
    for (let s = 0; s < se.length; s++) {
      const c = se[s];
      if (c === undefined) continue;
      if (c.kind === 'leaf') {
        if (c.checked) mask |= 1 << s;
      } else {
        const d = de?.[s];
        if (d?.kind === 'branch') inheritChecked(d, c);
      }
    }
  }
  dst.checkedLeaves = mask & dst.leafSlots;
}
