/**
 * The named errors of the logchain, its proofs and receipts (docs/receipts.md). Each condition
 * has its own class and code (ERROR_CODES), so callers and tests tell "missing" from "altered"
 * from "reordered" without reading messages. Messages name indexes, sizes and public hashes only.
 */
import { CloisterError } from '../errors.js';

/** Bytes that are not a well-formed, canonical log entry, payload, receipt or txid. */
export class LogFormatError extends CloisterError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('LOG_FORMAT', message, options);
  }
}

/** A Merkle inclusion or consistency proof (RFC 9162 §2.1.3, §2.1.4) that does not verify. */
export class LogProofError extends CloisterError {
  constructor(message: string) {
    super('LOG_PROOF', message);
  }
}

/** Which step of verifyReceipt refused the receipt (docs/receipts.md, "Verification"). */
export type ReceiptFailure =
  | 'format'
  | 'evidence'
  | 'endorsement'
  | 'signature'
  | 'inclusion'
  | 'service'
  | 'claims';

/** A receipt that does not verify; `reason` names the step that refused it. */
export class ReceiptError extends CloisterError {
  readonly reason: ReceiptFailure;

  constructor(reason: ReceiptFailure, message: string, options?: { cause?: unknown }) {
    super('RECEIPT', `receipt refused (${reason}): ${message}`, options);
    this.reason = reason;
  }
}

/** A service showed an older log, or another root at the same size (a fork), than one already seen. */
export class RollbackDetectedError extends CloisterError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('ROLLBACK_DETECTED', message, options);
  }
}

/** Base of the stored-log failures: `index` is the first bad entry (1-based log index). */
export abstract class StoredLogError extends CloisterError {
  readonly index: number;

  constructor(
    code:
      | 'LOG_ENTRY_MISSING'
      | 'LOG_ENTRY_ALTERED'
      | 'LOG_ENTRY_REORDERED'
      | 'LOG_TAIL_CUT'
      | 'LOG_SIGNATURE'
      | 'CONSTRAINT_MISMATCH'
      | 'INSECURE_PLATFORM',
    index: number,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(code, message, options);
    this.index = index;
  }
}

/** A gap: entry `index` was expected and is not present. */
export class LogEntryMissingError extends StoredLogError {
  constructor(index: number, message: string, options?: { cause?: unknown }) {
    super('LOG_ENTRY_MISSING', index, message, options);
  }
}

/** Entry `index` does not match the hash chain, the tree or a trusted root, or does not decode. */
export class LogEntryAlteredError extends StoredLogError {
  constructor(index: number, message: string, options?: { cause?: unknown }) {
    super('LOG_ENTRY_ALTERED', index, message, options);
  }
}

/** The entry at position `index` carries another index (moved, swapped or duplicated). */
export class LogEntryReorderedError extends StoredLogError {
  constructor(index: number, message: string, options?: { cause?: unknown }) {
    super('LOG_ENTRY_REORDERED', index, message, options);
  }
}

/** The log ends before a checkpoint or trusted root says it does; `index` = first absent entry. */
export class LogTailCutError extends StoredLogError {
  constructor(index: number, message: string, options?: { cause?: unknown }) {
    super('LOG_TAIL_CUT', index, message, options);
  }
}

/** Signature entry `index` does not verify, or signs a root or state that is not the log's. */
export class LogSignatureError extends StoredLogError {
  constructor(index: number, message: string, options?: { cause?: unknown }) {
    super('LOG_SIGNATURE', index, message, options);
  }
}

/**
 * The genesis evidence verifies (signature, nonce, key binding) but does not satisfy the
 * auditor's constraint: the log is genuine output of code, or of a platform, the auditor does not
 * accept. Not tampering, so not LOG_SIGNATURE: the code is the constraint check's own.
 */
export class LogGenesisConstraintError extends StoredLogError {
  constructor(
    code: 'CONSTRAINT_MISMATCH' | 'INSECURE_PLATFORM',
    message: string,
    options?: { cause?: unknown },
  ) {
    super(code, 1, message, options);
  }
}

/**
 * The client state (pins, signed roots) was changed by another process or tab while this one
 * was checking, or its lock was held or taken over: nothing was written; retry.
 */
export class StateLockedError extends CloisterError {
  constructor(message: string) {
    super('CLIENT_STATE_LOCKED', message);
  }
}
