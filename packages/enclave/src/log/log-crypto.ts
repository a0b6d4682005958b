/**
 * The node:crypto primitives of the logchain: SHA-256 for the chain and the tree, ES256 signing
 * and verification under the service key, the COSE_Sign1 of signature entries, and the check of a
 * stored signature entry against the log (`signatureProblem`). Byte formats are core's
 * (docs/receipts.md); only the implementation is the enclave's, for speed.
 */
import { type KeyObject, hash as nodeHash, sign, verify } from 'node:crypto';
import {
  bytesEqual,
  decodeMinimalSign1,
  decodeSignaturePayload,
  ES256_PROTECTED,
  encodeSign1,
  InvalidInputError,
  type LogEntry,
  type Sha256,
  sign1ToBeSigned,
} from '@cloister/core';
import { publicKeyFromRaw } from '@cloister/node-crypto';

/**
 * SHA-256 by node:crypto (one call into OpenSSL, 10-40x faster than core's portable default on
 * the short inputs of the log), as a plain Uint8Array; the same bytes as core's. The digest comes
 * back as a 'binary' (latin1) string and is copied: half the cost of a 'buffer' digest, whose
 * every result is a separately allocated ArrayBuffer (and garbage to collect). `into` writes it
 * straight where the caller wants it (the tree's levels, the leaf input).
 */
export const sha256: Sha256 = Object.assign(
  (data: Uint8Array): Uint8Array => {
    const out = new Uint8Array(32);
    sha256Into(data, out, 0);
    return out;
  },
  { into: sha256Into },
);

function sha256Into(data: Uint8Array, out: Uint8Array, at: number): void {
  const s = nodeHash('sha256', data, 'binary');
  for (let i = 0; i < 32; i++) out[at + i] = s.charCodeAt(i);
}

/** A node:crypto public KeyObject of a 65-byte SEC1 (uncompressed P-256) public key. */
export function rawPublicKeyObject(pub: Uint8Array): KeyObject {
  if (pub.length !== 65 || pub[0] !== 0x04) {
    throw new InvalidInputError('a service public key must be 65 bytes (uncompressed P-256)');
  }
  return publicKeyFromRaw(pub);
}

function es256Sign(key: KeyObject, data: Uint8Array): Uint8Array {
  return new Uint8Array(sign('sha256', data, { key, dsaEncoding: 'ieee-p1363' }));
}

function es256Verify(key: KeyObject, data: Uint8Array, signature: Uint8Array): boolean {
  if (signature.length !== 64) return false;
  try {
    return verify('sha256', data, { key, dsaEncoding: 'ieee-p1363' }, signature);
  } catch {
    return false;
  }
}

/** A COSE_Sign1 (ES256, minimal protected header) over `payload` by `key`. */
export function signCose(key: KeyObject, payload: Uint8Array): Uint8Array {
  const signature = es256Sign(key, sign1ToBeSigned(ES256_PROTECTED, payload));
  return encodeSign1({ protectedBytes: ES256_PROTECTED, payload, signature });
}

/**
 * Why signature entry `e` (index s) is not a valid signature of this log under `servicePub`, or
 * undefined. `treeRoot(n)` is the log's root at size n; `stateHash` the ledger's at index s - 1.
 */
export function signatureProblem(
  servicePub: KeyObject,
  e: LogEntry,
  stateHash: Uint8Array,
  treeRoot: (n: number) => Uint8Array,
): string | undefined {
  let payloadBytes: Uint8Array;
  let sig: ReturnType<typeof decodeMinimalSign1>;
  try {
    sig = decodeMinimalSign1(e.sig);
    payloadBytes = sig.payload;
  } catch (err) {
    return `its signature is not the COSE_Sign1 this service writes (${(err as Error).message})`;
  }
  if (!es256Verify(servicePub, sign1ToBeSigned(sig.protectedBytes, payloadBytes), sig.signature)) {
    return 'its signature does not verify with the service key';
  }
  let p: ReturnType<typeof decodeSignaturePayload>;
  try {
    p = decodeSignaturePayload(payloadBytes);
  } catch {
    return 'its payload is malformed';
  }
  if (p.term !== e.term || p.size !== e.index - 1) {
    return `it signs term ${p.term} size ${p.size}, not term ${e.term} size ${e.index - 1}`;
  }
  if (!bytesEqual(p.treeRoot, treeRoot(p.size))) {
    return `it signs a tree root that is not the log's at size ${p.size}`;
  }
  if (!bytesEqual(p.stateHash, stateHash)) {
    return `it signs a state hash that is not the ledger's at index ${p.size}`;
  }
  return undefined;
}
