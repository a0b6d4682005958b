/** The record store: one contract (store.ts), three implementations. */
export {
  createFaultyStore,
  type FaultyStore,
  type FaultyStoreOptions,
  type PowerCutOptions,
} from './faulty.js';
export { type LevelStore, type LevelStoreOptions, openLevelStore } from './level.js';
export { createMemoryStore, type MemoryStore } from './memory.js';
export {
  STORE_CALLS,
  STORE_OP,
  STORE_SERVICE_LIMITS,
  type StoreCall,
  StoreRequestError,
  type StoreServiceLimits,
  storeOcalls,
} from './service.js';
export {
  type BatchOp,
  compareKeys,
  type IterateOptions,
  MAX_KEY_BYTES,
  MAX_VALUE_BYTES,
  type Store,
  type StoreEntry,
  StoreError,
  type WriteOptions,
} from './store.js';
