/**
 * The ledger's foundations (docs/ledger-format.md): the table trie, its proofs, the confidential
 * node layer, the verified node cache, and the engine built on them: ledgers, tables, versions,
 * transactions and state proofs.
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
export * from './ledger/index.js';
export { createNodeCache, DEFAULT_NODE_CACHE_BYTES, type NodeCache } from './node-cache.js';
export {
  type ConfidentialNodeStore,
  createConfidentialNodeStore,
  type RecordPut,
  type RecordReader,
} from './node-store.js';
export * from './trie/index.js';
