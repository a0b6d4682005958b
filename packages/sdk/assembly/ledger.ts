/**
 * The app's ledger (docs/app-abi.md §4): named tables of byte keys and byte values, with string
 * and JSON helpers. In a transaction reads see the snapshot plus the transaction's own writes; in a
 * query any write ends the call (`APP_QUERY_WRITE`). Table names starting with `$` are reserved and
 * refused by the host.
 */
import {
  ledger_get,
  ledger_history,
  ledger_list,
  ledger_prove,
  ledger_remove,
  ledger_set,
  ledger_state_hash,
  NOT_FOUND,
} from './abi';
import { ByteReader, fromUtf8, readHostBuffer, utf8 } from './bytes';
import { Json } from './json';

/** One version of a key, newest first in `Table.history` (§4.4). */
export class Version {
  /** The commit index that wrote this version (transaction id `1.index` until consensus). */
  index: u64;
  /** The value, or null when this version removed the key. */
  value: Uint8Array | null;

  constructor(index: u64, value: Uint8Array | null) {
    this.index = index;
    this.value = value;
  }

  get removed(): bool {
    return this.value === null;
  }

  /** The value as UTF-8 text, or null when removed. */
  text(): string | null {
    const v = this.value;
    return v === null ? null : fromUtf8(v);
  }
}

/** One key and its value in a listing page. */
export class Entry {
  key: Uint8Array;
  value: Uint8Array;

  constructor(key: Uint8Array, value: Uint8Array) {
    this.key = key;
    this.value = value;
  }

  keyText(): string {
    return fromUtf8(this.key);
  }

  valueText(): string {
    return fromUtf8(this.value);
  }
}

/** A page of `Table.list` (§4.5). Pass `cursor` back to get the next page; null when done. */
export class Page {
  entries: Array<Entry>;
  cursor: Uint8Array | null;

  constructor(entries: Array<Entry>, cursor: Uint8Array | null) {
    this.entries = entries;
    this.cursor = cursor;
  }

  get done(): bool {
    return this.cursor === null;
  }
}

/** A table of this app's ledger. Cheap to create; keep one per table at module level. */
export class Table {
  readonly name: string;
  private nameBytes: Uint8Array;

  constructor(name: string) {
    this.name = name;
    this.nameBytes = utf8(name);
  }

  // ---- bytes ----

  /** The value of `key`, or null when absent. */
  getBytes(key: Uint8Array): Uint8Array | null {
    const t = this.nameBytes;
    const n = ledger_get(t.dataStart, t.length, key.dataStart, key.length);
    return n == NOT_FOUND ? null : readHostBuffer(n);
  }

  setBytes(key: Uint8Array, value: Uint8Array): void {
    const t = this.nameBytes;
    ledger_set(t.dataStart, t.length, key.dataStart, key.length, value.dataStart, value.length);
  }

  /** Removes `key` (allowed when absent: a removal version is still recorded). */
  removeBytes(key: Uint8Array): void {
    const t = this.nameBytes;
    ledger_remove(t.dataStart, t.length, key.dataStart, key.length);
  }

  /** Committed versions of `key`, newest first, at most `limit` (1–1000). */
  historyBytes(key: Uint8Array, limit: i32 = 100): Array<Version> {
    const t = this.nameBytes;
    const n = ledger_history(t.dataStart, t.length, key.dataStart, key.length, limit);
    const r = new ByteReader(readHostBuffer(n));
    const count = <i32>r.u32();
    const out = new Array<Version>();
    for (let i = 0; i < count; i++) {
      const index = r.u64();
      const len = r.i32();
      out.push(new Version(index, len < 0 ? null : r.take(len)));
    }
    return out;
  }

  /** State proof of `key` (inclusion or non-inclusion) against `Ledger.stateHash()` (§8). */
  proveBytes(key: Uint8Array): Uint8Array {
    const t = this.nameBytes;
    return readHostBuffer(ledger_prove(t.dataStart, t.length, key.dataStart, key.length));
  }

  // ---- strings (UTF-8 keys and values) ----

  get(key: string): string | null {
    const v = this.getBytes(utf8(key));
    return v === null ? null : fromUtf8(v);
  }

  has(key: string): bool {
    return this.getBytes(utf8(key)) !== null;
  }

  set(key: string, value: string): void {
    this.setBytes(utf8(key), utf8(value));
  }

  remove(key: string): void {
    this.removeBytes(utf8(key));
  }

  history(key: string, limit: i32 = 100): Array<Version> {
    return this.historyBytes(utf8(key), limit);
  }

  prove(key: string): Uint8Array {
    return this.proveBytes(utf8(key));
  }

  // ---- JSON values ----

  /** The value of `key` parsed as JSON; null when absent (or not JSON). */
  getJson(key: string): Json | null {
    const v = this.get(key);
    return v === null ? null : Json.parse(v);
  }

  setJson(key: string, value: Json): void {
    this.set(key, value.stringify());
  }

  // ---- listing ----

  /**
   * One page of the table, in the ledger's path order (stable within a call, not key order).
   * Start with `cursor` null; pass back `page.cursor` until `page.done`.
   */
  list(cursor: Uint8Array | null = null, limit: i32 = 100): Page {
    const t = this.nameBytes;
    const c = cursor === null ? new Uint8Array(0) : cursor;
    const n = ledger_list(t.dataStart, t.length, c.dataStart, c.length, limit);
    const r = new ByteReader(readHostBuffer(n));
    const count = <i32>r.u32();
    const entries = new Array<Entry>();
    for (let i = 0; i < count; i++) {
      const key = r.take(<i32>r.u32());
      entries.push(new Entry(key, r.take(<i32>r.u32())));
    }
    const cursorLen = <i32>r.u32();
    return new Page(entries, cursorLen == 0 ? null : r.take(cursorLen));
  }
}

/** The app's ledger as a whole. */
export class Ledger {
  /** A table by name (same as `new Table(name)`). */
  static table(name: string): Table {
    return new Table(name);
  }

  /** The 32-byte state hash this call reads at: what `Table.prove` proofs verify against. */
  static stateHash(): Uint8Array {
    const out = new Uint8Array(32);
    ledger_state_hash(out.dataStart);
    return out;
  }
}
