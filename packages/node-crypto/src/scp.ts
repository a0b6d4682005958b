/**
 * SCP's primitives on node:crypto (docs/scp.md): ephemeral ECDH P-256, AES-256-GCM, ECDSA-P256-SHA256
 * verification, and a node:crypto private key as the server's signer. One implementation for the
 * enclave's server and the client SDK's "./node" entry (the "." and "./browser" entries keep
 * WebCrypto: no Node built-in there).
 *
 * Every method does its work synchronously and returns a settled promise: each `crypto.subtle`
 * call is a thread-pool job with its own promise and WebIDL conversions, which cost more than the
 * AES-GCM itself at one seal and one open per record (docs/performance.md "The SCP benchmark").
 * `aeadKeySync` lets sessions seal and open records with no promise at all.
 */
import {
  createECDH,
  createSecretKey,
  type KeyObject,
  randomBytes,
  sign,
  verify,
} from 'node:crypto';
import {
  type AeadKey,
  InvalidInputError,
  type ScpCrypto,
  ScpError,
  type ScpSigner,
  type SyncAeadKey,
} from '@cloister/core';
import { AEAD_TAG_BYTES, aesGcmOpen, aesGcmSeal } from './aead.js';
import { publicKeyFromRaw } from './p256.js';

const P256_POINT = 65;

function settle<T>(f: () => T): Promise<T> {
  try {
    return Promise.resolve(f());
  } catch (e) {
    return Promise.reject(e);
  }
}

function bytes(b: Buffer): Uint8Array {
  return new Uint8Array(b.buffer, b.byteOffset, b.length);
}

/** An AES-256-GCM key: 32 raw bytes copied into a KeyObject once, used for every record. */
function syncAeadKey(raw32: Uint8Array): SyncAeadKey {
  if (!(raw32 instanceof Uint8Array) || raw32.length !== 32) {
    throw new InvalidInputError('an AES-256-GCM key is 32 bytes');
  }
  const key: KeyObject = createSecretKey(raw32);
  return {
    seal: (iv, aad, pt) => aesGcmSeal(key, iv, aad, pt),
    sealPrefixed: (prefix, iv, aad, pt) => aesGcmSeal(key, iv, aad, pt, prefix),
    open: (iv, aad, ct) => {
      const pt = aesGcmOpen(key, iv, aad, ct);
      if (pt === undefined) {
        throw new ScpError(
          'SCP_RECORD',
          ct.length < AEAD_TAG_BYTES
            ? 'the ciphertext is shorter than its tag'
            : 'the ciphertext does not authenticate',
        );
      }
      return pt;
    },
  };
}

function aeadKey(raw32: Uint8Array): AeadKey {
  const k = syncAeadKey(raw32);
  return {
    seal: (iv, aad, pt) => settle(() => k.seal(iv, aad, pt)),
    open: (iv, aad, ct) => settle(() => k.open(iv, aad, ct)),
  };
}

/** ScpCrypto over node:crypto: the enclave's server side and the client's "./node" entry. */
export const nodeScpCrypto: ScpCrypto = Object.freeze({
  ephemeral: () =>
    settle(() => {
      const ecdh = createECDH('prime256v1');
      const publicKey = bytes(ecdh.generateKeys());
      let used = false;
      return {
        publicKey,
        deriveShared: (peer: Uint8Array) =>
          settle(() => {
            if (used) throw new ScpError('SCP_HANDSHAKE', 'an ephemeral key is used once');
            used = true;
            if (!(peer instanceof Uint8Array) || peer.length !== P256_POINT || peer[0] !== 4) {
              throw new ScpError('SCP_HANDSHAKE', 'the peer key is not a 65-byte P-256 point');
            }
            try {
              // x-coordinate of the shared point (SEC 1 §3.3.1); throws for a point off the curve.
              return bytes(ecdh.computeSecret(peer));
            } catch {
              throw new ScpError('SCP_HANDSHAKE', 'the peer key is not a valid P-256 point');
            }
          }),
      };
    }),
  aeadKey: (raw32: Uint8Array) => settle(() => aeadKey(raw32)),
  aeadKeySync: syncAeadKey,
  verify: (publicKey65: Uint8Array, data: Uint8Array, sig64: Uint8Array) =>
    settle(() => {
      if (!(sig64 instanceof Uint8Array) || sig64.length !== 64) return false;
      try {
        const key = publicKeyFromRaw(publicKey65);
        return verify('sha256', data, { key, dsaEncoding: 'ieee-p1363' }, sig64);
      } catch {
        return false; // not a 65-byte P-256 point: a bad key never verifies
      }
    }),
  random: (n: number) => new Uint8Array(randomBytes(n)),
});

/** A P-256 private key as SCP's server signer (the enclave's node identity key): raw r‖s. */
export function nodeScpSigner(privateKey: KeyObject, publicKey: Uint8Array): ScpSigner {
  return {
    publicKey,
    sign: (data) =>
      settle(() => bytes(sign('sha256', data, { key: privateKey, dsaEncoding: 'ieee-p1363' }))),
  };
}
