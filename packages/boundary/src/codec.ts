/**
 * The one binary codec for the catalogue (docs/boundary.md, "Frame" and "Codec rules").
 *
 * Frame: u8 version (1) | u16 kind | u32 call id | fields, all big-endian, fields positional in
 * catalogue order. Field encodings: u8 (1 byte), u32 (4), u53 (8, at most 2^53-1), bool (1 byte,
 * 0 or 1), bytes (u32 length + bytes), string (u32 length + UTF-8), bytesList (u32 count, at
 * most MAX_LIST_ITEMS, then each element as bytes). Decoding is strict: any
 * deviation is a BoundaryError, never a partial or repaired value. Decoding never throws
 * anything but BoundaryError, whatever the input.
 */
import { fromUtf8, utf8 } from '@cloister/core';
import {
  CATALOGUE_VERSION,
  type CallName,
  type CallRequest,
  type CallResponse,
  type CallSpec,
  ERROR_FIELDS,
  ERROR_KIND,
  type ErrorReply,
  type EventFields,
  type EventName,
  type EventSpec,
  type Fields,
  type FieldType,
  MESSAGES,
  type MessageName,
  RESPONSE_BIT,
} from './catalogue.js';
import { BoundaryError, type FrameHeader } from './errors.js';

/** Which side of the boundary receives a frame: decides which kinds it accepts. */
export type Side = 'host' | 'enclave';

/** A decoded frame. `fields` has exactly the catalogue's fields for `name`, with checked types. */
export type Frame =
  | {
      readonly type: 'request';
      readonly name: CallName;
      readonly id: number;
      readonly fields: Values;
    }
  | {
      readonly type: 'response';
      readonly name: CallName;
      readonly id: number;
      readonly fields: Values;
    }
  | { readonly type: 'error'; readonly id: number; readonly fields: ErrorReply }
  | { readonly type: 'event'; readonly name: EventName; readonly id: 0; readonly fields: Values };

export type Values = Record<string, unknown>;

export interface CodecOptions {
  /** Largest frame, in bytes, this codec encodes or accepts; bounds every length prefix too. */
  readonly maxLength?: number;
}

/**
 * Encodes and decodes frames. Encoders check every field value (type, range, well-formed text)
 * and throw BoundaryError naming the message and field; `decode` accepts only frames a `receiver`
 * may receive (by direction) and returns fields whose `bytes` values are fresh copies owned by
 * the caller.
 */
export interface Codec {
  readonly maxLength: number;
  encodeRequest<N extends CallName>(name: N, id: number, fields: CallRequest<N>): Uint8Array;
  encodeResponse<N extends CallName>(name: N, id: number, fields: CallResponse<N>): Uint8Array;
  encodeEvent<N extends EventName>(name: N, fields: EventFields<N>): Uint8Array;
  /** The generic error reply to call `id` (0 when the call could not be identified). */
  encodeError(id: number, reply: ErrorReply): Uint8Array;
  decode(bytes: Uint8Array, receiver: Side): Frame;
}

export const HEADER_BYTES = 7;
export const DEFAULT_MAX_LENGTH = 64 * 1024 * 1024;
/** Most elements in one `bytesList` field (each costs at least 4 bytes of frame as well). */
export const MAX_LIST_ITEMS = 1 << 20;
const MAX_U32 = 0xffff_ffff;
const TWO_32 = 2 ** 32;
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

type FrameType = Frame['type'];

/** Precomputed layout of one frame kind. */
interface Layout {
  readonly kind: number;
  readonly type: FrameType;
  readonly name: MessageName | 'error';
  readonly receiver: Side | 'both';
  readonly fields: readonly { readonly name: string; readonly type: FieldType }[];
}

function layout(
  kind: number,
  type: FrameType,
  name: Layout['name'],
  receiver: Layout['receiver'],
  fields: Fields,
): Layout {
  for (const f of Object.keys(fields)) {
    if (/^\d/.test(f)) throw new Error(`catalogue field ${name}.${f} must not start with a digit`);
  }
  const list = Object.entries(fields).map(([f, t]) => ({ name: f, type: t }));
  return { kind, type, name, receiver, fields: list };
}

/** The codec tables derived from a catalogue. */
interface Tables {
  readonly byKind: ReadonlyMap<number, Layout>;
  readonly requests: ReadonlyMap<string, Layout>;
  readonly responses: ReadonlyMap<string, Layout>;
  readonly events: ReadonlyMap<string, Layout>;
}

const ERROR_LAYOUT = layout(ERROR_KIND, 'error', 'error', 'both', ERROR_FIELDS);

/** A catalogue in the shape of MESSAGES (tests use small ones). */
export type CatalogueSpec = Readonly<Record<string, CallSpec | EventSpec>>;

function buildTables(messages: CatalogueSpec): Tables {
  const byKind = new Map<number, Layout>([[ERROR_KIND, ERROR_LAYOUT]]);
  const requests = new Map<string, Layout>();
  const responses = new Map<string, Layout>();
  const events = new Map<string, Layout>();
  const add = (l: Layout, byName: Map<string, Layout>): void => {
    if (byKind.has(l.kind))
      throw new Error(`catalogue kind 0x${l.kind.toString(16)} is used twice`);
    byKind.set(l.kind, l);
    byName.set(l.name, l);
  };
  for (const [name, spec] of Object.entries(messages)) {
    if (!Number.isInteger(spec.kind) || spec.kind < 1 || spec.kind >= RESPONSE_BIT) {
      throw new Error(`catalogue kind of ${name} must be in 1..0x7fff`);
    }
    const to: Side = spec.direction === 'host->enclave' ? 'enclave' : 'host';
    const from: Side = to === 'host' ? 'enclave' : 'host';
    const n = name as MessageName;
    if (spec.type === 'call') {
      add(layout(spec.kind, 'request', n, to, spec.request), requests);
      add(layout(spec.kind | RESPONSE_BIT, 'response', n, from, spec.response), responses);
    } else {
      add(layout(spec.kind, 'event', n, to, spec.fields), events);
    }
  }
  return { byKind, requests, responses, events };
}

const TABLES = buildTables(MESSAGES);

/** Frame kinds in the catalogue, for tests and docs: kind -> `name request|response|event`. */
export function frameKinds(): { kind: number; name: string; type: FrameType }[] {
  return [...TABLES.byKind.values()].map((l) => ({ kind: l.kind, name: l.name, type: l.type }));
}

function fail(message: string, header?: FrameHeader): never {
  throw new BoundaryError(message, header);
}

function checkId(id: number, l: Layout): void {
  const min = l.type === 'request' || l.type === 'response' ? 1 : 0;
  const max = l.type === 'event' ? 0 : MAX_U32;
  if (!Number.isInteger(id) || id < min || id > max) fail(`${l.name} ${l.type}: bad call id ${id}`);
}

/** Fails naming the field: `<message> <request|response|...> field <name> <what>`. */
function bad(l: Layout, field: string, what: string, header?: FrameHeader): never {
  throw new BoundaryError(`${l.name} ${l.type} field ${field} ${what}`, header);
}

function isUint(v: unknown, max: number): v is number {
  return typeof v === 'number' && Number.isInteger(v) && v >= 0 && v <= max;
}

function putU32(out: Uint8Array, o: number, v: number): void {
  out[o] = v >>> 24;
  out[o + 1] = v >>> 16;
  out[o + 2] = v >>> 8;
  out[o + 3] = v;
}

function getU32(b: Uint8Array, o: number): number {
  return (
    (b[o] as number) * 0x100_0000 +
    (((b[o + 1] as number) << 16) | ((b[o + 2] as number) << 8) | (b[o + 3] as number))
  );
}

/** Size of the encoded fields after checking every value; encodes strings into `texts`. */
function measure(l: Layout, values: Values, max: number, texts: Uint8Array[]): number {
  let size = HEADER_BYTES;
  for (const f of l.fields) {
    const v = values[f.name];
    switch (f.type) {
      case 'u8':
        if (!isUint(v, 0xff)) bad(l, f.name, 'must be a u8');
        size += 1;
        break;
      case 'u32':
        if (!isUint(v, MAX_U32)) bad(l, f.name, 'must be a u32');
        size += 4;
        break;
      case 'u53':
        if (!isUint(v, Number.MAX_SAFE_INTEGER)) bad(l, f.name, 'must be a u53');
        size += 8;
        break;
      case 'bool':
        if (typeof v !== 'boolean') bad(l, f.name, 'must be a boolean');
        size += 1;
        break;
      case 'bytes':
        if (!(v instanceof Uint8Array)) bad(l, f.name, 'must be a Uint8Array');
        if (v.length > max) bad(l, f.name, `is longer than ${max} bytes`);
        size += 4 + v.length;
        break;
      case 'bytesList':
        if (!Array.isArray(v)) bad(l, f.name, 'must be an array of Uint8Array');
        if (v.length > MAX_LIST_ITEMS) bad(l, f.name, `has more than ${MAX_LIST_ITEMS} elements`);
        size += 4;
        for (const e of v as unknown[]) {
          if (!(e instanceof Uint8Array)) bad(l, f.name, 'must be an array of Uint8Array');
          if (e.length > max) bad(l, f.name, `has an element longer than ${max} bytes`);
          size += 4 + e.length;
        }
        break;
      default: {
        if (typeof v !== 'string') bad(l, f.name, 'must be a string');
        if (LONE_SURROGATE.test(v)) bad(l, f.name, 'is not well-formed Unicode');
        const t = utf8(v);
        if (t.length > max) bad(l, f.name, `is longer than ${max} bytes`);
        texts.push(t);
        size += 4 + t.length;
      }
    }
  }
  return size;
}

function encodeFrame(l: Layout, id: number, values: Values, max: number): Uint8Array {
  checkId(id, l);
  if (typeof values !== 'object' || values === null) fail(`${l.name} ${l.type} needs an object`);
  const texts: Uint8Array[] = [];
  const size = measure(l, values, max, texts);
  if (size > max) fail(`${l.name} ${l.type} is ${size} bytes, over the ${max}-byte limit`);
  const out = new Uint8Array(size);
  out[0] = CATALOGUE_VERSION;
  out[1] = l.kind >>> 8;
  out[2] = l.kind;
  putU32(out, 3, id);
  let o = HEADER_BYTES;
  let t = 0;
  for (const f of l.fields) {
    const v = values[f.name];
    switch (f.type) {
      case 'u8':
        out[o++] = v as number;
        break;
      case 'u32':
        putU32(out, o, v as number);
        o += 4;
        break;
      case 'u53':
        putU32(out, o, Math.floor((v as number) / TWO_32));
        putU32(out, o + 4, (v as number) >>> 0);
        o += 8;
        break;
      case 'bool':
        out[o++] = v ? 1 : 0;
        break;
      case 'bytesList':
        putU32(out, o, (v as Uint8Array[]).length);
        o += 4;
        for (const e of v as Uint8Array[]) {
          putU32(out, o, e.length);
          out.set(e, o + 4);
          o += 4 + e.length;
        }
        break;
      default: {
        const b = f.type === 'bytes' ? (v as Uint8Array) : (texts[t++] as Uint8Array);
        putU32(out, o, b.length);
        out.set(b, o + 4);
        o += 4 + b.length;
      }
    }
  }
  return out;
}

/** Byte length of each fixed-size field type. */
const FIXED: Readonly<Record<FieldType, number>> = {
  u8: 1,
  u32: 4,
  u53: 8,
  bool: 1,
  bytes: 4,
  string: 4,
  bytesList: 4,
};

function decodeFields(bytes: Uint8Array, l: Layout, h: FrameHeader, max: number): Values {
  const end = bytes.length;
  const out: Values = {};
  let o = HEADER_BYTES;
  for (const { name: f, type } of l.fields) {
    if (end - o < FIXED[type]) bad(l, f, 'is truncated', h);
    switch (type) {
      case 'u8':
        out[f] = bytes[o++];
        break;
      case 'u32':
        out[f] = getU32(bytes, o);
        o += 4;
        break;
      case 'u53': {
        const hi = getU32(bytes, o);
        if (hi > 0x1f_ffff) bad(l, f, 'is over 2^53-1', h);
        out[f] = hi * TWO_32 + getU32(bytes, o + 4);
        o += 8;
        break;
      }
      case 'bool': {
        const b = bytes[o++];
        if (b !== 0 && b !== 1) bad(l, f, 'is not a boolean', h);
        out[f] = b === 1;
        break;
      }
      case 'bytesList': {
        const count = getU32(bytes, o);
        o += 4;
        if (count > MAX_LIST_ITEMS) bad(l, f, `count ${count} is over the cap`, h);
        // Each element takes at least its 4-byte length: refuse before allocating anything, by a
        // message of its own (the loop below would also refuse it, but only after the array).
        if (count > (end - o) / 4) {
          bad(l, f, `count ${count} needs at least ${count * 4} bytes, ${end - o} are left`, h);
        }
        const list: Uint8Array[] = new Array(count);
        for (let i = 0; i < count; i++) {
          if (end - o < 4) bad(l, f, 'is truncated', h);
          const n = getU32(bytes, o);
          if (n > max) bad(l, f, `element length ${n} is over the cap`, h);
          o += 4;
          if (end - o < n) bad(l, f, 'is truncated', h);
          list[i] = bytes.slice(o, o + n);
          o += n;
        }
        out[f] = list;
        break;
      }
      default: {
        const n = getU32(bytes, o);
        if (n > max) bad(l, f, `length ${n} is over the cap`, h);
        o += 4;
        if (end - o < n) bad(l, f, 'is truncated', h);
        const b = bytes.slice(o, o + n);
        o += n;
        out[f] = type === 'bytes' ? b : text(b, l, f, h);
      }
    }
  }
  if (o !== end) fail(`${l.name} ${l.type} has ${end - o} trailing bytes`, h);
  return out;
}

function text(b: Uint8Array, l: Layout, f: string, h: FrameHeader): string {
  try {
    return fromUtf8(b);
  } catch {
    return bad(l, f, 'is not valid UTF-8', h);
  }
}

function decodeFrame(t: Tables, bytes: Uint8Array, receiver: Side, max: number): Frame {
  if (!(bytes instanceof Uint8Array)) fail('a frame must be a Uint8Array');
  if (bytes.length > max) fail(`frame of ${bytes.length} bytes is over the ${max}-byte limit`);
  if (bytes.length < HEADER_BYTES)
    fail(`frame of ${bytes.length} bytes is shorter than its header`);
  if (bytes[0] !== CATALOGUE_VERSION) fail(`unknown catalogue version ${bytes[0]}`);
  const h: FrameHeader = {
    kind: ((bytes[1] as number) << 8) | (bytes[2] as number),
    id: getU32(bytes, 3),
  };
  const l = t.byKind.get(h.kind);
  if (l === undefined) fail(`unknown message kind 0x${h.kind.toString(16)}`, h);
  if (l.receiver !== 'both' && l.receiver !== receiver) {
    fail(`${l.name} ${l.type} may not be sent to the ${receiver}`, h);
  }
  if (l.type === 'event' ? h.id !== 0 : l.type !== 'error' && h.id === 0) {
    fail(`${l.name} ${l.type} has a bad call id ${h.id}`, h);
  }
  const fields = decodeFields(bytes, l, h, max);
  return { type: l.type, name: l.name, id: h.id, fields } as Frame;
}

function lookup(map: ReadonlyMap<string, Layout>, name: string, what: string): Layout {
  const l = map.get(name);
  if (l === undefined) fail(`${name} is not a ${what} in the catalogue`);
  return l;
}

/** Creates the codec of the catalogue (MESSAGES); `maxLength` defaults to 64 MiB. */
export function createCodec(options: CodecOptions = {}): Codec {
  return codecOf(TABLES, options);
}

/**
 * A codec for another catalogue of the same shape, with loose types: for tests of the codec
 * rules on field types or messages the real catalogue does not (yet) use.
 */
export function createCatalogueCodec(messages: CatalogueSpec, options: CodecOptions = {}): Codec {
  return codecOf(buildTables(messages), options);
}

function codecOf(t: Tables, options: CodecOptions): Codec {
  const max = options.maxLength ?? DEFAULT_MAX_LENGTH;
  if (!Number.isInteger(max) || max < HEADER_BYTES || max > MAX_U32) {
    throw new BoundaryError(`maxLength must be a whole number in ${HEADER_BYTES}..${MAX_U32}`);
  }
  return {
    maxLength: max,
    encodeRequest: (name, id, fields) =>
      encodeFrame(lookup(t.requests, name, 'call'), id, fields, max),
    encodeResponse: (name, id, fields) =>
      encodeFrame(lookup(t.responses, name, 'call'), id, fields, max),
    encodeEvent: (name, fields) => encodeFrame(lookup(t.events, name, 'event'), 0, fields, max),
    encodeError: (id, reply) => encodeFrame(ERROR_LAYOUT, id, reply, max),
    decode: (bytes, receiver) => decodeFrame(t, bytes, receiver, max),
  };
}
