/**
 * SCP's primitives for the enclave, on node:crypto (docs/scp.md): ephemeral ECDH P-256, AES-256-GCM,
 * ECDSA-P256-SHA256 verification, and the node identity key as the server's signer. Every method
 * does its work synchronously and returns a settled promise: node:crypto's one-shot calls are
 * cheaper than a round trip through the event loop, which matters at one AEAD call per record.
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
  type ScpCrypto,
  ScpError,
  type ScpSigner,
  type SyncAeadKey,
} from '@cloister/core';
import { aesGcmOpen, aesGcmSeal } from '../aead.js';
import { publicKeyFromRaw } from '../p256.js';

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

/** An AES-256-GCM key (32 raw bytes, copied into a KeyObject). */
function syncAeadKey(raw32: Uint8Array): SyncAeadKey {
  if (!(raw32 instanceof Uint8Array) || raw32.length !== 32) {
    throw new ScpError('SCP_HANDSHAKE', 'an AEAD key is 32 bytes');
  }
  const key: KeyObject = createSecretKey(Buffer.from(raw32));
  return {
    seal: (iv, aad, pt) => aesGcmSeal(key, iv, aad, pt),
    open: (iv, aad, ct) => {
      const pt = aesGcmOpen(key, iv, aad, ct);
      if (pt === undefined)
        throw new ScpError('SCP_RECORD', 'the ciphertext does not authenticate');
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

/** ScpCrypto over node:crypto, for the enclave's server side. */
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
  // Sessions then seal and open records synchronously: no promise per record.
  aeadKeySync: syncAeadKey,
  verify: (publicKey65: Uint8Array, data: Uint8Array, sig64: Uint8Array) =>
    settle(() => {
      if (!(sig64 instanceof Uint8Array) || sig64.length !== 64) return false;
      try {
        const key = publicKeyFromRaw(publicKey65);
        return verify('sha256', data, { key, dsaEncoding: 'ieee-p1363' }, sig64);
      } catch {
        return false;
      }
    }),
  random: (n: number) => new Uint8Array(randomBytes(n)),
});

/** The node identity key as SCP's server signer: ECDSA-P256-SHA256, raw r‖s. */
export function nodeScpSigner(privateKey: KeyObject, publicKey: Uint8Array): ScpSigner {
  return {
    publicKey,
    sign: (data) =>
      settle(() => bytes(sign('sha256', data, { key: privateKey, dsaEncoding: 'ieee-p1363' }))),
  };
}
