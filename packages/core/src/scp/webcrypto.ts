/**
 * ScpCrypto and ScpSigner over WebCrypto (globalThis.crypto.subtle: Node 20+ and browsers in
 * secure contexts). Ephemeral private keys are non-extractable; AES keys are imported once per key.
 */
import { bufferSource as buf, subtle, verifyEs256 } from '../cose.js';
import { InvalidInputError } from '../errors.js';
import type { AeadKey, ScpCrypto, ScpSigner } from './types.js';

const ECDH = { name: 'ECDH', namedCurve: 'P-256' } as const;

async function aeadKey(raw32: Uint8Array): Promise<AeadKey> {
  if (!(raw32 instanceof Uint8Array) || raw32.length !== 32) {
    throw new InvalidInputError('an AES-256-GCM key is 32 bytes');
  }
  const key = await subtle().importKey('raw', buf(raw32), 'AES-GCM', false, ['encrypt', 'decrypt']);
  const params = (iv: Uint8Array, aad: Uint8Array): AesGcmParams => ({
    name: 'AES-GCM',
    iv: buf(iv),
    additionalData: buf(aad),
    tagLength: 128,
  });
  return {
    seal: async (iv, aad, pt) =>
      new Uint8Array(await subtle().encrypt(params(iv, aad), key, buf(pt))),
    open: async (iv, aad, ct) =>
      new Uint8Array(await subtle().decrypt(params(iv, aad), key, buf(ct))),
  };
}

export const webCryptoScp: ScpCrypto = Object.freeze({
  async ephemeral() {
    const pair = (await subtle().generateKey(ECDH, false, ['deriveBits'])) as CryptoKeyPair;
    const publicKey = new Uint8Array(await subtle().exportKey('raw', pair.publicKey));
    return {
      publicKey,
      async deriveShared(peer: Uint8Array): Promise<Uint8Array> {
        const pub = await subtle().importKey('raw', buf(peer), ECDH, false, []);
        return new Uint8Array(
          await subtle().deriveBits({ name: 'ECDH', public: pub }, pair.privateKey, 256),
        );
      },
    };
  },
  aeadKey,
  async verify(publicKey65: Uint8Array, data: Uint8Array, sig64: Uint8Array): Promise<boolean> {
    try {
      return await verifyEs256(publicKey65, data, sig64);
    } catch {
      return false; // not a P-256 point: a bad key never verifies
    }
  },
  random(n: number): Uint8Array {
    return globalThis.crypto.getRandomValues(new Uint8Array(n));
  },
});

/** An ScpSigner over a WebCrypto ECDSA P-256 key pair (the private key may be non-extractable). */
export function webCryptoSigner(pair: CryptoKeyPair, publicKey65: Uint8Array): ScpSigner {
  if (!(publicKey65 instanceof Uint8Array) || publicKey65.length !== 65 || publicKey65[0] !== 4) {
    throw new InvalidInputError('publicKey65 must be the 65-byte uncompressed P-256 public key');
  }
  const publicKey = publicKey65.slice();
  return Object.freeze({
    publicKey,
    async sign(data: Uint8Array): Promise<Uint8Array> {
      return new Uint8Array(
        await subtle().sign({ name: 'ECDSA', hash: 'SHA-256' }, pair.privateKey, buf(data)),
      );
    },
  });
}
