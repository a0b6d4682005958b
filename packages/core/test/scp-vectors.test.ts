/**
 * SCP v1 fixed test vectors (docs/scp.md §12 prints them from test/fixtures/scp-v1-vectors.json).
 * One full handshake and two records with injected deterministic randomness; every value is then
 * recomputed by a second, independent implementation of the formulas written here with
 * node:crypto (HMAC-based HKDF, ECDH, AES-256-GCM, ECDSA), checked against the fixture, and
 * looked up in docs/scp.md, so the code, the fixture and the document cannot drift apart.
 * Regenerate the fixture (only after a deliberate protocol change): SCP_WRITE_VECTORS=1.
 */
import assert from 'node:assert/strict';
import {
  createCipheriv,
  createDecipheriv,
  createECDH,
  createHash,
  createHmac,
  createPublicKey,
  verify as nodeVerify,
} from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { test } from 'node:test';
import { decodeCbor, encodeCbor } from '../src/cbor.js';
import { isCloisterError } from '../src/errors.js';
import type { ScpMessage, ScpSession } from '../src/scp/index.js';
import {
  handshakeSecrets,
  nextTrafficSecret,
  recordNonce,
  trafficKey,
  trafficSecrets,
} from '../src/scp/keys.js';
import {
  fixedCrypto,
  fixedKey,
  makeWorld,
  nobleSigner,
  runHandshake,
  withSyncAead,
} from './scp-kit.js';

const FIXTURE = new URL('./fixtures/scp-v1-vectors.json', import.meta.url);
const DOC = new URL('../../../docs/scp.md', import.meta.url);

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');
const buf = (h: string): Buffer => Buffer.from(h, 'hex');

// ---- the independent implementation (node:crypto only) -------------------------------------
const H = (...parts: Uint8Array[]): Buffer => {
  const h = createHash('sha256');
  for (const p of parts) h.update(p);
  return h.digest();
};
const hmac = (key: Uint8Array, data: Uint8Array): Buffer =>
  createHmac('sha256', key).update(data).digest();
/** RFC 5869 Extract: HMAC(salt, IKM). */
const extract = (salt: Uint8Array, ikm: Uint8Array): Buffer => hmac(salt, ikm);
/** RFC 5869 Expand for L <= 32: the first block T(1) = HMAC(PRK, info ‖ 0x01), cut to L. */
const expand = (prk: Uint8Array, label: string, len: number): Buffer =>
  hmac(
    prk,
    Buffer.concat([Buffer.from(`cloister/scp/v1 ${label}`, 'utf8'), Buffer.of(1)]),
  ).subarray(0, len);
const gcmOpen = (key: Uint8Array, iv: Uint8Array, aad: number, ct: Uint8Array): Buffer => {
  const d = createDecipheriv('aes-256-gcm', key, iv);
  d.setAAD(Buffer.of(aad));
  d.setAuthTag(ct.subarray(ct.length - 16));
  return Buffer.concat([d.update(ct.subarray(0, ct.length - 16)), d.final()]);
};
const gcmSeal = (key: Uint8Array, iv: Uint8Array, aad: number, pt: Uint8Array): Buffer => {
  const c = createCipheriv('aes-256-gcm', key, iv);
  c.setAAD(Buffer.of(aad));
  return Buffer.concat([c.update(pt), c.final(), c.getAuthTag()]);
};
const nonceXor = (iv: Uint8Array, seq: bigint): Buffer => {
  const n = Buffer.alloc(12);
  n.writeBigUInt64BE(seq, 4);
  for (let i = 0; i < 12; i++) n[i] = (n[i] as number) ^ (iv[i] as number);
  return n;
};
const ecdsaOk = (pub: Uint8Array, data: Uint8Array, sig: Uint8Array): boolean => {
  const key = createPublicKey({
    key: {
      kty: 'EC',
      crv: 'P-256',
      x: Buffer.from(pub.subarray(1, 33)).toString('base64url'),
      y: Buffer.from(pub.subarray(33)).toString('base64url'),
    },
    format: 'jwk',
  });
  return nodeVerify('sha256', data, { key, dsaEncoding: 'ieee-p1363' }, sig);
};
const cb = (v: unknown): Buffer => Buffer.from(encodeCbor(v));

// ---- the fixed run -------------------------------------------------------------------------
const NC = Uint8Array.from({ length: 32 }, (_, i) => i);
const NS = Uint8Array.from({ length: 32 }, (_, i) => 0x20 + i);
const REQUEST: ScpMessage = { type: 'request', id: 1, op: 'node.status', args: {} };
const RESPONSE: ScpMessage = { type: 'response', id: 1, ok: true, result: { index: 1 } };

async function fixedRun(sync = false) {
  const [ce, se, id, node, service, platform] = [1, 2, 3, 4, 5, 6].map(fixedKey) as [
    ReturnType<typeof fixedKey>,
    ReturnType<typeof fixedKey>,
    ReturnType<typeof fixedKey>,
    ReturnType<typeof fixedKey>,
    ReturnType<typeof fixedKey>,
    ReturnType<typeof fixedKey>,
  ];
  const world = makeWorld({ node, service, platform });
  const r = await runHandshake({
    world,
    identity: nobleSigner(id),
    clientCrypto: sync ? withSyncAead(fixedCrypto([ce], [NC])) : fixedCrypto([ce], [NC]),
    serverCrypto: sync ? withSyncAead(fixedCrypto([se], [NS])) : fixedCrypto([se], [NS]),
  });
  const client = r.clientSession as ScpSession;
  const server = r.serverSession as ScpSession;
  assert.ok(client && server, String(r.clientError ?? r.serverError));
  const [r1] = (await client.seal(REQUEST)) as [Uint8Array];
  const [r2] = (await server.seal(RESPONSE)) as [Uint8Array];
  assert.equal(((await server.open(r1))[0] as { op: string }).op, 'node.status');
  assert.equal(((await client.open(r2))[0] as { ok: boolean }).ok, true);
  return {
    keys: { ce, se, id, node, service, platform },
    world,
    frames: r.frames as Record<'CH' | 'SH' | 'SA' | 'CA', Uint8Array>,
    r1,
    r2,
    client,
    server,
  };
}

type Vectors = Record<string, string>;

test('SCP v1 vectors: the implementation, an independent recomputation, the fixture and docs/scp.md agree', async () => {
  const run = await fixedRun();
  const { ce, se, id, node, service, platform } = run.keys;
  const { CH, SH, SA, CA } = run.frames;

  // Independent recomputation from the frames and the fixed secrets.
  const ecdh = createECDH('prime256v1');
  ecdh.setPrivateKey(ce.secret);
  const Z = ecdh.computeSecret(se.publicKey);
  const serverSide = createECDH('prime256v1');
  serverSide.setPrivateKey(se.secret);
  assert.equal(hex(serverSide.computeSecret(ce.publicKey)), hex(Z));
  const TH1 = H(CH, SH);
  const HS = extract(TH1, Z);
  const sHsKey = expand(HS, 's hs key', 32);
  const sHsIv = expand(HS, 's hs iv', 12);
  const cHsKey = expand(HS, 'c hs key', 32);
  const cHsIv = expand(HS, 'c hs iv', 12);
  const sFin = expand(HS, 's fin', 32);
  const cFin = expand(HS, 'c fin', 32);
  assert.equal(SA[0], 3);
  const sa = decodeCbor(gcmOpen(sHsKey, sHsIv, 3, SA.subarray(1))) as Uint8Array[];
  assert.equal(sa.length, 6);
  const [ev, nodeKey, serviceKey, end, sigS, finS] = sa as [
    Uint8Array,
    Uint8Array,
    Uint8Array,
    Uint8Array,
    Uint8Array,
    Uint8Array,
  ];
  assert.equal(hex(nodeKey), hex(node.publicKey));
  assert.equal(hex(serviceKey), hex(service.publicKey));
  assert.equal(hex(ev), hex(run.world.evidence));
  assert.equal(hex(end), hex(run.world.endorsement));
  const SAp = cb([ev, nodeKey, serviceKey, end]);
  const TH2 = H(CH, SH, SAp);
  assert.ok(
    ecdsaOk(
      nodeKey,
      Buffer.concat([Buffer.from('cloister/scp/v1 server'), Buffer.of(0), TH2]),
      sigS,
    ),
    'the server signature verifies over TH2 under its context',
  );
  const TH3 = H(CH, SH, SAp, cb(sigS));
  assert.equal(hex(finS), hex(hmac(sFin, TH3)));
  assert.equal(CA[0], 4);
  const ca = decodeCbor(gcmOpen(cHsKey, cHsIv, 4, CA.subarray(1))) as Uint8Array[];
  const [clientKey, sigC, finC] = ca as [Uint8Array, Uint8Array, Uint8Array];
  assert.equal(hex(clientKey), hex(id.publicKey));
  const CAp = cb([clientKey]);
  const TH4 = H(CH, SH, SAp, cb(sigS), cb(finS), CAp);
  assert.ok(
    ecdsaOk(
      clientKey,
      Buffer.concat([Buffer.from('cloister/scp/v1 client'), Buffer.of(0), TH4]),
      sigC,
    ),
    'the client signature verifies over TH4 under its context',
  );
  const TH5 = H(CH, SH, SAp, cb(sigS), cb(finS), CAp, cb(sigC));
  assert.equal(hex(finC), hex(hmac(cFin, TH5)));
  const TH6 = H(CH, SH, SAp, cb(sigS), cb(finS), CAp, cb(sigC), cb(finC));
  assert.equal(hex(run.client.sessionHash), hex(TH6));
  assert.equal(hex(run.server.sessionHash), hex(TH6));
  const AS = extract(TH6, HS);
  const cAp0 = expand(AS, 'c ap', 32);
  const sAp0 = expand(AS, 's ap', 32);
  const cKey = expand(cAp0, 'key', 32);
  const cIv = expand(cAp0, 'iv', 12);
  const sKey = expand(sAp0, 'key', 32);
  const sIv = expand(sAp0, 'iv', 12);
  const cAp1 = expand(cAp0, 'ku', 32);
  const R1pt = gcmOpen(cKey, nonceXor(cIv, 0n), 5, run.r1.subarray(1));
  assert.equal(hex(R1pt), hex(cb([1, 1, 'node.status', {}])));
  const R2pt = gcmOpen(sKey, nonceXor(sIv, 0n), 5, run.r2.subarray(1));
  assert.equal(hex(R2pt), hex(cb([2, 1, true, { index: 1 }])));

  // The implementation's own key schedule functions give the same bytes.
  const hsImpl = handshakeSecrets(TH1, Z);
  assert.deepEqual(
    [
      hsImpl.hs,
      hsImpl.sHsKey,
      hsImpl.sHsIv,
      hsImpl.cHsKey,
      hsImpl.cHsIv,
      hsImpl.sFin,
      hsImpl.cFin,
    ].map(hex),
    [HS, sHsKey, sHsIv, cHsKey, cHsIv, sFin, cFin].map(hex),
  );
  const ts = trafficSecrets(TH6, HS);
  assert.deepEqual([ts.cAp, ts.sAp].map(hex), [cAp0, sAp0].map(hex));
  assert.deepEqual([trafficKey(cAp0).key, trafficKey(cAp0).iv].map(hex), [cKey, cIv].map(hex));
  assert.equal(hex(nextTrafficSecret(cAp0)), hex(cAp1));
  for (const seq of [0, 1, 255, 256, 2 ** 24 - 1, 2 ** 32 + 5, Number.MAX_SAFE_INTEGER]) {
    assert.equal(hex(recordNonce(cIv, seq)), hex(nonceXor(cIv, BigInt(seq))), `seq ${seq}`);
  }

  // Interop of the record layer with the independent sealer: a padded record opens; a record
  // whose padding is not all zero is refused although it authenticates.
  const body = cb([3, 9, '"x"']);
  const padded = Buffer.concat([body, Buffer.alloc(256 - body.length)]);
  assert.deepEqual(
    await run.server.open(
      Buffer.concat([Buffer.of(5), gcmSeal(cKey, nonceXor(cIv, 1n), 5, padded)]),
    ),
    [{ type: 'notify', id: 9, json: '"x"' }],
  );
  const dirty = Buffer.concat([cb([3, 9, '"x"']), Buffer.of(0, 0, 1)]);
  await assert.rejects(
    run.server.open(Buffer.concat([Buffer.of(5), gcmSeal(cKey, nonceXor(cIv, 2n), 5, dirty)])),
    (e: unknown) => isCloisterError(e) && e.code === 'SCP_PROTOCOL',
  );

  const vectors: Vectors = {
    client_ephemeral_secret: hex(ce.secret),
    server_ephemeral_secret: hex(se.secret),
    client_identity_secret: hex(id.secret),
    node_secret: hex(node.secret),
    service_secret: hex(service.secret),
    platform_secret: hex(platform.secret),
    n_c: hex(NC),
    n_s: hex(NS),
    CH: hex(CH),
    SH: hex(SH),
    Z: hex(Z),
    TH1: hex(TH1),
    HS: hex(HS),
    s_hs_key: hex(sHsKey),
    s_hs_iv: hex(sHsIv),
    c_hs_key: hex(cHsKey),
    c_hs_iv: hex(cHsIv),
    s_fin: hex(sFin),
    c_fin: hex(cFin),
    evidence: hex(ev),
    endorsement: hex(end),
    SAp: hex(SAp),
    TH2: hex(TH2),
    sig_s: hex(sigS),
    TH3: hex(TH3),
    fin_s: hex(finS),
    SA: hex(SA),
    CAp: hex(CAp),
    TH4: hex(TH4),
    sig_c: hex(sigC),
    TH5: hex(TH5),
    fin_c: hex(finC),
    CA: hex(CA),
    TH6: hex(TH6),
    AS: hex(AS),
    c_ap0: hex(cAp0),
    s_ap0: hex(sAp0),
    c_key0: hex(cKey),
    c_iv0: hex(cIv),
    s_key0: hex(sKey),
    s_iv0: hex(sIv),
    c_ap1: hex(cAp1),
    record_c0_plaintext: hex(R1pt),
    record_c0: hex(run.r1),
    record_s0_plaintext: hex(R2pt),
    record_s0: hex(run.r2),
  };
  if (process.env.SCP_WRITE_VECTORS === '1') {
    writeFileSync(FIXTURE, `${JSON.stringify(vectors, null, 2)}\n`);
  }
  const fixture = JSON.parse(readFileSync(FIXTURE, 'utf8')) as Vectors;
  assert.deepEqual(vectors, fixture);
  // Every vector is printed in docs/scp.md as `name = hex` on one line.
  const doc = readFileSync(DOC, 'utf8');
  for (const [name, value] of Object.entries(fixture)) {
    assert.ok(doc.includes(`${name} = ${value}\n`), `docs/scp.md lacks the vector ${name}`);
  }
  assert.ok(buf(fixture.CH as string).length > 0);
});

test('SCP v1 vectors: the synchronous record layer (aeadKeySync) makes the same records', async () => {
  const fixture = JSON.parse(readFileSync(FIXTURE, 'utf8')) as Vectors;
  const run = await fixedRun(true);
  assert.equal(typeof run.client.sealSync, 'function');
  assert.equal(hex(run.r1), fixture.record_c0);
  assert.equal(hex(run.r2), fixture.record_s0);
});
