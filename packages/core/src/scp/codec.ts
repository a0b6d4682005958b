/**
 * SCP frame and message codecs (docs/scp.md §Frames, §Messages). Strict: the wrong frame type,
 * wrong lengths, wrong CBOR shapes, trailing bytes and non-zero padding are ScpError, never a
 * lenient parse: an authenticated peer that sends something odd is a bug or an attack either way.
 */
import { clipText, concatBytes, utf8 } from '../bytes.js';
import { decodeCbor, decodeCborPrefix, encodeCbor, withCborEncoding } from '../cbor.js';
import { EncodingError, InvalidInputError } from '../errors.js';
import {
  FRAME,
  MAX_FRAME,
  MSG,
  SCP_NAME,
  ScpError,
  type ScpErrorCode,
  type ScpMessage,
} from './types.js';

export const PUBLIC_KEY_LENGTH = 65;
export const NONCE_LENGTH = 32;
export const SIGNATURE_LENGTH = 64;
export const MAC_LENGTH = 32;
/** Longest message code or close reason accepted, in UTF-8 bytes. */
const MAX_TEXT = 1024;

export function frameType(frame: Uint8Array): number {
  if (!(frame instanceof Uint8Array) || frame.length === 0) {
    throw new ScpError('SCP_PROTOCOL', 'an SCP frame must be non-empty bytes');
  }
  if (frame.length > MAX_FRAME) {
    throw new ScpError('FRAME_TOO_LARGE', `an SCP frame is at most ${MAX_FRAME} bytes`);
  }
  return frame[0] as number;
}

/** The body of a frame of type `type`, or ScpError(code) naming what was expected. */
export function frameBody(
  frame: Uint8Array,
  type: number,
  what: string,
  code: ScpErrorCode,
): Uint8Array {
  const t = frameType(frame);
  if (t === FRAME.ALERT) throw alertError(frame);
  if (t !== type)
    throw new ScpError(code, `expected ${what} (frame type ${type}), got frame type ${t}`);
  return frame.subarray(1);
}

export function frame(type: number, body: Uint8Array): Uint8Array {
  return concatBytes(Uint8Array.of(type), body);
}

/** Strict CBOR decode of a frame body or plaintext; ScpError(code) on malformed CBOR. */
export function cborOf(bytes: Uint8Array, what: string, code: ScpErrorCode): unknown {
  try {
    return decodeCbor(bytes);
  } catch (e) {
    if (e instanceof EncodingError) throw new ScpError(code, `${what}: ${e.message}`, { cause: e });
    throw e;
  }
}

export function arrayOf(v: unknown, n: number, what: string, code: ScpErrorCode): unknown[] {
  if (!Array.isArray(v) || v.length !== n) {
    throw new ScpError(code, `${what} must be a CBOR array of ${n} elements`);
  }
  return v;
}

export function bytesOf(
  v: unknown,
  n: number | undefined,
  what: string,
  code: ScpErrorCode,
): Uint8Array {
  if (!(v instanceof Uint8Array) || (n !== undefined && v.length !== n)) {
    throw new ScpError(
      code,
      `${what} must be a byte string${n === undefined ? '' : ` of ${n} bytes`}`,
    );
  }
  return v;
}

export function publicKeyOf(v: unknown, what: string, code: ScpErrorCode): Uint8Array {
  const k = bytesOf(v, PUBLIC_KEY_LENGTH, what, code);
  if (k[0] !== 4) throw new ScpError(code, `${what} must be an uncompressed P-256 point (04 …)`);
  return k;
}

// ---- CH / SH -------------------------------------------------------------------------------

export interface ClientHello {
  readonly versions: readonly number[];
  readonly ephemeral: Uint8Array;
  readonly nonce: Uint8Array;
}

export function encodeClientHello(h: ClientHello): Uint8Array {
  return frame(FRAME.CH, encodeCbor([SCP_NAME, [...h.versions], h.ephemeral, h.nonce]));
}

/** Decodes CH. The version list must be 1..16 distinct ascending uints. */
export function decodeClientHello(f: Uint8Array): ClientHello {
  const c = 'SCP_HANDSHAKE';
  const [name, versions, e, n] = arrayOf(
    cborOf(frameBody(f, FRAME.CH, 'CH', c), 'CH', c),
    4,
    'CH',
    c,
  );
  if (name !== SCP_NAME) throw new ScpError(c, `CH must start with "${SCP_NAME}"`);
  if (
    !Array.isArray(versions) ||
    versions.length === 0 ||
    versions.length > 16 ||
    versions.some((v, i) => !Number.isSafeInteger(v) || v < 1 || (i > 0 && v <= versions[i - 1]))
  ) {
    throw new ScpError(
      c,
      'CH versions must be 1 to 16 ascending distinct integers from 1 to 2^53 - 1',
    );
  }
  return {
    versions: versions as number[],
    ephemeral: publicKeyOf(e, 'CH ephemeral key', c),
    nonce: bytesOf(n, NONCE_LENGTH, 'CH nonce', c),
  };
}

export interface ServerHello {
  readonly version: number;
  readonly ephemeral: Uint8Array;
  readonly nonce: Uint8Array;
}

export function encodeServerHello(h: ServerHello): Uint8Array {
  return frame(FRAME.SH, encodeCbor([h.version, h.ephemeral, h.nonce]));
}

export function decodeServerHello(f: Uint8Array): ServerHello {
  const c = 'SCP_HANDSHAKE';
  const [v, e, n] = arrayOf(cborOf(frameBody(f, FRAME.SH, 'SH', c), 'SH', c), 3, 'SH', c);
  if (!Number.isSafeInteger(v) || (v as number) < 1)
    throw new ScpError(c, 'SH version must be an integer from 1 to 2^53 - 1');
  return {
    version: v as number,
    ephemeral: publicKeyOf(e, 'SH ephemeral key', c),
    nonce: bytesOf(n, NONCE_LENGTH, 'SH nonce', c),
  };
}

// ---- ALERT ---------------------------------------------------------------------------------

function text(v: unknown, what: string, code: ScpErrorCode): string {
  if (typeof v !== 'string' || utf8(v).length > MAX_TEXT) {
    throw new ScpError(code, `${what} must be text of at most ${MAX_TEXT} bytes`);
  }
  return v;
}

/** ALERT = 0x06 ‖ cbor([code, message]): plaintext, sent on handshake failure before closing. */
export function encodeAlert(code: string, message: string): Uint8Array {
  if (typeof code !== 'string' || typeof message !== 'string') {
    throw new InvalidInputError('an alert has a text code and a text message');
  }
  shortText(code, 'an alert code');
  return frame(FRAME.ALERT, encodeCbor([code, clipText(message)]));
}

/** Decodes an ALERT strictly (ScpError SCP_PROTOCOL when malformed). Its content is unauthenticated. */
export function decodeAlert(f: Uint8Array): { code: string; message: string } {
  const c = 'SCP_PROTOCOL';
  if (frameType(f) !== FRAME.ALERT) throw new ScpError(c, 'not an ALERT frame');
  const [code, message] = arrayOf(cborOf(f.subarray(1), 'ALERT', c), 2, 'ALERT', c);
  return { code: text(code, 'ALERT code', c), message: text(message, 'ALERT message', c) };
}

const PEER_CODES: ReadonlySet<string> = new Set([
  'SCP_HANDSHAKE',
  'SCP_VERSION',
  'SCP_PROTOCOL',
  'SCP_SESSIONS',
  'FRAME_TOO_LARGE',
]);

/** The error a received ALERT becomes (its code when it is one a peer may send, else SCP_HANDSHAKE). */
export function alertError(f: Uint8Array): ScpError {
  const { code, message } = decodeAlert(f);
  const known = PEER_CODES.has(code) ? (code as ScpErrorCode) : 'SCP_HANDSHAKE';
  return new ScpError(
    known,
    `the handshake was aborted by an alert (${code}: ${message}); alerts are not authenticated: the node, its host or anyone on the path may have sent it`,
  );
}

// ---- Messages ------------------------------------------------------------------------------

/** Plaintext length after padding to the next bucket: 256, 1024, 4096, 16384, then 64 KiB steps. */
export function paddedLength(n: number): number {
  for (const b of BUCKETS) if (n <= b) return b;
  return Math.ceil(n / 65536) * 65536;
}
const BUCKETS = [256, 1024, 4096, 16384] as const;

function args(v: unknown, what: string): Map<string, unknown> {
  if (!(v instanceof Map)) throw notTextMap(what);
  for (const k of v.keys()) if (typeof k !== 'string') throw notTextMap(what);
  return v as Map<string, unknown>;
}

function notTextMap(what: string): ScpError {
  return new ScpError('SCP_PROTOCOL', `${what} must be a CBOR map with text keys`);
}

function id(v: unknown): number {
  if (!Number.isSafeInteger(v) || (v as number) < 1) {
    throw new ScpError('SCP_PROTOCOL', 'a message id must be an integer from 1 to 2^53 - 1');
  }
  return v as number;
}

function isMapLike(v: unknown): v is Map<string, unknown> | Record<string, unknown> {
  return (
    v instanceof Map ||
    (typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof Uint8Array))
  );
}

/** The CBOR array of a message; InvalidInputError for a malformed message (a caller bug). */
function bad(what: string): never {
  throw new InvalidInputError(`SCP message: ${what}`);
}

function checkId(id: number): void {
  if (!Number.isSafeInteger(id) || id < 1) bad('id must be an integer from 1 to 2^53 - 1');
}

/** Refuses text the decoder would refuse (names and codes are not clipped: they must be exact). */
function shortText(v: string, what: string): void {
  if (v.length * 3 > MAX_TEXT && utf8(v).length > MAX_TEXT) {
    bad(`${what} must be at most ${MAX_TEXT} bytes of UTF-8`);
  }
}

export function messageArray(m: ScpMessage): unknown[] {
  // Module-level helpers, not closures: this runs for every record sealed.
  if (typeof m !== 'object' || m === null) bad('must be an object');
  switch (m.type) {
    case 'request':
      checkId(m.id);
      if (typeof m.op !== 'string') bad('op must be text');
      shortText(m.op, 'op');
      if (!isMapLike(m.args)) bad('args must be a map');
      return [MSG.REQUEST, m.id, m.op, m.args];
    case 'response':
      checkId(m.id);
      if (m.ok === true) {
        if (!isMapLike(m.result)) bad('result must be a map');
        return [MSG.RESPONSE, m.id, true, m.result];
      }
      if (typeof m.code !== 'string' || typeof m.message !== 'string')
        bad('an error has text code and message');
      shortText(m.code, 'an error code');
      return [MSG.RESPONSE, m.id, false, [m.code, clipText(m.message)]];
    case 'notify':
      checkId(m.id);
      if (typeof m.json !== 'string') bad('json must be text');
      return [MSG.NOTIFY, m.id, m.json];
    case 'close':
      if (typeof m.code !== 'string' || typeof m.message !== 'string')
        bad('close has text code and message');
      shortText(m.code, 'a close code');
      return [MSG.CLOSE, m.code, clipText(m.message)];
    default:
      return bad(`unknown type ${JSON.stringify((m as { type: unknown }).type)}`);
  }
}

/** Record plaintext of a message: cbor(message) ‖ zero padding when `pad`. */
export function encodePlaintext(array: unknown[], pad: boolean): Uint8Array {
  const body = encodeCbor(array);
  if (!pad) return body;
  const out = new Uint8Array(paddedLength(body.length));
  out.set(body);
  return out;
}

/**
 * encodePlaintext, handing `use` the plaintext: without a copy when unpadded, in the encoder's
 * buffer, valid only during the call (for a plaintext sealed in the call).
 */
export function withPlaintext<T>(array: unknown[], pad: boolean, use: (pt: Uint8Array) => T): T {
  return pad ? use(encodePlaintext(array, true)) : withCborEncoding(array, use);
}

/** Decodes record plaintext: one CBOR message array then only zero bytes. KEY_UPDATE → 'key-update'. */
export function decodePlaintext(pt: Uint8Array): ScpMessage | 'key-update' {
  const c = 'SCP_PROTOCOL';
  let item: { value: unknown; length: number };
  try {
    item = decodeCborPrefix(pt);
  } catch (e) {
    if (e instanceof EncodingError) throw new ScpError(c, `record: ${e.message}`, { cause: e });
    throw e;
  }
  for (let i = item.length; i < pt.length; i++) {
    if (pt[i] !== 0) throw new ScpError(c, 'record padding must be zero bytes');
  }
  // Padding fills the message's own bucket, nothing else: one padded length per message, so a
  // peer that pads to lengths of its own choosing is told, instead of its answers going unpadded.
  if (item.length < pt.length && pt.length !== paddedLength(item.length)) {
    throw new ScpError(
      c,
      `record padding must fill the message's bucket: ${paddedLength(item.length)} bytes for a message of ${item.length}, not ${pt.length}`,
    );
  }
  const a = item.value;
  if (!Array.isArray(a) || a.length === 0)
    throw new ScpError(c, 'a message must be a non-empty CBOR array');
  switch (a[0]) {
    case MSG.REQUEST: {
      const [, i, op, as] = arrayOf(a, 4, 'a request', c);
      return {
        type: 'request',
        id: id(i),
        op: text(op, 'request op', c),
        args: args(as, 'request args'),
      };
    }
    case MSG.RESPONSE: {
      const [, i, ok, r] = arrayOf(a, 4, 'a response', c);
      if (ok === true)
        return { type: 'response', id: id(i), ok: true, result: args(r, 'response result') };
      if (ok !== false) throw new ScpError(c, 'response ok must be true or false');
      const [code, message] = arrayOf(r, 2, 'a response error', c);
      return {
        type: 'response',
        id: id(i),
        ok: false,
        code: text(code, 'error code', c),
        message: text(message, 'error message', c),
      };
    }
    case MSG.NOTIFY: {
      const [, i, json] = arrayOf(a, 3, 'a notification', c);
      if (typeof json !== 'string') throw new ScpError(c, 'notification json must be text');
      return { type: 'notify', id: id(i), json };
    }
    case MSG.KEY_UPDATE:
      arrayOf(a, 1, 'a key update', c);
      return 'key-update';
    case MSG.CLOSE: {
      const [, code, message] = arrayOf(a, 3, 'a close', c);
      return {
        type: 'close',
        code: text(code, 'close code', c),
        message: text(message, 'close message', c),
      };
    }
    default:
      throw new ScpError(c, `unknown message type ${String(a[0])}`);
  }
}

/** cbor(["cloister/scp/v1 app", sessionHash, app, codeId]): what the node signs in app.info. */
export function appInfoPayload(
  sessionHash: Uint8Array,
  app: string,
  codeId: Uint8Array,
): Uint8Array {
  if (!(sessionHash instanceof Uint8Array) || sessionHash.length !== 32)
    throw new InvalidInputError('sessionHash must be 32 bytes');
  if (typeof app !== 'string') throw new InvalidInputError('app must be text');
  if (!(codeId instanceof Uint8Array) || codeId.length !== 32)
    throw new InvalidInputError('codeId must be 32 bytes');
  return encodeCbor(['cloister/scp/v1 app', sessionHash, app, codeId]);
}

/** cbor([app, method, args, requestId]): the `request` of a transaction's claims. */
export function claimsRequest(
  app: string,
  method: string,
  args: string,
  requestId: string,
): Uint8Array {
  for (const [v, w] of [
    [app, 'app'],
    [method, 'method'],
    [args, 'args'],
    [requestId, 'requestId'],
  ] as const) {
    if (typeof v !== 'string') throw new InvalidInputError(`${w} must be text`);
  }
  return encodeCbor([app, method, args, requestId]);
}
