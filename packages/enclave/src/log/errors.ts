/**
 * Errors of the enclave's logchain service that are not stored-log failures (those are core's
 * named log errors: LogEntryMissingError, LogEntryAlteredError, …).
 */
import { CloisterError } from '@cloister/core';

/** The transaction is committed but no signature covers it yet: ask again after the next one. */
export class ReceiptNotReadyError extends CloisterError {
  readonly txid: string;
  constructor(txid: string, lastSigned: number) {
    super(
      'RECEIPT_NOT_READY',
      `transaction ${txid} is committed but not signed yet (signatures cover entries up to ${lastSigned}); ask for its receipt after the next signature`,
    );
    this.txid = txid;
  }
}

/** No entry of this service's log has this transaction id. */
export class UnknownTransactionError extends CloisterError {
  readonly txid: string;
  constructor(txid: string, size: number) {
    super(
      'UNKNOWN_TRANSACTION',
      `no transaction ${txid} in this log (its entries are 1.1 to 1.${size}); check the transaction id`,
    );
    this.txid = txid;
  }
}

/** The store's data-format record is missing or names a format this build does not read. */
export class StoreFormatError extends CloisterError {
  readonly found: number | undefined;
  constructor(found: number | undefined, known: number) {
    super(
      'STORE_FORMAT',
      found === undefined
        ? `the store has no data-format record: it is not a Cloister ledger store (format ${known}) or it is damaged`
        : `the store holds data format ${found}; this build reads format ${known} only`,
    );
    this.found = found;
  }
}
