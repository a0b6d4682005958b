/**
 * The host's record store as the enclave sees it: the same contract as the host's Store
 * (packages/host/src/store/store.ts, copied below; the enclave may not import host code), plus
 * `getMany`, several reads in one boundary crossing. Nothing read from it is believed: records
 * are encrypted and checked against Merkle hashes held inside the enclave (docs/ledger-format.md);
 * this layer only moves bytes and checks the shape of the host's replies.
 */
import { CloisterError, InvalidInputError } from '@cloister/core';

/** One operation of an atomic batch (structurally the host Store's BatchOp). */
export type BatchOp =
  | { readonly type: 'put'; readonly key: Uint8Array; readonly value: Uint8Array }
  | { readonly type: 'del'; readonly key: Uint8Array };

export interface WriteOptions {
  /**
   * `true`: the returned promise resolves only once this batch and every batch written before it
   * are on stable storage (fsync), so they survive a power cut. `false`: the batch survives a
   * crash of this process but may be lost, with later unsynced batches, at a power cut.
   */
  readonly sync: boolean;
}

/** A half-open key range `[gte, lt)` in bytewise order, with an optional cap on entries. */
export interface IterateOptions {
  /** Smallest key included. Absent: from the first key. */
  readonly gte?: Uint8Array;
  /** First key excluded. Absent: to the last key. */
  readonly lt?: Uint8Array;
  /** At most this many entries (a whole number >= 0). Absent: no cap. */
  readonly limit?: number;
}

export interface StoreEntry {
  readonly key: Uint8Array;
  readonly value: Uint8Array;
}

/**
 * Contract of every store (copied from the host's Store; enforced on this side too).
 *
 * - Keys are 1 to MAX_KEY_BYTES bytes; values 0 to MAX_VALUE_BYTES bytes. Anything else is an
 *   InvalidInputError and nothing is written.
 * - Order is bytewise: unsigned lexicographic on the key bytes, a key sorting before every key it
 *   is a proper prefix of.
 * - Buffers: the store never keeps or modifies a buffer it is given; the caller must not modify
 *   the buffers of a batch until `write` settles. Every buffer the store returns is a fresh copy
 *   that belongs to the caller.
 * - `get` is synchronous and sees every write whose promise has resolved.
 * - `write` is atomic: after any crash or power cut, either every operation of the batch is
 *   visible or none is. Operations apply in order; a later operation on the same key wins.
 *   Writes are applied in the order `write` was called. Durability: see WriteOptions.sync. After a
 *   power cut the store holds every batch up to the last resolved sync write, plus possibly some
 *   prefix (in call order) of the batches written after it.
 * - `iterate` yields entries with `gte <= key < lt` in ascending bytewise order, from a consistent
 *   snapshot taken when iteration starts (the first call to `next()`); writes after that point
 *   are not seen. Breaking out of the loop releases the snapshot.
 * - After `close()` resolves, every method throws a StoreError (`close` itself is idempotent).
 * - Failures of the underlying storage are StoreErrors naming what failed and what to do.
 *
 * Through the boundary (createBoundaryStore), additionally:
 * - `getMany(keys)` is `get` of each key, in order, in one crossing per `getManyChunk` keys.
 * - A batch crosses in one frame, so it is also bounded by the frame cap (64 MiB) and the host's
 *   write cap (48 MiB by default): over them, `write` rejects with the host's REQUEST_TOO_LARGE
 *   or a BoundaryError, and nothing is written.
 * - Iteration is paged (`store.iterate` crossings); the snapshot holds because this client is
 *   the store's only writer: a `write` called while iterations are open first reads the rest of
 *   their ranges, then sends the batch.
 * - A reply of the wrong shape (a count that does not match, a page out of order or out of
 *   range) is a BoundaryError; the host's error replies arrive as RemoteError with its code
 *   (STORE for the host's StoreError).
 */
export interface RecordStore {
  get(key: Uint8Array): Uint8Array | undefined;
  getMany(keys: readonly Uint8Array[]): (Uint8Array | undefined)[];
  write(batch: readonly BatchOp[], options: WriteOptions): Promise<void>;
  iterate(options?: IterateOptions): AsyncIterable<StoreEntry>;
  close(): Promise<void>;
}

/** Largest key accepted (bytes), as the host's store. */
export const MAX_KEY_BYTES = 1024;
/** Largest value accepted (bytes): 64 MiB, as the host's store. */
export const MAX_VALUE_BYTES = 64 * 1024 * 1024;

/** The store was used after close (the enclave's side of the host's StoreError: code STORE). */
export class StoreError extends CloisterError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('STORE', message, options);
  }
}

/** Checks a key at the edge (Store contract). */
export function checkKey(key: unknown, what = 'store key'): asserts key is Uint8Array {
  if (!(key instanceof Uint8Array)) throw new InvalidInputError(`${what} must be a Uint8Array`);
  if (key.length === 0 || key.length > MAX_KEY_BYTES) {
    throw new InvalidInputError(
      `${what} must be 1 to ${MAX_KEY_BYTES} bytes long; it is ${key.length}`,
    );
  }
}

/** Checks a whole batch before anything of it is sent (Store contract). */
export function checkBatch(batch: readonly BatchOp[]): void {
  if (!Array.isArray(batch)) throw new InvalidInputError('a store batch must be an array');
  for (const op of batch) {
    if (op === null || typeof op !== 'object') {
      throw new InvalidInputError('a store batch operation must be an object');
    }
    checkKey(op.key, `key of a store ${op.type} operation`);
    if (op.type === 'put') {
      if (!(op.value instanceof Uint8Array)) {
        throw new InvalidInputError('value of a store put operation must be a Uint8Array');
      }
      if (op.value.length > MAX_VALUE_BYTES) {
        throw new InvalidInputError(
          `a store value is at most ${MAX_VALUE_BYTES} bytes; this one is ${op.value.length}`,
        );
      }
    } else if (op.type !== 'del') {
      throw new InvalidInputError("a store batch operation's type must be 'put' or 'del'");
    }
  }
}

/** Checks iteration options (Store contract). */
export function checkIterate(options: IterateOptions): void {
  if (options === null || typeof options !== 'object') {
    throw new InvalidInputError('iterate options must be an object');
  }
  if (options.gte !== undefined) checkKey(options.gte, 'iterate option gte');
  if (options.lt !== undefined) checkKey(options.lt, 'iterate option lt');
  const { limit } = options;
  if (limit !== undefined && !(Number.isSafeInteger(limit) && limit >= 0)) {
    throw new InvalidInputError('iterate option limit must be a whole number >= 0');
  }
}

/** Bytewise order of two keys: negative, zero or positive (the Store contract's order). */
export function compareKeys(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const d = (a[i] as number) - (b[i] as number);
    if (d !== 0) return d;
  }
  return a.length - b.length;
}

/**
 * The smallest key of at most MAX_KEY_BYTES bytes that sorts after `key`, or undefined if none
 * does: `key ‖ 00` when there is room, else `key` with its trailing ff bytes dropped and its last
 * byte incremented.
 */
export function successor(key: Uint8Array): Uint8Array | undefined {
  if (key.length < MAX_KEY_BYTES) {
    const out = new Uint8Array(key.length + 1);
    out.set(key);
    return out;
  }
  let n = key.length;
  while (n > 0 && key[n - 1] === 0xff) n--;
  if (n === 0) return undefined;
  const out = key.slice(0, n);
  out[n - 1] = (out[n - 1] as number) + 1;
  return out;
}
