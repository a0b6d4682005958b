/**
 * LEB128 reading and writing for the WebAssembly binary format (core spec §5.2.2). The reader
 * refuses what the spec refuses — overlong encodings, unused bits set, reads past the end — with
 * MalformedModuleError, so every parser above it fails by name on any byte string.
 */
import { MalformedModuleError } from './errors.js';

/** A cursor over a module's bytes; `pos` only moves forward. */
export class Reader {
  readonly bytes: Uint8Array;
  pos: number;
  readonly end: number;

  constructor(bytes: Uint8Array, start = 0, end = bytes.length) {
    this.bytes = bytes;
    this.pos = start;
    this.end = end;
  }

  get done(): boolean {
    return this.pos >= this.end;
  }

  byte(): number {
    if (this.pos >= this.end) throw new MalformedModuleError(`unexpected end at byte ${this.pos}`);
    return this.bytes[this.pos++] as number;
  }

  take(n: number): Uint8Array {
    if (n < 0 || this.pos + n > this.end) {
      throw new MalformedModuleError(`${n} bytes at byte ${this.pos} run past the end`);
    }
    const out = this.bytes.subarray(this.pos, this.pos + n);
    this.pos += n;
    return out;
  }

  /** Unsigned LEB128 of at most `bits` bits (u32 by default). */
  u32(bits = 32): number {
    let result = 0;
    let shift = 0;
    const at = this.pos;
    for (;;) {
      const b = this.byte();
      const payload = b & 0x7f;
      const remaining = bits - shift;
      if (remaining < 7 && payload >> remaining !== 0) {
        throw new MalformedModuleError(`integer at byte ${at} is too large`);
      }
      result += payload * 2 ** shift;
      shift += 7;
      if ((b & 0x80) === 0) return result;
      if (shift >= bits) throw new MalformedModuleError(`integer at byte ${at} is too long`);
    }
  }

  /** Signed LEB128 of at most `bits` bits, skipped (only its extent matters to us). */
  skipSigned(bits: number): void {
    const at = this.pos;
    const max = Math.ceil(bits / 7);
    for (let i = 0; i < max; i++) {
      const b = this.byte();
      if ((b & 0x80) === 0) {
        if (i === max - 1) {
          // The last byte's unused bits must all equal the sign bit.
          const used = bits - 7 * (max - 1);
          const rest = b >> (used - 1);
          if (rest !== 0 && rest !== 0x7f >> (used - 1)) {
            throw new MalformedModuleError(`integer at byte ${at} is too large`);
          }
        }
        return;
      }
    }
    throw new MalformedModuleError(`integer at byte ${at} is too long`);
  }

  /** A signed 33-bit block type index or negative shorthand; returns the raw value. */
  s33(): number {
    let result = 0;
    let shift = 0;
    const at = this.pos;
    for (let i = 0; i < 5; i++) {
      const b = this.byte();
      result += (b & 0x7f) * 2 ** shift;
      shift += 7;
      if ((b & 0x80) === 0) {
        if (b & 0x40) result -= 2 ** shift;
        return result;
      }
    }
    throw new MalformedModuleError(`block type at byte ${at} is too long`);
  }

  name(): string {
    const raw = this.take(this.u32());
    try {
      return new TextDecoder('utf-8', { fatal: true }).decode(raw);
    } catch {
      throw new MalformedModuleError(`name at byte ${this.pos - raw.length} is not UTF-8`);
    }
  }
}

/** An append-only byte buffer that grows by doubling. */
export class Writer {
  private buf: Uint8Array = new Uint8Array(256);
  length = 0;

  private room(n: number): void {
    if (this.length + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.length + n) size *= 2;
    const next = new Uint8Array(size);
    next.set(this.buf.subarray(0, this.length));
    this.buf = next;
  }

  byte(b: number): this {
    this.room(1);
    this.buf[this.length++] = b;
    return this;
  }

  bytes(b: Uint8Array): this {
    this.room(b.length);
    this.buf.set(b, this.length);
    this.length += b.length;
    return this;
  }

  u32(v: number): this {
    let n = v >>> 0;
    do {
      let b = n & 0x7f;
      n >>>= 7;
      if (n !== 0) b |= 0x80;
      this.byte(b);
    } while (n !== 0);
    return this;
  }

  /** Signed LEB128 of a safe integer (the i32.const and i64.const immediates we emit). */
  sleb(v: number): this {
    if (!Number.isSafeInteger(v)) throw new RangeError(`sleb: ${v} is not a safe integer`);
    let n = v;
    for (;;) {
      // Math.floor division keeps the sign-extension of >> for values beyond 32 bits.
      const b = ((n % 128) + 128) % 128;
      n = Math.floor(n / 128);
      const done = (n === 0 && (b & 0x40) === 0) || (n === -1 && (b & 0x40) !== 0);
      this.byte(done ? b : b | 0x80);
      if (done) return this;
    }
  }

  name(s: string): this {
    const raw = new TextEncoder().encode(s);
    return this.u32(raw.length).bytes(raw);
  }

  finish(): Uint8Array {
    return this.buf.slice(0, this.length);
  }
}
