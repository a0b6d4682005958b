/**
 * Sealed blobs: data the enclave encrypts under a key only the platform can derive for it
 * (DESIGN.md §7; the analogue of SGX sealing with EGETKEY). The enclave never derives a sealing key
 * from a raw secret itself: it asks the platform, naming a policy and a security version.
 *
 * Format (docs/sealing.md): deterministic CBOR `[header, iv, ciphertext]` where `header` is the
 * byte string of the deterministic CBOR array
 *   ["cloister-sealed", 1, policy, svn, keyId, purpose, owner]
 * and is the AES-256-GCM additional data, so every header field is authenticated: purpose and owner
 * say what the blob is and whose it is, the format version is bound, and the policy/svn/keyId
 * name the key. A blob moved to another node (owner), another platform (key) or altered in any
 * byte fails as SealedDataCorruptError; never as a silent fresh start.
 */
import { randomBytes } from 'node:crypto';
import { CloisterError, decodeCbor, encodeCbor, wipe } from '@cloister/core';
import { AEAD_TAG_BYTES, aesGcmOpen, aesGcmSeal } from '@cloister/node-crypto';

/** Which enclave identity a sealing key is bound to. */
export type SealPolicy = 'code' | 'signer';

export const SEAL_POLICY_CODE = 1;
export const SEAL_POLICY_SIGNER = 2;

const MAGIC = 'cloister-sealed';
const FORMAT = 1;
const IV_BYTES = 12;

const KEY_ID_BYTES = 16;
/** A sealing key (AES-256). */
export const SEAL_KEY_BYTES = 32;

/** The platform's key derivation, as seen from inside the enclave. */
export interface SealKeySource {
  /**
   * Returns the SEAL_KEY_BYTES-byte key for `policy` at security version `svn` and `keyId`. The platform
   * refuses (throws SEAL_POLICY) an svn above the enclave's own. The caller wipes the key.
   */
  sealKey(policy: SealPolicy, svn: number, keyId: Uint8Array): Promise<Uint8Array>;
}

export interface SealedHeader {
  readonly policy: SealPolicy;
  readonly svn: number;
  readonly keyId: Uint8Array;
  readonly purpose: string;
  readonly owner: string;
}

export class SealedDataCorruptError extends CloisterError {
  constructor(message: string) {
    super('SEALED_DATA_CORRUPT', message);
  }
}

export class SecurityVersionRollbackError extends CloisterError {
  constructor(sealedSvn: number, ownSvn: number, what = 'sealed data was written by') {
    super(
      'SECURITY_VERSION_ROLLBACK',
      `${what} security version ${sealedSvn}; this enclave is version ${ownSvn} and refuses to run below it`,
    );
  }
}

function encodeHeader(h: SealedHeader): Uint8Array {
  const policy = h.policy === 'code' ? SEAL_POLICY_CODE : SEAL_POLICY_SIGNER;
  return encodeCbor([MAGIC, FORMAT, policy, h.svn, h.keyId, h.purpose, h.owner]);
}

/** A whole number of 32 bits: a security version, as manifests and sealed headers hold one. */
export function isUint32(x: unknown): x is number {
  return typeof x === 'number' && Number.isInteger(x) && x >= 0 && x <= 0xffffffff;
}

/** Strictly parses a sealed blob's outer structure and header. */
export function parseSealed(blob: Uint8Array): {
  header: SealedHeader;
  headerBytes: Uint8Array;
  iv: Uint8Array;
  ciphertext: Uint8Array;
} {
  let outer: unknown;
  let inner: unknown;
  try {
    outer = decodeCbor(blob);
    if (!Array.isArray(outer) || outer.length !== 3) throw new Error('outer');
    if (!(outer[0] instanceof Uint8Array)) throw new Error('header');
    inner = decodeCbor(outer[0]);
  } catch {
    throw new SealedDataCorruptError('sealed blob is not in the sealed format');
  }
  const [headerBytes, iv, ciphertext] = outer as [Uint8Array, unknown, unknown];
  if (
    !Array.isArray(inner) ||
    inner.length !== 7 ||
    inner[0] !== MAGIC ||
    !(iv instanceof Uint8Array) ||
    iv.length !== IV_BYTES ||
    !(ciphertext instanceof Uint8Array) ||
    ciphertext.length < AEAD_TAG_BYTES
  ) {
    throw new SealedDataCorruptError('sealed blob header is malformed');
  }
  const [, format, policy, svn, keyId, purpose, owner] = inner as unknown[];
  if (format !== FORMAT) {
    throw new SealedDataCorruptError(
      `sealed blob format version ${String(format)} is not supported`,
    );
  }
  if (
    (policy !== SEAL_POLICY_CODE && policy !== SEAL_POLICY_SIGNER) ||
    !isUint32(svn) ||
    !(keyId instanceof Uint8Array) ||
    keyId.length !== KEY_ID_BYTES ||
    typeof purpose !== 'string' ||
    typeof owner !== 'string'
  ) {
    throw new SealedDataCorruptError('sealed blob header is malformed');
  }
  const header: SealedHeader = {
    policy: policy === SEAL_POLICY_CODE ? 'code' : 'signer',
    svn,
    keyId,
    purpose,
    owner,
  };
  return { header, headerBytes, iv, ciphertext };
}

/**
 * Seals `plaintext` for `purpose` and `owner` under `policy` at the enclave's own `svn`.
 * A fresh random key id and IV are drawn for every blob.
 */
export async function seal(
  keys: SealKeySource,
  opts: { policy: SealPolicy; svn: number; purpose: string; owner: string },
  plaintext: Uint8Array,
): Promise<Uint8Array> {
  const keyId = new Uint8Array(randomBytes(KEY_ID_BYTES));
  const headerBytes = encodeHeader({ ...opts, keyId });
  const key = await keys.sealKey(opts.policy, opts.svn, keyId);
  try {
    const iv = new Uint8Array(randomBytes(IV_BYTES));
    return encodeCbor([headerBytes, iv, aesGcmSeal(key, iv, headerBytes, plaintext)]);
  } finally {
    wipe(key);
  }
}

/**
 * Opens a sealed blob, checking that it is for `purpose` and `owner` (and, when given, sealed
 * under `policy`), and that it was not written by a higher security version than `ownSvn`
 * (SecurityVersionRollbackError). Any other failure, including a wrong key (another platform,
 * another code identity, a lower version) is SealedDataCorruptError.
 */
export async function unseal(
  keys: SealKeySource,
  expect: { purpose: string; owner: string; ownSvn: number; policy?: SealPolicy },
  blob: Uint8Array,
): Promise<{ header: SealedHeader; plaintext: Uint8Array }> {
  const { header, headerBytes, iv, ciphertext } = parseSealed(blob);
  if (header.purpose !== expect.purpose) {
    throw new SealedDataCorruptError(
      `sealed blob is for purpose '${header.purpose}', expected '${expect.purpose}'`,
    );
  }
  // State kept across upgrades is sealed to the signer: the same bytes under the code policy
  // would open now and be lost at the next upgrade, so they are refused now.
  if (expect.policy !== undefined && header.policy !== expect.policy) {
    throw new SealedDataCorruptError(
      `sealed blob is sealed under the ${header.policy} policy, expected the ${expect.policy} policy`,
    );
  }
  if (header.owner !== expect.owner) {
    throw new SealedDataCorruptError('sealed blob belongs to another node');
  }
  if (header.svn > expect.ownSvn) throw new SecurityVersionRollbackError(header.svn, expect.ownSvn);
  const key = await keys.sealKey(header.policy, header.svn, header.keyId);
  let plaintext: Uint8Array | undefined;
  try {
    plaintext = aesGcmOpen(key, iv, headerBytes, ciphertext);
  } finally {
    wipe(key);
  }
  if (plaintext === undefined) {
    throw new SealedDataCorruptError(
      'sealed blob failed authentication (altered, or sealed by another platform or code identity)',
    );
  }
  return { header, plaintext };
}
