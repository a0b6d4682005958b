/**
 * P-256 public keys in their 65-byte uncompressed SEC1 form (what the formats carry) and as
 * node:crypto KeyObjects (what `sign`/`verify` take): one conversion each way, for the enclave
 * and Node clients.
 */
import { createPrivateKey, createPublicKey, type KeyObject } from 'node:crypto';
import { concatBytes, InvalidInputError } from '@cloister/core';

/** DER prefix of a P-256 SubjectPublicKeyInfo holding an uncompressed point (RFC 5480 §2.2). */
const P256_SPKI_PREFIX = Uint8Array.from([
  0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x08, 0x2a,
  0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00,
]);

/** 65-byte uncompressed SEC1 encoding of a P-256 key's public half. */
export function rawPublicKey(key: KeyObject): Uint8Array {
  const spki = createPublicKey(key).export({ type: 'spki', format: 'der' });
  // A P-256 SPKI ends with the 65-byte uncompressed point (RFC 5480 §2.2).
  return new Uint8Array(spki.subarray(spki.length - 65));
}

/**
 * The public KeyObject of a 65-byte uncompressed P-256 point. Throws InvalidInputError when the
 * bytes are not that form, and node:crypto's error when the point is not on the curve.
 */
export function publicKeyFromRaw(raw: Uint8Array): KeyObject {
  if (!(raw instanceof Uint8Array) || raw.length !== 65 || raw[0] !== 0x04) {
    throw new InvalidInputError('a P-256 public key must be 65 bytes (uncompressed point)');
  }
  return createPublicKey({
    key: Buffer.from(concatBytes(P256_SPKI_PREFIX, raw)),
    format: 'der',
    type: 'spki',
  });
}

/**
 * The private KeyObject of PKCS#8 DER bytes, read in place: no copy of the key is left behind
 * (`Buffer.from(bytes)` copies small inputs into Node's shared pool, where the caller's wipe of
 * `der` never reaches). Throws node:crypto's error when the bytes are not a private key.
 */
export function privateKeyFromPkcs8(der: Uint8Array): KeyObject {
  return createPrivateKey({
    key: Buffer.from(der.buffer, der.byteOffset, der.byteLength),
    format: 'der',
    type: 'pkcs8',
  });
}
