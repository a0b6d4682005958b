/**
 * The logchain on a real node (issue 4): genesis writes `service.sealed`, `/v1/status` shows the
 * genesis and its signature, a receipt fetched over HTTP verifies offline after the node is gone,
 * a restart keeps the service identity, a tampered stored log or a whole data directory restored
 * to an older copy makes the start fail with the named error, a secret rotation keeps old
 * receipts valid, and the HTTP errors of the receipt endpoints.
 */
import assert from 'node:assert/strict';
import { cpSync, existsSync, mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import {
  computeMeasurement,
  fromHex,
  fromUtf8,
  sha256,
  toHex,
  utf8,
  verifyConsistency,
  verifyReceipt,
} from '@cloister/core';
import { ClassicLevel } from 'classic-level';
import { BUNDLE_FILE, MANIFEST_FILE } from '../src/build/build.js';
import { bundleEnclave } from '../src/build/bundle.js';
import { signManifest } from '../src/build/manifest.js';
import { loadOrCreateSignerKey } from '../src/build/signer.js';
import { writeFileAtomic } from '../src/fs/index.js';
import { createLogger } from '../src/node/logger.js';
import { type RunningNode, rotateServiceSecret, startNode } from '../src/node/node.js';
import { tempDir, testBuild } from './helpers.js';

const silent = createLogger({ level: 'silent' });

interface Status {
  index: number;
  term: number;
  txid: string;
  lastSigned: number;
  stateHash: string;
  treeRoot: string;
  serviceIdentity: string;
  servicePublicKey: string;
  epoch: number;
  generation: number;
}

async function status(node: RunningNode): Promise<Status> {
  const r = await fetch(`${node.url}/v1/status`);
  assert.equal(r.status, 200);
  assert.match(String(r.headers.get('content-type')), /application\/json/);
  return (await r.json()) as Status;
}

async function receipt(node: RunningNode, txid: string): Promise<Uint8Array> {
  const r = await fetch(`${node.url}/v1/receipt?txid=${txid}`);
  assert.equal(r.status, 200, await r.clone().text());
  assert.equal(r.headers.get('content-type'), 'application/cbor');
  return new Uint8Array(await r.arrayBuffer());
}

/** The stored log entry key 0x02 ‖ u64be(index). */
function entryKey(index: number): Uint8Array {
  const k = new Uint8Array(9);
  k[0] = 0x02;
  new DataView(k.buffer).setBigUint64(1, BigInt(index));
  return k;
}

/** Flips one byte of the stored entry `index` (the node must be stopped). */
async function tamperEntry(dataDir: string, index: number, at = 20): Promise<void> {
  const db = new ClassicLevel<Uint8Array, Uint8Array>(join(dataDir, 'store'), {
    keyEncoding: 'view',
    valueEncoding: 'view',
  });
  try {
    const value = await db.get(entryKey(index));
    assert.ok(value, `entry ${index} is stored`);
    const changed = new Uint8Array(value);
    changed[at % changed.length]! ^= 0x01;
    await db.put(entryKey(index), changed);
  } finally {
    await db.close();
  }
}

describe('node logchain', () => {
  let enclaveDir: string;
  let constraint: string;
  let platformDir: string;
  let dataDir: string;
  let node: RunningNode | undefined;
  let serviceIdentity: Uint8Array;
  let firstReceipt: Uint8Array;

  const start = (o: { dataDir?: string; signIntervalMs?: number } = {}) =>
    startNode({
      dataDir: o.dataDir ?? dataDir,
      platformDir,
      enclaveDir,
      port: 0,
      logger: silent,
      signIntervalMs: o.signIntervalMs ?? 50,
    });

  before(async () => {
    const build = await testBuild();
    enclaveDir = build.outDir;
    constraint = `C:${toHex(build.measurement)} SEC:INSECURE`;
    platformDir = join(tempDir(), 'platform');
    dataDir = join(tempDir(), 'data');
  });
  after(async () => {
    await node?.close();
  });

  it('genesis writes service.sealed; status shows the genesis and its signature', async () => {
    node = await start();
    assert.ok(existsSync(join(dataDir, 'sealed', 'service.sealed')));
    const st = await status(node);
    assert.ok(st.index >= 2, `index ${st.index}`);
    assert.ok(st.lastSigned >= 1, `lastSigned ${st.lastSigned}`);
    assert.equal(st.term, 1);
    assert.equal(st.txid, `1.${st.index}`);
    assert.equal(st.serviceIdentity, toHex(node.serviceIdentity));
    assert.equal(st.servicePublicKey, toHex(node.servicePublicKey));
    assert.match(st.treeRoot, /^[0-9a-f]{64}$/);
    assert.match(st.stateHash, /^[0-9a-f]{64}$/);
    assert.equal(st.generation, 0);
    serviceIdentity = node.serviceIdentity;
  });

  it('answers malformed, unknown and out-of-range requests with named errors', async () => {
    const n = node!;
    const cases: [string, number, string, RegExp][] = [
      ['/v1/receipt?txid=abc', 400, 'INVALID_INPUT', /term\.index/],
      ['/v1/receipt?txid=1.0', 400, 'INVALID_INPUT', /term\.index/],
      ['/v1/receipt?txid=01.5', 400, 'INVALID_INPUT', /term\.index/],
      ['/v1/receipt', 400, 'INVALID_INPUT', /txid/],
      ['/v1/receipt?txid=1.1&txid=1.2', 400, 'INVALID_INPUT', /exactly one/],
      ['/v1/receipt?txid=1.999999', 404, '', /./],
      ['/v1/log/consistency?from=x&to=2', 400, 'INVALID_INPUT', /from/],
      ['/v1/log/consistency?from=3&to=2', 400, 'INVALID_INPUT', /must not exceed/],
      ['/v1/log/consistency?from=1&from=2&to=2', 400, 'INVALID_INPUT', /exactly one from/],
    ];
    for (const [path, code, errCode, message] of cases) {
      const r = await fetch(`${n.url}${path}`);
      assert.equal(r.status, code, path);
      const err = ((await r.json()) as { error: { code: string; message: string } }).error;
      if (errCode) assert.equal(err.code, errCode, path);
      assert.match(err.message, message, path);
    }
  });

  it('serves a consistency proof between signed sizes', async () => {
    const n = node!;
    const st = await status(n);
    const r = await fetch(`${n.url}/v1/log/consistency?from=${st.lastSigned}&to=${st.lastSigned}`);
    assert.equal(r.status, 200, await r.clone().text());
    const body = (await r.json()) as { from: number; to: number; proof: string[] };
    assert.deepEqual(body, { from: st.lastSigned, to: st.lastSigned, proof: [] });
    const over = await fetch(`${n.url}/v1/log/consistency?from=1&to=${st.index + 100}`);
    assert.equal(over.status, 400);
    assert.equal(((await over.json()) as { error: { code: string } }).error.code, 'INVALID_INPUT');
  });

  it('a receipt for txid 1.1 fetched over HTTP verifies after the node is stopped', async () => {
    firstReceipt = await receipt(node!, '1.1');
    await node!.close();
    node = undefined;
    const v = await verifyReceipt(firstReceipt, { constraint, service: serviceIdentity });
    assert.equal(v.txid, '1.1');
    assert.equal(v.index, 1);
    assert.deepEqual(v.service, serviceIdentity);
    const changed = firstReceipt.slice();
    changed[changed.length - 40]! ^= 0x01;
    await assert.rejects(verifyReceipt(changed, { constraint }), { code: 'RECEIPT' });
    await assert.rejects(
      verifyReceipt(firstReceipt, { constraint, service: new Uint8Array(32) }),
      /service/,
    );
  });

  it('a restart keeps the service identity and verifies the log', async () => {
    node = await start();
    assert.deepEqual(node.serviceIdentity, serviceIdentity);
    const st = await status(node);
    assert.ok(st.index >= 2);
    const again = await receipt(node, '1.1');
    await verifyReceipt(again, { constraint, service: serviceIdentity });
    await node.close();
    node = undefined;
  });

  it('a tampered stored entry makes the start fail, naming the entry and the failure', async () => {
    const copy = join(tempDir(), 'tampered');
    cpSync(dataDir, copy, { recursive: true });
    await tamperEntry(copy, 1);
    await assert.rejects(start({ dataDir: copy }), (e: Error & { code?: string }) => {
      assert.equal(e.code, 'LOG_ENTRY_ALTERED');
      assert.match(e.message, /entry 1\b/);
      return true;
    });
  });

  it('a whole data directory restored to an older copy is refused as a rollback', async () => {
    const older = join(tempDir(), 'older');
    cpSync(dataDir, older, { recursive: true });
    node = await start();
    await node.close();
    node = undefined;
    const rolled = join(tempDir(), 'rolled');
    cpSync(older, rolled, { recursive: true });
    await assert.rejects(
      start({ dataDir: rolled }),
      (e: Error & { code?: string; hint?: string }) => {
        assert.equal(e.code, 'ROLLBACK_DETECTED');
        // Said to the operator, about the data directory (the registry's hint speaks to a client).
        assert.match(e.hint ?? '', /holds an older state than this platform last saw/);
        return true;
      },
    );
    // The real directory still starts.
    node = await start();
    await node.close();
    node = undefined;
  });

  it('rotate-secret needs a stopped node; after it a restart works and old receipts verify', async () => {
    node = await start();
    await assert.rejects(
      rotateServiceSecret({ dataDir, platformDir, enclaveDir, logger: silent }),
      {
        code: 'DATA_DIR_LOCKED',
        message: /stop the node first/,
      },
    );
    await node.close();
    node = undefined;
    const r = await rotateServiceSecret({ dataDir, platformDir, enclaveDir, logger: silent });
    assert.equal(r.generation, 1);
    assert.match(r.txid, /^1\.\d+$/);
    assert.deepEqual(r.serviceIdentity, serviceIdentity);
    node = await start();
    assert.deepEqual(node.serviceIdentity, serviceIdentity);
    const st = await status(node);
    assert.equal(st.generation, 1);
    await verifyReceipt(firstReceipt, { constraint, service: serviceIdentity });
    const rotation = await receipt(node, r.txid);
    const v = await verifyReceipt(rotation, { constraint, service: serviceIdentity });
    assert.equal(v.txid, r.txid);
    // The two signed roots are consistent: RFC 9162 proof from the node, checked here.
    const old = await verifyReceipt(firstReceipt, { constraint });
    const c = await fetch(`${node.url}/v1/log/consistency?from=${old.size}&to=${v.size}`);
    assert.equal(c.status, 200, await c.clone().text());
    const proof = ((await c.json()) as { proof: string[] }).proof.map((h) => fromHex(h));
    verifyConsistency(old.size, v.size, old.treeRoot, v.treeRoot, proof);
    await verifyReceipt(await receipt(node, '1.1'), { constraint, service: serviceIdentity });
    await node.close();
    node = undefined;
  });

  it('rotate-secret refuses a data directory that never ran a node', async () => {
    await assert.rejects(
      rotateServiceSecret({
        dataDir: join(tempDir(), 'never'),
        platformDir,
        enclaveDir,
        logger: silent,
      }),
      { code: 'DATA_DIR', message: /start the node once/ },
    );
  });

  it('the sign timer can be disabled (0) and the node still serves', async () => {
    const d = join(tempDir(), 'no-timer');
    node = await start({ dataDir: d, signIntervalMs: 0 });
    const st = await status(node);
    assert.ok(st.lastSigned >= 1, 'genesis is signed at once');
    await node.close();
    node = undefined;
    rmSync(d, { recursive: true, force: true });
  });
});

/** The real enclave plus a ping command that commits (fixtures/ledger/leak-enclave.ts). */
async function commitBuild(): Promise<{ outDir: string; constraint: string }> {
  const outDir = tempDir('cloister-commit-build-');
  const { code } = await bundleEnclave({
    enclave: 'packages/host/test/fixtures/ledger/leak-enclave.ts',
  });
  const key = loadOrCreateSignerKey(join(tempDir('cloister-commit-signer-'), 'signer.pem'));
  const manifest = signManifest({ bundleHash: sha256(code), product: 1, svn: 1 }, key.privateKey);
  mkdirSync(outDir, { recursive: true });
  writeFileAtomic(join(outDir, BUNDLE_FILE), code, { mode: 0o644 });
  writeFileAtomic(join(outDir, MANIFEST_FILE), manifest, { mode: 0o644 });
  const measurement = computeMeasurement(sha256(code), 1, 1);
  return { outDir, constraint: `C:${toHex(measurement)} SEC:INSECURE` };
}

describe('node logchain: receipts of committed transactions', () => {
  it('409 until the next signature, then a receipt that verifies', async () => {
    const { outDir: enclaveDir, constraint } = await commitBuild();
    const dataDir = join(tempDir(), 'data');
    const platformDir = join(tempDir(), 'platform');
    const opts = { dataDir, platformDir, enclaveDir, port: 0, logger: silent };
    let node = await startNode({ ...opts, signIntervalMs: 0 });
    let txid = '';
    try {
      const writes = [['t', toHex(utf8('k')), toHex(utf8('v'))]];
      const answer = await node.ping(utf8(JSON.stringify({ ledger: 'app', writes })));
      txid = (JSON.parse(fromUtf8(answer)) as { txid: string }).txid;
      assert.match(txid, /^1\.\d+$/);
      const r = await fetch(`${node.url}/v1/receipt?txid=${txid}`);
      assert.equal(r.status, 409);
      assert.equal(r.headers.get('retry-after'), '1');
      const err = ((await r.json()) as { error: { code: string; message: string } }).error;
      assert.equal(typeof err.code, 'string');
      assert.match(err.message, /signature/);
    } finally {
      await node.close();
    }
    node = await startNode({ ...opts, signIntervalMs: 20 });
    try {
      const index = Number(txid.split('.')[1]);
      for (let i = 0; i < 200; i++) {
        const st = (await (await fetch(`${node.url}/v1/status`)).json()) as { lastSigned: number };
        if (st.lastSigned >= index) break;
        await new Promise((r) => setTimeout(r, 20));
      }
      const res = await fetch(`${node.url}/v1/receipt?txid=${txid}`);
      assert.equal(res.status, 200);
      const bytes = new Uint8Array(await res.arrayBuffer());
      const v = await verifyReceipt(bytes, {
        constraint,
        service: node.serviceIdentity,
      });
      assert.equal(v.txid, txid);
    } finally {
      await node.close();
    }
  });
});
