/** The host's record store, seen from the enclave through the boundary. */
export { type BoundaryStoreOptions, createBoundaryStore, type StoreRpc } from './boundary-store.js';
export {
  type BatchOp,
  compareKeys,
  type IterateOptions,
  MAX_KEY_BYTES,
  MAX_VALUE_BYTES,
  type RecordStore,
  type StoreEntry,
  StoreError,
  successor,
  type WriteOptions,
} from './store.js';
