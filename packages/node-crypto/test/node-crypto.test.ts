/**
 * The "./node" entry's node:crypto ScpCrypto against core's WebCrypto one: the same AES-256-GCM
 * bytes both ways, the same ECDH secret, ECDSA verification; tampered records, bad points, bad
 * signatures and reused ephemeral keys fail by name (or as false), never silently.
 */
import assert from 'node:assert/strict';
import { createSecretKey, generateKeyPairSync } from 'node:crypto';
import { test } from 'node:test';
import { ScpError, webCryptoScp } from '@cloister/core';
import {
  aesGcmSeal,
  nodeScpCrypto,
  privateKeyFromPkcs8,
  rawPublicKey,
} from '@cloister/node-crypto';

const key = Uint8Array.from({ length: 32 }, (_, i) => i);
const iv = Uint8Array.from({ length: 12 }, (_, i) => 100 + i);
const aad = Uint8Array.of(5);

test('AES-256-GCM: node:crypto and WebCrypto produce and open the same records', async () => {
  const n = await nodeScpCrypto.aeadKey(key);
  const w = await webCryptoScp.aeadKey(key);
  for (const size of [0, 1, 55, 96, 4096]) {
    const pt = Uint8Array.from({ length: size }, (_, i) => (i * 7) & 0xff);
    const a = await n.seal(iv, aad, pt);
    assert.deepEqual(a, await w.seal(iv, aad, pt));
    assert.deepEqual(await n.open(iv, aad, a), pt);
    assert.deepEqual(await w.open(iv, aad, a), pt);
  }
});

test('sealPrefixed and aesGcmSeal with a prefix give prefix ‖ the same sealed bytes', async () => {
  const w = await webCryptoScp.aeadKey(key);
  const k = nodeScpCrypto.aeadKeySync?.(key);
  assert.ok(k?.sealPrefixed !== undefined, 'the synchronous keys seal after a prefix');
  for (const [size, prefix] of [
    [0, Uint8Array.of(5)],
    [96, Uint8Array.of(5)],
    [55, Uint8Array.of(1, 2, 3)],
    [4096, new Uint8Array(0)],
  ] as const) {
    const pt = Uint8Array.from({ length: size }, (_, i) => (i * 7) & 0xff);
    const sealed = await w.seal(iv, aad, pt);
    const expected = new Uint8Array([...prefix, ...sealed]);
    assert.deepEqual(k.sealPrefixed(prefix, iv, aad, pt), expected);
    assert.deepEqual(aesGcmSeal(createSecretKey(key), iv, aad, pt, prefix), expected);
    assert.deepEqual(k.open(iv, aad, expected.subarray(prefix.length)), pt);
  }
});

test('a tampered, truncated or misbound record is refused with SCP_RECORD', async () => {
  const n = await nodeScpCrypto.aeadKey(key);
  const ct = await n.seal(iv, aad, Uint8Array.of(1, 2, 3));
  const flipped = ct.slice();
  flipped[0] = (flipped[0] as number) ^ 1;
  const refused = (e: unknown) => e instanceof ScpError && e.code === 'SCP_RECORD';
  await assert.rejects(n.open(iv, aad, flipped), refused);
  await assert.rejects(n.open(iv, aad, ct.subarray(0, ct.length - 1)), refused);
  await assert.rejects(n.open(iv, aad, ct.subarray(0, 15)), refused);
  await assert.rejects(n.open(iv, Uint8Array.of(4), ct), refused);
  const otherIv = iv.slice();
  otherIv[11] = (otherIv[11] as number) ^ 1;
  await assert.rejects(n.open(otherIv, aad, ct), refused);
  await assert.rejects(nodeScpCrypto.aeadKey(new Uint8Array(16)), /32 bytes/);
});

test('ECDH: both implementations derive the same secret; keys are used once; bad points fail', async () => {
  const a = await nodeScpCrypto.ephemeral();
  const b = await webCryptoScp.ephemeral();
  assert.equal(a.publicKey.length, 65);
  const s1 = await a.deriveShared(b.publicKey);
  assert.deepEqual(s1, await b.deriveShared(a.publicKey));
  assert.equal(s1.length, 32);
  await assert.rejects(a.deriveShared(b.publicKey), /used once/);
  const c = await nodeScpCrypto.ephemeral();
  const off = b.publicKey.slice();
  off[64] = (off[64] as number) ^ 1; // no longer on the curve
  await assert.rejects(c.deriveShared(off), (e: unknown) => e instanceof ScpError);
  const d = await nodeScpCrypto.ephemeral();
  await assert.rejects(d.deriveShared(new Uint8Array(33)), /65-byte P-256 point/);
});

test('ECDSA verification: a good signature verifies, anything else is false', async () => {
  const subtle = globalThis.crypto.subtle;
  const pair = (await subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, true, [
    'sign',
    'verify',
  ])) as CryptoKeyPair;
  const pub = new Uint8Array(await subtle.exportKey('raw', pair.publicKey));
  const data = new TextEncoder().encode('cloister/scp/v1 server');
  const sig = new Uint8Array(
    await subtle.sign({ name: 'ECDSA', hash: 'SHA-256' }, pair.privateKey, data),
  );
  assert.equal(await nodeScpCrypto.verify(pub, data, sig), true);
  const bad = sig.slice();
  bad[10] = (bad[10] as number) ^ 1;
  assert.equal(await nodeScpCrypto.verify(pub, data, bad), false);
  assert.equal(await nodeScpCrypto.verify(pub, Uint8Array.of(1), sig), false);
  assert.equal(await nodeScpCrypto.verify(pub, data, sig.subarray(0, 63)), false);
  const offCurve = pub.slice();
  offCurve[64] = (offCurve[64] as number) ^ 1;
  assert.equal(await nodeScpCrypto.verify(offCurve, data, sig), false);
  assert.equal(await nodeScpCrypto.verify(pub.subarray(0, 33), data, sig), false);
  assert.equal(nodeScpCrypto.random(12).length, 12);
});

test('privateKeyFromPkcs8 reads a key from a view inside a larger buffer; other bytes throw', () => {
  const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  const der = new Uint8Array(privateKey.export({ type: 'pkcs8', format: 'der' }));
  // Placed at an offset in a bigger buffer: the key is read from the view's bytes only.
  const host = new Uint8Array(der.length + 10).fill(0xee);
  host.set(der, 5);
  const read = privateKeyFromPkcs8(host.subarray(5, 5 + der.length));
  assert.deepEqual(rawPublicKey(read), rawPublicKey(privateKey));
  assert.throws(() => privateKeyFromPkcs8(host));
  assert.throws(() => privateKeyFromPkcs8(new Uint8Array(0)));
});
