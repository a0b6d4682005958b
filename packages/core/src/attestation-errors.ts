/**
 * The named errors of evidence verification and constraints (docs/evidence.md,
 * docs/constraints.md). Each has its own class and code, so that callers and tests can tell
 * "forged" from "replayed" from "wrong code" without reading messages. Messages name the check and
 * public values only (measurements, signers, key hashes), never keys' secrets or app data.
 */
import { CloisterError } from './errors.js';

/** The evidence bytes are not a well-formed, deterministic v1 evidence (COSE_Sign1 or payload). */
export class EvidenceFormatError extends CloisterError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('EVIDENCE_FORMAT', message, options);
  }
}

/** The evidence payload has a version ("v") other than 1. */
export class EvidenceVersionError extends CloisterError {
  constructor(message: string) {
    super('EVIDENCE_VERSION', message);
  }
}

/** The evidence signature does not verify or does not chain to the platform's root of trust. */
export class EvidenceSignatureError extends CloisterError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('EVIDENCE_SIGNATURE', message, options);
  }
}

/** No registered platform verifier for the platform the evidence names. */
export class UnknownPlatformError extends CloisterError {
  constructor(message: string) {
    super('UNKNOWN_PLATFORM', message);
  }
}

/** The verifier found the platform insecure and the constraint does not admit insecure ones. */
export class InsecurePlatformError extends CloisterError {
  constructor(message: string) {
    super('INSECURE_PLATFORM', message);
  }
}

/** The evidence's reportData does not answer the verifier's nonce (possible replay). */
export class NonceMismatchError extends CloisterError {
  constructor(message: string) {
    super('NONCE_MISMATCH', message);
  }
}

/** The evidence's reportData does not bind the identity key the verifier was given. */
export class KeyBindingError extends CloisterError {
  constructor(message: string) {
    super('KEY_BINDING', message);
  }
}

/** A constraint text is malformed: `clause` is the offending clause, `position` its 1-based
 * index (0 when no single clause is at fault). */
export class ConstraintSyntaxError extends CloisterError {
  readonly clause: string;
  readonly position: number;

  constructor(message: string, clause = '', position = 0) {
    super('CONSTRAINT_SYNTAX', message);
    this.clause = clause;
    this.position = position;
  }
}

/** The evidence does not satisfy a constraint clause: `clause` names it, `seen` the value found. */
export class ConstraintMismatchError extends CloisterError {
  readonly clause: string;
  readonly seen: string;

  constructor(clause: string, seen: string, message: string) {
    super('CONSTRAINT_MISMATCH', message);
    this.clause = clause;
    this.seen = seen;
  }
}
