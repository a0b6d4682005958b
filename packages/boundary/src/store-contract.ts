/**
 * The record store contract, shared by both sides of the boundary: the host implements it
 * (packages/host/src/store: memory, LevelDB, fault-injecting) and the enclave reads the host's
 * store through it (packages/enclave/src/store, over the `store.*` boundary calls). Pure types and
 * checks, one copy. The enclave never trusts what it reads from a store (every record is encrypted
 * and checked against Merkle hashes held inside the enclave, docs/ledger-format.md); a store's
 * job is only to keep what it is given, atomically and durably when asked.
 */
import { CloisterError, InvalidInputError } from '@cloister/core';

/** One operation of an atomic batch. */
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
 * Contract of every store.
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
 */
export interface Store {
  get(key: Uint8Array): Uint8Array | undefined;
  write(batch: readonly BatchOp[], options: WriteOptions): Promise<void>;
  iterate(options?: IterateOptions): AsyncIterable<StoreEntry>;
  close(): Promise<void>;
}

/** Largest key accepted (bytes). Ledger keys are 33 bytes; the cap only bounds mistakes. */
export const MAX_KEY_BYTES = 1024;
/**
 * Most bytes (keys plus values) and operations in one batch the host's store service takes over
 * the boundary (its defaults, STORE_SERVICE_LIMITS); the enclave's ledger never sends a larger
 * batch: it refuses the transaction that would make one instead (docs/ledger-format.md §11.7).
 */
export const MAX_WRITE_BYTES = 48 * 1024 * 1024;
export const MAX_WRITE_OPS = 65_536;

/** Largest value accepted (bytes): 64 MiB. */
export const MAX_VALUE_BYTES = 64 * 1024 * 1024;

/** The store (its directory, its disk) failed, or it was used after close. */
export class StoreError extends CloisterError {
  constructor(message: string, options?: { cause?: unknown; hint?: string }) {
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

/** Checks a whole batch before anything of it is applied (Store contract). */
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
    const d = (a[i] ?? 0) - (b[i] ?? 0);
    if (d !== 0) return d;
  }
  return a.length - b.length;
}
