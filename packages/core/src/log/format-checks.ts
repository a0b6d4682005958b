/**
 * The small strict checks the logchain formats share (format.ts, entry-hashes.ts, payloads.ts,
 * txid.ts): each names the field it checks, and throws through a `Fail` so that one rule serves
 * both directions: an encoder's caller error (InvalidInputError) and a decoder's bad bytes
 * (LogFormatError). Internal to src/log; nothing here is exported by the package.
 */
import { decodeCbor } from '../cbor.js';
import { EncodingError, InvalidInputError } from '../errors.js';
import { LogFormatError } from './errors.js';

export type Fail = (message: string) => Error;
export const formatFail: Fail = (m) => new LogFormatError(m);
export const inputFail: Fail = (m) => new InvalidInputError(m);

export function uint(v: unknown, what: string, fail: Fail): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0 || Object.is(v, -0)) {
    throw fail(`${what} must be an unsigned integer`);
  }
  return v;
}

export function positive(v: unknown, what: string, fail: Fail): number {
  const n = uint(v, what, fail);
  if (n === 0) throw fail(`${what} must be at least 1`);
  return n;
}

export function bytes(v: unknown, what: string, fail: Fail, length?: number): Uint8Array {
  if (!(v instanceof Uint8Array)) throw fail(`${what} must be a byte string`);
  if (length !== undefined && v.length !== length) {
    throw fail(`${what} must be ${length} bytes, not ${v.length}`);
  }
  return v;
}

export function publicKey(v: unknown, what: string, fail: Fail): Uint8Array {
  const k = bytes(v, what, fail, 65);
  if (k[0] !== 0x04) throw fail(`${what} must be an uncompressed P-256 point (first byte 04)`);
  return k;
}

export function claimsField(v: unknown, what: string, fail: Fail): Uint8Array {
  const c = bytes(v, what, fail);
  if (c.length !== 0 && c.length !== 32)
    throw fail(`${what} must be 32 bytes or empty, not ${c.length}`);
  return c;
}

export function decodeStrict(b: Uint8Array, what: string): unknown {
  if (!(b instanceof Uint8Array)) throw new InvalidInputError(`${what} must be bytes`);
  try {
    return decodeCbor(b);
  } catch (e) {
    if (e instanceof EncodingError) throw new LogFormatError(`${what}: ${e.message}`, { cause: e });
    throw e;
  }
}

export function array(v: unknown, length: number, what: string): unknown[] {
  if (!Array.isArray(v)) throw new LogFormatError(`${what} must be a CBOR array`);
  if (v.length !== length) {
    throw new LogFormatError(`${what} must have ${length} elements, not ${v.length}`);
  }
  return v;
}
