/**
 * AES-256-GCM (NIST SP 800-38D) through node:crypto, for everything the enclave encrypts: sealed
 * blobs (seal.ts) and ledger records (ledger/crypto.ts). Callers choose the 96-bit nonce (random
 * per message) and the additional data that binds the ciphertext to its context.
 */
import { createCipheriv, createDecipheriv, type KeyObject } from 'node:crypto';
import { concatBytes } from '@cloister/core';

/** Length of the authentication tag appended to every ciphertext. */
export const AEAD_TAG_BYTES = 16;
const TAG_BYTES = AEAD_TAG_BYTES;

/** AES-256-GCM encryption: ciphertext ‖ 16-byte tag. */
export function aesGcmSeal(
  key: KeyObject | Uint8Array,
  nonce: Uint8Array,
  aad: Uint8Array,
  plaintext: Uint8Array,
): Uint8Array {
  const c = createCipheriv('aes-256-gcm', key, nonce, { authTagLength: TAG_BYTES });
  c.setAAD(aad);
  const head = c.update(plaintext);
  const tail = c.final();
  return concatBytes(head, tail, c.getAuthTag());
}

/** AES-256-GCM decryption of ciphertext ‖ tag; undefined when it does not authenticate. */
export function aesGcmOpen(
  key: KeyObject | Uint8Array,
  nonce: Uint8Array,
  aad: Uint8Array,
  sealed: Uint8Array,
): Uint8Array | undefined {
  if (sealed.length < TAG_BYTES) return undefined;
  const d = createDecipheriv('aes-256-gcm', key, nonce, { authTagLength: TAG_BYTES });
  d.setAAD(aad);
  d.setAuthTag(sealed.subarray(sealed.length - TAG_BYTES));
  const head = d.update(sealed.subarray(0, sealed.length - TAG_BYTES));
  try {
    return concatBytes(head, d.final());
  } catch {
    return undefined;
  }
}
