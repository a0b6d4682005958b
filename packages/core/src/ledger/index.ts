/** Ledger proofs, verified offline (docs/ledger-format.md). */
export {
  type Absence,
  type DecodedProof,
  decodeProof,
  EMPTY_TRIE_ROOT,
  keyCommitment,
  LEDGER_PROOF_VERSION,
  ProofError,
  type ProofMismatch,
  type ProofVerdict,
  valueCommitment,
  verifyInclusion,
  verifyNonInclusion,
} from './proof.js';
export {
  type DecodedStateProof,
  decodeStateProof,
  type StateClaim,
  type StateProofMismatch,
  type StateProofVerdict,
  verifyStateProof,
} from './state-proof.js';
