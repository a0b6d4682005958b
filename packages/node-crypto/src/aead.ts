/**
 * AES-256-GCM (NIST SP 800-38D) through node:crypto, for everything the enclave encrypts (sealed
 * blobs, ledger records, log write sets, SCP records) and for SCP records on Node clients.
 * Callers choose the 96-bit nonce (random per message, or SCP's per-direction sequence) and the
 * additional data that binds the ciphertext to its context.
 */
import { createCipheriv, createDecipheriv, type KeyObject } from 'node:crypto';

/** Length of the authentication tag appended to every ciphertext. */
export const AEAD_TAG_BYTES = 16;
const TAG_BYTES = AEAD_TAG_BYTES;

/**
 * `prefix` ‖ `head` ‖ `tail` ‖ `tag` in one fresh buffer (GCM's update output is usually the
 * whole body, its final output empty).
 */
function join(prefix: Uint8Array, head: Uint8Array, tail: Uint8Array, tag: Uint8Array): Uint8Array {
  const out = new Uint8Array(prefix.length + head.length + tail.length + tag.length);
  out.set(prefix, 0);
  out.set(head, prefix.length);
  out.set(tail, prefix.length + head.length);
  out.set(tag, prefix.length + head.length + tail.length);
  return out;
}

const NOTHING = new Uint8Array(0);

/**
 * AES-256-GCM encryption: ciphertext ‖ 16-byte tag; with `prefix`, prefix ‖ ciphertext ‖ tag in
 * the one buffer (an SCP record is its type byte then the sealed bytes: no second copy).
 */
export function aesGcmSeal(
  key: KeyObject | Uint8Array,
  nonce: Uint8Array,
  aad: Uint8Array,
  plaintext: Uint8Array,
  prefix: Uint8Array = NOTHING,
): Uint8Array {
  const c = createCipheriv('aes-256-gcm', key, nonce, { authTagLength: TAG_BYTES });
  c.setAAD(aad);
  const head = c.update(plaintext);
  return join(prefix, head, c.final(), c.getAuthTag());
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
  let tail: Buffer;
  try {
    tail = d.final();
  } catch {
    return undefined;
  }
  // `head` is a fresh buffer of its own (not pooled: update allocates it); copy only when final()
  // returned bytes, which GCM does not.
  if (tail.length === 0) return new Uint8Array(head.buffer, head.byteOffset, head.length);
  return join(NOTHING, head, tail, NOTHING);
}
