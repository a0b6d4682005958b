/**
 * Where the logchain lives in the store and how it is read back (docs/logchain.md): entry `index`
 * under 0x02 ‖ u64be(index), its CBOR bytes as value (public: an auditor reads them). `logPages`
 * reads the whole namespace in ranges for the restart check (restart.ts); `readStoredEntry` reads
 * one committed entry back and checks it against the tree (receipts, write sets, `entry`).
 */
import {
  bytesEqual,
  decodeEntry,
  entryLeafHash,
  indexOfKey,
  LOG_TERM,
  type LogEntry,
  LogEntryAlteredError,
  LogEntryMissingError,
  LogEntryReorderedError,
  logStoreKey,
  type MerkleLog,
  rootFromInclusion,
  STORE_NAMESPACE_LOG,
} from '@cloister/core';
import type { IterateOptions, StoreEntry } from '../store/store.js';
import { sha256 } from './log-crypto.js';

/** The store key format is core's (docs/logchain.md §1): one copy for restart and the audit. */
export { indexOfKey, logStoreKey, STORE_NAMESPACE_LOG };

/** The term of every entry: one service, one term (receipts and txids carry it). */
export const TERM = LOG_TERM;

/** A store the log reads entries from: point reads and ordered iteration. */
export interface LogStore {
  get(key: Uint8Array): Uint8Array | undefined;
  iterate(options?: IterateOptions): AsyncIterable<StoreEntry>;
}

/** Log entries per range `logPages` reads by default: a few pages of the boundary store. */
export const READ_RANGE = 4096;
/** Ranges `logPages` reads ahead of the one being checked. */
const READ_AHEAD = 2;

/**
 * The whole log namespace in key order, as arrays of entries: ranges of `range` indexes up to
 * `size` (the checkpoint's), then the rest of the namespace. The ranges tile the namespace
 * (0x02 .. 0x03), so together they are exactly one ordered iteration of it, including keys that
 * are not well-formed entry keys; READ_AHEAD ranges are read while the caller checks one. After an
 * empty range (a log shorter than its checkpoint) the rest is read as one last range. Each range
 * is read up to range + 1 entries: more means keys that fail the check anyway.
 */
export async function* logPages(
  store: LogStore,
  size: number,
  range: number,
): AsyncGenerator<StoreEntry[]> {
  const end = Uint8Array.of(STORE_NAMESPACE_LOG + 1);
  // Range j is [bound(j), bound(j + 1)); bound(0) opens the namespace, bound(ranges) closes it.
  let ranges = Math.max(1, Math.ceil(size / range));
  const bound = (j: number): Uint8Array =>
    j === 0 ? Uint8Array.of(STORE_NAMESPACE_LOG) : j >= ranges ? end : logStoreKey(1 + j * range);
  // A range holds at most `range` well-formed entry keys, so of any range+1 entries one is wrong
  // (a malformed key, an entry beyond the checkpoint) and fails the caller's check in key order:
  // reading more would only let a host that planted keys make the enclave hold them all.
  const read = async (gte: Uint8Array, lt: Uint8Array): Promise<StoreEntry[]> => {
    const out: StoreEntry[] = [];
    for await (const e of store.iterate({ gte, lt, limit: range + 1 })) out.push(e);
    return out;
  };
  const reads: Promise<StoreEntry[]>[] = [];
  let started = 0;
  for (let j = 0; j < ranges; j++) {
    while (started < Math.min(ranges, j + 1 + READ_AHEAD)) {
      const p = read(bound(started), bound(started + 1));
      started++;
      // A failed read-ahead is reported when its turn comes, not as an unhandled rejection.
      p.catch(() => {});
      reads.push(p);
    }
    const page = await (reads.shift() as Promise<StoreEntry[]>);
    if (page.length === 0 && j > 0 && started < ranges) {
      // The log ends before its checkpoint says: the ranges started so far, then the rest.
      const rest = bound(started);
      ranges = started + 1;
      const p = read(rest, end);
      p.catch(() => {});
      reads.push(p);
      started = ranges;
    }
    yield page;
  }
}

/**
 * Reads entry `index` back from the store and checks it is the committed leaf of `merkle`: every
 * field the leaf commits to (docs/logchain.md §1). Two fields are outside the leaf and are NOT
 * checked here: `prev` (the chain is checked at restart, against the sealed checkpoint) and a
 * signature entry's `sig` (callers compare it with the signature bytes they keep, as receipts do).
 */
export function readStoredEntry(
  store: LogStore,
  merkle: MerkleLog,
  index: number,
  treeSize: number,
): LogEntry {
  const bytes = store.get(logStoreKey(index));
  if (bytes === undefined) {
    throw new LogEntryMissingError(index, `log entry ${index} is missing from the store`);
  }
  let e: LogEntry;
  try {
    e = decodeEntry(bytes);
  } catch (cause) {
    throw new LogEntryAlteredError(index, `log entry ${index} does not decode`, { cause });
  }
  if (e.index !== index) {
    throw new LogEntryReorderedError(index, `the store holds entry ${e.index} at ${index}`);
  }
  const path = merkle.inclusionProof(index - 1, treeSize);
  if (
    !bytesEqual(
      rootFromInclusion(index - 1, treeSize, entryLeafHash(e, sha256), path),
      merkle.root(treeSize),
    )
  ) {
    throw new LogEntryAlteredError(index, `log entry ${index} is not the one the tree holds`);
  }
  return e;
}
