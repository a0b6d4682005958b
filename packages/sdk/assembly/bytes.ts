/**
 * Byte helpers shared by the wrappers: UTF-8 text, pointers into `Uint8Array`s, the host buffer
 * (docs/app-abi.md §1.1) and little-endian reads of the host's encodings (§4.4, §4.5).
 */
import { buffer_read } from './abi';

/** `s` encoded as UTF-8 bytes. */
export function utf8(s: string): Uint8Array {
  return Uint8Array.wrap(String.UTF8.encode(s));
}

/** UTF-8 bytes decoded to a string. */
export function fromUtf8(bytes: Uint8Array): string {
  return String.UTF8.decodeUnsafe(bytes.dataStart, <usize>bytes.length);
}

/** The address of the first byte (valid while `bytes` is alive). */
@inline
export function ptr(bytes: Uint8Array): usize {
  return bytes.dataStart;
}

/** Copies `n` bytes out of the host buffer (after a call that returned size `n`). */
export function readHostBuffer(n: i32): Uint8Array {
  const out = new Uint8Array(n);
  if (n > 0) buffer_read(out.dataStart);
  return out;
}

/** Lowercase hex of `bytes`. */
export function toHex(bytes: Uint8Array): string {
  const digits = '0123456789abcdef';
  const out = new Array<string>(bytes.length);
  for (let i = 0; i < bytes.length; i++) {
    const b = <i32>unchecked(bytes[i]);
    unchecked((out[i] = digits.charAt(b >> 4) + digits.charAt(b & 15)));
  }
  return out.join('');
}

/** The value of one hex digit (either case), or -1. */
function hexDigit(c: i32): i32 {
  if (c >= 48 && c <= 57) return c - 48; // 0-9
  if (c >= 97 && c <= 102) return c - 87; // a-f
  if (c >= 65 && c <= 70) return c - 55; // A-F
  return -1;
}

/**
 * The bytes of hex text (either case, no prefix or separators), the inverse of `toHex`; null when
 * `text` has an odd length or a character that is not a hex digit. For bytes carried in JSON: a
 * page cursor handed to a client and back, a key given as hex.
 */
export function fromHex(text: string): Uint8Array | null {
  const n = text.length;
  if (n & 1) return null;
  const out = new Uint8Array(n >> 1);
  for (let i = 0; i < n; i += 2) {
    const hi = hexDigit(text.charCodeAt(i));
    const lo = hexDigit(text.charCodeAt(i + 1));
    if (hi < 0 || lo < 0) return null;
    unchecked((out[i >> 1] = <u8>((hi << 4) | lo)));
  }
  return out;
}

/** Reads little-endian values from a byte string, front to back; aborts past the end. */
export class ByteReader {
  pos: i32 = 0;
  bytes: Uint8Array;

  constructor(bytes: Uint8Array) {
    this.bytes = bytes;
  }

  private need(n: i32): usize {
    assert(this.pos + n <= this.bytes.length, 'host encoding truncated');
    const at = this.bytes.dataStart + <usize>this.pos;
    this.pos += n;
    return at;
  }

  u32(): u32 {
    return load<u32>(this.need(4));
  }

  i32(): i32 {
    return load<i32>(this.need(4));
  }

  u64(): u64 {
    return load<u64>(this.need(8));
  }

  take(n: i32): Uint8Array {
    const at = this.need(n);
    const out = new Uint8Array(n);
    memory.copy(out.dataStart, at, <usize>n);
    return out;
  }
}
