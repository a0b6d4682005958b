/**
 * Offline verification of ledger proofs (docs/ledger-format.md, "Proofs"): isomorphic, no Node
 * built-ins, SHA-256 from @noble/hashes. Written apart from the enclave's encoder
 * (packages/enclave/src/ledger/trie/) and checked against it and the document's vectors.
 *
 * Two kinds of failure, kept apart on purpose:
 * - a proof that no honest node could have produced for any state — bad version, cut short,
 *   trailing bytes, a non-canonical node, a node that does not hash to what its parent holds, a
 *   walk that does not follow its own path — is a ProofError (thrown), with the reason;
 * - a well-formed proof that does not support your claim — another path, another root, the key
 *   absent (or present), another key or value — is a verdict `{ ok: false, reason }` (returned).
 * So `verifyX(...).ok === true` is the only success; test `.ok`, never the object itself.
 *
 * What a verdict means, exactly: the trie whose root is `root` holds (inclusion) or does not hold
 * (non-inclusion) a leaf at `path`; for inclusion, that leaf commits to `key` and `value` under
 * the salt the proof carries. That `path` is the path of `key` in its table (an HMAC under a key
 * only the enclave knows), and that `root` is a table's current root, rest on the enclave's
 * signature over them, which this module does not check.
 */
import { bytesEqual } from '../bytes.js';
import { CloisterError, InvalidInputError } from '../errors.js';
import { sha256 } from '../hash.js';

export const LEDGER_PROOF_VERSION = 0x01;
/** The root of an empty table: 32 zero bytes (the hash of no node). */
export const EMPTY_TRIE_ROOT: Uint8Array = new Uint8Array(32);

const KIND_INCLUSION = 0x01;
const KIND_NON_INCLUSION = 0x02;
const LEAF_TAG = 0x01;
const BRANCH_TAG = 0x02;
const KEY_TAG = 0x03;
const VALUE_TAG = 0x04;
const LEAF_BYTES = 97;
/** Radix 16: 4-bit digits, 64 per path, a 2-byte bitmap. */
const DIGITS = 64;

/** A proof that is malformed or internally inconsistent (see the module comment). */
export class ProofError extends CloisterError {
  readonly reason: string;

  constructor(reason: string) {
    super('LEDGER_PROOF', `ledger proof refused: ${reason}`);
    this.reason = reason;
  }
}

export type ProofMismatch =
  | 'path-mismatch'
  | 'root-mismatch'
  | 'key-absent'
  | 'key-present'
  | 'key-mismatch'
  | 'value-mismatch';

export type ProofVerdict =
  | { readonly ok: true }
  | { readonly ok: false; readonly reason: ProofMismatch };

/** How a non-inclusion walk ended. */
export type Absence = 'empty-trie' | 'prefix-diverges' | 'empty-slot' | 'other-leaf';

export interface DecodedProof {
  readonly kind: 'inclusion' | 'non-inclusion';
  readonly path: Uint8Array;
  /** The root the proof is for: the hash of its first node, or EMPTY_TRIE_ROOT. */
  readonly root: Uint8Array;
  /** Inclusion: the leaf's commitments and the salt that opens them. */
  readonly keyCommitment?: Uint8Array;
  readonly valueCommitment?: Uint8Array;
  readonly salt?: Uint8Array;
  /** Non-inclusion: where the walk ended. */
  readonly absence?: Absence;
}

/** SHA-256(0x03 ‖ salt ‖ key): what a leaf holds for its key. */
export function keyCommitment(salt: Uint8Array, key: Uint8Array): Uint8Array {
  return sha256(Uint8Array.of(KEY_TAG), salt, key);
}

/** SHA-256(0x04 ‖ salt ‖ value): what a leaf holds for its value. */
export function valueCommitment(salt: Uint8Array, value: Uint8Array): Uint8Array {
  return sha256(Uint8Array.of(VALUE_TAG), salt, value);
}

function digit(path: Uint8Array, i: number): number {
  const b = path[i >> 1] ?? 0;
  return i & 1 ? b & 15 : b >> 4;
}

/** Digits [0, depth) of `a` and `b` are equal. */
function samePrefix(a: Uint8Array, b: Uint8Array, depth: number): boolean {
  for (let i = 0; i < depth; i++) if (digit(a, i) !== digit(b, i)) return false;
  return true;
}

interface Node {
  readonly hash: Uint8Array;
  readonly end: number;
  /** Branch: split digit and prefix (zero-padded to 32 bytes); leaf: depth 64, prefix = path. */
  readonly depth: number;
  readonly prefix: Uint8Array;
  /** Branch: child hash per slot. */
  readonly children?: readonly (Uint8Array | undefined)[];
  /** Leaf: its commitments. */
  readonly kc?: Uint8Array;
  readonly vc?: Uint8Array;
}

/** One canonical node encoding at offset `o` (docs/ledger-format.md, "Nodes"). */
function parseNode(b: Uint8Array, o: number, i: number): Node {
  const tag = b[o];
  if (tag === LEAF_TAG) {
    if (b.length < o + LEAF_BYTES) throw new ProofError(`node ${i} (a leaf) is cut short`);
    const enc = b.subarray(o, o + LEAF_BYTES);
    return {
      hash: sha256(enc),
      end: o + LEAF_BYTES,
      depth: DIGITS,
      prefix: enc.subarray(1, 33),
      kc: enc.subarray(33, 65),
      vc: enc.subarray(65, 97),
    };
  }
  if (tag !== BRANCH_TAG) throw new ProofError(`node ${i} has an unknown tag`);
  const depth = b[o + 1];
  if (depth === undefined || depth >= DIGITS) throw new ProofError(`node ${i}: depth out of range`);
  const pb = (depth + 1) >> 1;
  const head = o + 2 + pb + 2;
  if (b.length < head) throw new ProofError(`node ${i} (a branch) is cut short`);
  const prefix = new Uint8Array(32);
  prefix.set(b.subarray(o + 2, o + 2 + pb));
  if (depth & 1 && (prefix[pb - 1] ?? 0) & 15) {
    throw new ProofError(`node ${i}: prefix has bits set past its depth`);
  }
  const bitmap = ((b[o + 2 + pb] ?? 0) << 8) | (b[o + 3 + pb] ?? 0);
  const children: (Uint8Array | undefined)[] = [];
  let at = head;
  for (let s = 0; s < 16; s++) {
    if (!(bitmap & (0x8000 >> s))) {
      children.push(undefined);
      continue;
    }
    if (b.length < at + 32) throw new ProofError(`node ${i} (a branch) is cut short`);
    children.push(b.subarray(at, at + 32));
    at += 32;
  }
  if (at - head < 64) throw new ProofError(`node ${i}: a branch needs at least two children`);
  return { hash: sha256(b.subarray(o, at)), end: at, depth, prefix, children };
}

/** Decodes a proof strictly and checks it is internally consistent; throws ProofError if not. */
export function decodeProof(bytes: Uint8Array): DecodedProof {
  if (!(bytes instanceof Uint8Array)) throw new InvalidInputError('a proof must be a Uint8Array');
  if (bytes.length < 35) throw new ProofError('cut short before its node count');
  if (bytes[0] !== LEDGER_PROOF_VERSION) throw new ProofError(`unsupported version ${bytes[0]}`);
  const kind = bytes[1];
  if (kind !== KIND_INCLUSION && kind !== KIND_NON_INCLUSION) throw new ProofError('unknown kind');
  const path = bytes.subarray(2, 34);
  const n = bytes[34] ?? 0;
  let o = 35;
  let root: Uint8Array = new Uint8Array(32);
  let expected: Uint8Array | undefined;
  let parent: Node | undefined;
  let end: Absence | 'present' = 'empty-trie';
  let leaf: Node | undefined;
  for (let i = 1; i <= n; i++) {
    const node = parseNode(bytes, o, i);
    o = node.end;
    if (i === 1) root = node.hash;
    else if (!expected || !bytesEqual(node.hash, expected)) {
      throw new ProofError(`node ${i} does not hash to the child hash its parent holds`);
    }
    if (parent !== undefined) {
      const slot = digit(path, parent.depth);
      if (
        !(
          node.depth > parent.depth &&
          samePrefix(node.prefix, parent.prefix, parent.depth) &&
          digit(node.prefix, parent.depth) === slot
        )
      ) {
        throw new ProofError(`node ${i} does not belong where its parent puts it`);
      }
    }
    parent = undefined;
    if (node.children === undefined) {
      leaf = node;
      end = bytesEqual(node.prefix, path) ? 'present' : 'other-leaf';
    } else if (!samePrefix(path, node.prefix, node.depth)) {
      end = 'prefix-diverges';
    } else {
      expected = node.children[digit(path, node.depth)];
      if (expected === undefined) end = 'empty-slot';
      else parent = node;
    }
    if (parent === undefined && i < n) throw new ProofError('nodes after the end of the walk');
  }
  if (parent !== undefined) throw new ProofError('the walk stops before a leaf or an empty slot');
  if (kind === KIND_INCLUSION) {
    if (end !== 'present' || !leaf?.kc || !leaf.vc) {
      throw new ProofError('an inclusion proof must end at the leaf of its path');
    }
    if (bytes.length !== o + 32)
      throw new ProofError('an inclusion proof ends with exactly a 32-byte salt');
    const salt = bytes.subarray(o, o + 32);
    return {
      kind: 'inclusion',
      path,
      root,
      keyCommitment: leaf.kc,
      valueCommitment: leaf.vc,
      salt,
    };
  }
  if (end === 'present') throw new ProofError('a non-inclusion proof ends at the leaf of its path');
  if (bytes.length !== o) throw new ProofError('bytes after the last node');
  return { kind: 'non-inclusion', path, root, absence: end };
}

function checkHash(x: unknown, what: string): asserts x is Uint8Array {
  if (!(x instanceof Uint8Array) || x.length !== 32)
    throw new InvalidInputError(`${what} must be 32 bytes`);
}

/**
 * Does `proof` show that the table with root `root` maps `key` (whose path is `path`) to
 * `value`? Throws ProofError for a malformed proof; see the module comment.
 */
export function verifyInclusion(
  root: Uint8Array,
  path: Uint8Array,
  proof: Uint8Array,
  key: Uint8Array,
  value: Uint8Array,
): ProofVerdict {
  checkHash(root, 'root');
  checkHash(path, 'path');
  if (!(key instanceof Uint8Array) || !(value instanceof Uint8Array)) {
    throw new InvalidInputError('key and value must be Uint8Arrays');
  }
  const d = decodeProof(proof);
  if (!bytesEqual(d.path, path)) return { ok: false, reason: 'path-mismatch' };
  if (!bytesEqual(d.root, root)) return { ok: false, reason: 'root-mismatch' };
  if (d.kind !== 'inclusion' || !d.salt || !d.keyCommitment || !d.valueCommitment) {
    return { ok: false, reason: 'key-absent' };
  }
  if (!bytesEqual(keyCommitment(d.salt, key), d.keyCommitment))
    return { ok: false, reason: 'key-mismatch' };
  if (!bytesEqual(valueCommitment(d.salt, value), d.valueCommitment)) {
    return { ok: false, reason: 'value-mismatch' };
  }
  return { ok: true };
}

/** Does `proof` show that the table with root `root` holds nothing at `path`? */
export function verifyNonInclusion(
  root: Uint8Array,
  path: Uint8Array,
  proof: Uint8Array,
): ProofVerdict {
  checkHash(root, 'root');
  checkHash(path, 'path');
  const d = decodeProof(proof);
  if (!bytesEqual(d.path, path)) return { ok: false, reason: 'path-mismatch' };
  if (!bytesEqual(d.root, root)) return { ok: false, reason: 'root-mismatch' };
  if (d.kind === 'inclusion') return { ok: false, reason: 'key-present' };
  return { ok: true };
}
