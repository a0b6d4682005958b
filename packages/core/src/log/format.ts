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
import { defaultSha256, type Sha256 } from './merkle.js';

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

function metaBytes(meta: EntryMeta): Uint8Array {
  return encodeCbor(metaMap(meta));
}

// ---- entries ------------------------------------------------------------------------------------

function checkEntry(e: LogEntry, fail: Fail): void {
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

/** leafHash(leafInput(e)): the Merkle leaf of the entry; `hash` defaults to core's SHA-256. */
export function entryLeafHash(e: LogEntry, hash: Sha256 = defaultSha256): Uint8Array {
  checkEntry(e, inputFail);
  return leafHashOf(e, hash(metaBytes(e.meta)), hash);
}

// ---- one-pass reading of stored entries -----------------------------------------------------------

/** An entry read from its stored bytes, with its two hashes (decodeEntryHashes). */
export interface HashedEntry {
  /** As decodeEntry returns it, except that byte fields are views into the input, not copies. */
  readonly entry: LogEntry;
  /** entryHash(bytes). */
  readonly entryHash: Uint8Array;
  /** entryLeafHash(entry). */
  readonly leafHash: Uint8Array;
}

const EMPTY_DIGESTS = new WeakMap<Sha256, Uint8Array>();

/** SHA-256 of no bytes under `hash` (an empty write set's digest), computed once per function. */
function emptyDigest(hash: Sha256): Uint8Array {
  let d = EMPTY_DIGESTS.get(hash);
  if (d === undefined) {
    d = hash(new Uint8Array(0));
    EMPTY_DIGESTS.set(hash, d);
  }
  return d;
}

/** Meta maps up to this many bytes have their digest remembered (metaDigestOf). */
const META_MEMO_BYTES = 48;
const META_MEMO_ENTRIES = 256;
const META_MEMOS = new WeakMap<Sha256, MetaMemo>();

interface MetaMemo {
  /** The last meta looked up (a copy) and its digest: consecutive entries often share it. */
  last: Uint8Array;
  lastDigest: Uint8Array;
  readonly byBytes: Map<string, Uint8Array>;
}

/**
 * H(meta bytes), remembered for short metas: in a log most entries repeat a few metas (the
 * signature entries' `{}`, and transactions of one app, generation and write-set size), and a
 * lookup costs less than a hash. Bounded (cleared when full); digests are never handed out
 * (leafHashOf copies them).
 */
function metaDigestOf(meta: Uint8Array, hash: Sha256): Uint8Array {
  if (meta.length > META_MEMO_BYTES) return hash(meta);
  let memo = META_MEMOS.get(hash);
  if (memo === undefined) {
    memo = { last: new Uint8Array(0), lastDigest: new Uint8Array(0), byBytes: new Map() };
    META_MEMOS.set(hash, memo);
  }
  if (bytesEqual(meta, memo.last)) return memo.lastDigest;
  const key = latin1(meta);
  let d = memo.byBytes.get(key);
  if (d === undefined) {
    d = hash(meta);
    if (memo.byBytes.size >= META_MEMO_ENTRIES) memo.byBytes.clear();
    memo.byBytes.set(key, d);
  }
  memo.last = meta.slice();
  memo.lastDigest = d;
  return d;
}

/** The bytes as a latin1 string (a map key). */
function latin1(b: Uint8Array): string {
  let s = '';
  for (let i = 0; i < b.length; i++) s += String.fromCharCode(b[i] as number);
  return s;
}

/** Writes the canonical CBOR head of major type `major` with argument `n` at `at`; new offset. */
function writeHead(out: Uint8Array, at: number, major: number, n: number): number {
  const m = major << 5;
  if (n < 24) {
    out[at] = m | n;
    return at + 1;
  }
  if (n < 0x100) {
    out[at] = m | 24;
    out[at + 1] = n;
    return at + 2;
  }
  if (n < 0x10000) {
    out[at] = m | 25;
    out[at + 1] = n >>> 8;
    out[at + 2] = n & 255;
    return at + 3;
  }
  if (n < 0x100000000) {
    out[at] = m | 26;
    out[at + 1] = n >>> 24;
    out[at + 2] = (n >>> 16) & 255;
    out[at + 3] = (n >>> 8) & 255;
    out[at + 4] = n & 255;
    return at + 5;
  }
  out[at] = m | 27;
  const hi = Math.floor(n / 0x100000000);
  const lo = n % 0x100000000;
  for (let i = 0; i < 4; i++) out[at + 1 + i] = (hi >>> (24 - 8 * i)) & 255;
  for (let i = 0; i < 4; i++) out[at + 5 + i] = (lo >>> (24 - 8 * i)) & 255;
  return at + 9;
}

/**
 * leafHash = H(0x00 ‖ CBOR([term, index, kind, metaDigest, H(writeSet), claims])), the leaf input
 * written directly (the same bytes encodeLeafInput gives; docs/receipts.md §3). `e` is checked.
 */
function leafHashOf(e: LogEntry, metaDigest: Uint8Array, hash: Sha256): Uint8Array {
  // Written into one reused buffer (hash functions read their input and keep nothing of it):
  // 0x00, array head, three heads of up to 9 bytes, two bstr32 (34 each), claims (up to 34).
  const b = LEAF_SCRATCH;
  b[0] = 0x00;
  b[1] = 0x86;
  let at = writeHead(b, 2, 0, e.term);
  at = writeHead(b, at, 0, e.index);
  at = writeHead(b, at, 0, e.kind);
  b[at] = 0x58;
  b[at + 1] = 32;
  b.set(metaDigest, at + 2);
  b[at + 34] = 0x58;
  b[at + 35] = 32;
  if (e.writeSet.length === 0) b.set(emptyDigest(hash), at + 36);
  else if (hash.into) hash.into(e.writeSet, b, at + 36);
  else b.set(hash(e.writeSet), at + 36);
  at += 68;
  at = writeHead(b, at, 2, e.claims.length);
  b.set(e.claims, at);
  const n = at + e.claims.length;
  let view = LEAF_VIEWS[n];
  if (view === undefined) {
    view = b.subarray(0, n);
    LEAF_VIEWS[n] = view;
  }
  return hash(view);
}

const LEAF_SCRATCH = new Uint8Array(2 + 27 + 68 + 34);
/** Views of LEAF_SCRATCH by length (a leaf input's length takes few values). */
const LEAF_VIEWS: Uint8Array[] = [];

/** A cursor over canonical CBOR that reads only the item shapes of an entry (scanEntry). */
class Scan {
  readonly b: Uint8Array;
  pos = 0;
  constructor(b: Uint8Array) {
    this.b = b;
  }

  /** Reads a head of major type `major`; its argument (a safe integer), or -1 (not canonical here). */
  head(major: number): number {
    const b = this.b;
    if (this.pos >= b.length) return -1;
    const ib = b[this.pos] as number;
    if (ib >> 5 !== major) return -1;
    const ai = ib & 0x1f;
    this.pos++;
    if (ai < 24) return ai;
    const p = this.pos;
    if (ai === 24) {
      if (p + 1 > b.length) return -1;
      this.pos = p + 1;
      const v = b[p] as number;
      return v < 24 ? -1 : v;
    }
    if (ai === 25) {
      if (p + 2 > b.length) return -1;
      this.pos = p + 2;
      const v = ((b[p] as number) << 8) | (b[p + 1] as number);
      return v < 0x100 ? -1 : v;
    }
    if (ai === 26) {
      if (p + 4 > b.length) return -1;
      this.pos = p + 4;
      const v =
        (b[p] as number) * 0x1000000 +
        (((b[p + 1] as number) << 16) | ((b[p + 2] as number) << 8) | (b[p + 3] as number));
      return v < 0x10000 ? -1 : v;
    }
    if (ai === 27) {
      if (p + 8 > b.length) return -1;
      this.pos = p + 8;
      const hi =
        (b[p] as number) * 0x1000000 +
        (((b[p + 1] as number) << 16) | ((b[p + 2] as number) << 8) | (b[p + 3] as number));
      const lo =
        (b[p + 4] as number) * 0x1000000 +
        (((b[p + 5] as number) << 16) | ((b[p + 6] as number) << 8) | (b[p + 7] as number));
      // Shortest form needs >= 2^32; a value above 2^53 - 1 is left to the general decoder.
      if (hi === 0 || hi >= 0x200000) return -1;
      return hi * 0x100000000 + lo;
    }
    return -1;
  }

  /** A byte string: a view into the input, or undefined. */
  bytes(): Uint8Array | undefined {
    const n = this.head(2);
    if (n < 0 || n > this.b.length - this.pos) return undefined;
    const v = this.b.subarray(this.pos, this.pos + n);
    this.pos += n;
    return v;
  }

  /** A meta key: its rank in META_ORDER (its place in canonical order), or -1. */
  key(): number {
    const b = this.b;
    const p = this.pos;
    const n = (b[p] as number) - 0x60;
    if (n < 2 || n > 4 || p + 1 + n > b.length) return -1;
    const c0 = b[p + 1] as number;
    const c1 = b[p + 2] as number;
    let rank = -1;
    if (n === 2) {
      if (c0 === 0x65 && c1 === 0x76) rank = 0; // ev
    } else if (n === 3) {
      const c2 = b[p + 3] as number;
      if (c0 === 0x61 && c1 === 0x70 && c2 === 0x70)
        rank = 1; // app
      else if (c0 === 0x65 && c1 === 0x6e && c2 === 0x64)
        rank = 2; // end
      else if (c0 === 0x67 && c1 === 0x65 && c2 === 0x6e)
        rank = 3; // gen
      else if (c0 === 0x72 && c1 === 0x6f && c2 === 0x74)
        rank = 4; // rot
      else if (c0 === 0x73 && c1 === 0x76 && c2 === 0x63) rank = 5; // svc
    } else if (c0 === 0x73 && c1 === 0x69 && b[p + 3] === 0x7a && b[p + 4] === 0x65) {
      rank = 6; // size
    }
    if (rank >= 0) this.pos = p + 1 + n;
    return rank;
  }

  /** A text string of printable ASCII (the common app id), or undefined. */
  ascii(): string | undefined {
    const n = this.head(3);
    if (n < 0 || n > 256 || n > this.b.length - this.pos) return undefined;
    let s = '';
    for (let i = 0; i < n; i++) {
      const c = this.b[this.pos + i] as number;
      if (c >= 0x80) return undefined;
      s += String.fromCharCode(c);
    }
    this.pos += n;
    return s;
  }
}

/** Meta keys in the bytewise order of their encodings (shorter text first, then by bytes). */
const META_ORDER = ['ev', 'app', 'end', 'gen', 'rot', 'svc', 'size'] as const;

/**
 * The common shapes of an entry, read without the general decoder: the entry and the bytes of
 * its meta map; undefined whenever anything is not in the expected canonical form (the caller
 * then uses decodeEntry, which accepts it or says why not). Everything accepted here is accepted
 * by decodeCbor with the same values, because each item is checked in its shortest form, map keys
 * in strictly increasing order, text ASCII, nothing after the entry.
 */
function scanEntry(b: Uint8Array): { entry: LogEntry; meta: Uint8Array } | undefined {
  const r = new Scan(b);
  if (b.length < 2 || b[0] !== 0x89 || b[1] !== ENTRY_VERSION) return undefined;
  r.pos = 2;
  const term = r.head(0);
  const index = r.head(0);
  const prev = r.bytes();
  const kind = r.head(0);
  if (term < 0 || index < 0 || prev === undefined || kind < 0) return undefined;
  const metaStart = r.pos;
  const n = r.head(5);
  if (n < 0 || n > META_ORDER.length) return undefined;
  const meta: EntryMeta = {};
  let rank = -1;
  for (let i = 0; i < n; i++) {
    const kr = r.key();
    if (kr <= rank) return undefined;
    rank = kr;
    const k = META_ORDER[kr] as (typeof META_ORDER)[number];
    let v: number | string | Uint8Array | undefined;
    if (k === 'gen' || k === 'size' || k === 'rot') {
      const x = r.head(0);
      v = x < 0 ? undefined : x;
    } else if (k === 'app') v = r.ascii();
    else v = r.bytes();
    if (v === undefined) return undefined;
    (meta as Record<string, unknown>)[k] = v;
  }
  const metaBytes = b.subarray(metaStart, r.pos);
  const writeSet = r.bytes();
  const claims = r.bytes();
  const sig = r.bytes();
  if (writeSet === undefined || claims === undefined || sig === undefined || r.pos !== b.length) {
    return undefined;
  }
  const entry = { term, index, prev, kind, meta, writeSet, claims, sig } as LogEntry;
  return { entry, meta: metaBytes };
}

/** Bytes of the canonical CBOR head of argument `n`. */
function headBytes(n: number): number {
  if (n < 24) return 1;
  if (n < 0x100) return 2;
  if (n < 0x10000) return 3;
  if (n < 0x100000000) return 5;
  return 9;
}

/** Writes a byte string (canonical head and bytes) at `at`; the new offset. */
function writeBytes(out: Uint8Array, at: number, b: Uint8Array): number {
  const p = writeHead(out, at, 2, b.length);
  out.set(b, p);
  return p + b.length;
}

/**
 * encodeEntry, entryHash and entryLeafHash in one pass, for a writer (the enclave): the entry is
 * checked once (InvalidInputError, as encodeEntry), its meta map encoded once and used for both
 * the entry bytes and the leaf; the bytes are exactly encodeEntry's. `hash` defaults to core's.
 */
export function encodeEntryHashes(
  e: LogEntry,
  hash: Sha256 = defaultSha256,
): { bytes: Uint8Array; entryHash: Uint8Array; leafHash: Uint8Array } {
  checkEntry(e, inputFail);
  const meta = metaBytes(e.meta);
  const bstr = (b: Uint8Array): number => headBytes(b.length) + b.length;
  const size =
    2 +
    headBytes(e.term) +
    headBytes(e.index) +
    bstr(e.prev) +
    headBytes(e.kind) +
    meta.length +
    bstr(e.writeSet) +
    bstr(e.claims) +
    bstr(e.sig);
  const out = new Uint8Array(size);
  out[0] = 0x89;
  out[1] = ENTRY_VERSION;
  let at = writeHead(out, 2, 0, e.term);
  at = writeHead(out, at, 0, e.index);
  at = writeBytes(out, at, e.prev);
  at = writeHead(out, at, 0, e.kind);
  out.set(meta, at);
  at += meta.length;
  at = writeBytes(out, at, e.writeSet);
  at = writeBytes(out, at, e.claims);
  at = writeBytes(out, at, e.sig);
  if (at !== size) throw new InvalidInputError('internal: entry size miscounted');
  return {
    bytes: out,
    entryHash: hash(out),
    leafHash: leafHashOf(e, metaDigestOf(meta, hash), hash),
  };
}

/**
 * Reads a stored entry in one pass: decodeEntry's strict checks (LogFormatError), entryHash and
 * entryLeafHash, without re-encoding anything (the bytes are canonical, so the meta map's own
 * bytes are what leafFields would encode). `hash` defaults to core's SHA-256; the enclave passes
 * node:crypto's. Byte fields of the entry are views into `bytes`.
 */
export function decodeEntryHashes(bytes: Uint8Array, hash: Sha256 = defaultSha256): HashedEntry {
  if (!(bytes instanceof Uint8Array)) throw new InvalidInputError('log entry must be bytes');
  const scanned = scanEntry(bytes);
  let entry: LogEntry;
  let metaDigest: Uint8Array;
  if (scanned !== undefined) {
    entry = scanned.entry;
    checkEntry(entry, formatFail);
    metaDigest = metaDigestOf(scanned.meta, hash);
  } else {
    entry = decodeEntry(bytes);
    metaDigest = hash(metaBytes(entry.meta));
  }
  return { entry, entryHash: hash(bytes), leafHash: leafHashOf(entry, metaDigest, hash) };
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
