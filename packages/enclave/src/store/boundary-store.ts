/**
 * The enclave-side client of the host's record store, over the boundary (docs/boundary.md §1,
 * "Store calls"): `store.get` and `store.getMany` by `callSync` (the enclave thread blocks, as an
 * OCALL does), `store.write` and `store.iterate` asynchronously. It believes nothing it reads —
 * integrity is the ledger's job — but checks that every reply has the shape its request implies.
 */
import { BoundaryError, type EnclaveRpc } from '@cloister/boundary';
import {
  type BatchOp,
  checkBatch,
  checkIterate,
  checkKey,
  compareKeys,
  type IterateOptions,
  type RecordStore,
  type StoreEntry,
  StoreError,
  successor,
  type WriteOptions,
} from './store.js';

export interface BoundaryStoreOptions {
  /** Keys per `store.getMany` crossing (default 1024, the host's default cap). */
  readonly getManyChunk?: number;
  /** Entries asked for per `store.iterate` page (default 1024, the host's default cap). */
  readonly pageEntries?: number;
}

/** The store calls this client makes: the subset of the RPC it needs (tests may fake it). */
export type StoreRpc = Pick<EnclaveRpc, 'call' | 'callSync'>;

/** Operation types of `store.write` (one byte per operation). */
const PUT = 0;
const DEL = 1;
const EMPTY = new Uint8Array(0);

function shape(call: string, what: string): BoundaryError {
  return new BoundaryError(`${call} reply ${what}`);
}

function wholeAtLeast1(v: number | undefined, fallback: number, what: string): number {
  const n = v ?? fallback;
  if (!Number.isSafeInteger(n) || n < 1) {
    throw new StoreError(`boundary store option ${what} must be a whole number >= 1`);
  }
  return n;
}

/** One open iteration: its remaining range, its buffered page, its progress. */
class Cursor {
  queue: StoreEntry[] = [];
  finished = false;
  error: unknown;
  private next: Uint8Array | undefined;
  private remaining: number;
  private readonly lt: Uint8Array | undefined;
  private fetching: Promise<void> | undefined;

  private readonly rpc: StoreRpc;
  private readonly pageEntries: number;

  constructor(rpc: StoreRpc, options: IterateOptions, pageEntries: number) {
    this.rpc = rpc;
    this.pageEntries = pageEntries;
    this.next = options.gte;
    this.lt = options.lt;
    this.remaining = options.limit ?? Number.POSITIVE_INFINITY;
    if (this.remaining === 0) this.finished = true;
  }

  /** Fetches the next page into the queue (one fetch at a time). */
  fetch(): Promise<void> {
    this.fetching ??= this.page().finally(() => {
      this.fetching = undefined;
    });
    return this.fetching;
  }

  /** Reads the rest of the range into the queue (before a write changes the store). */
  async fetchAll(): Promise<void> {
    try {
      while (!this.finished) await this.fetch();
    } catch (e) {
      this.error = e;
      this.finished = true;
    }
  }

  private async page(): Promise<void> {
    if (this.finished) return;
    const limit = Math.min(this.pageEntries, this.remaining);
    const from = this.next;
    const r = await this.rpc.call('store.iterate', {
      gte: from ?? EMPTY,
      lt: this.lt ?? EMPTY,
      limit,
    });
    const { keys, values, done } = r;
    const call = 'store.iterate';
    if (keys.length !== values.length) {
      throw shape(call, `has ${keys.length} keys and ${values.length} values`);
    }
    if (keys.length > limit) throw shape(call, `has ${keys.length} entries; ${limit} were asked`);
    if (keys.length === 0 && !done) throw shape(call, 'is empty but not done');
    let prev: Uint8Array | undefined;
    for (const key of keys) {
      const inRange =
        (from === undefined || compareKeys(key, from) >= 0) &&
        (this.lt === undefined || compareKeys(key, this.lt) < 0) &&
        (prev === undefined || compareKeys(prev, key) < 0);
      if (!inRange) throw shape(call, 'has keys out of order or out of range');
      prev = key;
    }
    for (let i = 0; i < keys.length; i++) {
      this.queue.push({ key: keys[i] as Uint8Array, value: values[i] as Uint8Array });
    }
    this.remaining -= keys.length;
    this.next = prev === undefined ? from : successor(prev);
    if (done || this.remaining === 0 || this.next === undefined) this.finished = true;
  }
}

/**
 * The host's record store through `rpc` (RecordStore contract, store.ts). Closing it closes
 * this client only: the store belongs to the host.
 */
export function createBoundaryStore(
  rpc: StoreRpc,
  options: BoundaryStoreOptions = {},
): RecordStore {
  const getManyChunk = wholeAtLeast1(options.getManyChunk, 1024, 'getManyChunk');
  const pageEntries = wholeAtLeast1(options.pageEntries, 1024, 'pageEntries');
  let closed = false;
  // Open iterations (started, not finished or released): a write reads their ranges first.
  const live = new Set<Cursor>();
  // Settles after the last deferred write was posted; undefined when none is waiting.
  let deferred: Promise<void> | undefined;
  // Every write not yet answered, so close() can wait for them.
  const writes = new Set<Promise<unknown>>();

  function open(): void {
    if (closed) throw new StoreError('the boundary store is closed');
  }

  function post(req: {
    types: Uint8Array;
    keys: Uint8Array[];
    values: Uint8Array[];
    sync: boolean;
  }): Promise<void> {
    return rpc.call('store.write', req).then(() => undefined);
  }

  async function drain(): Promise<void> {
    while (live.size > 0) {
      const open = [...live].filter((c) => !c.finished);
      if (open.length === 0) return;
      await Promise.all(open.map((c) => c.fetchAll()));
    }
  }

  async function* entries(options: IterateOptions): AsyncGenerator<StoreEntry> {
    open();
    const c = new Cursor(rpc, options, pageEntries);
    live.add(c);
    try {
      for (;;) {
        open();
        const e = c.queue.shift();
        if (e !== undefined) {
          yield e;
          continue;
        }
        if (c.error !== undefined) throw c.error;
        if (c.finished) return;
        await c.fetch();
      }
    } finally {
      live.delete(c);
    }
  }

  function track(p: Promise<void>): Promise<void> {
    const settled = p.then(
      () => undefined,
      () => undefined,
    );
    writes.add(settled);
    void settled.then(() => writes.delete(settled));
    return p;
  }

  return {
    get(key: Uint8Array): Uint8Array | undefined {
      open();
      checkKey(key);
      const r = rpc.callSync('store.get', { key });
      if (!r.found) {
        if (r.value.length !== 0) throw shape('store.get', 'has a value for a missing key');
        return undefined;
      }
      return r.value;
    },
    getMany(keys: readonly Uint8Array[]): (Uint8Array | undefined)[] {
      open();
      if (!Array.isArray(keys)) throw new StoreError('getMany takes an array of keys');
      keys.forEach((k, i) => {
        checkKey(k, `getMany key ${i}`);
      });
      const out: (Uint8Array | undefined)[] = [];
      for (let at = 0; at < keys.length; at += getManyChunk) {
        const chunk = keys.slice(at, at + getManyChunk);
        const { found, values } = rpc.callSync('store.getMany', { keys: chunk });
        const n = chunk.length;
        if (found.length !== n || values.length !== n) {
          throw shape(
            'store.getMany',
            `has ${found.length} flags and ${values.length} values for ${n} keys`,
          );
        }
        for (let i = 0; i < n; i++) {
          const f = found[i];
          const v = values[i] as Uint8Array;
          if (f === 1) out.push(v);
          else if (f === 0 && v.length === 0) out.push(undefined);
          else throw shape('store.getMany', `has a bad entry ${at + i}`);
        }
      }
      return out;
    },
    async write(batch: readonly BatchOp[], options: WriteOptions): Promise<void> {
      open();
      checkBatch(batch);
      if (batch.length === 0) return;
      const types = new Uint8Array(batch.length);
      const keys: Uint8Array[] = new Array(batch.length);
      const values: Uint8Array[] = [];
      batch.forEach((op, i) => {
        keys[i] = op.key;
        if (op.type === 'put') {
          types[i] = PUT;
          values.push(op.value);
        } else types[i] = DEL;
      });
      const req = { types, keys, values, sync: options?.sync === true };
      if (live.size === 0 && deferred === undefined) return track(post(req));
      // Iterations are open: their snapshots are read in full before this batch is sent, and
      // later writes queue behind it, so writes still reach the host in call order.
      let reply: Promise<void> = Promise.resolve();
      const sent = (deferred ?? Promise.resolve()).then(async () => {
        await drain();
        reply = post(req);
      });
      const mine = sent.then(
        () => undefined,
        () => undefined,
      );
      deferred = mine;
      void mine.then(() => {
        if (deferred === mine) deferred = undefined;
      });
      return track(sent.then(() => reply));
    },
    iterate(options: IterateOptions = {}): AsyncIterable<StoreEntry> {
      open();
      checkIterate(options);
      const copy: IterateOptions = {
        ...(options.gte ? { gte: options.gte.slice() } : {}),
        ...(options.lt ? { lt: options.lt.slice() } : {}),
        ...(options.limit !== undefined ? { limit: options.limit } : {}),
      };
      return { [Symbol.asyncIterator]: () => entries(copy) };
    },
    async close(): Promise<void> {
      if (closed) return;
      closed = true;
      await Promise.all(writes);
    },
  };
}
