/**
 * In-memory Store (store.ts): for tests and for the simulation of crashes in faulty.ts. Nothing is
 * durable across processes; within a process every write is "synced" once applied.
 */
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

/** A fresh copy (not `slice`, which on a Buffer is a view). */
function copy(b: Uint8Array): Uint8Array {
  return new Uint8Array(b);
}

/** Keys of the map: the key bytes as a latin1 string, whose code-unit order is bytewise order. */
function mapKey(key: Uint8Array): string {
  return Buffer.from(key.buffer, key.byteOffset, key.byteLength).toString('latin1');
}

export interface MemoryStore extends Store {
  /** Number of entries (for tests). */
  readonly size: number;
}

/** A new empty in-memory store. */
export function createMemoryStore(): MemoryStore {
  // Invariant: entries.get(k).key encodes to k; stored buffers are private copies, never handed out.
  const entries = new Map<string, StoreEntry>();
  // Invariant: when defined, `sorted` holds exactly the values of `entries` in ascending key order.
  let sorted: StoreEntry[] | undefined;
  let closed = false;

  function open(): void {
    if (closed) throw new StoreError('the in-memory store is closed');
  }

  function sortedEntries(): StoreEntry[] {
    if (!sorted) {
      sorted = [...entries].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([, e]) => e);
    }
    return sorted;
  }

  async function* iterateFrom(options: IterateOptions): AsyncGenerator<StoreEntry> {
    open();
    // The snapshot: the sorted array is replaced, never mutated, by later writes.
    const snapshot = sortedEntries();
    const lo = options.gte === undefined ? '' : mapKey(options.gte);
    const hi = options.lt === undefined ? undefined : mapKey(options.lt);
    const end = Math.min(
      snapshot.length,
      lowerBound(snapshot, lo) + (options.limit ?? snapshot.length),
    );
    for (let i = lowerBound(snapshot, lo); i < end; i++) {
      open();
      const e = snapshot[i];
      if (e === undefined || (hi !== undefined && mapKey(e.key) >= hi)) return;
      yield { key: copy(e.key), value: copy(e.value) };
    }
  }

  return {
    get size() {
      return entries.size;
    },
    get(key: Uint8Array): Uint8Array | undefined {
      open();
      checkKey(key);
      const e = entries.get(mapKey(key));
      return e === undefined ? undefined : copy(e.value);
    },
    async write(batch: readonly BatchOp[], _options: WriteOptions): Promise<void> {
      open();
      checkBatch(batch);
      for (const op of batch) {
        const k = mapKey(op.key);
        if (op.type === 'put') entries.set(k, { key: copy(op.key), value: copy(op.value) });
        else entries.delete(k);
      }
      if (batch.length > 0) sorted = undefined;
    },
    iterate(options: IterateOptions = {}): AsyncIterable<StoreEntry> {
      open();
      checkIterate(options);
      return { [Symbol.asyncIterator]: () => iterateFrom(options) };
    },
    async close(): Promise<void> {
      closed = true;
    },
  };
}

/** First index whose key is >= lo (binary search on the sorted snapshot). */
function lowerBound(xs: readonly StoreEntry[], lo: string): number {
  let a = 0;
  let b = xs.length;
  while (a < b) {
    const m = (a + b) >>> 1;
    const e = xs[m];
    if (e !== undefined && mapKey(e.key) < lo) a = m + 1;
    else b = m;
  }
  return a;
}
