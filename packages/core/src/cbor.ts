/**
 * Deterministic CBOR (RFC 8949), written for Cloister's subset.
 *
 * Everything Cloister hashes or signs is encoded here, so there is exactly one encoding per value:
 * RFC 8949 §4.2.1 core deterministic encoding (preferred serialization: shortest integer and length
 * arguments and shortest exact floats, definite lengths only, map keys sorted by the bytewise
 * lexicographic order of their deterministic encodings).
 *
 * Why not a library: this codec sits on every hot path (evidence, manifests, sealed blobs, later
 * receipts and ledger records). The cbor2 library, wrapped with the strict checks below, took
 * 200-350 µs to encode or decode one 357-byte evidence (measured in this repo, 2026-11), which kept
 * evidence creation and verification far below their goals (bench/evidence.ts); this codec is a
 * single pass each way. It is tested against the RFC 8949 Appendix A vectors.
 *
 * The data model (the "subset") both functions accept:
 *   CBOR                          JavaScript
 *   unsigned / negative integer   number when a safe integer, else bigint (range -2^64 .. 2^64-1)
 *   byte string                   Uint8Array (decoded values never alias the caller's input)
 *   text string                   string (well-formed Unicode only; no normalization)
 *   array                         Array (dense)
 *   map                           Map. EVERY decoded map is a Map, text-keyed ones included: no
 *                                 plain objects, so no prototype keys (`__proto__`) and no key type
 *                                 confusion. encodeCbor also takes plain objects (string keys).
 *   tag                           CborTag (not interpreted: tags 2/3 are not turned into bigints)
 *   false, true, null             false, true, null
 *   float                         number that is not a safe integer (NaN only as f97e00)
 * Not in the subset: undefined, other simple values, indefinite lengths, integers beyond 64 bits.
 * A consequence of the JS number model: an integral float such as 1.0 (f93c00) is refused by
 * decodeCbor, because the value 1 encodes as the integer 01.
 */
import { byteKey } from './bytes.js';
import { EncodingError } from './errors.js';

/** Deepest nesting of arrays, maps and tags that encodeCbor and decodeCbor accept. */
export const CBOR_MAX_DEPTH = 64;

/** A CBOR tag (RFC 8949 §3.4): a tag number and its content, neither interpreted here. */
export class CborTag {
  readonly tag: number;
  readonly contents: unknown;

  constructor(tag: number, contents: unknown) {
    if (!Number.isSafeInteger(tag) || tag < 0) {
      throw new EncodingError('a CBOR tag number must be a non-negative safe integer');
    }
    this.tag = tag;
    this.contents = contents;
  }
}

const LONE_SURROGATE = /\p{Cs}/u;
const MAX_INT = 2n ** 64n - 1n;
const utf8Encoder = new TextEncoder();
const utf8Decoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

// ---------------------------------------------------------------------------------------------
// Half-precision floats (RFC 8949 §3.3, Appendix D).

function halfToNumber(h: number): number {
  const exp = (h >> 10) & 0x1f;
  const mant = h & 0x3ff;
  const sign = h & 0x8000 ? -1 : 1;
  if (exp === 0) return sign * mant * 2 ** -24;
  if (exp === 31) return mant === 0 ? sign * Number.POSITIVE_INFINITY : Number.NaN;
  return sign * (1 + mant / 1024) * 2 ** (exp - 15);
}

/** The half-precision bits of `x` if it is exactly representable there, else -1. */
function numberToHalf(x: number): number {
  if (Number.isNaN(x)) return 0x7e00;
  const sign = x < 0 || Object.is(x, -0) ? 0x8000 : 0;
  const a = Math.abs(x);
  if (a === Number.POSITIVE_INFINITY) return sign | 0x7c00;
  if (a === 0) return sign;
  const sub = a * 2 ** 24; // exact: scaling by a power of two
  if (sub < 1024) return Number.isInteger(sub) ? sign | sub : -1;
  let e = Math.floor(Math.log2(a));
  if (2 ** e > a) e--;
  else if (2 ** (e + 1) <= a) e++;
  if (e < -14 || e > 15) return -1;
  const m = (a / 2 ** e - 1) * 1024;
  return Number.isInteger(m) ? sign | ((e + 15) << 10) | m : -1;
}

// ---------------------------------------------------------------------------------------------
// Encoding.

class Writer {
  buf = new Uint8Array(256);
  view = new DataView(this.buf.buffer);
  pos = 0;

  ensure(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.pos + n) size *= 2;
    const next = new Uint8Array(size);
    next.set(this.buf.subarray(0, this.pos));
    this.buf = next;
    this.view = new DataView(next.buffer);
  }

  /** RFC 8949 §3: initial byte and the shortest argument for `n`. */
  head(major: number, n: number | bigint): void {
    this.ensure(9);
    const mt = major << 5;
    if (typeof n === 'bigint' && n <= 0xffffffffn) n = Number(n);
    if (typeof n === 'bigint') {
      this.buf[this.pos++] = mt | 27;
      this.view.setBigUint64(this.pos, n);
      this.pos += 8;
    } else if (n < 24) {
      this.buf[this.pos++] = mt | n;
    } else if (n < 0x100) {
      this.buf[this.pos++] = mt | 24;
      this.buf[this.pos++] = n;
    } else if (n < 0x10000) {
      this.buf[this.pos++] = mt | 25;
      this.view.setUint16(this.pos, n);
      this.pos += 2;
    } else if (n < 0x100000000) {
      this.buf[this.pos++] = mt | 26;
      this.view.setUint32(this.pos, n);
      this.pos += 4;
    } else {
      this.buf[this.pos++] = mt | 27;
      this.view.setBigUint64(this.pos, BigInt(n));
      this.pos += 8;
    }
  }

  /**
   * Writes `text` as a CBOR text string if it is all ASCII (its UTF-8 bytes are its code units)
   * and says whether it did; otherwise writes nothing. Protocol strings (names, ids, JSON text)
   * are nearly always ASCII, and this skips TextEncoder's array per string.
   */
  ascii(text: string): boolean {
    const n = text.length;
    this.ensure(9 + n);
    const start = this.pos;
    this.head(3, n);
    const buf = this.buf;
    let at = this.pos;
    for (let i = 0; i < n; i++) {
      const c = text.charCodeAt(i);
      if (c >= 0x80) {
        this.pos = start; // not ASCII: undone, the caller encodes it as UTF-8
        return false;
      }
      buf[at++] = c;
    }
    this.pos = at;
    return true;
  }

  bytes(b: Uint8Array): void {
    this.ensure(b.length);
    this.buf.set(b, this.pos);
    this.pos += b.length;
  }

  float(x: number): void {
    this.ensure(9);
    const h = numberToHalf(x);
    if (h >= 0) {
      this.buf[this.pos++] = 0xf9;
      this.view.setUint16(this.pos, h);
      this.pos += 2;
    } else if (Math.fround(x) === x) {
      this.buf[this.pos++] = 0xfa;
      this.view.setFloat32(this.pos, x);
      this.pos += 4;
    } else {
      this.buf[this.pos++] = 0xfb;
      this.view.setFloat64(this.pos, x);
      this.pos += 8;
    }
  }

  result(): Uint8Array {
    return this.buf.slice(0, this.pos);
  }
}

/** Bytewise order (shorter first on a common prefix) of a[as, ae) and b[bs, be). */
function compareRanges(
  a: Uint8Array,
  as: number,
  ae: number,
  b: Uint8Array,
  bs: number,
  be: number,
): number {
  const n = Math.min(ae - as, be - bs);
  for (let i = 0; i < n; i++) {
    const d = a[as + i]! - b[bs + i]!;
    if (d !== 0) return d;
  }
  return ae - as - (be - bs);
}

function compareBytes(a: Uint8Array, b: Uint8Array): number {
  return compareRanges(a, 0, a.length, b, 0, b.length);
}

function isPlainObject(v: object): boolean {
  const proto = Object.getPrototypeOf(v);
  return proto === Object.prototype || proto === null;
}

// Text keys repeat constantly (every evidence has the same eight): their encodings are cached.
const KEY_CACHE = new Map<string, Uint8Array>();
const KEY_CACHE_MAX = 4096;

function encodeKey(k: unknown, depth: number): Uint8Array {
  if (typeof k !== 'string' || k.length > 64) return encodeAt(k, depth);
  let b = KEY_CACHE.get(k);
  if (b === undefined) {
    b = encodeAt(k, depth);
    if (KEY_CACHE.size >= KEY_CACHE_MAX) KEY_CACHE.clear();
    KEY_CACHE.set(k, b);
  }
  return b;
}

/**
 * Writes a map: keys encoded, sorted bytewise (RFC 8949 §4.2.1), unique (§5.6). `keys` and
 * `values` are parallel arrays this function may reorder. Protocol maps have a handful of keys:
 * an insertion sort of the two arrays costs less than sorting pairs with a comparator.
 */
function writeMap(w: Writer, keys: unknown[], values: unknown[], depth: number): void {
  const n = keys.length;
  const encoded: Uint8Array[] = new Array(n);
  for (let i = 0; i < n; i++) encoded[i] = encodeKey(keys[i], depth);
  for (let i = 1; i < n; i++) {
    const k = encoded[i] as Uint8Array;
    const v = values[i];
    let j = i - 1;
    while (j >= 0 && compareBytes(encoded[j] as Uint8Array, k) > 0) {
      encoded[j + 1] = encoded[j] as Uint8Array;
      values[j + 1] = values[j];
      j--;
    }
    encoded[j + 1] = k;
    values[j + 1] = v;
  }
  for (let i = 1; i < n; i++) {
    // RFC 8949 §5.6: keys must be unique; 1 and 1n, or equal byte strings, are the same key.
    if (compareBytes(encoded[i - 1] as Uint8Array, encoded[i] as Uint8Array) === 0) {
      throw new EncodingError('CBOR map has two keys with the same encoding');
    }
  }
  w.head(5, n);
  for (let i = 0; i < n; i++) {
    w.bytes(encoded[i] as Uint8Array);
    write(w, values[i], depth);
  }
}

function write(w: Writer, value: unknown, depth: number): void {
  switch (typeof value) {
    case 'number':
      // -0 is a float (f98000): as an integer it would decode as 0, another value.
      if (Number.isSafeInteger(value) && !Object.is(value, -0)) {
        if (value >= 0) w.head(0, value);
        else w.head(1, -1 - value);
      } else {
        w.float(value);
      }
      return;
    case 'bigint':
      if (value >= 0n) {
        if (value > MAX_INT)
          throw new EncodingError('CBOR integers are limited to -2^64 .. 2^64-1');
        w.head(0, value);
      } else {
        if (-1n - value > MAX_INT) {
          throw new EncodingError('CBOR integers are limited to -2^64 .. 2^64-1');
        }
        w.head(1, -1n - value);
      }
      return;
    case 'boolean':
      w.head(7, value ? 21 : 20);
      return;
    case 'string': {
      if (w.ascii(value)) return;
      if (LONE_SURROGATE.test(value)) {
        throw new EncodingError('CBOR text must be well-formed Unicode (lone surrogate found)');
      }
      const b = utf8Encoder.encode(value);
      w.head(3, b.length);
      w.bytes(b);
      return;
    }
    case 'object':
      writeObject(w, value, depth);
      return;
    default:
      throw new EncodingError(`values of type ${typeof value} cannot be encoded as CBOR`);
  }
}

function writeObject(w: Writer, value: object | null, depth: number): void {
  if (value === null) {
    w.head(7, 22);
    return;
  }
  if (value instanceof Uint8Array) {
    w.head(2, value.length);
    w.bytes(value);
    return;
  }
  if (depth >= CBOR_MAX_DEPTH) {
    throw new EncodingError(`CBOR nesting is limited to ${CBOR_MAX_DEPTH} levels`);
  }
  if (Array.isArray(value)) {
    w.head(4, value.length);
    for (let i = 0; i < value.length; i++) {
      if (!(i in value)) throw new EncodingError('a CBOR array cannot have holes');
      write(w, value[i], depth + 1);
    }
    return;
  }
  if (value instanceof Map) {
    writeMap(w, [...value.keys()], [...value.values()], depth + 1);
    return;
  }
  if (value instanceof CborTag) {
    w.head(6, value.tag);
    write(w, value.contents, depth + 1);
    return;
  }
  if (isPlainObject(value)) {
    // A symbol key, enumerable or not, is refused; then the own enumerable string keys, as
    // Object.entries gives them (non-enumerable ones are left out). Object.keys is served from
    // V8's enum cache: a third of a small request's encoding went to Reflect.ownKeys and a
    // propertyIsEnumerable call per key.
    if (Object.getOwnPropertySymbols(value).length > 0) {
      throw new EncodingError('object keys must be strings');
    }
    const keys: unknown[] = Object.keys(value);
    const n = keys.length;
    const values: unknown[] = new Array(n);
    for (let i = 0; i < n; i++) values[i] = (value as Record<string, unknown>)[keys[i] as string];
    writeMap(w, keys, values, depth + 1);
    return;
  }
  throw new EncodingError(`a ${value.constructor?.name ?? 'object'} cannot be encoded as CBOR`);
}

/**
 * Encodes a value of the data model above deterministically (RFC 8949 §4.2.1). Throws
 * EncodingError for anything outside the data model (undefined, functions, Dates, class
 * instances, holes, cycles or nesting deeper than CBOR_MAX_DEPTH, duplicate map keys).
 */
export function encodeCbor(value: unknown): Uint8Array {
  return encodeAt(value, 0);
}

/**
 * A writer kept for the next encoding (its buffer and view are two allocations an encoding would
 * otherwise make). Taken while in use, so a nested encoding (a map key) gets a fresh one; kept
 * only while its buffer is small. Only [0, pos) of the buffer is ever read out (result copies it).
 */
let spare: Writer | undefined;
const SPARE_MAX_BYTES = 64 * 1024;

/**
 * encodeCbor, handing `use` the encoding in the encoder's own buffer instead of a copy. The bytes
 * are valid only during the call (the encoder's next use overwrites them): for bytes consumed at
 * once, such as a record's plaintext sealed in the call. An encoding made inside `use` gets a
 * writer of its own.
 */
export function withCborEncoding<T>(value: unknown, use: (bytes: Uint8Array) => T): T {
  const w = spare ?? new Writer();
  spare = undefined;
  w.pos = 0;
  try {
    write(w, value, 0);
    return use(w.buf.subarray(0, w.pos));
  } finally {
    if (w.buf.length <= SPARE_MAX_BYTES) spare = w;
  }
}

function encodeAt(value: unknown, depth: number): Uint8Array {
  const w = spare ?? new Writer();
  spare = undefined;
  w.pos = 0;
  try {
    write(w, value, depth);
    return w.result();
  } finally {
    if (w.buf.length <= SPARE_MAX_BYTES) spare = w;
  }
}

// ---------------------------------------------------------------------------------------------
// Decoding: one strict pass. Every rule that makes an encoding non-deterministic is an error.

class Reader {
  readonly buf: Uint8Array;
  readonly view: DataView;
  pos = 0;

  constructor(buf: Uint8Array) {
    this.buf = buf;
    this.view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  }

  need(n: number): void {
    if (this.pos + n > this.buf.length)
      throw new EncodingError('CBOR is malformed: truncated input');
  }

  /** Reads an argument, refusing non-shortest forms (RFC 8949 §4.2.1). */
  argument(ai: number): number | bigint {
    if (ai < 24) return ai;
    let v: number | bigint;
    if (ai === 24) {
      this.need(1);
      v = this.buf[this.pos++]!;
      if (v < 24) throw notDeterministic('non-preferred serialization (shortest form)');
      return v;
    }
    if (ai === 25) {
      this.need(2);
      v = this.view.getUint16(this.pos);
      this.pos += 2;
      if (v < 0x100) throw notDeterministic('non-preferred serialization (shortest form)');
      return v;
    }
    if (ai === 26) {
      this.need(4);
      v = this.view.getUint32(this.pos);
      this.pos += 4;
      if (v < 0x10000) throw notDeterministic('non-preferred serialization (shortest form)');
      return v;
    }
    if (ai === 27) {
      this.need(8);
      const big = this.view.getBigUint64(this.pos);
      this.pos += 8;
      if (big < 0x100000000n) throw notDeterministic('non-preferred serialization (shortest form)');
      return big <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(big) : big;
    }
    if (ai === 31) throw notDeterministic('indefinite-length item (definite lengths only)');
    throw new EncodingError('CBOR is malformed: reserved additional information value');
  }

  length(ai: number): number {
    const n = this.argument(ai);
    if (typeof n === 'bigint' || n > this.buf.length - this.pos) {
      throw new EncodingError('CBOR is malformed: truncated input');
    }
    return n;
  }

  /**
   * Reads the item count of an array (`each` = 1: an item is at least one byte) or a map (2: a
   * key and a value), refusing a count the rest of the input cannot hold before anything is
   * allocated for it (a 5-byte input can declare 2^32-1 items).
   */
  count(ai: number, each: number): number {
    const n = this.argument(ai);
    const left = this.buf.length - this.pos;
    if (typeof n === 'bigint' || n * each > left) {
      throw new EncodingError(
        `CBOR is malformed: truncated input (${n} ${each === 1 ? 'array items' : 'map entries'} declared, ${left} bytes left)`,
      );
    }
    return n;
  }
}

function isAscii(b: Uint8Array): boolean {
  for (let i = 0; i < b.length; i++) if (b[i]! >= 0x80) return false;
  return true;
}

function notDeterministic(why: string): EncodingError {
  return new EncodingError(`CBOR is not in deterministic encoding (RFC 8949 §4.2.1): ${why}`);
}

function readFloat(r: Reader, ai: number): number {
  let x: number;
  if (ai === 25) {
    r.need(2);
    const h = r.view.getUint16(r.pos);
    r.pos += 2;
    x = halfToNumber(h);
    if (Number.isNaN(x) && h !== 0x7e00) throw notDeterministic('NaN must be f97e00');
  } else if (ai === 26) {
    r.need(4);
    x = r.view.getFloat32(r.pos);
    r.pos += 4;
    if (Number.isNaN(x) || numberToHalf(x) >= 0)
      throw notDeterministic('float not in shortest form');
  } else {
    r.need(8);
    x = r.view.getFloat64(r.pos);
    r.pos += 8;
    if (Number.isNaN(x) || Math.fround(x) === x)
      throw notDeterministic('float not in shortest form');
  }
  if (Number.isSafeInteger(x) && !Object.is(x, -0)) {
    throw new EncodingError('CBOR float with an integral value (encode it as an integer)');
  }
  return x;
}

function readSimple(r: Reader, ai: number): unknown {
  switch (ai) {
    case 20:
      return false;
    case 21:
      return true;
    case 22:
      return null;
    case 23:
      throw new EncodingError('CBOR undefined is not supported');
    case 25:
    case 26:
    case 27:
      return readFloat(r, ai);
    case 31:
      throw new EncodingError('CBOR is malformed: unexpected break code');
    default:
      if (ai >= 28) throw new EncodingError('CBOR is malformed: reserved additional information');
      throw new EncodingError('CBOR unsupported simple value');
  }
}

function readMap(r: Reader, ai: number, depth: number): Map<unknown, unknown> {
  const n = r.count(ai, 2);
  const out = new Map<unknown, unknown>();
  // The previous key's encoding is buf[prevStart, prevEnd): compared in place, no view per key.
  let prevStart = -1;
  let prevEnd = -1;
  for (let i = 0; i < n; i++) {
    const start = r.pos;
    const key = read(r, depth);
    // RFC 8949 §4.2.1: keys sorted bytewise; equal encodings are duplicates (§5.6).
    if (prevStart >= 0) {
      const c = compareRanges(r.buf, prevStart, prevEnd, r.buf, start, r.pos);
      if (c === 0) throw new EncodingError('CBOR map has a duplicate key (RFC 8949 §5.6)');
      if (c > 0) throw notDeterministic('map keys not sorted');
    }
    prevStart = start;
    prevEnd = r.pos;
    // A Map compares keys by SameValueZero: -0.0 would become 0 and merge with an integer 0 key,
    // so what was accepted would not re-encode to the same bytes.
    if (Object.is(key, -0)) throw new EncodingError('CBOR map key -0.0 is not supported');
    if (out.has(key)) throw new EncodingError('CBOR map has two keys with the same value');
    out.set(key, read(r, depth));
  }
  return out;
}

function read(r: Reader, depth: number): unknown {
  r.need(1);
  const ib = r.buf[r.pos++]!;
  const major = ib >> 5;
  const ai = ib & 0x1f;
  switch (major) {
    case 0:
      return r.argument(ai);
    case 1: {
      const n = r.argument(ai);
      if (typeof n === 'number' && n < Number.MAX_SAFE_INTEGER) return -1 - n;
      const v = -1n - BigInt(n);
      return v >= BigInt(Number.MIN_SAFE_INTEGER) ? Number(v) : v;
    }
    case 2: {
      const n = r.length(ai);
      const b = r.buf.slice(r.pos, r.pos + n);
      r.pos += n;
      return b;
    }
    case 3: {
      const n = r.length(ai);
      const b = r.buf.subarray(r.pos, r.pos + n);
      r.pos += n;
      // ASCII bytes are their own code units: byteKey builds the string in one call.
      if (n <= 64 && isAscii(b)) return byteKey(b);
      try {
        return utf8Decoder.decode(b);
      } catch {
        throw new EncodingError('CBOR text string is not valid UTF-8');
      }
    }
    case 4: {
      if (depth >= CBOR_MAX_DEPTH) throw new EncodingError(`nesting deeper than ${CBOR_MAX_DEPTH}`);
      const n = r.count(ai, 1);
      const out: unknown[] = new Array(n);
      for (let i = 0; i < n; i++) out[i] = read(r, depth + 1);
      return out;
    }
    case 5:
      if (depth >= CBOR_MAX_DEPTH) throw new EncodingError(`nesting deeper than ${CBOR_MAX_DEPTH}`);
      return readMap(r, ai, depth + 1);
    case 6: {
      if (depth >= CBOR_MAX_DEPTH) throw new EncodingError(`nesting deeper than ${CBOR_MAX_DEPTH}`);
      const tag = r.argument(ai);
      if (typeof tag !== 'number') throw new EncodingError('CBOR tag number is too large');
      return new CborTag(tag, read(r, depth + 1));
    }
    default:
      return readSimple(r, ai);
  }
}

/**
 * Decodes exactly one CBOR data item, strictly: the input must be the deterministic encoding
 * (RFC 8949 §4.2.1) of a value of the data model, with nothing after it. Anything else, including
 * non-shortest integers or lengths, indefinite lengths, unsorted or duplicate map keys, undefined
 * or other simple values, or invalid UTF-8, is an EncodingError. Every map decodes to a Map.
 */
export function decodeCbor(bytes: Uint8Array): unknown {
  if (!(bytes instanceof Uint8Array)) throw new EncodingError('CBOR input must be a Uint8Array');
  if (bytes.length === 0) throw new EncodingError('CBOR input is empty');
  const r = new Reader(bytes);
  const value = read(r, 0);
  if (r.pos !== bytes.length) {
    throw new EncodingError('CBOR is malformed: trailing bytes after the data item');
  }
  return value;
}

/**
 * Decodes the one strict CBOR data item at the start of `bytes` and says how many bytes it took;
 * what follows it is left to the caller (SCP records: zero padding after the message). Same
 * strictness as decodeCbor for the item itself.
 */
export function decodeCborPrefix(bytes: Uint8Array): { value: unknown; length: number } {
  if (!(bytes instanceof Uint8Array)) throw new EncodingError('CBOR input must be a Uint8Array');
  if (bytes.length === 0) throw new EncodingError('CBOR input is empty');
  const r = new Reader(bytes);
  const value = read(r, 0);
  return { value, length: r.pos };
}
