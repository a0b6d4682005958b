/**
 * Deterministic CBOR (RFC 8949) over the `cbor2` library.
 *
 * Everything Cloister hashes or signs is encoded here, so there is exactly one encoding per value:
 * RFC 8949 §4.2.1 core deterministic encoding (preferred serialization: shortest integer and length
 * arguments and shortest exact floats, definite lengths only, map keys sorted by the bytewise
 * lexicographic order of their deterministic encodings).
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
 * decodeCbor, because the value 1 re-encodes as the integer 01.
 */

import type { EncodeOptions, RequiredEncodeOptions, Writer } from 'cbor2';
import { decode, encode, Tag, TypeEncoderMap } from 'cbor2';
import { writeArray, writeLength, writeUint8Array, writeUnknown } from 'cbor2/encoder';
import type { KeyValueEncoded } from 'cbor2/sorts';
import { sortCoreDeterministic } from 'cbor2/sorts';
import { bytesEqual } from './bytes.js';
import { EncodingError } from './errors.js';

/** Deepest nesting of arrays, maps and tags that encodeCbor and decodeCbor accept. */
export const CBOR_MAX_DEPTH = 64;

const MT_MAP = 5;
const LONE_SURROGATE = /\p{Cs}/u;
const MIN_INT = -(2n ** 64n);
const MAX_INT = 2n ** 64n - 1n;

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

/** RFC 8949 §4.2.1: map keys sorted by the bytewise order of their deterministic encodings. */
function encodeMap(map: Map<unknown, unknown>, w: Writer, opts: RequiredEncodeOptions): undefined {
  const entries: KeyValueEncoded[] = [];
  for (const [k, v] of map) entries.push([k, v, encode(k, opts)]);
  entries.sort(sortCoreDeterministic);
  let previous: Uint8Array | undefined;
  for (const [, , keyBytes] of entries) {
    // RFC 8949 §5.6: keys must be unique; 1 and 1n, or equal byte strings, are the same key.
    if (previous !== undefined && bytesEqual(previous, keyBytes)) {
      throw new EncodingError('CBOR map has two keys with the same encoding');
    }
    previous = keyBytes;
  }
  writeLength(map, entries.length, MT_MAP, w, opts);
  for (const [, v, keyBytes] of entries) {
    w.write(keyBytes);
    writeUnknown(v, w, opts);
  }
  return undefined;
}

// Our own encoder table (the library's global registry is ignored): only these classes exist in a
// normalized tree, so a registration made elsewhere in the process cannot change our bytes.
const TYPES = new TypeEncoderMap();
TYPES.registerEncoder(Map, encodeMap);
TYPES.registerEncoder(Array, (a, w, opts) => writeArray(a, w, opts));
TYPES.registerEncoder(Uint8Array, (u, w) => writeUint8Array(u, w));
TYPES.registerEncoder(Tag, (t) => [t.tag, t.contents]);

const ENCODE_OPTIONS: EncodeOptions = {
  types: TYPES,
  ignoreGlobalTags: true,
  ignoreOriginalEncoding: true,
  collapseBigInts: true,
  rejectBigInts: true,
  rejectUndefined: true,
  rejectCustomSimples: true,
  sortKeys: sortCoreDeterministic,
};

const DECODE_OPTIONS = {
  // The library counts depth its own way; this is only its safety net. fromLibrary enforces
  // CBOR_MAX_DEPTH exactly as encodeCbor counts it.
  maxDepth: 4 * CBOR_MAX_DEPTH,
  ignoreGlobalTags: true,
  preferMap: true,
  rejectStreaming: true, // RFC 8949 §4.2.1: indefinite-length items are not deterministic
  rejectDuplicateKeys: true, // RFC 8949 §5.6
  requirePreferred: true, // RFC 8949 §4.2.1: shortest arguments
  rejectLongFloats: true,
  rejectLongLoundNaN: true,
  rejectSimple: true,
  rejectUndefined: true,
} as const;

function isPlainObject(v: object): boolean {
  const proto = Object.getPrototypeOf(v);
  return proto === Object.prototype || proto === null;
}

/** Validates a value against the data model and returns a fresh tree of library types. */
function normalize(value: unknown, depth: number): unknown {
  switch (typeof value) {
    case 'number':
    case 'boolean':
      return value;
    case 'bigint':
      if (value < MIN_INT || value > MAX_INT) {
        throw new EncodingError('CBOR integers are limited to -2^64 .. 2^64-1');
      }
      return value;
    case 'string':
      if (LONE_SURROGATE.test(value)) {
        throw new EncodingError('CBOR text must be well-formed Unicode (lone surrogate found)');
      }
      return value;
    case 'object': {
      if (value === null) return null;
      if (value instanceof Uint8Array) {
        // A copy of exactly the viewed bytes, as a plain Uint8Array (a Buffer would not be).
        return new Uint8Array(value);
      }
      if (depth >= CBOR_MAX_DEPTH) {
        throw new EncodingError(`CBOR nesting is limited to ${CBOR_MAX_DEPTH} levels`);
      }
      return normalizeContainer(value, depth + 1);
    }
    default:
      throw new EncodingError(`values of type ${typeof value} cannot be encoded as CBOR`);
  }
}

function normalizeContainer(value: object, depth: number): unknown {
  if (Array.isArray(value)) {
    const out: unknown[] = [];
    for (let i = 0; i < value.length; i++) {
      if (!(i in value)) throw new EncodingError('a CBOR array cannot have holes');
      out.push(normalize(value[i], depth));
    }
    return out;
  }
  if (value instanceof Map) {
    const out = new Map<unknown, unknown>();
    for (const [k, v] of value) out.set(normalize(k, depth), normalize(v, depth));
    return out;
  }
  if (value instanceof CborTag) return new Tag(value.tag, normalize(value.contents, depth));
  if (isPlainObject(value)) {
    const out = new Map<unknown, unknown>();
    for (const k of Reflect.ownKeys(value)) {
      if (typeof k !== 'string') throw new EncodingError('object keys must be strings');
      out.set(normalize(k, depth), normalize((value as Record<string, unknown>)[k], depth));
    }
    return out;
  }
  throw new EncodingError(`a ${value.constructor?.name ?? 'object'} cannot be encoded as CBOR`);
}

/**
 * Encodes a value of the data model above deterministically (RFC 8949 §4.2.1). Throws
 * EncodingError for anything outside the data model (undefined, functions, Dates, class
 * instances, holes, cycles or nesting deeper than CBOR_MAX_DEPTH, duplicate map keys).
 */
export function encodeCbor(value: unknown): Uint8Array {
  const tree = normalize(value, 0);
  try {
    return encode(tree, ENCODE_OPTIONS);
  } catch (e) {
    if (e instanceof EncodingError) throw e;
    throw new EncodingError(`value cannot be encoded as CBOR: ${describe(e)}`);
  }
}

/** Library error patterns -> fixed phrases, first match wins (order matters). */
const LIBRARY_ERRORS: readonly (readonly [RegExp, string])[] = [
  [/unexpected end|offset|bounds|insufficient|no value/i, 'truncated input'],
  [/streaming/i, 'indefinite-length item (RFC 8949 §4.2.1 requires definite lengths)'],
  [/duplicate/i, 'duplicate map key (RFC 8949 §5.6)'],
  [/extra data/i, 'trailing bytes after the data item'],
  [/depth/i, `nesting deeper than ${CBOR_MAX_DEPTH} levels`],
  [/utf-?8/i, 'text string is not valid UTF-8'],
  [/nan/i, 'NaN not encoded as f97e00 (RFC 8949 §4.2.1 preferred serialization)'],
  [/as int/i, 'float with an integral value (encode it as an integer)'],
  [/break/i, 'unexpected break code'],
  [/additional info/i, 'reserved additional information value (RFC 8949 §3)'],
  [/long|shorter|preferred/i, 'non-preferred serialization (RFC 8949 §4.2.1: shortest form)'],
  [/undefined/i, 'undefined is not supported'],
  [/simple/i, 'unsupported simple value'],
  [/bigint/i, 'integer outside -2^64 .. 2^64-1'],
];

/** Maps library errors to fixed phrases, so that no decoded data reaches a message or a log. */
function describe(e: unknown): string {
  const m = e instanceof Error ? e.message : '';
  return LIBRARY_ERRORS.find(([re]) => re.test(m))?.[1] ?? 'malformed item';
}

/**
 * Turns library Tag objects into CborTag (in place for arrays) and enforces CBOR_MAX_DEPTH with
 * the same counting as encodeCbor: arrays, maps and tags each add one level.
 */
function fromLibrary(value: unknown, depth: number): unknown {
  if (typeof value !== 'object' || value === null || value instanceof Uint8Array) return value;
  if (depth >= CBOR_MAX_DEPTH) throw new EncodingError(`nesting deeper than ${CBOR_MAX_DEPTH}`);
  if (value instanceof Tag) {
    if (typeof value.tag !== 'number') throw new EncodingError('CBOR tag number is too large');
    return new CborTag(value.tag, fromLibrary(value.contents, depth + 1));
  }
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) value[i] = fromLibrary(value[i], depth + 1);
    return value;
  }
  if (value instanceof Map) {
    const out = new Map<unknown, unknown>();
    for (const [k, v] of value) out.set(fromLibrary(k, depth + 1), fromLibrary(v, depth + 1));
    return out;
  }
  throw new EncodingError('CBOR decoded to an unexpected type');
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
  // A private copy: decoded byte strings are views of it, never of the caller's buffer.
  const input = new Uint8Array(bytes);
  let value: unknown;
  try {
    value = fromLibrary(decode(input, DECODE_OPTIONS), 0);
  } catch (e) {
    const why = e instanceof EncodingError ? e.message : describe(e);
    throw new EncodingError(`CBOR is malformed or not deterministic: ${why}`);
  }
  // Decode, re-encode, compare: whatever the decoder tolerated, only the one deterministic
  // encoding of the value is accepted (key order, float width, NaN form, integral floats).
  let again: Uint8Array;
  try {
    again = encodeCbor(value);
  } catch {
    throw new EncodingError('CBOR decodes to a value outside the supported data model');
  }
  if (!bytesEqual(again, input)) {
    throw new EncodingError('CBOR is not in deterministic encoding (RFC 8949 §4.2.1)');
  }
  return value;
}
