/**
 * Sealing key derivation of the simulated platform (the analogue of SGX EGETKEY), and the other
 * keys the platform derives from its root secret. HKDF-SHA256 (RFC 5869) from node:crypto.
 *
 *   K = HKDF-SHA256(IKM = root secret (32 bytes), salt = utf8("cloister/v1/platform/seal"),
 *                   info, L = 32)
 *   info (code)   = utf8("cloister/v1/seal/code")   ‖ 0x00 ‖ measurement(32) ‖ u32be(svn) ‖ keyId(16)
 *   info (signer) = utf8("cloister/v1/seal/signer") ‖ 0x00 ‖ signer(32) ‖ u32be(product)
 *                   ‖ u32be(svn) ‖ keyId(16)
 *
 * Each info is a label, a zero byte, then fixed-length fields, so no two (policy, inputs) tuples
 * share an info. `svn` is the version the enclave REQUESTS, which may not exceed its own: an
 * enclave at svn n+1 can derive the key of svn n (and read what n sealed), an enclave at n-1
 * cannot (docs/platform.md, "Sealing").
 */
import { hkdfSync } from 'node:crypto';
import { concatBytes, InvalidInputError, utf8 } from '@cloister/core';
import { SealPolicyError } from './errors.js';
import type { SealPolicy } from './types.js';

export const SEAL_SALT = 'cloister/v1/platform/seal';
export const SEAL_LABEL_CODE = 'cloister/v1/seal/code';
export const SEAL_LABEL_SIGNER = 'cloister/v1/seal/signer';
export const PLATFORM_SALT = 'cloister/v1/platform';
export const COUNTERS_MAC_LABEL = 'cloister/v1/platform/counters-mac';

/** Length of the per-blob key id chosen by the enclave. */
export const KEY_ID_LENGTH = 16;
/** Length of derived keys and of the root secret. */
export const KEY_LENGTH = 32;

/** The identity fields a sealing key can bind. */
export interface SealingIdentity {
  readonly measurement: Uint8Array;
  readonly signer: Uint8Array;
  readonly product: number;
  readonly svn: number;
}

/**
 * Derives the sealing key for `identity` under `policy` at the requested `svn`, for `keyId`.
 * Throws SealPolicyError when `svn` > identity.svn, InvalidInputError on malformed arguments.
 */
export function deriveSealingKey(
  rootSecret: Uint8Array,
  identity: SealingIdentity,
  policy: SealPolicy,
  svn: number,
  keyId: Uint8Array,
): Uint8Array {
  if (!isU32(svn)) throw new InvalidInputError('svn must be an integer in [0, 2^32)');
  if (!(keyId instanceof Uint8Array) || keyId.length !== KEY_ID_LENGTH) {
    throw new InvalidInputError(`keyId must be ${KEY_ID_LENGTH} bytes`);
  }
  if (svn > identity.svn) {
    throw new SealPolicyError(
      `The enclave at security version ${identity.svn} asked for a sealing key of version ${svn}; a version may only derive keys of itself and older versions.`,
    );
  }
  let info: Uint8Array;
  if (policy === 'code') {
    info = concatBytes(label(SEAL_LABEL_CODE), identity.measurement, u32be(svn), keyId);
  } else if (policy === 'signer') {
    info = concatBytes(
      label(SEAL_LABEL_SIGNER),
      identity.signer,
      u32be(identity.product),
      u32be(svn),
      keyId,
    );
  } else {
    throw new InvalidInputError(
      `unknown sealing policy ${JSON.stringify(policy)}: use 'code' or 'signer'`,
    );
  }
  return hkdf(rootSecret, SEAL_SALT, info);
}

/** Key of the counters file MAC (accidental damage and files from another platform). */
export function deriveCountersMacKey(rootSecret: Uint8Array): Uint8Array {
  return hkdf(rootSecret, PLATFORM_SALT, utf8(COUNTERS_MAC_LABEL));
}

function hkdf(ikm: Uint8Array, salt: string, info: Uint8Array): Uint8Array {
  // RFC 5869 §2.2-2.3: extract with the salt, expand with the info, L = 32.
  return new Uint8Array(hkdfSync('sha256', ikm, utf8(salt), info, KEY_LENGTH));
}

function label(text: string): Uint8Array {
  return concatBytes(utf8(text), new Uint8Array([0]));
}

export function u32be(n: number): Uint8Array {
  const out = new Uint8Array(4);
  new DataView(out.buffer).setUint32(0, n);
  return out;
}

export function isU32(n: unknown): n is number {
  return typeof n === 'number' && Number.isInteger(n) && n >= 0 && n <= 0xffffffff;
}
