/**
 * Byte formats of the logchain (docs/receipts.md): entries, leaf inputs, claims digests, signature
 * and endorsement payloads, transaction ids. Everything is deterministic CBOR (cbor.ts), so every
 * value has exactly one encoding, and every decoder here is strict: what it accepts re-encodes to
 * the same bytes; an unknown key, a wrong length or a wrong version is a LogFormatError that says
 * what is wrong.
 */
import { bytesEqual } from '../bytes.js';
import { decodeCbor, encodeCbor } from '../cbor.js';
import { EncodingError, InvalidInputError } from '../errors.js';
import { sha256 } from '../hash.js';
import { LogFormatError } from './errors.js';
import { leafHash } from './merkle.js';

/** Entry format version (first element of the entry array). */
export const ENTRY_VERSION = 1;

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

export interface Claims {
  /** 32 random bytes, kept by the client: without it the digest reveals nothing. */
  salt: Uint8Array;
  request: Uint8Array;
  response: Uint8Array;
  codeId: Uint8Array;
}

export interface SignaturePayload {
  term: number;
  /** Tree size signed: s - 1 for the signature entry at index s. */
  size: number;
  treeRoot: Uint8Array;
  stateHash: Uint8Array;
}

export const SIGNATURE_LABEL = 'cloister/signature/v1';
export const ENDORSEMENT_LABEL = 'cloister/endorsement/v1';
export const CLAIMS_LABEL = 'cloister/claims/v1';

const ZERO32 = new Uint8Array(32);
const KINDS: ReadonlySet<number> = new Set(Object.values(ENTRY_KIND));
const META_KEYS: ReadonlySet<string> = new Set(['gen', 'size', 'app', 'svc', 'end', 'ev', 'rot']);

// ---- small checks -----------------------------------------------------------------------------

type Fail = (message: string) => Error;
const formatFail: Fail = (m) => new LogFormatError(m);
const inputFail: Fail = (m) => new InvalidInputError(m);

function uint(v: unknown, what: string, fail: Fail): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) {
    throw fail(`${what} must be an unsigned integer`);
  }
  return v;
}

function positive(v: unknown, what: string, fail: Fail): number {
  const n = uint(v, what, fail);
  if (n === 0) throw fail(`${what} must be at least 1`);
  return n;
}

function bytes(v: unknown, what: string, fail: Fail, length?: number): Uint8Array {
  if (!(v instanceof Uint8Array)) throw fail(`${what} must be a byte string`);
  if (length !== undefined && v.length !== length) {
    throw fail(`${what} must be ${length} bytes, not ${v.length}`);
  }
  return v;
}

function publicKey(v: unknown, what: string, fail: Fail): Uint8Array {
  const k = bytes(v, what, fail, 65);
  if (k[0] !== 0x04) throw fail(`${what} must be an uncompressed P-256 point (first byte 04)`);
  return k;
}

function claimsField(v: unknown, what: string, fail: Fail): Uint8Array {
  const c = bytes(v, what, fail);
  if (c.length !== 0 && c.length !== 32)
    throw fail(`${what} must be 32 bytes or empty, not ${c.length}`);
  return c;
}

function kindOf(v: unknown, fail: Fail): EntryKind {
  if (typeof v !== 'number' || !KINDS.has(v)) throw fail('entry kind must be 1, 2, 3 or 4');
  return v as EntryKind;
}

function decodeStrict(b: Uint8Array, what: string): unknown {
  if (!(b instanceof Uint8Array)) throw new InvalidInputError(`${what} must be bytes`);
  try {
    return decodeCbor(b);
  } catch (e) {
    if (e instanceof EncodingError) throw new LogFormatError(`${what}: ${e.message}`, { cause: e });
    throw e;
  }
}

function array(v: unknown, length: number, what: string): unknown[] {
  if (!Array.isArray(v)) throw new LogFormatError(`${what} must be a CBOR array`);
  if (v.length !== length) {
    throw new LogFormatError(`${what} must have ${length} elements, not ${v.length}`);
  }
  return v;
}

// ---- meta ---------------------------------------------------------------------------------------

/** Checks meta against the entry's kind and write set; returns the ordered map to encode. */
function checkMeta(
  meta: EntryMeta,
  kind: EntryKind,
  writeSet: Uint8Array,
  fail: Fail,
): Map<string, unknown> {
  if (typeof meta !== 'object' || meta === null) throw fail('meta must be a map');
  const out = new Map<string, unknown>();
  for (const [k, v] of Object.entries(meta)) {
    if (v === undefined) continue;
    if (!META_KEYS.has(k)) throw fail(`meta has an unknown key "${k}"`);
    out.set(k, v);
  }
  const has = (k: string): boolean => out.has(k);
  if (has('gen')) uint(out.get('gen'), 'meta.gen', fail);
  if (has('size')) uint(out.get('size'), 'meta.size', fail);
  if (has('rot')) uint(out.get('rot'), 'meta.rot', fail);
  if (has('app') && typeof out.get('app') !== 'string') throw fail('meta.app must be text');
  if (has('gen') !== writeSet.length > 0) {
    throw fail('meta.gen must be present exactly when the write set is non-empty');
  }
  const genesis = kind === ENTRY_KIND.genesis;
  for (const k of ['svc', 'end', 'ev']) {
    if (has(k) !== genesis) {
      throw fail(
        genesis ? `genesis meta must have "${k}"` : `meta.${k} is for genesis entries only`,
      );
    }
  }
  if (genesis) {
    publicKey(out.get('svc'), 'meta.svc', fail);
    bytes(out.get('end'), 'meta.end', fail);
    bytes(out.get('ev'), 'meta.ev', fail);
  }
  if (has('rot') !== (kind === ENTRY_KIND.rotation)) {
    throw fail(
      kind === ENTRY_KIND.rotation
        ? 'rotation meta must have "rot"'
        : 'meta.rot is for rotation entries only',
    );
  }
  if (has('app') && kind !== ENTRY_KIND.transaction)
    throw fail('meta.app is for transaction entries only');
  if (kind === ENTRY_KIND.signature && out.size !== 0)
    throw fail('signature entries have empty meta');
  return out;
}

function metaBytes(meta: Map<string, unknown>): Uint8Array {
  return encodeCbor(meta);
}

// ---- entries ------------------------------------------------------------------------------------

function checkEntry(e: LogEntry, fail: Fail): Map<string, unknown> {
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
    if (e.writeSet.length !== 0) throw fail('a signature entry has an empty write set');
    if (e.claims.length !== 0) throw fail('a signature entry has empty claims');
  } else if (e.sig.length !== 0) {
    throw fail('only signature entries carry a signature');
  }
  return checkMeta(e.meta, kind, e.writeSet, fail);
}

/** Encodes an entry; InvalidInputError when it breaks a rule decodeEntry enforces. */
export function encodeEntry(e: LogEntry): Uint8Array {
  const meta = checkEntry(e, inputFail);
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
export function entryHash(bytes: Uint8Array): Uint8Array {
  if (!(bytes instanceof Uint8Array)) throw new InvalidInputError('entry bytes must be bytes');
  return sha256(bytes);
}

// ---- leaf input -----------------------------------------------------------------------------------

/** The leaf fields of an entry: metaDigest and writeSetDigest computed from the public entry. */
export function leafFields(e: LogEntry): LeafFields {
  const meta = checkEntry(e, inputFail);
  return {
    term: e.term,
    index: e.index,
    kind: e.kind,
    metaDigest: sha256(metaBytes(meta)),
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

/** leafHash(leafInput(e)): the Merkle leaf of the entry. */
export function entryLeafHash(e: LogEntry): Uint8Array {
  return leafHash(leafInput(e));
}

// ---- claims, signature, endorsement -------------------------------------------------------------

/** SHA-256(CBOR `["cloister/claims/v1", salt(32), request, response, codeId]`). */
export function claimsDigest(c: Claims): Uint8Array {
  if (typeof c !== 'object' || c === null) throw new InvalidInputError('claims must be an object');
  bytes(c.salt, 'claims salt', inputFail, 32);
  bytes(c.request, 'claims request', inputFail);
  bytes(c.response, 'claims response', inputFail);
  bytes(c.codeId, 'claims codeId', inputFail);
  return sha256(encodeCbor([CLAIMS_LABEL, c.salt, c.request, c.response, c.codeId]));
}

/** CBOR `["cloister/signature/v1", term, size, treeRoot(32), stateHash(32)]`: what the service signs. */
export function signaturePayload(p: SignaturePayload): Uint8Array {
  positive(p.term, 'signature term', inputFail);
  uint(p.size, 'signature size', inputFail);
  bytes(p.treeRoot, 'signature treeRoot', inputFail, 32);
  bytes(p.stateHash, 'signature stateHash', inputFail, 32);
  return encodeCbor([SIGNATURE_LABEL, p.term, p.size, p.treeRoot, p.stateHash]);
}

/** Strict decoder of signaturePayload; LogFormatError. */
export function decodeSignaturePayload(b: Uint8Array): SignaturePayload {
  const [label, term, size, treeRoot, stateHash] = array(
    decodeStrict(b, 'signature payload'),
    5,
    'a signature payload',
  );
  if (label !== SIGNATURE_LABEL)
    throw new LogFormatError(`signature payload label must be "${SIGNATURE_LABEL}"`);
  return {
    term: positive(term, 'signature term', formatFail),
    size: uint(size, 'signature size', formatFail),
    treeRoot: bytes(treeRoot, 'signature treeRoot', formatFail, 32),
    stateHash: bytes(stateHash, 'signature stateHash', formatFail, 32),
  };
}

/** CBOR `["cloister/endorsement/v1", servicePublicKey(65), nodePublicKey(65)]`: what the node signs. */
export function endorsementPayload(
  servicePublicKey: Uint8Array,
  nodePublicKey: Uint8Array,
): Uint8Array {
  publicKey(servicePublicKey, 'service public key', inputFail);
  publicKey(nodePublicKey, 'node public key', inputFail);
  return encodeCbor([ENDORSEMENT_LABEL, servicePublicKey, nodePublicKey]);
}

/** Strict decoder of endorsementPayload; LogFormatError. */
export function decodeEndorsementPayload(b: Uint8Array): {
  servicePublicKey: Uint8Array;
  nodePublicKey: Uint8Array;
} {
  const [label, svc, node] = array(
    decodeStrict(b, 'endorsement payload'),
    3,
    'an endorsement payload',
  );
  if (label !== ENDORSEMENT_LABEL) {
    throw new LogFormatError(`endorsement payload label must be "${ENDORSEMENT_LABEL}"`);
  }
  return {
    servicePublicKey: publicKey(svc, 'endorsed service key', formatFail),
    nodePublicKey: publicKey(node, 'endorsing node key', formatFail),
  };
}

/** The nonce the node's evidence answers: SHA-256(CBOR `["cloister/endorsement/v1", servicePublicKey]`). */
export function endorsementNonce(servicePublicKey: Uint8Array): Uint8Array {
  publicKey(servicePublicKey, 'service public key', inputFail);
  return sha256(encodeCbor([ENDORSEMENT_LABEL, servicePublicKey]));
}

/** Service identity hash: SHA-256(servicePublicKey, SEC1 uncompressed, 65 bytes). */
export function serviceIdentity(servicePublicKey: Uint8Array): Uint8Array {
  publicKey(servicePublicKey, 'service public key', inputFail);
  return sha256(servicePublicKey);
}

// ---- transaction ids ----------------------------------------------------------------------------

/** "term.index", e.g. "1.42". */
export function formatTxid(term: number, index: number): string {
  positive(term, 'term', inputFail);
  positive(index, 'index', inputFail);
  return `${term}.${index}`;
}

/** Parses "term.index" (decimal, no leading zeros, both >= 1); InvalidInputError. */
export function parseTxid(s: string): { term: number; index: number } {
  const m = typeof s === 'string' ? /^([1-9][0-9]{0,15})\.([1-9][0-9]{0,15})$/.exec(s) : null;
  if (m === null) {
    throw new InvalidInputError(
      'a transaction id is "term.index" with decimal integers >= 1, e.g. "1.42"',
    );
  }
  const term = Number(m[1]);
  const index = Number(m[2]);
  if (!Number.isSafeInteger(term) || !Number.isSafeInteger(index)) {
    throw new InvalidInputError('a transaction id term and index must be at most 2^53 - 1');
  }
  return { term, index };
}
