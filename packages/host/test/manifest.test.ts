import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { chmodSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import {
  CborTag,
  decodeCbor,
  decodeSign1,
  ES256_PROTECTED,
  encodeCbor,
  encodeSign1,
  fromHex,
  isCloisterError,
  sha256,
  sign1ToBeSigned,
  toHex,
  utf8,
  verifyEs256,
} from '@cloister/core';
import {
  decodeManifest,
  encodeManifest,
  signManifest,
  verifyManifest,
} from '../src/build/manifest.js';
import { loadOrCreateSignerKey } from '../src/build/signer.js';
import {
  generateP256,
  ManifestError,
  openSimulationPlatform,
  privateKeyFromPem,
  publicKeyBytes,
  signEs256,
} from '../src/platform/index.js';

const root = mkdtempSync(join(tmpdir(), 'cloister-manifest-'));
after(() => rmSync(root, { recursive: true, force: true }));

const vector = JSON.parse(
  readFileSync(new URL('./fixtures/platform/manifest-v1.json', import.meta.url), 'utf8'),
) as Record<string, string | number>;
const hex = (k: string): Uint8Array => fromHex(vector[k] as string);
const manifestError = (e: unknown): boolean =>
  e instanceof ManifestError && isCloisterError(e, 'MANIFEST_INVALID');

describe('manifest v1 format (fixed vector, docs/platform.md)', () => {
  const claims = {
    v: 1 as const,
    bundle: hex('bundleHash'),
    product: vector.product as number,
    svn: vector.svn as number,
    signerKey: hex('signerKey'),
  };

  test('the payload is the deterministic CBOR map of the five fields', () => {
    assert.equal(toHex(encodeManifest(claims)), vector.payload);
    // Independently: a5 (map of 5), keys in RFC 8949 §4.2.1 order (shorter encodings first).
    const expected =
      'a5' +
      `6176${'01'}` +
      `6373766e${'02'}` +
      `6662756e646c65${'5820'}${vector.bundleHash}` +
      `6770726f64756374${'01'}` +
      `697369676e65724b6579${'5841'}${vector.signerKey}`;
    assert.equal(vector.payload, expected);
    assert.deepEqual(sha256(utf8(vector.bundle as string)), claims.bundle);
  });

  test('the checked-in manifest decodes, verifies, and gives the documented identity', async () => {
    const manifest = hex('manifest');
    const d = decodeManifest(manifest);
    assert.deepEqual(d.claims, claims);
    assert.equal(toHex(sign1ToBeSigned(d.protectedBytes, d.payload)), vector.toBeSigned);
    assert.equal(toHex(d.signature), vector.signature);
    // WebCrypto (core) agrees with node:crypto on the signature.
    assert.ok(await verifyEs256(claims.signerKey, hex('toBeSigned'), hex('signature')));
    const v = verifyManifest(manifest, utf8(vector.bundle as string));
    assert.equal(toHex(v.signer), vector.signer);
    assert.equal(toHex(v.signer), createHash('sha256').update(claims.signerKey).digest('hex'));
    const u32 = (x: number): Buffer =>
      Buffer.from([x >>> 24, (x >>> 16) & 255, (x >>> 8) & 255, x & 255]);
    const measurement = createHash('sha256')
      .update('cloister/v1/measurement')
      .update(claims.bundle)
      .update(u32(claims.product))
      .update(u32(claims.svn))
      .digest('hex');
    assert.equal(toHex(v.measurement), measurement);
    assert.equal(measurement, vector.measurement);
  });

  test('docs/platform.md states this vector', () => {
    const doc = readFileSync(new URL('../../../docs/platform.md', import.meta.url), 'utf8');
    const flat = doc.replace(/\s+/g, '');
    for (const k of ['manifest', 'bundleHash', 'signerKey', 'signer', 'measurement']) {
      assert.ok(flat.includes(vector[k] as string), `docs/platform.md gives the ${k}`);
    }
    assert.ok(doc.includes(`\`${(vector.bundle as string).trimEnd()}\\n\``), 'the bundle text');
  });

  test('signManifest with the vector key reproduces everything but the (random) signature', () => {
    const key = privateKeyFromPem(vector.signerKeyPem as string, 'vector key');
    assert.deepEqual(publicKeyBytes(key), claims.signerKey);
    const m = signManifest({ bundleHash: claims.bundle, product: 1, svn: 2 }, key);
    assert.equal(toHex(m.subarray(0, m.length - 64)), (vector.manifest as string).slice(0, -128));
    verifyManifest(m, utf8(vector.bundle as string));
  });
});

describe('manifest checks', () => {
  const key = generateP256();
  const bundle = utf8('module.exports = 1;');
  const good = signManifest({ bundleHash: sha256(bundle), product: 3, svn: 4 }, key);
  const parts = decodeSign1(good);
  const payloadMap = decodeCbor(parts.payload) as Map<string, unknown>;
  const withPayload = (edit: (m: Map<string, unknown>) => void): Uint8Array => {
    const m = new Map(payloadMap);
    edit(m);
    return encodeSign1({
      protectedBytes: ES256_PROTECTED,
      payload: encodeCbor(m),
      signature: parts.signature,
    });
  };
  const platform = openSimulationPlatform({ dir: join(root, 'platform') });
  after(() => platform.close());
  const refused = (manifest: Uint8Array, words: RegExp, b = bundle): void => {
    assert.throws(
      () => platform.admit(b, manifest),
      (e: unknown) => manifestError(e) && words.test((e as Error).message),
    );
  };

  test('a good manifest is admitted', () => {
    const id = platform.admit(bundle, good);
    assert.equal(id.svn, 4);
    assert.equal(id.product, 3);
  });

  test('one byte of the bundle changed is refused', () => {
    const b = new Uint8Array(bundle);
    b[3] = (b[3] ?? 0) ^ 0x20;
    refused(good, /not the one the manifest was signed for/, b);
    refused(good, /not the one/, bundle.subarray(1));
  });

  test('a manifest signed by another key but claiming this signerKey is refused', () => {
    const other = generateP256();
    const payload = parts.payload; // carries signerKey of `key`
    const signature = signEs256(other, sign1ToBeSigned(ES256_PROTECTED, payload));
    refused(
      encodeSign1({ protectedBytes: ES256_PROTECTED, payload, signature }),
      /signature does not verify/,
    );
  });

  test('each field altered is refused', () => {
    refused(
      withPayload((m) => m.set('v', 2)),
      /version is 2/,
    );
    refused(
      withPayload((m) => m.set('bundle', sha256(utf8('other')))),
      /signature/,
    );
    refused(
      withPayload((m) => m.set('product', 4)),
      /signature/,
    );
    refused(
      withPayload((m) => m.set('svn', 5)),
      /signature/,
    );
    refused(
      withPayload((m) => m.set('signerKey', publicKeyBytes(generateP256()))),
      /signature/,
    );
    const sig = new Uint8Array(parts.signature);
    sig[10] = (sig[10] ?? 0) ^ 1;
    refused(
      encodeSign1({ protectedBytes: ES256_PROTECTED, payload: parts.payload, signature: sig }),
      /signature/,
    );
  });

  test('malformed fields and extra or missing keys are refused', () => {
    refused(
      withPayload((m) => m.set('extra', 1)),
      /exactly the keys/,
    );
    refused(
      withPayload((m) => m.delete('svn')),
      /exactly the keys/,
    );
    refused(
      withPayload((m) => m.set('svn', 2 ** 32)),
      /svn/,
    );
    refused(
      withPayload((m) => m.set('product', -1)),
      /product/,
    );
    refused(
      withPayload((m) => m.set('bundle', new Uint8Array(31))),
      /bundle hash/,
    );
    refused(
      withPayload((m) => m.set('signerKey', new Uint8Array(65))),
      /signerKey must be a 65-byte uncompressed P-256 key/,
    );
    const notOnCurve = new Uint8Array(65).fill(1);
    notOnCurve[0] = 4;
    refused(
      withPayload((m) => m.set('signerKey', notOnCurve)),
      /not a P-256 public key/,
    );
  });

  test('envelope variations are refused', () => {
    const prot = encodeCbor(
      new Map<number, unknown>([
        [1, -7],
        [4, new Uint8Array([1])],
      ]),
    );
    refused(
      encodeSign1({ protectedBytes: prot, payload: parts.payload, signature: parts.signature }),
      /protected header/,
    );
    const unprot = encodeCbor(
      new CborTag(18, [
        ES256_PROTECTED,
        new Map([[4, new Uint8Array([1])]]),
        parts.payload,
        parts.signature,
      ]),
    );
    refused(unprot, /unprotected/);
    const untagged = encodeCbor([ES256_PROTECTED, new Map(), parts.payload, parts.signature]);
    refused(untagged, /not a COSE_Sign1/);
    const trailing = new Uint8Array(good.length + 1);
    trailing.set(good);
    refused(trailing, /not a COSE_Sign1/);
    refused(new Uint8Array(0), /not a COSE_Sign1/);
    // Payload keys out of deterministic order: same map, other bytes.
    const entry = (k: string): string =>
      toHex(encodeCbor(k)) + toHex(encodeCbor(payloadMap.get(k)));
    const unsorted = fromHex(
      `a5${['product', 'v', 'svn', 'bundle', 'signerKey'].map(entry).join('')}`,
    );
    assert.deepEqual(decodeCbor(parts.payload), payloadMap); // same map, other key order below
    refused(
      encodeSign1({
        protectedBytes: ES256_PROTECTED,
        payload: unsorted,
        signature: parts.signature,
      }),
      /not deterministic CBOR/,
    );
    refused(
      encodeSign1({
        protectedBytes: ES256_PROTECTED,
        payload: parts.payload.subarray(0, 5),
        signature: parts.signature,
      }),
      /payload/,
    );
  });

  test('encodeManifest refuses out-of-range claims', () => {
    const c = decodeManifest(good).claims;
    assert.throws(() => encodeManifest({ ...c, svn: -1 }), manifestError);
    assert.throws(() => encodeManifest({ ...c, bundle: new Uint8Array(33) }), manifestError);
  });
});

describe('signer key', () => {
  test('created on first use with mode 0600 in a new 0700 directory, then reused', () => {
    const path = join(root, 'home', '.cloister', 'signer.pem');
    const a = loadOrCreateSignerKey(path);
    assert.equal(a.created, true);
    assert.equal(statSync(path).mode & 0o777, 0o600);
    assert.equal(statSync(join(root, 'home', '.cloister')).mode & 0o777, 0o700);
    assert.equal(a.publicKey.length, 65);
    assert.deepEqual(a.signer, sha256(a.publicKey));
    const b = loadOrCreateSignerKey(path);
    assert.equal(b.created, false);
    assert.deepEqual(b.publicKey, a.publicKey);
  });

  test('a damaged key file is INVALID_INPUT naming the file, and is never overwritten', () => {
    const path = join(root, 'bad.pem');
    writeFileSync(path, 'not a key');
    assert.throws(
      () => loadOrCreateSignerKey(path),
      (e: unknown) => isCloisterError(e, 'INVALID_INPUT') && (e as Error).message.includes(path),
    );
    assert.equal(readFileSync(path, 'utf8'), 'not a key');
    assert.throws(
      () => loadOrCreateSignerKey(path),
      (e: unknown) =>
        /is not a PEM private key \(it holds no PEM block\): a P-256 PKCS#8 PEM key is expected; restore it from backup, or pass --signer-key/.test(
          (e as Error).message,
        ) && !/error:1E/.test((e as Error).message),
    );
  });

  test('a key file group or others can read is refused with the fix, like a client identity', () => {
    const path = join(root, 'open', 'signer.pem');
    const made = loadOrCreateSignerKey(path);
    chmodSync(path, 0o644);
    assert.throws(
      () => loadOrCreateSignerKey(path),
      (e: unknown) =>
        isCloisterError(e, 'INVALID_INPUT') &&
        /can be read by group or others \(mode 644\): a private key must be private; run `chmod 600 /.test(
          (e as Error).message,
        ),
    );
    chmodSync(path, 0o600);
    assert.deepEqual(loadOrCreateSignerKey(path).publicKey, made.publicKey);
  });
});
