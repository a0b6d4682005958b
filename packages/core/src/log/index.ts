/** The logchain, its Merkle proofs and receipts (docs/receipts.md). */

export { type AuditOptions, type AuditReport, auditLog } from './audit.js';
export {
  decodeEntryHashes,
  encodeEntryHashes,
  entryLeafHash,
  type HashedEntry,
} from './entry-hashes.js';
export {
  LogEntryAlteredError,
  LogEntryMissingError,
  LogEntryReorderedError,
  LogFormatError,
  LogGenesisConstraintError,
  LogProofError,
  LogSignatureError,
  LogTailCutError,
  ReceiptError,
  type ReceiptFailure,
  RollbackDetectedError,
  StateLockedError,
} from './errors.js';
export {
  decodeEntry,
  ENTRY_KIND,
  ENTRY_VERSION,
  type EntryKind,
  type EntryMeta,
  encodeEntry,
  encodeLeafInput,
  entryHash,
  indexOfKey,
  type LeafFields,
  LOG_TERM,
  type LogEntry,
  leafArray,
  leafFields,
  leafInput,
  logStoreKey,
  parseLeafArray,
  STORE_NAMESPACE_LOG,
} from './format.js';
export {
  EMPTY_TREE_ROOT,
  leafHash,
  MerkleLog,
  nodeHash,
  rootFromInclusion,
  type Sha256,
  verifyConsistency,
} from './merkle.js';
export {
  CLAIMS_LABEL,
  type Claims,
  claimsDigest,
  decodeEndorsementPayload,
  decodeSignaturePayload,
  ENDORSEMENT_LABEL,
  endorsementNonce,
  endorsementPayload,
  SIGNATURE_LABEL,
  type SignaturePayload,
  serviceIdentity,
  signaturePayload,
} from './payloads.js';
export {
  decodeReceipt,
  encodeReceipt,
  RECEIPT_VERSION,
  type Receipt,
  type VerifiedReceipt,
  type VerifyReceiptOptions,
  verifyReceipt,
} from './receipt.js';
export {
  type ConsistencySource,
  checkSignedRoot,
  exclusive,
  memorySignedRootStore,
  type SignedRoot,
  type SignedRootStore,
  sameSignedRoot,
  signedRootOf,
  storedRootChanged,
} from './rollback.js';
export { formatTxid, isTxid, parseTxid } from './txid.js';
