/**
 * LevelDB Store (store.ts) through classic-level 3.0.0: `getSync` for reads, a chained `batch`
 * written with `{ sync }` for atomic writes (a LevelDB WriteBatch: all or nothing, also across crashes), and
 * native iterators, which read from an implicit snapshot taken when they are created.
 */
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { ClassicLevel } from 'classic-level';
import {
  type BatchOp,
  checkBatch,
  checkIterate,
  checkKey,
  type IterateOptions,
  type Store,
  type StoreEntry,
  StoreError,
  type WriteOptions,
} from './store.js';

export interface LevelStoreOptions {
  /** Create the directory and database when missing (default true). */
  readonly createIfMissing?: boolean;
}

export interface LevelStore extends Store {
  /** The database directory. */
  readonly dir: string;
}

type Db = ClassicLevel<Uint8Array, Uint8Array>;

/** A plain Uint8Array over a Buffer's bytes (no copy): callers get Uint8Array semantics. */
function plain(b: Uint8Array): Uint8Array {
  return new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
}

function causeCode(e: unknown): string | undefined {
  const c = (e as { cause?: { code?: unknown } } | undefined)?.cause?.code;
  if (typeof c === 'string') return c;
  const d = (e as { code?: unknown } | undefined)?.code;
  return typeof d === 'string' ? d : undefined;
}

/**
 * LevelDB reports a full disk as an IO error carrying the system's text (strerror of ENOSPC or
 * EDQUOT), with no code of its own.
 */
const DISK_FULL = /No space left on device|Disk quota exceeded/i;

/** Bytes of LevelDB's write-ahead logs in `dir` (0 when it cannot be read). */
function logBytes(dir: string): number {
  try {
    let n = 0;
    for (const f of readdirSync(dir)) if (f.endsWith('.log')) n += statSync(join(dir, f)).size;
    return n;
  } catch {
    return 0;
  }
}

/**
 * An open error turned into a StoreError that names the directory and the next step. Exported
 * for tests: a full disk cannot be made everywhere a test runs.
 */
export function openError(dir: string, e: unknown): StoreError {
  const code = causeCode(e);
  const detail = (e as { cause?: Error })?.cause?.message ?? (e as Error)?.message ?? String(e);
  if (DISK_FULL.test(detail)) {
    // Opening replays the log into a new table file before anything else: it needs about the
    // log's size free, more than an operator who deleted "a few files" may have made.
    const mib = Math.ceil(logBytes(dir) / (1024 * 1024)) + 1;
    return new StoreError(
      `the disk holding the store ${dir} is full (${detail}): opening it needs about ${mib} MiB free (LevelDB rewrites its log into a table first); nothing in the store was lost`,
      {
        cause: e,
        hint: `Free at least ${mib} MiB on the disk that holds ${dir}, then start the node again: it verifies its log and resumes.`,
      },
    );
  }
  switch (code) {
    case 'LEVEL_LOCKED':
      return new StoreError(
        `the store in ${dir} is open in another process (LevelDB lock held): stop that process (a running node), or use another data directory; to audit a running node's log, audit a copy of its data directory`,
        { cause: e },
      );
    case 'LEVEL_CORRUPTION':
      return new StoreError(
        `the store in ${dir} is corrupt (${detail}): the node cannot serve it, and an older copy of the data directory is refused as a rollback (docs/logchain.md §7); keep it for forensics`,
        { cause: e },
      );
    case 'EACCES':
    case 'EPERM':
      return new StoreError(
        `the store in ${dir} cannot be opened: permission denied; make the directory readable and writable by this user`,
        { cause: e },
      );
    default:
      return new StoreError(
        `the store in ${dir} cannot be opened (${detail}): check that the path is a directory with free space that this user can write`,
        { cause: e },
      );
  }
}

/**
 * A failed write turned into a StoreError naming the directory and the next step (a full disk
 * said so). Exported for tests, like openError.
 */
export function writeError(dir: string, e: unknown): StoreError {
  const detail = (e as Error)?.message ?? String(e);
  if (DISK_FULL.test(detail)) {
    return new StoreError(
      `writing to the store in ${dir} failed: its disk is full (${detail}); the batch was not written (a batch is applied whole or not at all), and nothing written before it is lost`,
      {
        cause: e,
        hint: `Free space on the disk that holds ${dir}, then start the node again: it verifies its log and resumes.`,
      },
    );
  }
  return new StoreError(
    `writing to the store in ${dir} failed (${detail}): check free disk space and permissions, then restart the node (the batch is applied whole or not at all)`,
    { cause: e },
  );
}

/**
 * LevelDB's options for a store of ciphertexts (the benchmarks' LevelDB baselines use them too,
 * so a comparison tunes both sides alike). Measured on single-write commits, 32 writers, 160,000
 * commits (about 600 MB written), CPU per group of 32 in all threads: 9.1–9.6 ms with LevelDB's
 * defaults, 6.4 ms with these (docs/performance.md, "LevelDB options"):
 * - `writeBufferSize` 64 MiB (default 4 MiB): the ledger's records land at random store keys, so
 *   every flushed memtable is merged with all of level 1; fewer, larger flushes cut that merging
 *   (the compaction thread's CPU per group 3.2–3.4 → 1.2–1.4 ms). The memtable grows only with
 *   writes; a node under sustained writes holds up to two (about 128 MiB), and a restart after a
 *   crash replays up to 64 MiB of LevelDB's log.
 * - `compression` off: every key is an HMAC and every value AES-GCM ciphertext, which Snappy cannot
 *   shrink; trying costs CPU in every compaction (about 0.1 ms per group).
 */
export const LEVEL_DB_OPTIONS: Readonly<{ writeBufferSize: number; compression: boolean }> =
  Object.freeze({ writeBufferSize: 64 * 1024 * 1024, compression: false });

/** Opens (by default creating) the LevelDB store in `dir`. */
export async function openLevelStore(
  dir: string,
  options: LevelStoreOptions = {},
): Promise<LevelStore> {
  const db: Db = new ClassicLevel<Uint8Array, Uint8Array>(dir, {
    keyEncoding: 'view',
    valueEncoding: 'view',
    ...LEVEL_DB_OPTIONS,
  });
  try {
    await db.open({ createIfMissing: options.createIfMissing ?? true });
  } catch (e) {
    throw openError(dir, e);
  }
  return levelStore(dir, db);
}

function levelStore(dir: string, db: Db): LevelStore {
  let closed = false;
  // Writes run one after another, in call order (Store contract): classic-level runs concurrent
  // batches on a thread pool, where they could otherwise overtake each other.
  let tail: Promise<void> = Promise.resolve();

  function open(): void {
    if (closed) throw new StoreError(`the store in ${dir} is closed`);
  }

  async function* entries(options: IterateOptions): AsyncGenerator<StoreEntry> {
    open();
    const range: { gte?: Uint8Array; lt?: Uint8Array; limit?: number } = {};
    if (options.gte !== undefined) range.gte = options.gte;
    if (options.lt !== undefined) range.lt = options.lt;
    if (options.limit !== undefined) range.limit = options.limit;
    if (range.limit === 0) return;
    const it = db.iterator(range);
    try {
      for (;;) {
        let chunk: [Uint8Array, Uint8Array][];
        try {
          chunk = await it.nextv(256);
        } catch (e) {
          throw closed
            ? new StoreError(`the store in ${dir} was closed during iteration`, { cause: e })
            : new StoreError(`reading the store in ${dir} failed: ${(e as Error).message}`, {
                cause: e,
              });
        }
        if (chunk.length === 0) return;
        for (const [key, value] of chunk) yield { key: plain(key), value: plain(value) };
      }
    } finally {
      await it.close().catch(() => {});
    }
  }

  return {
    dir,
    get(key: Uint8Array): Uint8Array | undefined {
      open();
      checkKey(key);
      let v: Uint8Array | undefined;
      try {
        v = db.getSync(key);
      } catch (e) {
        throw new StoreError(`reading the store in ${dir} failed: ${(e as Error).message}`, {
          cause: e,
        });
      }
      return v === undefined ? undefined : plain(v);
    },
    async write(batch: readonly BatchOp[], options: WriteOptions): Promise<void> {
      open();
      checkBatch(batch);
      if (batch.length === 0) return;
      const sync = options.sync === true;
      const failed = (e: unknown): StoreError => writeError(dir, e);
      // A chained batch, filled now (each put copies its bytes into LevelDB's WriteBatch), written
      // in turn: the same one atomic WriteBatch as an array batch, but abstract-level's array path
      // costs about 11 µs per operation in JavaScript (it clones and re-encodes every operation)
      // against 2–5 µs here, which a commit of 1,800 records waits for (docs/performance.md).
      const chained = db.batch();
      try {
        for (const op of batch) {
          if (op.type === 'put') chained.put(op.key, op.value);
          else chained.del(op.key);
        }
      } catch (e) {
        void chained.close().catch(() => {});
        throw failed(e);
      }
      const run = tail.then(async () => {
        try {
          await chained.write({ sync });
        } catch (e) {
          throw failed(e);
        }
      });
      tail = run.catch(() => {});
      return run;
    },
    iterate(options: IterateOptions = {}): AsyncIterable<StoreEntry> {
      open();
      checkIterate(options);
      return { [Symbol.asyncIterator]: () => entries(options) };
    },
    async close(): Promise<void> {
      if (closed) return;
      closed = true;
      await tail;
      await db.close();
    },
  };
}
