/** The ledger engine of issue 3 (docs/ledger-format.md §11). */
export {
  type CommitLog,
  createLedgerEngine,
  type LedgerEngine,
  type LedgerEngineOptions,
  type LedgerStore,
  type LedgerView,
  type LogItem,
  type LogOnlyItem,
  openLedgerEngine,
  type Principal,
  type RootSeal,
  type Version,
  type WriteItem,
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
export { MAX_CHECKPOINT_BYTES, ROOT_STORE_KEY } from './format.js';
export {
  DEFAULT_PAGE,
  type ListEntry,
  type ListOptions,
  type ListPage,
  LOOK_AHEAD,
  MAX_PAGE,
} from './list.js';
export { MAX_LEDGER_ID_BYTES, MAX_TABLE_BYTES } from './state.js';
export {
  type CommitOptions,
  type CommitResult,
  DEFAULT_TX_LIMITS,
  TERM,
  type Transaction,
  type TransactionLimits,
  type TransactionState,
  txidAt,
} from './transaction.js';
