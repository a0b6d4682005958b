/**
 * Named errors of the ledger engine (docs/ledger-format.md §11). Integrity failures stay
 * LedgerIntegrityError (../errors.ts); `integrityAt` re-throws one naming the record it came from
 * (admin trie, catalogue of a ledger, a table, the version index, the root record).
 */
import { CloisterError } from '@cloister/core';
import { type IntegrityFailure, LedgerIntegrityError } from '../errors.js';

/** Which cap a transaction exceeded. */
export type TxLimit = 'keys' | 'bytes' | 'key-size' | 'value-size' | 'batch';

/** A transaction exceeded one of its caps (TransactionLimits); nothing of it was written. */
export class TransactionTooLargeError extends CloisterError {
  readonly limit: TxLimit;
  constructor(limit: TxLimit, message: string) {
    super('TX_TOO_LARGE', message);
    this.limit = limit;
  }
}

/** Another commit changed what this transaction read after its snapshot (serialisable). */
export class TransactionConflictError extends CloisterError {
  constructor(message: string) {
    super('TX_CONFLICT', message);
  }
}

/** The transaction is committed, committing or aborted. */
export class TransactionClosedError extends CloisterError {
  constructor(state: string) {
    super('TX_CLOSED', `the transaction is ${state}; begin a new one`);
  }
}

/** An app-facing call named a reserved table ('$' first). */
export class ReservedTableError extends CloisterError {
  constructor(table: string, what: string) {
    super('LEDGER_RESERVED', `table '${table}' is reserved: it cannot be ${what} by an app`);
  }
}

/** A list cursor that does not authenticate for this ledger, table and snapshot. */
export class CursorError extends CloisterError {
  constructor(message: string) {
    super('LEDGER_CURSOR', message);
  }
}

/** A proof asked for by someone other than the owning app or the administrative role. */
export class ProofAccessError extends CloisterError {
  constructor(message: string) {
    super('LEDGER_ACCESS', message);
  }
}

/** A read at a commit index that does not exist (yet). */
export class UnknownIndexError extends CloisterError {
  constructor(index: number, latest: number) {
    super('LEDGER_INDEX', `no committed state ${index}: the latest is ${latest}`);
  }
}

/** The engine refused work after a store write failed (reopen it). */
export class LedgerStateError extends CloisterError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('LEDGER_STATE', message, options);
  }
}

/** A LedgerIntegrityError of the engine itself (not of a trie node). */
export function integrity(failure: IntegrityFailure, what: string, detail: string): never {
  throw new LedgerIntegrityError({ failure, position: what, detail: `${what}: ${detail}` });
}

/** Runs `f`; a LedgerIntegrityError from it is re-thrown naming `what` (the record's role). */
export function integrityAt<T>(what: string, f: () => T): T {
  try {
    return f();
  } catch (e) {
    if (!(e instanceof LedgerIntegrityError)) throw e;
    throw new LedgerIntegrityError(
      {
        failure: e.failure,
        ...(e.node === undefined ? {} : { node: e.node }),
        position: `${what}, ${e.position ?? 'root'}`,
        detail: `${what}: ${e.detail}`,
      },
      { cause: e },
    );
  }
}
