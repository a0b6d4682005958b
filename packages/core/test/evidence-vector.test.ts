/**
 * The fixed example of docs/evidence.md §6, read from the document itself: if the document or the
 * code changes alone, this fails.
 */
import assert from 'node:assert/strict';
import { createPublicKey, verify } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { p256 } from '@noble/curves/nist.js';
import { InsecurePlatformError } from '../src/attestation-errors.js';
import { fromHex, toHex, utf8 } from '../src/bytes.js';
import { decodeSign1, ES256_PROTECTED, encodeSign1, sign1ToBeSigned } from '../src/cose.js';
import type { EvidenceClaims } from '../src/evidence.js';
import {
  computeMeasurement,
  computeReportData,
  decodeEvidencePayload,
  encodeEvidencePayload,
} from '../src/evidence.js';
import { sha256 } from '../src/hash.js';
import { verifyEvidence } from '../src/verify.js';

const DOC = readFileSync(new URL('../../../docs/evidence.md', import.meta.url), 'utf8');

/** The hex blocks marked `<!-- vector:NAME -->` in the document. */
function vectors(): Map<string, string> {
  const out = new Map<string, string>();
  for (const m of DOC.matchAll(/<!-- vector:(\w+) -->\s*```\n([\s\S]*?)```/g)) {
    out.set(m[1] as string, (m[2] as string).replace(/\s+/g, ''));
  }
  return out;
}

const V = vectors();
const vec = (name: string): string => {
  const v = V.get(name);
  assert.ok(v !== undefined, `docs/evidence.md has no vector ${name}`);
  return v;
};

const platformD = fromHex(vec('platformPrivateKey'));
const identityD = sha256(utf8('cloister example identity key'));
const signerD = sha256(utf8('cloister example signer key'));
const identityKey = p256.getPublicKey(identityD, false);
const nonce = Uint8Array.from({ length: 32 }, (_, i) => i);

const claims: EvidenceClaims = {
  v: 1,
  platform: 'simulation',
  measurement: computeMeasurement(sha256(utf8('cloister example bundle')), 1, 2),
  signer: sha256(p256.getPublicKey(signerD, false)),
  product: 1,
  svn: 2,
  reportData: computeReportData(identityKey, nonce),
  platformKey: p256.getPublicKey(platformD, false),
};

test('the document lists every vector', () => {
  assert.deepEqual([...V.keys()].sort(), [
    'evidence',
    'identityKey',
    'measurement',
    'payload',
    'platformKey',
    'platformPrivateKey',
    'reportData',
    'sigStructure',
    'signature',
    'signer',
    'signerKey',
  ]);
});

test('keys (the platform key is RFC 6979 §A.2.5: Ux = 60FED4BA..., Uy = 7903FE10...)', () => {
  assert.equal(toHex(claims.platformKey), vec('platformKey'));
  assert.ok(vec('platformKey').startsWith('0460fed4ba255a9d31c961eb74c6356d68c049b8923b61fa6c'));
  assert.equal(toHex(identityKey), vec('identityKey'));
  assert.equal(toHex(p256.getPublicKey(signerD, false)), vec('signerKey'));
});

test('derived values: measurement, signer, reportData', () => {
  assert.equal(toHex(claims.measurement), vec('measurement'));
  assert.equal(toHex(claims.signer), vec('signer'));
  assert.equal(toHex(claims.reportData), vec('reportData'));
});

test('payload bytes and Sig_structure bytes', () => {
  const payload = encodeEvidencePayload(claims);
  assert.equal(toHex(payload), vec('payload'));
  assert.deepEqual(decodeEvidencePayload(payload), claims);
  assert.equal(toHex(sign1ToBeSigned(ES256_PROTECTED, payload)), vec('sigStructure'));
});

test('signature: RFC 6979 deterministic, and node:crypto agrees it verifies', () => {
  const tbs = fromHex(vec('sigStructure'));
  assert.equal(toHex(p256.sign(tbs, platformD)), vec('signature'));
  const jwk = {
    kty: 'EC',
    crv: 'P-256',
    x: Buffer.from(claims.platformKey.subarray(1, 33)).toString('base64url'),
    y: Buffer.from(claims.platformKey.subarray(33)).toString('base64url'),
  };
  const key = createPublicKey({ key: jwk, format: 'jwk' });
  const sig = fromHex(vec('signature'));
  assert.ok(verify('sha256', tbs, { key, dsaEncoding: 'ieee-p1363' }, sig));
});

test('evidence bytes, and verifyEvidence accepts them as documented', async () => {
  const evidence = fromHex(vec('evidence'));
  const payload = fromHex(vec('payload'));
  const signature = fromHex(vec('signature'));
  assert.equal(
    toHex(encodeSign1({ protectedBytes: ES256_PROTECTED, payload, signature })),
    vec('evidence'),
  );
  assert.equal(vec('evidence').slice(0, 14), 'd28443a10126a0');
  assert.deepEqual(decodeSign1(evidence).payload, payload);

  const simHash = toHex(sha256(claims.platformKey));
  const constraint = `C:${vec('measurement')} SEC:INSECURE SIM:${simHash}`;
  assert.ok(DOC.includes(constraint), 'the document states this constraint');
  const v = await verifyEvidence(evidence, { nonce, identityPublicKey: identityKey, constraint });
  assert.equal(v.platform, 'simulation');
  assert.equal(v.secure, false);
  assert.equal(v.rootOfTrust, `simulation:${simHash}`);
  assert.equal(v.product, 1);
  assert.equal(v.svn, 2);
  await assert.rejects(
    verifyEvidence(evidence, {
      nonce,
      identityPublicKey: identityKey,
      constraint: `C:${vec('measurement')}`,
    }),
    InsecurePlatformError,
  );
});
