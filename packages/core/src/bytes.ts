/**
 * Byte helpers used across every package. Strict: malformed hex or base64 is an EncodingError,
 * never a silently shorter result.
 */
import { EncodingError } from './errors.js';

const HEX = '0123456789abcdef';
const B64 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';

export function toHex(bytes: Uint8Array): string {
  let out = '';
  for (const b of bytes) out += HEX.charAt(b >> 4) + HEX.charAt(b & 15);
  return out;
}

/** Parses lowercase or uppercase hex with an even number of digits and nothing else. */
export function fromHex(hex: string, what = 'hex'): Uint8Array {
  if (!/^[0-9a-fA-F]*$/.test(hex)) {
    const at = hex.search(/[^0-9a-fA-F]/);
    throw new EncodingError(
      `${what} must be hexadecimal digits (0-9, a-f), but has ${JSON.stringify(hex.charAt(at))} at position ${at}`,
    );
  }
  if (hex.length % 2 !== 0) {
    throw new EncodingError(
      `${what} must be an even number of hexadecimal digits (two per byte), not ${hex.length}`,
    );
  }
  const out = new Uint8Array(hex.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = Number.parseInt(hex.slice(i * 2, i * 2 + 2), 16);
  return out;
}

/**
 * The bytes as a string of one code unit per byte (latin1): injective, half the length of hex and
 * built without a string per byte, for Map keys; also what btoa takes.
 */
export function byteKey(bytes: Uint8Array): string {
  if (bytes.length <= 0x2000) return String.fromCharCode.apply(null, bytes as unknown as number[]);
  let s = '';
  for (let i = 0; i < bytes.length; i += 0x2000) {
    s += String.fromCharCode.apply(null, bytes.subarray(i, i + 0x2000) as unknown as number[]);
  }
  return s;
}

export function toBase64(bytes: Uint8Array): string {
  return btoa(byteKey(bytes));
}

/**
 * Parses canonical standard padded base64 (RFC 4648 §4) and nothing else: the bits the padding
 * leaves over must be zero (§3.5), so each byte string has exactly one encoding that parses.
 */
export function fromBase64(b64: string, what = 'base64'): Uint8Array {
  if (!/^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/.test(b64)) {
    throw new EncodingError(`${what} must be standard padded base64`);
  }
  // 'AB==' and 'AAF=' decode as 'AA==' and 'AAE=' do: the last character's spare bits, which
  // atob ignores, would give one value two encodings.
  const pad = b64.endsWith('==') ? 2 : b64.endsWith('=') ? 1 : 0;
  if (pad > 0) {
    const last = B64.indexOf(b64.charAt(b64.length - 1 - pad));
    if ((last & (pad === 2 ? 0b1111 : 0b11)) !== 0) {
      throw new EncodingError(
        `${what} must be canonical base64: the character before the padding carries bits that are not zero (RFC 4648 §3.5); encode the bytes again with a standard encoder`,
      );
    }
  }
  const s = atob(b64);
  const out = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i);
  return out;
}

export function concatBytes(...parts: Uint8Array[]): Uint8Array {
  let n = 0;
  for (const p of parts) n += p.length;
  const out = new Uint8Array(n);
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

/** Equality of public values (hashes, keys). Not for secrets: use `constantTimeEqual`. */
export function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/**
 * Constant-time equality for secrets (MACs, tags, tokens): the time taken depends only on the
 * lengths, never on where the inputs differ.
 */
export function constantTimeEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= (a[i] as number) ^ (b[i] as number);
  return diff === 0;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder('utf-8', { fatal: true });

export function utf8(s: string): Uint8Array {
  return encoder.encode(s);
}

/** Decodes UTF-8, failing on invalid sequences. */
export function fromUtf8(bytes: Uint8Array, what = 'text'): string {
  try {
    return decoder.decode(bytes);
  } catch {
    throw new EncodingError(`${what} is not valid UTF-8`);
  }
}

/** UTF-8 bytes of code point `c`. */
function utf8Bytes(c: number): number {
  return c < 0x80 ? 1 : c < 0x800 ? 2 : c < 0x10000 ? 3 : 4;
}

/**
 * `s` if its UTF-8 form fits in `max` bytes (default 1024: every SCP text field, an app's error message), else its
 * longest prefix of whole code points that fits with "…" (3 bytes) after it. Messages are for
 * people: a sender clips them so the receiver, which refuses longer text, never sees one.
 */
export function clipText(s: string, max = 1024): string {
  // A UTF-16 unit is at most 3 UTF-8 bytes (a surrogate pair, 2 units, is 4).
  if (s.length * 3 <= max || utf8(s).length <= max) return s;
  let bytes = 0;
  let end = 0;
  for (const ch of s) {
    const n = utf8Bytes(ch.codePointAt(0) as number);
    if (bytes + n > max - 3) break;
    bytes += n;
    end += ch.length;
  }
  return `${s.slice(0, end)}…`;
}

/**
 * What a key file holds instead of a PEM private key, for its error message (never OpenSSL's
 * decoder text): nothing, a public key, an unreadable PEM block, or no PEM block at all.
 */
export function pemProblem(text: string): string {
  if (text.trim() === '') return 'the file is empty';
  if (/-----BEGIN [A-Z ]*PUBLIC KEY-----/.test(text))
    return 'it holds a public key, not the private key';
  if (/-----BEGIN /.test(text)) return 'its PEM block is not a readable private key';
  return 'it holds no PEM block';
}

/** Overwrites a buffer that held a secret. */
export function wipe(bytes: Uint8Array): void {
  bytes.fill(0);
}
