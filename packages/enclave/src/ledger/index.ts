/**
 * The ledger's foundations (docs/ledger-format.md): the table trie, its proofs, the confidential
 * node layer and the verified node cache. Tables, the catalogue and transactions build on these.
 */
export {
  createLedgerKeyring,
  type LedgerKeyring,
  type LedgerKeyringOptions,
  type LedgerSecret,
  RecordPurpose,
  type TableKeys,
} from './crypto.js';
export { type IntegrityFailure, LedgerIntegrityError } from './errors.js';
export { createNodeCache, DEFAULT_NODE_CACHE_BYTES, type NodeCache } from './node-cache.js';
export {
  type ConfidentialNodeStore,
  createConfidentialNodeStore,
  type RecordPut,
  type RecordReader,
} from './node-store.js';
export * from './trie/index.js';
