/**
 * Offline verification of state proofs (docs/ledger-format.md §11): that under a state hash the
 * ledger `ledger` has a table `table` that maps `key` to `value` (or holds no live value for it),
 * through three trie proofs — admin trie, the ledger's catalogue, the table — each checked by the
 * trie proof verifier of proof.ts. Isomorphic: no Node built-ins (browsers too).
 *
 *   stateProof = 0x01 ‖ n:u8 (1..3) ‖ (u32be(len) ‖ trieProof) × n ‖ [u32be(len) ‖ versionRecord]
 *   versionRecord = 0x01 ‖ kind (0x01 set, 0x02 removed) ‖ u64be(index) ‖ u64be(prev) ‖ [value]
 *   admin leaf:     key = ledger id (UTF-8),  value = 0x01 ‖ catalogue root
 *   catalogue leaf: key = table name (UTF-8), value = 0x01 ‖ table root
 *
 * Like proof.ts, a proof that no honest node could have produced throws ProofError; a
 * well-formed proof that does not support the claim returns `{ ok: false, reason }`.
 * What it cannot check: that each level's path is the HMAC of its key under the enclave's path
 * keys (so "no leaf at this path" means "absent" only on the enclave's word), and that the state
 * hash is a committed state of a given node (signature entries sign state hashes, receipts.md §4;
 * an app binds the one its proof is against to a result its receipt proves, app-abi.md §8).
 */
import { bytesEqual, concatBytes, utf8 } from '../bytes.js';
import { InvalidInputError } from '../errors.js';
import { type DecodedProof, decodeProof, ProofError, verifyInclusion } from './proof.js';

const FORMAT = 0x01;
const SET = 0x01;
const REMOVED = 0x02;
const RECORD_HEADER = 18;

export type StateProofMismatch =
  | 'root-mismatch'
  | 'ledger-mismatch'
  | 'table-mismatch'
  | 'key-mismatch'
  | 'key-absent'
  | 'key-present'
  | 'value-mismatch';

export type StateProofVerdict =
  | {
      readonly ok: true;
      /** Whether the key has a live value. */
      readonly present: boolean;
      /** The commit index that wrote the key's current version, when it ever had one. */
      readonly index?: number;
    }
  | { readonly ok: false; readonly reason: StateProofMismatch };

export interface StateClaim {
  readonly ledger: string;
  readonly table: string;
  readonly key: Uint8Array;
  /** The value claimed; absent: the claim is that the key has no live value. */
  readonly value?: Uint8Array;
}

export interface DecodedStateProof {
  /** Trie proofs: admin, then catalogue, then table (1 to 3). */
  readonly levels: readonly Uint8Array[];
  /** The table leaf's version record, iff the table proof is an inclusion. */
  readonly record?: Uint8Array;
}

function u32(b: Uint8Array, o: number): number {
  return (
    (((b[o] ?? 0) << 24) | ((b[o + 1] ?? 0) << 16) | ((b[o + 2] ?? 0) << 8) | (b[o + 3] ?? 0)) >>> 0
  );
}

/** A state proof's parts with each level's trie proof decoded (parseStateProof). */
interface ParsedStateProof extends DecodedStateProof {
  readonly decoded: readonly DecodedProof[];
}

/**
 * Splits a state proof into its parts and checks its shape before anything is compared with a
 * claim or a state hash: 1 to 3 levels, each a trie proof filling its part exactly; every level
 * but the last an inclusion (a walk goes on only through a leaf); a walk of fewer than 3 levels
 * ends in a non-inclusion; the version record present iff the table level is an inclusion; nothing
 * after. So one honest proof has one accepted encoding, and a record the walk does not reach
 * cannot ride along.
 */
function parseStateProof(bytes: Uint8Array): ParsedStateProof {
  if (!(bytes instanceof Uint8Array))
    throw new InvalidInputError('a state proof must be a Uint8Array');
  if (bytes.length < 2 || bytes[0] !== FORMAT)
    throw new ProofError('not a state proof of format 1');
  const n = bytes[1] ?? 0;
  if (n < 1 || n > 3) throw new ProofError('a state proof has 1 to 3 levels');
  const parts: Uint8Array[] = [];
  let o = 2;
  while (o < bytes.length) {
    if (bytes.length < o + 4) throw new ProofError('a state proof part is cut short');
    const len = u32(bytes, o);
    if (bytes.length < o + 4 + len) throw new ProofError('a state proof part is cut short');
    parts.push(bytes.subarray(o + 4, o + 4 + len));
    o += 4 + len;
  }
  if (parts.length !== n && parts.length !== n + 1) throw new ProofError('wrong number of parts');
  const levels = parts.slice(0, n);
  const decoded = levels.map((l) => decodeProof(l));
  for (let i = 0; i < n - 1; i++) {
    if ((decoded[i] as DecodedProof).kind !== 'inclusion') {
      throw new ProofError('parts after the walk ended: a level after a non-inclusion');
    }
  }
  const lastKind = (decoded[n - 1] as DecodedProof).kind;
  if (n < 3 && lastKind !== 'non-inclusion') {
    throw new ProofError(`the walk stops at level ${n} on a leaf: level ${n + 1} is missing`);
  }
  const record = parts[n];
  const wantsRecord = n === 3 && lastKind === 'inclusion';
  if (wantsRecord && record === undefined) throw new ProofError('the version record is missing');
  if (!wantsRecord && record !== undefined) {
    throw new ProofError('parts after the walk ended: a version record after a non-inclusion');
  }
  return { levels, decoded, ...(record ? { record } : {}) };
}

/**
 * Splits a state proof into its parts, strictly (parseStateProof: its shape is checked, nothing
 * missing, nothing after). Throws ProofError; checks no hash.
 */
export function decodeStateProof(bytes: Uint8Array): DecodedStateProof {
  const { levels, record } = parseStateProof(bytes);
  return { levels, ...(record ? { record } : {}) };
}

function rootValue(root: Uint8Array): Uint8Array {
  return concatBytes(Uint8Array.of(FORMAT), root);
}

/** The u64be at `o`, or undefined above 2^53 - 1 (a commit index is a safe integer). */
function readU64(b: Uint8Array, o: number): number | undefined {
  let n = 0;
  for (let i = 0; i < 8; i++) n = n * 256 + (b[o + i] ?? 0);
  return Number.isSafeInteger(n) ? n : undefined;
}

/** Checks that `inner` is the trie the leaf of `outer` points at, for `key`. */
function link(
  root: Uint8Array,
  outerBytes: Uint8Array,
  outer: DecodedProof,
  key: Uint8Array,
  inner: DecodedProof,
): 'ok' | 'key-mismatch' {
  const v = verifyInclusion(root, outer.path, outerBytes, key, rootValue(inner.root));
  if (v.ok) return 'ok';
  if (v.reason === 'key-mismatch') return 'key-mismatch';
  throw new ProofError(`a level does not point at the next level's root (${v.reason})`);
}

/** Does `proof` show `claim` under `stateHash`? See the module comment. */
export function verifyStateProof(
  stateHash: Uint8Array,
  claim: StateClaim,
  proof: Uint8Array,
): StateProofVerdict {
  if (!(stateHash instanceof Uint8Array) || stateHash.length !== 32) {
    throw new InvalidInputError('a state hash must be 32 bytes');
  }
  if (typeof claim !== 'object' || claim === null) {
    throw new InvalidInputError('the claim is { ledger, table, key, value? }');
  }
  if (typeof claim.ledger !== 'string' || typeof claim.table !== 'string') {
    throw new InvalidInputError('the claim names its ledger and table as strings');
  }
  if (!(claim.key instanceof Uint8Array))
    throw new InvalidInputError('the key must be a Uint8Array');
  if (claim.value !== undefined && !(claim.value instanceof Uint8Array)) {
    throw new InvalidInputError('the value, when claimed, must be a Uint8Array');
  }
  const claimsAbsent = claim.value === undefined;
  const absent = (): StateProofVerdict =>
    claimsAbsent ? { ok: true, present: false } : { ok: false, reason: 'key-absent' };
  const { levels, decoded, record } = parseStateProof(proof);
  const [adminBytes, catBytes, tableBytes] = levels as [Uint8Array, ...Uint8Array[]];
  const [admin, cat, table] = decoded as [DecodedProof, ...DecodedProof[]];
  if (!bytesEqual(admin.root, stateHash)) return { ok: false, reason: 'root-mismatch' };
  if (admin.kind === 'non-inclusion') return absent();
  if (!cat || !catBytes) throw new ProofError('the catalogue level is missing');
  if (link(stateHash, adminBytes, admin, utf8(claim.ledger), cat) !== 'ok') {
    return { ok: false, reason: 'ledger-mismatch' };
  }
  if (cat.kind === 'non-inclusion') return absent();
  if (!table || !tableBytes) throw new ProofError('the table level is missing');
  if (link(cat.root, catBytes, cat, utf8(claim.table), table) !== 'ok') {
    return { ok: false, reason: 'table-mismatch' };
  }
  if (table.kind === 'non-inclusion') return absent();
  if (!record) throw new ProofError('the version record is missing');
  const v = verifyInclusion(table.root, table.path, tableBytes, claim.key, record);
  if (!v.ok) {
    if (v.reason === 'key-mismatch') return { ok: false, reason: 'key-mismatch' };
    throw new ProofError('the version record does not match the leaf');
  }
  const kind = record[1];
  if (
    record.length < RECORD_HEADER ||
    record[0] !== FORMAT ||
    (kind !== SET && kind !== REMOVED) ||
    (kind === REMOVED && record.length !== RECORD_HEADER)
  ) {
    throw new ProofError('the version record is malformed');
  }
  const index = readU64(record, 2);
  const prev = readU64(record, 10);
  if (index === undefined || prev === undefined) {
    throw new ProofError('the version record holds an index above 2^53 - 1');
  }
  // As the engine reads it (its canonical form): commits are numbered from 1, and a version's
  // previous one (0: none) was written by an earlier commit.
  if (index < 1 || prev >= index) {
    throw new ProofError('the version record is not canonical: index from 1, prev below index');
  }
  if (kind === REMOVED)
    return claimsAbsent ? { ok: true, present: false, index } : { ok: false, reason: 'key-absent' };
  if (claimsAbsent) return { ok: false, reason: 'key-present' };
  if (!bytesEqual(record.subarray(RECORD_HEADER), claim.value as Uint8Array)) {
    return { ok: false, reason: 'value-mismatch' };
  }
  return { ok: true, present: true, index };
}
