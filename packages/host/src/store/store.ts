/**
 * The record store: the host's durable map from byte keys to byte values, under the ledger and the
 * log. Its contract (types, limits, checks and the doc comment of `Store`) lives in
 * `@cloister/boundary` (store-contract.ts), shared with the enclave, which reads this store
 * through the boundary.
 *
 * Implementations: `memory.ts` (tests), `level.ts` (LevelDB through classic-level), and
 * `faulty.ts` (a wrapper that simulates power cuts and write failures). One conformance suite
 * (test/store-conformance.ts) runs against all of them.
 */
export {
  type BatchOp,
  checkBatch,
  checkIterate,
  checkKey,
  compareKeys,
  type IterateOptions,
  MAX_KEY_BYTES,
  MAX_VALUE_BYTES,
  MAX_WRITE_BYTES,
  MAX_WRITE_OPS,
  type Store,
  type StoreEntry,
  StoreError,
  type WriteOptions,
} from '@cloister/boundary';
