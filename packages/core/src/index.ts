/**
 * @cloister/core: the isomorphic attestation core (Node and browsers, no Node built-ins).
 * Explicit named exports only; importing this module has no side effects.
 */
export {
  ConstraintMismatchError,
  ConstraintSyntaxError,
  EvidenceFormatError,
  EvidenceSignatureError,
  EvidenceVersionError,
  InsecurePlatformError,
  KeyBindingError,
  NonceMismatchError,
  UnknownPlatformError,
} from './attestation-errors.js';
export {
  bytesEqual,
  concatBytes,
  constantTimeEqual,
  fromBase64,
  fromHex,
  fromUtf8,
  toBase64,
  toHex,
  utf8,
  wipe,
} from './bytes.js';
export { CBOR_MAX_DEPTH, CborTag, decodeCbor, encodeCbor } from './cbor.js';
export type { Constraint, ConstraintFacts } from './constraint.js';
export {
  formatConstraint,
  MAX_CONSTRAINT_LENGTH,
  matchConstraint,
  parseConstraint,
} from './constraint.js';
export type { DecodedSign1 } from './cose.js';
export {
  COSE_ALG_ES256,
  COSE_SIGN1_TAG,
  decodeSign1,
  ES256_PROTECTED,
  encodeSign1,
  sign1ToBeSigned,
  verifyEs256,
} from './cose.js';
export type { ErrorCode } from './errors.js';
export {
  CloisterError,
  EncodingError,
  ERROR_CODES,
  InvalidInputError,
  isCloisterError,
} from './errors.js';
export type { EvidenceClaims } from './evidence.js';
export {
  computeMeasurement,
  computeReportData,
  decodeEvidencePayload,
  EVIDENCE_VERSION,
  encodeEvidencePayload,
  MAX_NONCE_LENGTH,
  PLATFORM_NAME,
} from './evidence.js';
export { sha256 } from './hash.js';
export {
  type Absence,
  type DecodedProof,
  type DecodedStateProof,
  decodeProof,
  decodeStateProof,
  EMPTY_TRIE_ROOT,
  keyCommitment,
  LEDGER_PROOF_VERSION,
  ProofError,
  type ProofMismatch,
  type ProofVerdict,
  type StateClaim,
  type StateProofMismatch,
  type StateProofVerdict,
  valueCommitment,
  verifyInclusion,
  verifyNonInclusion,
  verifyStateProof,
} from './ledger/index.js';
export type {
  PlatformVerdict,
  PlatformVerifier,
  VerifiedEvidence,
  VerifyEvidenceOptions,
} from './verify.js';
export { MAX_EVIDENCE_LENGTH, simulationVerifier, verifyEvidence } from './verify.js';
