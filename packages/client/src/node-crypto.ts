/**
 * SCP's primitives for the client on Node, over node:crypto (docs/scp.md): ephemeral ECDH P-256,
 * AES-256-GCM, ECDSA-P256-SHA256 verification. The "./node" entry uses it in place of WebCrypto:
 * each `crypto.subtle` call is a thread-pool job with its own promise and WebIDL conversions,
 * which cost more than the AES-GCM itself at one seal and one open per call (docs/performance.md
 * "The SCP benchmark"). node:crypto's one-shot calls run synchronously and return a settled
 * promise. The "." and "./browser" entries keep WebCrypto (no Node built-in there).
 */
import {
  createCipheriv,
  createDecipheriv,
  createECDH,
  createPublicKey,
  createSecretKey,
  type KeyObject,
  randomBytes,
  verify,
} from 'node:crypto';
import {
  type AeadKey,
  InvalidInputError,
  type ScpCrypto,
  ScpError,
  type SyncAeadKey,
} from '@cloister/core';

const TAG_BYTES = 16;
const P256_POINT = 65;
/** DER prefix of a P-256 SubjectPublicKeyInfo holding an uncompressed point (RFC 5480 §2.2). */
const P256_SPKI_PREFIX = Buffer.from('3059301306072a8648ce3d020106082a8648ce3d030107034200', 'hex');

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

/** The ciphertext ‖ tag in one fresh buffer (the update output is usually the whole body). */
function join(head: Buffer, tail: Buffer, tag: Buffer): Uint8Array {
  const out = new Uint8Array(head.length + tail.length + tag.length);
  out.set(head, 0);
  out.set(tail, head.length);
  out.set(tag, head.length + tail.length);
  return out;
}

/** An AES-256-GCM key: 32 raw bytes copied into a KeyObject once, used for every record. */
function syncAeadKey(raw32: Uint8Array): SyncAeadKey {
  if (!(raw32 instanceof Uint8Array) || raw32.length !== 32) {
    throw new InvalidInputError('an AES-256-GCM key is 32 bytes');
  }
  const key: KeyObject = createSecretKey(Buffer.from(raw32));
  return {
    seal: (iv, aad, pt) => {
      const c = createCipheriv('aes-256-gcm', key, iv, { authTagLength: TAG_BYTES });
      c.setAAD(aad);
      const head = c.update(pt);
      return join(head, c.final(), c.getAuthTag());
    },
    open: (iv, aad, ct) => {
      if (ct.length < TAG_BYTES) {
        throw new ScpError('SCP_RECORD', 'the ciphertext is shorter than its tag');
      }
      const d = createDecipheriv('aes-256-gcm', key, iv, { authTagLength: TAG_BYTES });
      d.setAAD(aad);
      d.setAuthTag(ct.subarray(ct.length - TAG_BYTES));
      const head = d.update(ct.subarray(0, ct.length - TAG_BYTES));
      let tail: Buffer;
      try {
        tail = d.final();
      } catch {
        throw new ScpError('SCP_RECORD', 'the ciphertext does not authenticate');
      }
      // `head` is a fresh buffer of its own; a copy only when final() returned bytes.
      return tail.length === 0 ? bytes(head) : join(head, tail, Buffer.alloc(0));
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

/** ScpCrypto over node:crypto, for clients running on Node (the "./node" entry's default). */
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
      if (!(publicKey65 instanceof Uint8Array) || publicKey65.length !== P256_POINT) return false;
      if (publicKey65[0] !== 4) return false;
      try {
        const key = createPublicKey({
          key: Buffer.concat([P256_SPKI_PREFIX, publicKey65]),
          format: 'der',
          type: 'spki',
        });
        return verify('sha256', data, { key, dsaEncoding: 'ieee-p1363' }, sig64);
      } catch {
        return false; // not a P-256 point: a bad key never verifies
      }
    }),
  random: (n: number) => new Uint8Array(randomBytes(n)),
});
