/**
 * verifyServerAuth: the ready-made check a client's `authorize` callback runs on SA — the same
 * endorsement chain verifyReceipt checks (log/endorsement.ts), then that the chain is about the
 * keys SA presented, then the constraint's SVC: clause.
 */
import { bytesEqual } from '../bytes.js';
import { type Constraint, checkServiceClause, parseConstraint } from '../constraint.js';
import { CloisterError } from '../errors.js';
import { verifyEndorsementChain } from '../log/endorsement.js';
import type { PlatformVerifier, VerifiedEvidence } from '../verify.js';
import { ScpError, type ServerAuth } from './types.js';

export interface VerifyServerAuthOptions {
  /** What the client accepts: a Constraint or its text (C:/S:/… for the node, SVC: for the service). */
  readonly constraint: Constraint | string;
  /** Platform verifiers, as verifyEvidence takes them (default [simulationVerifier]). */
  readonly verifiers?: readonly PlatformVerifier[];
}

/**
 * Checks, in order: the endorsement COSE_Sign1 (minimal form) and its payload parse
 * (SCP_HANDSHAKE); the evidence verifies against the constraint with nonce
 * endorsementNonce(svc) and binds node, svc and node being the keys the endorsement names (the
 * evidence's own error: EVIDENCE_*, NONCE_MISMATCH, KEY_BINDING, INSECURE_PLATFORM,
 * CONSTRAINT_MISMATCH …); the endorsement is signed by node (SCP_HANDSHAKE); svc and node are
 * exactly SA's serviceKey and nodeKey (SCP_HANDSHAKE); the SVC: clause, when present
 * (CONSTRAINT_MISMATCH).
 * Resolves with what the evidence established. Pinning the service identity is the caller's.
 */
export async function verifyServerAuth(
  a: ServerAuth,
  options: VerifyServerAuthOptions,
): Promise<VerifiedEvidence> {
  const constraint =
    typeof options.constraint === 'string'
      ? parseConstraint(options.constraint)
      : options.constraint;
  const chain = await verifyEndorsementChain(
    a.evidence,
    a.endorsement,
    { constraint, ...(options.verifiers === undefined ? {} : { verifiers: options.verifiers }) },
    (step, message, cause) => {
      // The evidence's own error says precisely what failed (constraint, platform, binding).
      if (step === 'evidence' && cause instanceof CloisterError) return cause;
      return new ScpError('SCP_HANDSHAKE', message, cause === undefined ? undefined : { cause });
    },
  );
  if (
    !bytesEqual(chain.servicePublicKey, a.serviceKey) ||
    !bytesEqual(chain.nodePublicKey, a.nodeKey)
  ) {
    throw new ScpError(
      'SCP_HANDSHAKE',
      'the service endorsement names other keys than the node presented in the handshake',
    );
  }
  checkServiceClause(constraint, a.serviceIdentity);
  return chain.security;
}
