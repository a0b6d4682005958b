/**
 * A Store wrapper that injects faults, for crash and failure tests.
 *
 * Power cuts: the wrapper remembers, for every write since the last resolved `sync: true` write,
 * what each key it touched held before. `powerCut()` rolls those writes back on the inner store,
 * as the Store contract allows (store.ts: after a power cut the store holds every batch up to the
 * last resolved sync write, plus possibly a prefix of the later ones), and returns a fresh wrapper
 * over the surviving state. By default every unsynced write is lost, the harshest case; with
 * `keep: 'prefix'` a seeded random prefix of them survives.
 *
 * Seeded failures: with `writeFailureRate` / `readFailureRate`, writes reject and reads throw a
 * StoreError, decided by a generator seeded with `seed`, so a failing run replays exactly.
 */
import { InvalidInputError } from '@cloister/core';
import {
  type BatchOp,
  checkBatch,
  type IterateOptions,
  type Store,
  type StoreEntry,
  StoreError,
  type WriteOptions,
} from './store.js';

export interface FaultyStoreOptions {
  /** Seed of the fault generator (a 32-bit whole number; default 1). */
  readonly seed?: number;
  /** Probability in [0, 1] that a write fails before anything of it is applied (default 0). */
  readonly writeFailureRate?: number;
  /** Probability in [0, 1] that a `get` throws a StoreError (default 0). */
  readonly readFailureRate?: number;
}

export interface PowerCutOptions {
  /**
   * What survives of the writes made after the last sync write: `'none'` (default) loses them
   * all; `'prefix'` keeps a seeded random prefix of them (possibly empty, possibly all).
   */
  readonly keep?: 'none' | 'prefix';
}

export interface FaultyStore extends Store {
  /** Writes applied since the last resolved sync write: the ones a power cut may lose. */
  readonly unsyncedWrites: number;
  /**
   * Simulates a power cut: waits for writes in flight (a sync write in flight counts as done),
   * rolls the unsynced ones back on the inner store, and returns a new FaultyStore over what
   * survived. This wrapper is dead afterwards: every method throws a StoreError.
   */
  powerCut(options?: PowerCutOptions): Promise<FaultyStore>;
}

/** The value each key held before one write: undefined for "absent". */
type Undo = ReadonlyMap<string, { readonly key: Uint8Array; readonly before?: Uint8Array }>;

/** mulberry32: a small seeded generator for fault decisions (not for anything secret). */
function generator(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function checkRate(rate: number | undefined, what: string): number {
  const r = rate ?? 0;
  if (!(r >= 0 && r <= 1)) throw new InvalidInputError(`${what} must be between 0 and 1`);
  return r;
}

/** Wraps `inner`; the wrapper owns it from now on (closing the wrapper closes it). */
export function createFaultyStore(inner: Store, options: FaultyStoreOptions = {}): FaultyStore {
  const seed = options.seed ?? 1;
  if (!Number.isInteger(seed)) throw new InvalidInputError('seed must be a whole number');
  const writeRate = checkRate(options.writeFailureRate, 'writeFailureRate');
  const readRate = checkRate(options.readFailureRate, 'readFailureRate');
  return wrap(inner, generator(seed), writeRate, readRate);
}

function wrap(
  inner: Store,
  random: () => number,
  writeRate: number,
  readRate: number,
): FaultyStore {
  // Invariant: `unsynced` holds one Undo per write applied since the last resolved sync write,
  // in call order; applying them newest first restores the state at that sync write.
  const unsynced: Undo[] = [];
  // Writes are applied one at a time, in call order, so each Undo sees the state before it.
  let tail: Promise<void> = Promise.resolve();
  let dead = false;

  function alive(): void {
    if (dead) throw new StoreError('this store lost power: use the store powerCut() returned');
  }

  function undoOf(batch: readonly BatchOp[]): Undo {
    const undo = new Map<string, { key: Uint8Array; before?: Uint8Array }>();
    for (const op of batch) {
      const id = Buffer.from(op.key).toString('latin1');
      if (undo.has(id)) continue;
      const before = inner.get(op.key);
      undo.set(
        id,
        before === undefined
          ? { key: new Uint8Array(op.key) }
          : { key: new Uint8Array(op.key), before },
      );
    }
    return undo;
  }

  async function apply(batch: readonly BatchOp[], sync: boolean): Promise<void> {
    if (random() < writeRate) {
      throw new StoreError('injected write failure (faulty store): nothing of this batch applied');
    }
    const undo = undoOf(batch);
    await inner.write(batch, { sync });
    if (sync) unsynced.length = 0;
    else unsynced.push(undo);
  }

  async function rollBack(keep: number): Promise<void> {
    for (const undo of unsynced.slice(keep).reverse()) {
      const ops: BatchOp[] = [];
      for (const { key, before } of undo.values()) {
        ops.push(before === undefined ? { type: 'del', key } : { type: 'put', key, value: before });
      }
      await inner.write(ops, { sync: true });
    }
    unsynced.length = 0;
  }

  return {
    get unsyncedWrites() {
      return unsynced.length;
    },
    get(key: Uint8Array): Uint8Array | undefined {
      alive();
      if (readRate > 0 && random() < readRate) {
        throw new StoreError('injected read failure (faulty store)');
      }
      return inner.get(key);
    },
    async write(batch: readonly BatchOp[], options: WriteOptions): Promise<void> {
      alive();
      checkBatch(batch);
      const sync = options.sync === true;
      const run = tail.then(() => apply(batch, sync));
      tail = run.catch(() => {});
      return run;
    },
    iterate(options?: IterateOptions): AsyncIterable<StoreEntry> {
      alive();
      return inner.iterate(options);
    },
    async close(): Promise<void> {
      if (dead) return;
      dead = true;
      await tail;
      await inner.close();
    },
    async powerCut(cut: PowerCutOptions = {}): Promise<FaultyStore> {
      alive();
      dead = true;
      await tail;
      const keep = cut.keep === 'prefix' ? Math.floor(random() * (unsynced.length + 1)) : 0;
      await rollBack(keep);
      return wrap(inner, random, writeRate, readRate);
    },
  };
}
