/**
 * The authenticated dictionary of one table: a Merkle Patricia trie over SHA-256 with
 * content-addressed, position-independent nodes (docs/ledger-format.md).
 *
 * A pure data structure over an injected NodeSource. The trie never writes: `update` returns the
 * new root and the records of every new node, which the caller writes in one atomic batch
 * (copy-on-write: old roots stay readable as long as their records are kept). Every node read is
 * verified before use — its SHA-256 against the hash its parent holds, up to the root the caller
 * holds (inside the enclave) — and every failure is a LedgerIntegrityError naming the node, its
 * position and what failed.
 *
 * Paths are 32 bytes: the caller HMACs the user key under the table's path key (crypto.ts), and
 * passes the salt it derives for the key; the trie stores the user key, salt and value in the leaf
 * record and commits to them (node.ts).
 */
import { bytesEqual, InvalidInputError } from '@cloister/core';
import { LedgerIntegrityError } from '../errors.js';
import type { NodeCache } from '../node-cache.js';
import {
  BRANCH_TAG,
  type Branch,
  checkPath,
  childOffset,
  commonDigits,
  digitAt,
  digitAtOff,
  EMPTY_ROOT,
  embeddedChild,
  HASH_BYTES,
  hasChild,
  inPrefix,
  KEEP,
  type Leaf,
  MAX_FIELD_BYTES,
  makeBranch,
  makeLeaf,
  PATH_BYTES,
  RADIX_16,
  type Radix,
  SALT_BYTES,
  type Slot,
  type TrieNode,
} from './node.js';
import { encodeProof } from './proof.js';
import {
  branchStored,
  checkLeaf,
  compactBranch,
  type DecodeContext,
  decodeStored,
} from './stored.js';

export interface NodeSource {
  /**
   * The record plaintext (stored form) of the node whose hash is `hash`, or undefined when the
   * store holds no record for it. Throws LedgerIntegrityError when a record exists but fails
   * authentication. The trie owns the returned buffer (it keeps subarrays of it).
   */
  get(hash: Uint8Array): Uint8Array | undefined;
}

export type TrieOp =
  | {
      readonly type: 'put';
      readonly path: Uint8Array;
      readonly salt: Uint8Array;
      readonly key: Uint8Array;
      readonly value: Uint8Array;
    }
  | { readonly type: 'del'; readonly path: Uint8Array };

/** A record to write: the stored form of the node `hash`. */
export interface NodeRecord {
  readonly hash: Uint8Array;
  readonly plaintext: Uint8Array;
}

/**
 * The records `update` makes are instances of a class, not object literals, and a new branch's
 * node children are collected by `filter`, not into an array literal: V8 pretenures an allocation
 * site of a literal once most of its objects survived young collections, which they do in a large
 * update (a bulk commit), and from then on every small update allocated them in the old
 * generation, where, dead after the update, they kept what they point to (the new branches,
 * their leaves, hashes and records) alive through young collections until the next full one
 * (docs/performance.md, "Hidden classes"). Class instances and builtins' results are not
 * pretenured.
 */
class Record implements NodeRecord {
  readonly hash: Uint8Array;
  readonly plaintext: Uint8Array;
  constructor(hash: Uint8Array, plaintext: Uint8Array) {
    this.hash = hash;
    this.plaintext = plaintext;
  }
}

/** A slot given a node (not KEEP, a stored child's hash, or empty). */
function isNode(c: Slot): c is TrieNode {
  return c !== undefined && c !== KEEP && !(c instanceof Uint8Array);
}

export interface TrieUpdate {
  /** The new root: EMPTY_ROOT for an empty trie, else the root node's hash. */
  readonly root: Uint8Array;
  /**
   * Records of the new nodes, each once. Write them all (one atomic batch) before handing the new
   * root to anyone who reads through the store.
   */
  readonly records: readonly NodeRecord[];
}

export interface TrieOptions {
  readonly source: NodeSource;
  /** Verified decoded nodes; new nodes from `update` go in too. */
  readonly cache?: NodeCache;
  /** Format v1 is RADIX_16; others are for the radix measurement only. */
  readonly radix?: Radix;
  /** Leaf children with a stored form of at most this many bytes live inside their parent's
   * record (default 512; 0 stores every leaf on its own). Storage layout only: hashes, roots and
   * proofs do not depend on it. */
  readonly inlineLimit?: number;
  /** Branch children whose stored form (with what they embed) is at most this many bytes live
   * inside their parent's record too (default 0: off; 700 embeds a bottom branch of two small
   * leaves; measured in docs/ledger-format.md §9).
   * Storage layout only, like `inlineLimit`. */
  readonly branchInlineLimit?: number;
  /** The packed levels: a new branch at depth d < packedDepth embeds its new branch children when
   * the update has at least arity^(d+1) ops (default 2: at 256 ops and more, the root, the 16
   * branches below it and their children form one record; at 16 to 255, the root and the level-1
   * branches). What a branch that does not pack keeps of them gets records of its own instead.
   * Storage layout only, like `inlineLimit`. */
  readonly packedDepth?: number;
}

export interface Trie {
  /** The verified leaf at `path` under `root`, or undefined when the trie has none. */
  get(root: Uint8Array, path: Uint8Array): Leaf | undefined;
  /** Applies `ops` in order (a later op on the same path wins) to the trie at `root`. */
  update(root: Uint8Array, ops: readonly TrieOp[]): TrieUpdate;
  /** An inclusion proof if `path` is in the trie, else a non-inclusion proof (proof.ts). */
  prove(root: Uint8Array, path: Uint8Array): Uint8Array;
}

export const DEFAULT_INLINE_LIMIT = 512;
export const DEFAULT_BRANCH_INLINE_LIMIT = 0;
export const DEFAULT_PACKED_DEPTH = 2;

type PutOp = Extract<TrieOp, { type: 'put' }>;

function hex8(h: Uint8Array): string {
  let s = '';
  for (let i = 0; i < 8; i++) s += (h[i] ?? 0).toString(16).padStart(2, '0');
  return s;
}

/** True when the leaf stored form `stored` holds the path `path` (bytes 1..32). */
function samePath(stored: Uint8Array, path: Uint8Array): boolean {
  for (let i = 0; i < PATH_BYTES; i++) if (stored[1 + i] !== path[i]) return false;
  return true;
}

function checkOps(ops: readonly TrieOp[]): void {
  if (!Array.isArray(ops)) throw new InvalidInputError('trie ops must be an array');
  for (const op of ops) {
    checkPath(op?.path);
    if (op.type === 'del') continue;
    if (op.type !== 'put') throw new InvalidInputError("a trie op's type is 'put' or 'del'");
    if (!(op.salt instanceof Uint8Array) || op.salt.length !== SALT_BYTES) {
      throw new InvalidInputError(`a trie put's salt must be ${SALT_BYTES} bytes`);
    }
    if (!(op.key instanceof Uint8Array) || !(op.value instanceof Uint8Array)) {
      throw new InvalidInputError("a trie put's key and value must be Uint8Arrays");
    }
    if (op.key.length > MAX_FIELD_BYTES || op.value.length > MAX_FIELD_BYTES) {
      throw new InvalidInputError('a trie key or value must be under 4 GiB');
    }
  }
}

function checkRoot(root: unknown): asserts root is Uint8Array {
  if (!(root instanceof Uint8Array) || root.length !== HASH_BYTES) {
    throw new InvalidInputError(`a trie root must be ${HASH_BYTES} bytes`);
  }
}

/** Bytewise order of two paths. */
function compareBytes(a: Uint8Array, b: Uint8Array): number {
  for (let i = 0; i < a.length; i++) {
    const d = (a[i] ?? 0) - (b[i] ?? 0);
    if (d !== 0) return d;
  }
  return 0;
}

/** Ops sorted by path, one per path: the last given (Array.prototype.sort is stable). */
function normalize(ops: readonly TrieOp[]): TrieOp[] {
  const sorted = [...ops].sort((a, b) => compareBytes(a.path, b.path));
  const out: TrieOp[] = [];
  for (const op of sorted) {
    const prev = out[out.length - 1];
    if (prev !== undefined && compareBytes(prev.path, op.path) === 0) out[out.length - 1] = op;
    else out.push(op);
  }
  return out;
}

/** The position of a node (its digits from the root), as errors name it. */
function positionOf(
  r: Radix,
  prefix: Uint8Array | undefined,
  depth: number,
  slot?: number,
): string {
  if (prefix === undefined) return 'root';
  let s = '';
  for (let i = 0; i < depth; i++) s += digitAt(prefix, i, r).toString(16);
  return slot === undefined ? s || 'root' : `${s}${slot.toString(16)}`;
}

/**
 * Where a node being decoded sits, named only if decoding fails (getters: no string is built
 * otherwise). A class rather than an object literal with getters: each evaluation of such a
 * literal allocates its accessor pair in the old generation, which keeps what its getters close
 * over alive through young collections (docs/performance.md, "Hidden classes").
 */
class NodePlace implements DecodeContext {
  readonly #r: Radix;
  readonly #hash: Uint8Array;
  readonly #parent: Branch | undefined;
  readonly #slot: number | undefined;
  constructor(r: Radix, hash: Uint8Array, parent: Branch | undefined, slot: number | undefined) {
    this.#r = r;
    this.#hash = hash;
    this.#parent = parent;
    this.#slot = slot;
  }
  get node(): string {
    return hex8(this.#hash);
  }
  get position(): string {
    return positionOf(this.#r, this.#parent?.prefix, this.#parent?.depth ?? 0, this.#slot);
  }
}

export function createTrie(options: TrieOptions): Trie {
  const { source, cache } = options;
  const r = options.radix ?? RADIX_16;
  const inlineLimit = options.inlineLimit ?? DEFAULT_INLINE_LIMIT;
  const branchInlineLimit = options.branchInlineLimit ?? DEFAULT_BRANCH_INLINE_LIMIT;
  const packedDepth = options.packedDepth ?? DEFAULT_PACKED_DEPTH;

  const position = (prefix: Uint8Array | undefined, depth: number, slot?: number): string =>
    positionOf(r, prefix, depth, slot);

  /** Loads and verifies the node `hash`; `parent`/`slot` place it (undefined: the root). */
  function load(hash: Uint8Array, parent?: Branch, slot?: number): TrieNode {
    const hit = cache?.get(hash);
    if (hit !== undefined) return hit;
    const where = (): { node: string; position: string } => ({
      node: hex8(hash),
      position: position(parent?.prefix, parent?.depth ?? 0, slot),
    });
    let bytes: Uint8Array | undefined;
    try {
      bytes = source.get(hash);
    } catch (e) {
      if (!(e instanceof LedgerIntegrityError)) throw e;
      throw new LedgerIntegrityError(
        { ...where(), failure: e.failure, detail: e.detail },
        { cause: e },
      );
    }
    if (bytes === undefined) {
      throw new LedgerIntegrityError({
        ...where(),
        failure: 'missing',
        detail: 'the store has no record for this node',
      });
    }
    const ctx = new NodePlace(r, hash, parent, slot);
    let node: TrieNode;
    if (cache !== undefined && bytes[0] === BRANCH_TAG) {
      // The cached record is one buffer: the plaintext, then the branch's hash (decodeStored).
      const rec = new Uint8Array(bytes.length + HASH_BYTES);
      rec.set(bytes);
      node = decodeStored(rec.subarray(0, bytes.length), hash, r, ctx, true);
    } else node = decodeStored(bytes, hash, r, ctx);
    cache?.set(node);
    return node;
  }

  /** The verified child at `slot`, checked to fit under `b`, or undefined. */
  function child(b: Branch, slot: number): TrieNode | undefined {
    const at = childOffset(b, slot, r);
    if (at < 0) return undefined;
    const node =
      embeddedChild(b, slot, r) ??
      cache?.getAt?.(b.encoding, at) ??
      load(b.encoding.subarray(at, at + HASH_BYTES), b, slot);
    // The path (leaf: after the tag) or prefix (branch: after tag and depth) of the child.
    const leaf = node.kind === 'leaf';
    const bytes = leaf ? node.stored : node.encoding;
    const o = leaf ? 1 : 2;
    const fits =
      (node.kind === 'leaf' || node.depth > b.depth) &&
      inPrefix(bytes, o, b, r) &&
      digitAtOff(bytes, o, b.depth, r) === slot;
    if (!fits) {
      throw new LedgerIntegrityError({
        failure: 'structure',
        node: hex8(node.hash),
        position: position(b.prefix, b.depth, slot),
        detail: 'the node does not belong under its parent (depth or prefix)',
      });
    }
    return node;
  }

  /** Where `path` lies from the prefix range of `b`: below (-1), inside (0) or above (1). */
  function side(path: Uint8Array, b: Branch): number {
    const c = commonDigits(path, b.prefix, b.depth, r);
    if (c === b.depth) return 0;
    return digitAt(path, c, r) < digitAt(b.prefix, c, r) ? -1 : 1;
  }

  function loadRoot(root: Uint8Array): TrieNode | undefined {
    checkRoot(root);
    return bytesEqual(root, EMPTY_ROOT) ? undefined : load(root);
  }

  /** The nodes on the lookup path of `path`, root first. */
  function walk(root: Uint8Array, path: Uint8Array): TrieNode[] {
    const out: TrieNode[] = [];
    let node = loadRoot(root);
    while (node !== undefined) {
      out.push(node);
      if (node.kind === 'leaf' || !inPrefix(path, 0, node, r)) break;
      node = child(node, digitAt(path, node.depth, r));
    }
    return out;
  }

  /** The leaf at the end of `nodes` if it is the one for `path`, its commitments checked. */
  function found(nodes: readonly TrieNode[], path: Uint8Array): Leaf | undefined {
    const last = nodes[nodes.length - 1];
    if (last?.kind !== 'leaf' || !samePath(last.stored, path)) return undefined;
    const parent = nodes[nodes.length - 2];
    checkFound(last, parent?.kind === 'branch' ? parent : undefined, path);
    return last;
  }

  /** Checks the commitments of `leaf`, found for `path` under `parent` (none: the root). */
  function checkFound(leaf: Leaf, parent: Branch | undefined, path: Uint8Array): void {
    if (leaf.checked) return;
    // The error's context is built only if the check fails (a read must not build strings).
    checkLeaf(leaf, () => ({
      node: hex8(leaf.hash),
      position:
        parent === undefined
          ? 'root'
          : position(parent.prefix, parent.depth, digitAt(path, parent.depth, r)),
    }));
  }

  /** `walk` + `found` without the array of nodes: the get path allocates nothing of its own. */
  function get(root: Uint8Array, path: Uint8Array): Leaf | undefined {
    checkPath(path);
    let node = loadRoot(root);
    let parent: Branch | undefined;
    while (node !== undefined && node.kind === 'branch') {
      if (!inPrefix(path, 0, node, r)) return undefined;
      parent = node;
      node = child(node, digitAt(path, node.depth, r));
    }
    if (node === undefined || !samePath(node.stored, path)) return undefined;
    checkFound(node, parent, path);
    return node;
  }

  function prove(root: Uint8Array, path: Uint8Array): Uint8Array {
    checkPath(path);
    const nodes = walk(root, path);
    found(nodes, path);
    return encodeProof(path, nodes);
  }

  function update(root: Uint8Array, ops: readonly TrieOp[]): TrieUpdate {
    checkRoot(root);
    checkOps(ops);
    const sorted = normalize(ops);
    // Packing a level pays when the update rewrites (nearly) all of its branches: at least as
    // many ops as the level below it has. Invariant: a new branch at depth < packTo packs.
    let packTo = 0;
    while (packTo < packedDepth && sorted.length >= r.arity ** (packTo + 1)) packTo++;
    // The children each new branch was given as nodes (not KEEP): after the new root is known,
    // `place` walks the new nodes from it and emits the records that keep every node reachable.
    const given = new Map<Branch, TrieNode[]>();
    const leafOf = (op: PutOp): Leaf => makeLeaf(op.path, op.salt, op.key, op.value);
    const branch = (
      depth: number,
      prefixSource: Uint8Array,
      slots: Slot[],
      base?: Branch,
    ): Branch => {
      const pack = depth < packTo;
      if (!pack && base?.embedded !== undefined) {
        // A small update unpacks what it keeps: an untouched branch child the base packed gets
        // a record of its own (once), so small commits do not rewrite the packed levels.
        for (let s = 0; s < r.arity; s++) {
          const e = base.embedded[s];
          if (slots[s] === KEEP && e?.kind === 'branch' && e.storedBytes > branchInlineLimit) {
            slots[s] = e;
          }
        }
      }
      const limit = pack ? Number.POSITIVE_INFINITY : branchInlineLimit;
      const b = makeBranch(r, depth, prefixSource, slots, inlineLimit, base, limit);
      // Not an array literal: see Record.
      given.set(b, slots.filter(isNode));
      return b;
    };

    // Records to write: a node needs one of its own when it is the root or the child of a branch
    // that does not embed it, unless it was read from one (records are never deleted). A node in
    // a written record (its own or embedded) makes its non-embedded new children need theirs.
    const records: NodeRecord[] = [];
    const placed = new Set<TrieNode>();
    function place(n: TrieNode): void {
      if (n.hasRecord || placed.has(n)) return;
      placed.add(n);
      const plaintext = n.kind === 'leaf' ? n.stored : branchStored(n, HASH_BYTES);
      // Cached as a unit with what it embeds (embedded nodes are reached through it), in the
      // compact form a decoded record has: one buffer, leaves read out of it on demand.
      if (n.kind === 'branch' && cache !== undefined)
        cache.set(compactBranch(plaintext, n.hash, r, n));
      // A leaf with a record of its own (the root of a one-entry trie, such as the admin trie
      // and catalogue of a single ledger and table, or a leaf too large to embed): cached too,
      // else every later commit reads it back from the store (a boundary crossing each).
      else if (cache !== undefined) cache.set(n);
      records.push(new Record(n.hash, plaintext));
      expand(n);
    }
    function expand(n: TrieNode): void {
      if (n.kind === 'leaf') return;
      const nodes = given.get(n);
      if (nodes === undefined) return; // not new: what it points at is stored already
      for (const c of nodes) {
        if (n.embedded?.[digitOf(c, n.depth)] === c) expand(c);
        else place(c);
      }
    }
    const digitOf = (c: TrieNode, depth: number): number =>
      digitAt(c.kind === 'leaf' ? c.path : c.prefix, depth, r);

    /** The new leaves of the puts in ops[lo, hi). */
    function puts(lo: number, hi: number): Leaf[] {
      const out: Leaf[] = [];
      for (let i = lo; i < hi; i++) {
        const op = sorted[i];
        if (op?.type === 'put') out.push(leafOf(op));
      }
      return out;
    }

    /** The canonical subtree holding `items`: sorted, pairwise disjoint subtrees. */
    function build(items: readonly TrieNode[]): TrieNode | undefined {
      const first = items[0];
      const last = items[items.length - 1];
      if (first === undefined || last === undefined) return undefined;
      if (items.length === 1) return first;
      const span = (n: TrieNode): [Uint8Array, number] =>
        n.kind === 'leaf' ? [n.path, r.digits] : [n.prefix, n.depth];
      const [fp, fd] = span(first);
      const [lp, ld] = span(last);
      // Sorted and disjoint: the digits all items share are the ones the first and last share,
      // and that is fewer than any item's own prefix (else one would contain another).
      const depth = commonDigits(fp, lp, Math.min(fd, ld), r);
      const slots: Slot[] = new Array(r.arity).fill(undefined);
      let i = 0;
      while (i < items.length) {
        const s = digitAt(span(items[i] as TrieNode)[0], depth, r);
        let j = i + 1;
        while (j < items.length && digitAt(span(items[j] as TrieNode)[0], depth, r) === s) j++;
        slots[s] = build(items.slice(i, j));
        i = j;
      }
      return branch(depth, fp, slots);
    }

    function applyToLeaf(leaf: Leaf, lo: number, hi: number): TrieNode | undefined {
      const items: TrieNode[] = [];
      let kept = true;
      let placed = false;
      for (let i = lo; i < hi; i++) {
        const op = sorted[i] as TrieOp;
        const cmp = compareBytes(op.path, leaf.path);
        if (cmp === 0) kept = false;
        if (cmp > 0 && !placed) {
          placed = true;
          if (kept) items.push(leaf);
        }
        if (op.type === 'put') items.push(leafOf(op));
      }
      if (kept && !placed) items.push(leaf);
      return build(items);
    }

    function applyInside(b: Branch, lo: number, hi: number): TrieNode | undefined {
      const slots: Slot[] = new Array(r.arity);
      for (let s = 0; s < r.arity; s++) slots[s] = hasChild(b, s, r) ? KEEP : undefined;
      let changed = false;
      let i = lo;
      while (i < hi) {
        const s = digitAt((sorted[i] as TrieOp).path, b.depth, r);
        let j = i + 1;
        while (j < hi && digitAt((sorted[j] as TrieOp).path, b.depth, r) === s) j++;
        const cur = child(b, s);
        const next = cur === undefined ? build(puts(i, j)) : apply(cur, i, j);
        const same =
          next === cur ||
          (next !== undefined && cur !== undefined && bytesEqual(next.hash, cur.hash));
        if (!same) {
          changed = true;
          slots[s] = next;
        }
        i = j;
      }
      if (!changed) return b;
      cache?.demote?.(b.hash);
      let left = 0;
      let only = -1;
      for (let s = 0; s < r.arity; s++) {
        if (slots[s] === undefined) continue;
        left++;
        only = s;
      }
      if (left >= 2) return branch(b.depth, b.prefix, slots, b);
      if (left === 0) return undefined;
      const c = slots[only];
      return c === KEEP || c === undefined || c instanceof Uint8Array ? child(b, only) : c;
    }

    /** Applies sorted[lo, hi) (non-empty) to the subtree `node`. */
    function apply(node: TrieNode, lo: number, hi: number): TrieNode | undefined {
      if (node.kind === 'leaf') return applyToLeaf(node, lo, hi);
      // In path order: ops below this branch's prefix, ops inside it, ops above it.
      let a = lo;
      while (a < hi && side((sorted[a] as TrieOp).path, node) < 0) a++;
      let z = a;
      while (z < hi && side((sorted[z] as TrieOp).path, node) === 0) z++;
      const inner = a < z ? applyInside(node, a, z) : node;
      const before = puts(lo, a);
      const after = puts(z, hi);
      if (before.length === 0 && after.length === 0) return inner;
      return build([...before, ...(inner ? [inner] : []), ...after]);
    }

    const old = loadRoot(root);
    let next: TrieNode | undefined;
    if (sorted.length === 0) next = old;
    else next = old === undefined ? build(puts(0, sorted.length)) : apply(old, 0, sorted.length);
    if (next !== undefined && next !== old) place(next);
    return { root: next?.hash ?? EMPTY_ROOT, records };
  }

  return { get, update, prove };
}
