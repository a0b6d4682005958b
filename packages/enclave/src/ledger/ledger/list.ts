/**
 * Listing (docs/ledger-format.md §11): pages in path order (HMAC order), merging a transaction's
 * own writes, with an opaque cursor MAC'd and bound to (ledger, table, snapshot index).
 *
 *   cursor = 0x01 ‖ u64be(snapshot) ‖ lastPath(32) ‖ HMAC-SHA256(cursorKey, binding)(32)
 *   binding = "cloister/ledger/v1/cursor" ‖ 0x00 ‖ u16be(|ledger|) ‖ ledger ‖ u16be(|table|) ‖
 *             table ‖ u64be(snapshot) ‖ lastPath
 *   cursorKey = HKDF-SHA256(engine secret, "cloister/ledger/v1/cursor-key")   (RFC 5869)
 */
import { concatBytes, constantTimeEqual, InvalidInputError, utf8 } from '@cloister/core';
import { hkdfSha256, hmacSha256 } from '../crypto.js';
import { CursorError } from './errors.js';
import { FORMAT, readU64, u64, writeU64 } from './format.js';
import type { StateReader } from './state.js';
import { comparePaths, nextPath } from './walk.js';

export const CURSOR_BYTES = 73;
export const DEFAULT_PAGE = 100;
export const MAX_PAGE = 1000;
/**
 * Dead entries (removed keys) a full page steps over looking for one more live entry before it
 * returns a cursor anyway: a page costs at most this many extra reads to say the listing ended.
 */
export const LOOK_AHEAD = 64;

export interface ListOptions {
  /** The cursor of the previous page (absent: from the start). */
  readonly cursor?: Uint8Array;
  /** Entries per page, 1 .. MAX_PAGE (default DEFAULT_PAGE). */
  readonly limit?: number;
  /**
   * Called for each entry the page reads, live or removed (the removed keys it steps over too),
   * with its key and value bytes, right after the read and before the next; what it throws ends
   * the page. The app runtime charges fuel this way, so a page's work is bounded by the call's
   * fuel however many removed keys lie between live ones.
   */
  readonly onRead?: (bytes: number) => void;
}

export interface ListEntry {
  readonly key: Uint8Array;
  readonly value: Uint8Array;
}

export interface ListPage {
  readonly entries: readonly ListEntry[];
  /** Pass to the next call; undefined when the listing is complete. */
  readonly cursor: Uint8Array | undefined;
}

/** A transaction's buffered write, with the key's path. */
export interface BufferedWrite {
  readonly key: Uint8Array;
  readonly path: Uint8Array;
  /** undefined: a remove. */
  readonly value: Uint8Array | undefined;
}

export interface CursorCodec {
  make(ledger: string, table: string, snapshot: number, path: Uint8Array): Uint8Array;
  /** The last path of a cursor made for exactly this ledger, table and snapshot, else CursorError. */
  open(cursor: Uint8Array, ledger: string, table: string, snapshot: number): Uint8Array;
}

function lenPrefixed(s: string): Uint8Array {
  const b = utf8(s);
  return concatBytes(Uint8Array.of(b.length >> 8, b.length & 255), b);
}

export function createCursorCodec(secret: Uint8Array): CursorCodec {
  const key = hkdfSha256(secret, new Uint8Array(0), utf8('cloister/ledger/v1/cursor-key'), 32);
  const label = concatBytes(utf8('cloister/ledger/v1/cursor'), Uint8Array.of(0));
  const mac = (ledger: string, table: string, snapshot: number, path: Uint8Array): Uint8Array =>
    hmacSha256(
      key,
      concatBytes(label, lenPrefixed(ledger), lenPrefixed(table), u64(snapshot), path),
    );
  return {
    make(ledger, table, snapshot, path) {
      const out = new Uint8Array(CURSOR_BYTES);
      out[0] = FORMAT;
      writeU64(out, 1, snapshot);
      out.set(path, 9);
      out.set(mac(ledger, table, snapshot, path), 41);
      return out;
    },
    open(cursor, ledger, table, snapshot) {
      if (
        !(cursor instanceof Uint8Array) ||
        cursor.length !== CURSOR_BYTES ||
        cursor[0] !== FORMAT
      ) {
        throw new CursorError('the list cursor is not a cursor of format 1');
      }
      const at = readU64(cursor, 1);
      const path = cursor.slice(9, 41);
      if (!constantTimeEqual(mac(ledger, table, at, path), cursor.subarray(41))) {
        throw new CursorError('the list cursor was not issued for this ledger and table');
      }
      if (at !== snapshot) {
        throw new CursorError(`the list cursor is for snapshot ${at}, not ${snapshot}`);
      }
      return path;
    },
  };
}

export function checkLimit(limit: number | undefined, max: number, fallback: number): number {
  const n = limit ?? fallback;
  if (!(Number.isSafeInteger(n) && n >= 1 && n <= max)) {
    throw new InvalidInputError(`a page or history limit must be a whole number 1 to ${max}`);
  }
  return n;
}

/** One page of `table` at `reader`'s state with `buffered` (sorted by path) laid over it. */
export function listPage(
  reader: StateReader,
  cursors: CursorCodec,
  where: { readonly ledger: string; readonly table: string; readonly snapshot: number },
  buffered: readonly BufferedWrite[],
  options: ListOptions = {},
): ListPage {
  const { ledger, table, snapshot } = where;
  const limit = checkLimit(options.limit, MAX_PAGE, DEFAULT_PAGE);
  let from: Uint8Array | undefined = new Uint8Array(32);
  if (options.cursor !== undefined) {
    from = nextPath(cursors.open(options.cursor, ledger, table, snapshot));
  }
  const entries: ListEntry[] = [];
  // The first buffered write at or after the page's start, found by halving: stepped over one
  // by one, a page deep into a transaction of thousands of writes cost as much as all of them.
  let b = 0;
  for (let hi = from === undefined ? 0 : buffered.length; b < hi; ) {
    const mid = (b + hi) >>> 1;
    if (comparePaths((buffered[mid] as BufferedWrite).path, from as Uint8Array) < 0) b = mid + 1;
    else hi = mid;
  }
  let stored: Uint8Array | undefined;
  // The last path put on the page; undefined when the page ends with the table.
  let last: Uint8Array | undefined;
  // Dead entries (removes, tombstones) stepped over after the page filled up (LOOK_AHEAD bound).
  let ahead = 0;
  while (from !== undefined) {
    const start: Uint8Array = from;
    while (b < buffered.length && comparePaths((buffered[b] as BufferedWrite).path, start) < 0) b++;
    if (stored === undefined || comparePaths(stored, start) < 0) {
      stored = reader.firstPath(ledger, table, start);
    }
    const mine = buffered[b];
    if (stored === undefined && mine === undefined) {
      // Nothing at or after `start`: the listing is complete (no cursor, no empty last page).
      last = undefined;
      break;
    }
    const useMine =
      mine !== undefined && (stored === undefined || comparePaths(mine.path, stored) <= 0);
    const path = useMine ? mine.path : (stored as Uint8Array);
    let entry: ListEntry | undefined;
    if (useMine) {
      if (mine.value !== undefined) entry = { key: mine.key, value: mine.value };
      options.onRead?.(mine.key.length + (mine.value?.length ?? 0));
    } else {
      const e = reader.readPath(ledger, table, path);
      if (e.version.value !== undefined) entry = { key: e.key, value: e.version.value };
      options.onRead?.(e.key.length + (e.version.value?.length ?? 0));
    }
    if (entries.length === limit) {
      // The page is full: look ahead for one more live entry, so a listing that ends here says
      // so now. The cursor stays at the page's last entry; past LOOK_AHEAD dead ones, assume more.
      if (entry !== undefined || ++ahead > LOOK_AHEAD) break;
    } else {
      if (entry !== undefined) entries.push(entry);
      last = path;
    }
    from = nextPath(path);
  }
  const more = from !== undefined && last !== undefined;
  return {
    entries,
    cursor: more ? cursors.make(ledger, table, snapshot, last as Uint8Array) : undefined,
  };
}
