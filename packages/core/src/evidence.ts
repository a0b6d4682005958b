/**
 * Evidence v1 payload, report data and measurement (docs/evidence.md).
 *
 * The payload is the deterministic CBOR (RFC 8949 §4.2.1) map with exactly the text keys
 *   v: 1, platform: text, measurement: bstr 32, signer: bstr 32, product: uint < 2^32,
 *   svn: uint < 2^32, reportData: bstr 64, platformKey: bstr 65 (uncompressed P-256).
 * It travels as the payload of a COSE_Sign1 signed by the platform (cose.ts, verify.ts).
 */
import { EvidenceFormatError, EvidenceVersionError } from './attestation-errors.js';
import { concatBytes, utf8 } from './bytes.js';
import { decodeCbor, encodeCbor } from './cbor.js';
import { EncodingError, InvalidInputError } from './errors.js';
import { sha256 } from './hash.js';

export const EVIDENCE_VERSION = 1;
/** Longest nonce a verifier may ask for, in bytes. */
export const MAX_NONCE_LENGTH = 64;
/** Platform names: 1 to 32 of a-z, 0-9 and '-', starting with a letter or digit. */
export const PLATFORM_NAME = /^[a-z0-9][a-z0-9-]{0,31}$/;

const IDENTITY_LABEL = utf8('cloister/v1/identity-key');
const NONCE_LABEL = utf8('cloister/v1/nonce');
const MEASUREMENT_LABEL = utf8('cloister/v1/measurement');
const U32_LIMIT = 2 ** 32;

/**
 * The claims of a v1 evidence. Decoded claims are NOT verified: only verifyEvidence, after the
 * platform verifier accepted the signature, makes them believable.
 */
export interface EvidenceClaims {
  readonly v: 1;
  /** Which platform produced (and signed) the evidence, e.g. "simulation". */
  readonly platform: string;
  /** 32 bytes: computeMeasurement(bundle hash, product, svn) of the code that runs. */
  readonly measurement: Uint8Array;
  /** 32 bytes: SHA-256 of the manifest signer's 65-byte public key. */
  readonly signer: Uint8Array;
  readonly product: number;
  readonly svn: number;
  /** 64 bytes: computeReportData(identity key, nonce). */
  readonly reportData: Uint8Array;
  /** 65 bytes: the platform's P-256 key that signed the evidence. */
  readonly platformKey: Uint8Array;
}

/** Field name -> what it must be; bstr fields with their exact length. */
const BYTES_FIELDS = { measurement: 32, signer: 32, reportData: 64, platformKey: 65 } as const;
const UINT_FIELDS = ['product', 'svn'] as const;
const KEYS: ReadonlySet<string> = new Set([
  'v',
  'platform',
  ...Object.keys(BYTES_FIELDS),
  ...UINT_FIELDS,
]);

function isU32(n: unknown): n is number {
  // -0 is a float (CBOR f98000), never an integer of the format.
  return (
    typeof n === 'number' && Number.isInteger(n) && n >= 0 && n < U32_LIMIT && !Object.is(n, -0)
  );
}

function u32be(n: number): Uint8Array {
  const out = new Uint8Array(4);
  new DataView(out.buffer).setUint32(0, n, false);
  return out;
}

/** Problems with a claims object, as a message, or undefined when it is well-formed. */
function claimsProblem(c: Record<string, unknown>): string | undefined {
  if (c.v !== EVIDENCE_VERSION) return 'v must be 1';
  if (typeof c.platform !== 'string' || !PLATFORM_NAME.test(c.platform)) {
    return 'platform must be 1-32 characters of a-z, 0-9 and -';
  }
  for (const [name, len] of Object.entries(BYTES_FIELDS)) {
    const b = c[name];
    if (!(b instanceof Uint8Array) || b.length !== len) return `${name} must be ${len} bytes`;
  }
  if ((c.platformKey as Uint8Array)[0] !== 0x04) {
    return 'platformKey must be an uncompressed P-256 point (first byte 04)';
  }
  for (const name of UINT_FIELDS) {
    if (!isU32(c[name])) return `${name} must be an integer in 0 .. 2^32-1`;
  }
  return undefined;
}

/** Encodes the claims as the deterministic CBOR payload. Throws InvalidInputError if malformed. */
export function encodeEvidencePayload(claims: EvidenceClaims): Uint8Array {
  const problem = claimsProblem(claims as unknown as Record<string, unknown>);
  if (problem !== undefined) throw new InvalidInputError(`evidence claims: ${problem}`);
  return encodeCbor(
    new Map<string, unknown>([
      ['v', claims.v],
      ['platform', claims.platform],
      ['measurement', claims.measurement],
      ['signer', claims.signer],
      ['product', claims.product],
      ['svn', claims.svn],
      ['reportData', claims.reportData],
      ['platformKey', claims.platformKey],
    ]),
  );
}

/**
 * Decodes a payload strictly: deterministic CBOR, a map with text keys only, v first checked
 * (v other than 1 -> EvidenceVersionError, since a later version may change everything else),
 * then exactly the v1 key set, types and lengths (-> EvidenceFormatError).
 */
export function decodeEvidencePayload(bytes: Uint8Array): EvidenceClaims {
  let map: unknown;
  try {
    map = decodeCbor(bytes);
  } catch (e) {
    if (e instanceof EncodingError) {
      throw new EvidenceFormatError(`evidence payload: ${e.message}`, { cause: e });
    }
    throw e;
  }
  if (!(map instanceof Map)) throw new EvidenceFormatError('evidence payload must be a CBOR map');
  const c: Record<string, unknown> = Object.create(null);
  for (const [k, v] of map) {
    if (typeof k !== 'string') throw new EvidenceFormatError('evidence payload keys must be text');
    c[k] = v;
  }
  if (!('v' in c)) throw new EvidenceFormatError('evidence payload has no version (v)');
  if (c.v !== EVIDENCE_VERSION) {
    const seen = isU32(c.v) ? String(c.v) : 'a non-integer';
    throw new EvidenceVersionError(`evidence version ${seen} is not supported (this verifier: 1)`);
  }
  for (const k of Object.keys(c)) {
    if (!KEYS.has(k)) throw new EvidenceFormatError('evidence payload has an unknown key');
  }
  for (const k of KEYS) {
    if (!(k in c)) throw new EvidenceFormatError(`evidence payload has no ${k}`);
  }
  const problem = claimsProblem(c);
  if (problem !== undefined) throw new EvidenceFormatError(`evidence payload: ${problem}`);
  return {
    v: EVIDENCE_VERSION,
    platform: c.platform as string,
    measurement: c.measurement as Uint8Array,
    signer: c.signer as Uint8Array,
    product: c.product as number,
    svn: c.svn as number,
    reportData: c.reportData as Uint8Array,
    platformKey: c.platformKey as Uint8Array,
  };
}

function checkIdentityKey(identityPublicKey65: Uint8Array): void {
  if (!(identityPublicKey65 instanceof Uint8Array) || identityPublicKey65.length !== 65) {
    throw new InvalidInputError('the identity public key must be 65 bytes (uncompressed P-256)');
  }
  if (identityPublicKey65[0] !== 0x04) {
    throw new InvalidInputError('the identity public key must be uncompressed (first byte 04)');
  }
}

function checkNonce(nonce: Uint8Array): void {
  if (!(nonce instanceof Uint8Array) || nonce.length > MAX_NONCE_LENGTH) {
    throw new InvalidInputError(`the nonce must be at most ${MAX_NONCE_LENGTH} bytes`);
  }
}

/** First half of reportData: SHA-256(utf8("cloister/v1/identity-key") ‖ identityPublicKey65). */
export function identityKeyDigest(identityPublicKey65: Uint8Array): Uint8Array {
  checkIdentityKey(identityPublicKey65);
  return sha256(IDENTITY_LABEL, identityPublicKey65);
}

/** Second half of reportData: SHA-256(utf8("cloister/v1/nonce") ‖ nonce), nonce 0..64 bytes. */
export function nonceDigest(nonce: Uint8Array): Uint8Array {
  checkNonce(nonce);
  return sha256(NONCE_LABEL, nonce);
}

/** reportData (64 bytes) = identityKeyDigest(identityPublicKey65) ‖ nonceDigest(nonce). */
export function computeReportData(identityPublicKey65: Uint8Array, nonce: Uint8Array): Uint8Array {
  return concatBytes(identityKeyDigest(identityPublicKey65), nonceDigest(nonce));
}

/**
 * measurement = SHA-256(utf8("cloister/v1/measurement") ‖ bundleHash32 ‖ u32be(product) ‖
 * u32be(svn)). The signer is deliberately not in it (as SGX keeps MRSIGNER out of MRENCLAVE).
 */
export function computeMeasurement(
  bundleHash32: Uint8Array,
  product: number,
  svn: number,
): Uint8Array {
  if (!(bundleHash32 instanceof Uint8Array) || bundleHash32.length !== 32) {
    throw new InvalidInputError('the bundle hash must be 32 bytes');
  }
  if (!isU32(product)) throw new InvalidInputError('product must be an integer in 0 .. 2^32-1');
  if (!isU32(svn)) throw new InvalidInputError('svn must be an integer in 0 .. 2^32-1');
  return sha256(MEASUREMENT_LABEL, bundleHash32, u32be(product), u32be(svn));
}
