/** The ledger engine of issue 3 (docs/ledger-format.md §11). */
export {
  createLedgerEngine,
  type LedgerEngine,
  type LedgerEngineOptions,
  type LedgerStore,
  type LedgerView,
  openLedgerEngine,
  type Principal,
  type RootSeal,
  type Version,
} from './engine.js';
export {
  CursorError,
  LedgerStateError,
  ProofAccessError,
  ReservedTableError,
  TransactionClosedError,
  TransactionConflictError,
  TransactionTooLargeError,
  type TxLimit,
  UnknownIndexError,
} from './errors.js';
export { ROOT_STORE_KEY } from './format.js';
export { DEFAULT_PAGE, type ListEntry, type ListOptions, type ListPage, MAX_PAGE } from './list.js';
export { MAX_LEDGER_ID_BYTES, MAX_TABLE_BYTES } from './state.js';
export {
  type CommitResult,
  DEFAULT_TX_LIMITS,
  type Transaction,
  type TransactionLimits,
  type TransactionState,
} from './transaction.js';
