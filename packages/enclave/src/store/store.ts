/**
 * The host's record store as the enclave sees it: the Store contract of `@cloister/boundary`
 * (store-contract.ts, one copy for both sides), plus `getMany`, several reads in one boundary
 * crossing. Nothing read from it is believed: records are encrypted and checked against Merkle
 * hashes held inside the enclave (docs/ledger-format.md); this layer only moves bytes and checks
 * the shape of the host's replies.
 */
import { MAX_KEY_BYTES, type Store } from '@cloister/boundary';

export {
  type BatchOp,
  checkBatch,
  checkIterate,
  checkKey,
  compareKeys,
  type IterateOptions,
  MAX_KEY_BYTES,
  MAX_VALUE_BYTES,
  type StoreEntry,
  StoreError,
  type WriteOptions,
} from '@cloister/boundary';

/**
 * The Store contract (see `Store` in @cloister/boundary), and through the boundary
 * (createBoundaryStore), additionally:
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
export interface RecordStore extends Store {
  getMany(keys: readonly Uint8Array[]): (Uint8Array | undefined)[];
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
