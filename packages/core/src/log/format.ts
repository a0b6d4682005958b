/**
 * The entry codec of the logchain (docs/receipts.md §2-§3): entries, their meta, and leaf inputs.
 * Everything is deterministic CBOR (cbor.ts), so every value has exactly one encoding, and every
 * decoder here is strict: what it accepts re-encodes to the same bytes; an unknown key, a wrong
 * length or a wrong version is a LogFormatError that says what is wrong.
 *
 * The other logchain formats live beside it: the one-pass entry hashing of writers and readers in
 * entry-hashes.ts, claims, signature and endorsement payloads in payloads.ts, transaction ids in
 * txid.ts; the checks they share in format-checks.ts.
 */
import { bytesEqual } from '../bytes.js';
import { encodeCbor } from '../cbor.js';
import { InvalidInputError } from '../errors.js';
import { sha256 } from '../hash.js';
import { LogFormatError } from './errors.js';
import {
  array,
  bytes,
  claimsField,
  decodeStrict,
  type Fail,
  formatFail,
  inputFail,
  positive,
  publicKey,
  uint,
} from './format-checks.js';
import { defaultSha256, type Sha256 } from './merkle.js';

/** Entry format version (first element of the entry array). */
export const ENTRY_VERSION = 1;

/**
 * The term of every entry until consensus lands (DESIGN.md §11): one service, one term. Restart
 * verification and the offline audit refuse any other; receipts and txids carry it.
 */
export const LOG_TERM = 1;

/** Namespace byte of log entries in the node's store (docs/logchain.md §1). */
export const STORE_NAMESPACE_LOG = 0x02;

/** The store key of log entry `index`: 0x02 ‖ u64be(index) (docs/logchain.md §1). */
export function logStoreKey(index: number): Uint8Array {
  const out = new Uint8Array(9);
  out[0] = STORE_NAMESPACE_LOG;
  new DataView(out.buffer).setBigUint64(1, BigInt(index), false);
  return out;
}

/**
 * The index of a well-formed entry key (9 bytes, 0x02 first, an index of at most 2^53 - 1);
 * undefined for any other key. Restart verification and `cloister log audit` read keys with it.
 */
export function indexOfKey(key: Uint8Array): number | undefined {
  if (key.length !== 9 || key[0] !== STORE_NAMESPACE_LOG) return undefined;
  const hi =
    (key[1] as number) * 0x1000000 +
    (((key[2] as number) << 16) | ((key[3] as number) << 8) | (key[4] as number));
  const lo =
    (key[5] as number) * 0x1000000 +
    (((key[6] as number) << 16) | ((key[7] as number) << 8) | (key[8] as number));
  // Above 2^53 - 1 (hi >= 2^21) an index is not a safe integer.
  return hi >= 0x200000 ? undefined : hi * 0x100000000 + lo;
}

export const ENTRY_KIND = { genesis: 1, transaction: 2, signature: 3, rotation: 4 } as const;
export type EntryKind = (typeof ENTRY_KIND)[keyof typeof ENTRY_KIND];

/**
 * Public metadata of an entry (text keys in CBOR, exactly these):
 * - gen: secret generation of writeSet; present iff writeSet is non-empty;
 * - size: plaintext write-set bytes (optional);
 * - app: app id (transaction entries only, optional);
 * - svc, end, ev: genesis only and required there: service public key (65-byte SEC1), the service
 *   endorsement COSE_Sign1, the node's evidence;
 * - rot: rotation entries only and required there: the new secret generation.
 */
export interface EntryMeta {
  gen?: number;
  size?: number;
  app?: string;
  svc?: Uint8Array;
  end?: Uint8Array;
  ev?: Uint8Array;
  rot?: number;
}

/** One log entry: CBOR `[1, term, index, prev, kind, meta, writeSet, claims, sig]`. */
export interface LogEntry {
  term: number;
  index: number;
  /** entryHash of entry index-1; 32 zero bytes for index 1. */
  prev: Uint8Array;
  kind: EntryKind;
  meta: EntryMeta;
  /** Encrypted write set, opaque here; may be empty. */
  writeSet: Uint8Array;
  /** Salted claims digest (32 bytes) or empty. */
  claims: Uint8Array;
  /** Empty except for kind 3: the signature COSE_Sign1. */
  sig: Uint8Array;
}

/** The fields of a leaf input: the receipt's "entry" array, in this order. */
export interface LeafFields {
  term: number;
  index: number;
  kind: EntryKind;
  /** SHA-256(CBOR(meta)). */
  metaDigest: Uint8Array;
  /** SHA-256(writeSet). */
  writeSetDigest: Uint8Array;
  /** As in the entry: 32 bytes or empty. */
  claims: Uint8Array;
}

const ZERO32 = new Uint8Array(32);
const KINDS: ReadonlySet<number> = new Set(Object.values(ENTRY_KIND));
const META_KEYS: ReadonlySet<string> = new Set(['gen', 'size', 'app', 'svc', 'end', 'ev', 'rot']);

function kindOf(v: unknown, fail: Fail): EntryKind {
  if (typeof v !== 'number' || !KINDS.has(v)) throw fail('entry kind must be 1, 2, 3 or 4');
  return v as EntryKind;
}

// ---- meta ---------------------------------------------------------------------------------------

/** Checks meta against the entry's kind and write set (every rule of docs/receipts.md §2). */
function checkMeta(meta: EntryMeta, kind: EntryKind, writeSet: Uint8Array, fail: Fail): void {
  if (typeof meta !== 'object' || meta === null) throw fail('meta must be a map');
  // Own enumerable keys, in order; a key whose value is undefined is absent.
  let present = 0;
  for (const k in meta) {
    if (!Object.hasOwn(meta, k) || (meta as Record<string, unknown>)[k] === undefined) continue;
    if (!META_KEYS.has(k)) throw fail(`meta has an unknown key "${k}"`);
    present++;
  }
  const own = (k: keyof EntryMeta): unknown => (Object.hasOwn(meta, k) ? meta[k] : undefined);
  const gen = own('gen');
  const size = own('size');
  const rot = own('rot');
  const app = own('app');
  const svc = own('svc');
  const end = own('end');
  const ev = own('ev');
  if (gen !== undefined) uint(gen, 'meta.gen', fail);
  if (size !== undefined) uint(size, 'meta.size', fail);
  if (rot !== undefined) uint(rot, 'meta.rot', fail);
  if (app !== undefined && typeof app !== 'string') throw fail('meta.app must be text');
  if ((gen !== undefined) !== writeSet.length > 0) {
    throw fail('meta.gen must be present exactly when the write set is non-empty');
  }
  if ((size !== undefined) !== (gen !== undefined)) {
    throw fail('meta.size must be present exactly when meta.gen is');
  }
  const genesis = kind === ENTRY_KIND.genesis;
  const only = (k: string): Error =>
    fail(genesis ? `genesis meta must have "${k}"` : `meta.${k} is for genesis entries only`);
  if ((svc !== undefined) !== genesis) throw only('svc');
  if ((end !== undefined) !== genesis) throw only('end');
  if ((ev !== undefined) !== genesis) throw only('ev');
  if (genesis) {
    publicKey(svc, 'meta.svc', fail);
    bytes(end, 'meta.end', fail);
    bytes(ev, 'meta.ev', fail);
  }
  if ((rot !== undefined) !== (kind === ENTRY_KIND.rotation)) {
    throw fail(
      kind === ENTRY_KIND.rotation
        ? 'rotation meta must have "rot"'
        : 'meta.rot is for rotation entries only',
    );
  }
  if (app !== undefined && kind !== ENTRY_KIND.transaction)
    throw fail('meta.app is for transaction entries only');
  if (kind === ENTRY_KIND.signature && present !== 0)
    throw fail('signature entries have empty meta');
}

/** A checked meta as the map of its present keys (the CBOR encoder sorts them). */
function metaMap(meta: EntryMeta): Map<string, unknown> {
  const out = new Map<string, unknown>();
  for (const k in meta) {
    const v = (meta as Record<string, unknown>)[k];
    if (Object.hasOwn(meta, k) && v !== undefined) out.set(k, v);
  }
  return out;
}

export function metaBytes(meta: EntryMeta): Uint8Array {
  return encodeCbor(metaMap(meta));
}

// ---- entries ------------------------------------------------------------------------------------

export function checkEntry(e: LogEntry, fail: Fail): void {
  if (typeof e !== 'object' || e === null) throw fail('an entry must be an object');
  positive(e.term, 'entry term', fail);
  positive(e.index, 'entry index', fail);
  bytes(e.prev, 'entry prev', fail, 32);
  if (e.index === 1 && !bytesEqual(e.prev, ZERO32))
    throw fail('entry 1 must have prev = 32 zero bytes');
  const kind = kindOf(e.kind, fail);
  bytes(e.writeSet, 'entry writeSet', fail);
  claimsField(e.claims, 'entry claims', fail);
  bytes(e.sig, 'entry sig', fail);
  if (kind === ENTRY_KIND.signature) {
    if (e.sig.length === 0) throw fail('a signature entry must carry its signature');
  } else if (e.sig.length !== 0) {
    throw fail('only signature entries carry a signature');
  }
  // Only a transaction changes the ledger or answers a client.
  if (kind !== ENTRY_KIND.transaction) {
    const what =
      kind === ENTRY_KIND.signature
        ? 'a signature'
        : kind === ENTRY_KIND.genesis
          ? 'a genesis'
          : 'a rotation';
    if (e.writeSet.length !== 0) throw fail(`${what} entry has an empty write set`);
    if (e.claims.length !== 0) throw fail(`${what} entry has empty claims`);
  }
  checkMeta(e.meta, kind, e.writeSet, fail);
}

/** Encodes an entry; InvalidInputError when it breaks a rule decodeEntry enforces. */
export function encodeEntry(e: LogEntry): Uint8Array {
  checkEntry(e, inputFail);
  const meta = metaMap(e.meta);
  return encodeCbor([
    ENTRY_VERSION,
    e.term,
    e.index,
    e.prev,
    e.kind,
    meta,
    e.writeSet,
    e.claims,
    e.sig,
  ]);
}

/** Decodes an entry strictly (LogFormatError). The arrays returned are fresh copies. */
export function decodeEntry(b: Uint8Array): LogEntry {
  const v = decodeStrict(b, 'log entry');
  if (!Array.isArray(v) || v.length === 0)
    throw new LogFormatError('a log entry must be a CBOR array');
  if (v[0] !== ENTRY_VERSION) {
    throw new LogFormatError(`log entry version ${String(v[0])} is not supported (this reader: 1)`);
  }
  const [, term, index, prev, kind, rawMeta, writeSet, claims, sig] = array(v, 9, 'a log entry');
  if (!(rawMeta instanceof Map)) throw new LogFormatError('entry meta must be a CBOR map');
  const meta: EntryMeta = {};
  for (const [k, val] of rawMeta) {
    if (typeof k !== 'string') throw new LogFormatError('entry meta keys must be text');
    if (!META_KEYS.has(k)) throw new LogFormatError(`entry meta has an unknown key "${k}"`);
    (meta as Record<string, unknown>)[k] = val;
  }
  const e = { term, index, prev, kind, meta, writeSet, claims, sig } as LogEntry;
  checkEntry(e, formatFail);
  return e;
}

/** SHA-256 of the entry's CBOR bytes: what the next entry's prev holds. */
export function entryHash(bytes: Uint8Array, hash: Sha256 = defaultSha256): Uint8Array {
  if (!(bytes instanceof Uint8Array)) throw new InvalidInputError('entry bytes must be bytes');
  return hash(bytes);
}

// ---- leaf input -----------------------------------------------------------------------------------

/** The leaf fields of an entry: metaDigest and writeSetDigest computed from the public entry. */
export function leafFields(e: LogEntry): LeafFields {
  checkEntry(e, inputFail);
  return {
    term: e.term,
    index: e.index,
    kind: e.kind,
    metaDigest: sha256(metaBytes(e.meta)),
    writeSetDigest: sha256(e.writeSet),
    claims: e.claims,
  };
}

/** The leaf fields as the CBOR array `[term, index, kind, metaDigest, writeSetDigest, claims]`. */
export function leafArray(f: LeafFields): unknown[] {
  positive(f.term, 'leaf term', inputFail);
  positive(f.index, 'leaf index', inputFail);
  kindOf(f.kind, inputFail);
  bytes(f.metaDigest, 'leaf metaDigest', inputFail, 32);
  bytes(f.writeSetDigest, 'leaf writeSetDigest', inputFail, 32);
  claimsField(f.claims, 'leaf claims', inputFail);
  return [f.term, f.index, f.kind, f.metaDigest, f.writeSetDigest, f.claims];
}

/** Parses the leaf array (from a receipt) strictly; LogFormatError. */
export function parseLeafArray(v: unknown): LeafFields {
  const [term, index, kind, metaDigest, writeSetDigest, claims] = array(v, 6, 'a leaf input');
  return {
    term: positive(term, 'leaf term', formatFail),
    index: positive(index, 'leaf index', formatFail),
    kind: kindOf(kind, formatFail),
    metaDigest: bytes(metaDigest, 'leaf metaDigest', formatFail, 32),
    writeSetDigest: bytes(writeSetDigest, 'leaf writeSetDigest', formatFail, 32),
    claims: claimsField(claims, 'leaf claims', formatFail),
  };
}

/** The leaf input bytes: CBOR `[term, index, kind, SHA-256(CBOR(meta)), SHA-256(writeSet), claims]`. */
export function encodeLeafInput(f: LeafFields): Uint8Array {
  return encodeCbor(leafArray(f));
}

/** leafInput of an entry (computable from the public entry alone). */
export function leafInput(e: LogEntry): Uint8Array {
  return encodeLeafInput(leafFields(e));
}
