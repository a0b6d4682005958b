/**
 * The entry hashing of the logchain in one pass (docs/receipts.md §2-§3): entryLeafHash, and
 * encodeEntryHashes / decodeEntryHashes, which give an entry's bytes, entryHash and Merkle leaf
 * hash together. They are the hot path of the enclave's writer (every commit) and of every reader
 * that checks a stored log (restart, audit), so they write the leaf input straight into a reused
 * buffer and read the common canonical shapes of an entry without the general CBOR decoder; the
 * bytes and hashes are exactly those of encodeEntry, entryHash and leafHash(leafInput(e))
 * (format.ts), and anything the fast reader does not recognise goes through decodeEntry.
 */
import { byteKey, bytesEqual } from '../bytes.js';
import { InvalidInputError } from '../errors.js';
import {
  checkEntry,
  decodeEntry,
  ENTRY_VERSION,
  type EntryMeta,
  type LogEntry,
  metaBytes,
} from './format.js';
import { formatFail, inputFail } from './format-checks.js';
import { defaultSha256, type Sha256 } from './merkle.js';

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
  const key = byteKey(meta);
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
