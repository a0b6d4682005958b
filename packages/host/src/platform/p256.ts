/**
 * P-256 helpers on node:crypto, in the formats of the contract: public keys as 65-byte
 * uncompressed SEC1 points (0x04 ‖ X ‖ Y), signatures as 64-byte IEEE P1363 r ‖ s over SHA-256
 * (ES256, RFC 9053 §2.1). Synchronous, because the platform API is.
 */
import {
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  type KeyObject,
  sign,
  verify,
} from 'node:crypto';
import { concatBytes, EncodingError, InvalidInputError, pemProblem } from '@cloister/core';

/** Generates a fresh P-256 private key. */
export function generateP256(): KeyObject {
  return generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;
}

/** PKCS#8 PEM text of a private key (what key files hold). */
export function privateKeyToPem(key: KeyObject): string {
  return key.export({ type: 'pkcs8', format: 'pem' }).toString();
}

/**
 * Parses a PKCS#8 PEM P-256 private key. Throws InvalidInputError naming `what` when the text
 * is not a PEM private key or the key is not on P-256.
 */
/**
 * The P-256 private key in `pem`; InvalidInputError "`what` is not …: `fix`" otherwise, saying what
 * the file holds instead (nothing, a public key, something else) rather than OpenSSL's decoder
 * error.
 */
export function privateKeyFromPem(pem: string, what: string, fix?: string): KeyObject {
  const then = fix === undefined ? '' : `: ${fix}`;
  let key: KeyObject;
  try {
    key = createPrivateKey({ key: pem, format: 'pem' });
  } catch {
    throw new InvalidInputError(`${what} is not a PEM private key (${pemProblem(pem)})${then}`);
  }
  if (key.asymmetricKeyType !== 'ec' || key.asymmetricKeyDetails?.namedCurve !== 'prime256v1') {
    throw new InvalidInputError(`${what} is not a P-256 (prime256v1) EC key${then}`);
  }
  return key;
}

/** The 65-byte uncompressed SEC1 public key of a P-256 private or public key. */
export function publicKeyBytes(key: KeyObject): Uint8Array {
  const jwk = createPublicKey(key).export({ format: 'jwk' });
  if (jwk.crv !== 'P-256' || typeof jwk.x !== 'string' || typeof jwk.y !== 'string') {
    throw new InvalidInputError('the key is not a P-256 key');
  }
  const x = fromBase64Url(jwk.x);
  const y = fromBase64Url(jwk.y);
  return concatBytes(new Uint8Array([4]), x, y);
}

/**
 * A verification key from a 65-byte uncompressed SEC1 point. Throws EncodingError when the bytes
 * are not a point on P-256 (node:crypto checks the curve equation).
 */
export function publicKeyFromBytes(point: Uint8Array): KeyObject {
  if (point.length !== 65 || point[0] !== 4) {
    throw new EncodingError('a P-256 public key must be 65 bytes: 0x04 ‖ X ‖ Y');
  }
  const x = Buffer.from(point.subarray(1, 33)).toString('base64url');
  const y = Buffer.from(point.subarray(33, 65)).toString('base64url');
  try {
    return createPublicKey({ key: { kty: 'EC', crv: 'P-256', x, y }, format: 'jwk' });
  } catch {
    throw new EncodingError('the 65 bytes are not a point on P-256');
  }
}

/** ES256 signature (64 bytes, r ‖ s) of `data` with a P-256 private key. */
export function signEs256(key: KeyObject, data: Uint8Array): Uint8Array {
  return new Uint8Array(sign('sha256', data, { key, dsaEncoding: 'ieee-p1363' }));
}

/**
 * The same signature, computed on libuv's thread pool (node:crypto's callback form), so that
 * signing does not hold the host's event loop, which relays every boundary message.
 */
export function signEs256Async(key: KeyObject, data: Uint8Array): Promise<Uint8Array> {
  return new Promise((resolve, reject) => {
    sign('sha256', data, { key, dsaEncoding: 'ieee-p1363' }, (err, signature) => {
      if (err) reject(err);
      else resolve(new Uint8Array(signature));
    });
  });
}

/** Verifies an ES256 signature (64 bytes, r ‖ s); false on any mismatch. */
export function verifyEs256Sync(key: KeyObject, data: Uint8Array, signature: Uint8Array): boolean {
  if (signature.length !== 64) return false;
  return verify('sha256', data, { key, dsaEncoding: 'ieee-p1363' }, signature);
}

function fromBase64Url(s: string): Uint8Array {
  const out = new Uint8Array(Buffer.from(s, 'base64url'));
  if (out.length !== 32) throw new EncodingError('a P-256 coordinate must be 32 bytes');
  return out;
}
