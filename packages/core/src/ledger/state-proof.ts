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
 * hash is a committed state of a given node (a signed root or receipt, later issues).
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

/** Splits a state proof into its parts (strict: nothing missing, nothing after). */
export function decodeStateProof(bytes: Uint8Array): DecodedStateProof {
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
  const record = parts[n];
  return { levels: parts.slice(0, n), ...(record ? { record } : {}) };
}

function rootValue(root: Uint8Array): Uint8Array {
  return concatBytes(Uint8Array.of(FORMAT), root);
}

function readU64(b: Uint8Array, o: number): number {
  let n = 0;
  for (let i = 0; i < 8; i++) n = n * 256 + (b[o + i] ?? 0);
  return n;
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
  if (!(claim.key instanceof Uint8Array))
    throw new InvalidInputError('the key must be a Uint8Array');
  const claimsAbsent = claim.value === undefined;
  const absent = (): StateProofVerdict =>
    claimsAbsent ? { ok: true, present: false } : { ok: false, reason: 'key-absent' };
  const { levels, record } = decodeStateProof(proof);
  const [adminBytes, catBytes, tableBytes] = levels;
  const admin = decodeProof(adminBytes as Uint8Array);
  if (!bytesEqual(admin.root, stateHash)) return { ok: false, reason: 'root-mismatch' };
  const last = (i: number): void => {
    if (levels.length !== i || (i < 3 && record))
      throw new ProofError('parts after the walk ended');
  };
  if (admin.kind === 'non-inclusion') {
    last(1);
    return absent();
  }
  if (!catBytes) throw new ProofError('the catalogue level is missing');
  const cat = decodeProof(catBytes);
  if (link(stateHash, adminBytes as Uint8Array, admin, utf8(claim.ledger), cat) !== 'ok') {
    return { ok: false, reason: 'ledger-mismatch' };
  }
  if (cat.kind === 'non-inclusion') {
    last(2);
    return absent();
  }
  if (!tableBytes) throw new ProofError('the table level is missing');
  const table = decodeProof(tableBytes);
  if (link(cat.root, catBytes, cat, utf8(claim.table), table) !== 'ok') {
    return { ok: false, reason: 'table-mismatch' };
  }
  if (table.kind === 'non-inclusion') {
    last(3);
    return absent();
  }
  if (!record) throw new ProofError('the version record is missing');
  const v = verifyInclusion(table.root, table.path, tableBytes, claim.key, record);
  if (!v.ok) {
    if (v.reason === 'key-mismatch') return { ok: false, reason: 'key-mismatch' };
    throw new ProofError('the version record does not match the leaf');
  }
  const kind = record[1];
  if (record.length < RECORD_HEADER || record[0] !== FORMAT || (kind !== SET && kind !== REMOVED)) {
    throw new ProofError('the version record is malformed');
  }
  const index = readU64(record, 2);
  if (kind === REMOVED)
    return claimsAbsent ? { ok: true, present: false, index } : { ok: false, reason: 'key-absent' };
  if (claimsAbsent) return { ok: false, reason: 'key-present' };
  if (!bytesEqual(record.subarray(RECORD_HEADER), claim.value as Uint8Array)) {
    return { ok: false, reason: 'value-mismatch' };
  }
  return { ok: true, present: true, index };
}
