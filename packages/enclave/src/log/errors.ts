/**
 * Errors of the enclave's logchain service that are not stored-log failures (those are core's
 * named log errors: LogEntryMissingError, LogEntryAlteredError, …).
 */
import { CloisterError } from '@cloister/core';

/** The transaction is committed but no signature covers it yet: ask again after the next one. */
export class ReceiptNotReadyError extends CloisterError {
  readonly txid: string;
  constructor(txid: string, lastSigned: number) {
    // TODO(issue 4): a RECEIPT_NOT_READY code in core's registry; RECEIPT is the nearest today.
    super(
      'RECEIPT',
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
      'LEDGER_INDEX',
      `no transaction ${txid} in this log (its entries are 1.1 to 1.${size}); check the transaction id`,
    );
    this.txid = txid;
  }
}
