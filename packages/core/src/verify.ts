/**
 * Evidence verification (docs/evidence.md §Verification, docs/constraints.md §Order of checks).
 *
 * Whether evidence is secure is decided here by WHICH verifier accepted its signature, never by a
 * field inside the evidence: simulation evidence is insecure whatever it says, and an unknown
 * platform is refused.
 */
import {
  EvidenceFormatError,
  EvidenceSignatureError,
  InsecurePlatformError,
  KeyBindingError,
  NonceMismatchError,
  UnknownPlatformError,
} from './attestation-errors.js';
import { bytesEqual, toHex } from './bytes.js';
import type { Constraint } from './constraint.js';
import {
  formatConstraint,
  isParsedConstraint,
  matchConstraint,
  parseConstraint,
} from './constraint.js';
import type { DecodedSign1 } from './cose.js';
import { decodeMinimalSign1, sign1ToBeSigned, verifyEs256 } from './cose.js';
import { CloisterError, EncodingError, InvalidInputError } from './errors.js';
import type { EvidenceClaims } from './evidence.js';
import { decodeEvidencePayload, identityKeyDigest, nonceDigest } from './evidence.js';
import { sha256 } from './hash.js';

/**
 * Checks the signature of one platform's evidence against that platform's root of trust, and
 * says how much that proves.
 *
 * Contract: `verify` is called only with evidence whose claims name `platform`, before any claim
 * has been believed. It must verify `sign1.signature` over
 * sign1ToBeSigned(sign1.protectedBytes, sign1.payload) with a key that chains to the platform's
 * root of trust (for simulation, the key is claims.platformKey itself, so nothing chains).
 * It throws EvidenceSignatureError when it does not, and never resolves for such evidence.
 * It resolves `secure: true` only when a hardware root of trust vouches for the platform key,
 * and names that root in `rootOfTrust` (a stable, printable identifier).
 */
export interface PlatformVerifier {
  /** The platform name this verifier handles, as found in the evidence ("simulation"). */
  readonly platform: string;
  verify(sign1: DecodedSign1, claims: EvidenceClaims): Promise<PlatformVerdict>;
}

/** What a platform verifier found: security level and the root of trust that was used. */
export interface PlatformVerdict {
  readonly secure: boolean;
  readonly rootOfTrust: string;
}

/**
 * The simulation platform: the evidence is signed by claims.platformKey, a key the (untrusted)
 * host holds, so the signature proves only that the evidence was not altered after signing. It is
 * always insecure. rootOfTrust = "simulation:" + hex(SHA-256(platformKey)).
 */
export const simulationVerifier: PlatformVerifier = Object.freeze({
  platform: 'simulation',
  async verify(sign1: DecodedSign1, claims: EvidenceClaims): Promise<PlatformVerdict> {
    if (claims.platform !== 'simulation') {
      throw new EvidenceSignatureError('the simulation verifier only verifies simulation evidence');
    }
    const data = sign1ToBeSigned(sign1.protectedBytes, sign1.payload);
    let ok: boolean;
    try {
      ok = await verifyEs256(claims.platformKey, data, sign1.signature);
    } catch (e) {
      if (!(e instanceof EncodingError)) throw e;
      throw new EvidenceSignatureError('the platform key is not a valid P-256 point', { cause: e });
    }
    if (!ok) throw new EvidenceSignatureError('the evidence signature does not verify');
    return { secure: false, rootOfTrust: `simulation:${toHex(sha256(claims.platformKey))}` };
  },
});

/** The result of verifyEvidence: only what verification established. Fresh copies. */
export interface VerifiedEvidence {
  readonly platform: string;
  /** Decided by the platform verifier, never by the evidence. */
  readonly secure: boolean;
  readonly rootOfTrust: string;
  readonly measurement: Uint8Array;
  readonly signer: Uint8Array;
  readonly product: number;
  readonly svn: number;
  readonly platformKey: Uint8Array;
}

export interface VerifyEvidenceOptions {
  /** The verifier's fresh nonce, 0..64 bytes (longer is InvalidInputError). */
  readonly nonce: Uint8Array;
  /** The 65-byte identity key the node presented, which the evidence must bind. */
  readonly identityPublicKey: Uint8Array;
  /** What the caller accepts: a Constraint or its text. */
  readonly constraint: Constraint | string;
  /** Platform verifiers by platform name; default [simulationVerifier]. */
  readonly verifiers?: readonly PlatformVerifier[];
}

/** Longest evidence accepted, in bytes (v1 simulation evidence is 357 bytes). */
export const MAX_EVIDENCE_LENGTH = 65536;

function toConstraint(c: Constraint | string): Constraint {
  if (typeof c === 'string') return parseConstraint(c);
  if (typeof c !== 'object' || c === null) {
    throw new InvalidInputError('constraint must be a Constraint or its text');
  }
  if (isParsedConstraint(c)) return c;
  return parseConstraint(formatConstraint(c)); // re-validates hand-built objects
}

function pickVerifier(
  verifiers: readonly PlatformVerifier[],
  platform: string,
): PlatformVerifier | undefined {
  const names = new Set<string>();
  for (const v of verifiers) {
    if (names.has(v.platform)) {
      throw new InvalidInputError(`two verifiers are registered for platform "${v.platform}"`);
    }
    names.add(v.platform);
  }
  return verifiers.find((v) => v.platform === platform);
}

/**
 * Step 1: strict parse, COSE then payload. Evidence must be exactly what producers emit.
 * Nothing is verified: EvidenceFormatError or EvidenceVersionError for bytes that are not it.
 */
export function parseEvidence(evidence: Uint8Array): {
  sign1: DecodedSign1;
  claims: EvidenceClaims;
} {
  let sign1: DecodedSign1;
  try {
    sign1 = decodeMinimalSign1(evidence);
  } catch (e) {
    if (!(e instanceof EncodingError)) throw e;
    throw new EvidenceFormatError(`evidence is not a valid COSE_Sign1: ${e.message}`, { cause: e });
  }
  return { sign1, claims: decodeEvidencePayload(sign1.payload) };
}

/** Steps 2-3: the platform's verifier checks the signature before any claim is believed. */
async function checkPlatform(
  sign1: DecodedSign1,
  claims: EvidenceClaims,
  verifiers: readonly PlatformVerifier[],
): Promise<PlatformVerdict> {
  const verifier = pickVerifier(verifiers, claims.platform);
  if (verifier === undefined) {
    throw new UnknownPlatformError(
      `the evidence names platform "${claims.platform}", for which no verifier is registered`,
    );
  }
  let verdict: PlatformVerdict;
  try {
    verdict = await verifier.verify(sign1, claims);
  } catch (e) {
    if (e instanceof CloisterError) throw e;
    throw new EvidenceSignatureError(`the ${verifier.platform} verifier failed`, { cause: e });
  }
  if (typeof verdict?.secure !== 'boolean' || typeof verdict.rootOfTrust !== 'string') {
    throw new InvalidInputError(`the ${verifier.platform} verifier returned a malformed verdict`);
  }
  return { secure: verdict.secure, rootOfTrust: verdict.rootOfTrust };
}

/**
 * Verifies evidence against a nonce, an identity key and a constraint, in exactly this order:
 *  0. the caller's own arguments (nonce <= 64 bytes, 65-byte identity key, constraint syntax);
 *  1. strict parse, at most MAX_EVIDENCE_LENGTH bytes: COSE_Sign1 (EvidenceFormatError), then
 *     the payload (EvidenceFormatError, EvidenceVersionError);
 *  2. the verifier for claims.platform (none: UnknownPlatformError);
 *  3. that verifier checks the signature (EvidenceSignatureError) before any field is believed;
 *  4. security level from the verifier's answer only (insecure and no SEC:INSECURE:
 *     InsecurePlatformError);
 *  5. nonce: second half of reportData (NonceMismatchError);
 *  6. identity key binding: first half of reportData (KeyBindingError);
 *  7. the constraint: C, S, PROD, SVN, SIM (ConstraintMismatchError).
 * Resolves only when every check passed; never resolves with a partial or "tampered" result.
 */
export async function verifyEvidence(
  evidence: Uint8Array,
  opts: VerifyEvidenceOptions,
): Promise<VerifiedEvidence> {
  if (!(evidence instanceof Uint8Array)) throw new InvalidInputError('evidence must be bytes');
  if (typeof opts !== 'object' || opts === null) {
    throw new InvalidInputError('verifyEvidence needs { nonce, identityPublicKey, constraint }');
  }
  if (opts.verifiers !== undefined && !Array.isArray(opts.verifiers)) {
    throw new InvalidInputError('verifiers must be an array of PlatformVerifier');
  }
  const expectedNonce = nonceDigest(opts.nonce);
  const expectedKey = identityKeyDigest(opts.identityPublicKey);
  const constraint = toConstraint(opts.constraint);
  const verifiers = opts.verifiers ?? [simulationVerifier];

  if (evidence.length > MAX_EVIDENCE_LENGTH) {
    throw new EvidenceFormatError(`evidence is longer than ${MAX_EVIDENCE_LENGTH} bytes`);
  }
  const { sign1, claims } = parseEvidence(evidence); // decodeCbor copies: no aliasing
  const verdict = await checkPlatform(sign1, claims, verifiers);
  if (!verdict.secure && !constraint.allowInsecure) {
    throw new InsecurePlatformError(
      `the platform "${claims.platform}" is insecure (root of trust ${verdict.rootOfTrust}): ` +
        'its evidence proves nothing about the code that runs, and the constraint does not ' +
        'admit insecure platforms (SEC:INSECURE)',
    );
  }
  const reportData = claims.reportData;
  if (reportData.length !== 64 || !bytesEqual(reportData.subarray(32, 64), expectedNonce)) {
    throw new NonceMismatchError('the evidence does not answer this nonce (reportData[32..64])');
  }
  if (!bytesEqual(reportData.subarray(0, 32), expectedKey)) {
    throw new KeyBindingError('the evidence does not bind this identity key (reportData[0..32])');
  }
  matchConstraint(constraint, { ...claims, secure: verdict.secure });
  return {
    platform: claims.platform,
    secure: verdict.secure,
    rootOfTrust: verdict.rootOfTrust,
    measurement: claims.measurement.slice(),
    signer: claims.signer.slice(),
    product: claims.product,
    svn: claims.svn,
    platformKey: claims.platformKey.slice(),
  };
}
