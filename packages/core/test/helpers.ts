/**
 * Test kit: P-256 keys and evidence made with node:crypto (tests may use Node; src may not).
 */
import type { KeyObject } from 'node:crypto';
import { generateKeyPairSync, sign } from 'node:crypto';
import { CborTag, encodeCbor } from '../src/cbor.js';
import { ES256_PROTECTED, sign1ToBeSigned } from '../src/cose.js';
import type { EvidenceClaims } from '../src/evidence.js';
import { computeMeasurement, computeReportData } from '../src/evidence.js';
import { sha256 } from '../src/hash.js';

export interface TestKey {
  readonly privateKey: KeyObject;
  /** 65-byte uncompressed SEC1 point. */
  readonly publicKey: Uint8Array;
}

export function newKey(): TestKey {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const jwk = publicKey.export({ format: 'jwk' });
  const raw = new Uint8Array(65);
  raw[0] = 0x04;
  raw.set(Buffer.from(jwk.x as string, 'base64url'), 1);
  raw.set(Buffer.from(jwk.y as string, 'base64url'), 33);
  return { privateKey, publicKey: raw };
}

/** ES256: ECDSA P-256 SHA-256, IEEE P1363 r ‖ s. */
export function signEs256(key: TestKey, data: Uint8Array): Uint8Array {
  return new Uint8Array(sign('sha256', data, { key: key.privateKey, dsaEncoding: 'ieee-p1363' }));
}

/** A payload map from claims, any values (so tests can build what the encoder would refuse). */
export function payloadMap(claims: Record<string, unknown>): Map<string, unknown> {
  return new Map(Object.entries(claims));
}

/** Signs `payload` (bytes) as a COSE_Sign1 with `key`: the evidence envelope. */
export function signEnvelope(payload: Uint8Array, key: TestKey, protectedBytes = ES256_PROTECTED) {
  const signature = signEs256(key, sign1ToBeSigned(protectedBytes, payload));
  return envelope(payload, signature, protectedBytes);
}

/** A COSE_Sign1 from parts, without checks (so tests can build malformed envelopes). */
export function envelope(
  payload: Uint8Array,
  signature: Uint8Array,
  protectedBytes: Uint8Array = ES256_PROTECTED,
  unprotected: Map<unknown, unknown> = new Map(),
): Uint8Array {
  return encodeCbor(new CborTag(18, [protectedBytes, unprotected, payload, signature]));
}

/** A consistent simulation scenario: keys, nonce, claims and the constraint they satisfy. */
export interface Scenario {
  readonly platformKey: TestKey;
  readonly identityPublicKey: Uint8Array;
  readonly nonce: Uint8Array;
  readonly claims: EvidenceClaims;
  readonly evidence: Uint8Array;
  /** Every clause kind, all satisfied: C, S, PROD, SVN, SEC:INSECURE, SIM. */
  readonly fullConstraint: string;
  /** Same as fullConstraint without SEC:INSECURE and SIM: (so simulation is refused). */
  readonly secureConstraint: string;
}

export function hex(b: Uint8Array): string {
  return Buffer.from(b).toString('hex');
}

export function scenario(platformKey: TestKey = newKey()): Scenario {
  const identityPublicKey = newKey().publicKey;
  const signerKey = newKey().publicKey;
  const nonce = new Uint8Array(32).map((_, i) => i * 7);
  const bundleHash = sha256(new TextEncoder().encode('bundle bytes'));
  const product = 7;
  const svn = 3;
  const claims: EvidenceClaims = {
    v: 1,
    platform: 'simulation',
    measurement: computeMeasurement(bundleHash, product, svn),
    signer: sha256(signerKey),
    product,
    svn,
    reportData: computeReportData(identityPublicKey, nonce),
    platformKey: platformKey.publicKey,
  };
  const evidence = signEnvelope(encodeCbor(payloadMap({ ...claims })), platformKey);
  const code = `C:${hex(claims.measurement)} S:${hex(claims.signer)} PROD:${product} SVN:${svn}`;
  return {
    platformKey,
    identityPublicKey,
    nonce,
    claims,
    evidence,
    fullConstraint: `${code} SEC:INSECURE SIM:${hex(sha256(platformKey.publicKey))}`,
    secureConstraint: code,
  };
}

/** Copy of `b` with byte `i` XORed with `mask` (default 1). */
export function flip(b: Uint8Array, i: number, mask = 1): Uint8Array {
  const out = b.slice();
  out[i] = (out[i] as number) ^ mask;
  return out;
}
