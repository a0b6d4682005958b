/**
 * The endorsement chain both receipts and SCP rest on: the node's evidence binds the node key
 * with nonce endorsementNonce(serviceKey) and satisfies the caller's constraint, and the node key
 * signs the service endorsement COSE_Sign1. One implementation, so the two cannot drift apart.
 */
import type { Constraint } from '../constraint.js';
import type { DecodedSign1 } from '../cose.js';
import { decodeMinimalSign1, sign1ToBeSigned, verifyEs256 } from '../cose.js';
import { CloisterError, EncodingError } from '../errors.js';
import type { PlatformVerifier, VerifiedEvidence } from '../verify.js';
import { verifyEvidence } from '../verify.js';
import { LogFormatError } from './errors.js';
import { decodeEndorsementPayload, endorsementNonce } from './payloads.js';

/** True when the COSE_Sign1 verifies with `publicKey`; false for a bad signature or non-point key. */
export async function verifySign1(sign1: DecodedSign1, publicKey: Uint8Array): Promise<boolean> {
  try {
    return await verifyEs256(
      publicKey,
      sign1ToBeSigned(sign1.protectedBytes, sign1.payload),
      sign1.signature,
    );
  } catch (e) {
    if (e instanceof EncodingError) return false; // not a P-256 point
    throw e;
  }
}

export interface VerifiedEndorsement {
  readonly servicePublicKey: Uint8Array;
  readonly nodePublicKey: Uint8Array;
  /** What the node's evidence established. */
  readonly security: VerifiedEvidence;
}

/** How a failed step is reported: the caller's own error class (ReceiptError, ScpError …). */
export type EndorsementFail = (
  step: 'evidence' | 'endorsement',
  message: string,
  cause?: unknown,
) => Error;

/**
 * Verifies, in this order: the endorsement COSE_Sign1 and its payload parse ('endorsement');
 * verifyEvidence(ev, { nonce: endorsementNonce(servicePublicKey), identityPublicKey:
 * nodePublicKey, constraint, verifiers }) ('evidence'; INVALID_INPUT and CONSTRAINT_SYNTAX, the
 * caller's own mistakes, are rethrown as they are); the endorsement's ES256 signature by
 * nodePublicKey ('endorsement'). Resolves only when all three hold.
 */
export async function verifyEndorsementChain(
  ev: Uint8Array,
  end: Uint8Array,
  options: {
    readonly constraint: Constraint | string;
    readonly verifiers?: readonly PlatformVerifier[];
  },
  fail: EndorsementFail,
): Promise<VerifiedEndorsement> {
  let sign1: DecodedSign1;
  let endorsed: { servicePublicKey: Uint8Array; nodePublicKey: Uint8Array };
  try {
    sign1 = decodeMinimalSign1(end);
  } catch (e) {
    if (e instanceof EncodingError) throw fail('endorsement', `not a COSE_Sign1: ${e.message}`, e);
    throw e;
  }
  try {
    endorsed = decodeEndorsementPayload(sign1.payload);
  } catch (e) {
    if (e instanceof LogFormatError) throw fail('endorsement', e.message, e);
    throw e;
  }
  const { servicePublicKey, nodePublicKey } = endorsed;
  let security: VerifiedEvidence;
  try {
    security = await verifyEvidence(ev, {
      nonce: endorsementNonce(servicePublicKey),
      identityPublicKey: nodePublicKey,
      constraint: options.constraint,
      ...(options.verifiers === undefined ? {} : { verifiers: options.verifiers }),
    });
  } catch (e) {
    if (
      e instanceof CloisterError &&
      e.code !== 'INVALID_INPUT' &&
      e.code !== 'CONSTRAINT_SYNTAX'
    ) {
      throw fail('evidence', `the node evidence does not verify: ${e.message}`, e);
    }
    throw e;
  }
  if (!(await verifySign1(sign1, nodePublicKey))) {
    throw fail(
      'endorsement',
      'the service endorsement is not signed by the node key the evidence binds',
    );
  }
  return { servicePublicKey, nodePublicKey, security };
}
