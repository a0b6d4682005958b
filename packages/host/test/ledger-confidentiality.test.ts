/**
 * Ledger confidentiality on a real node (issue 3, "Confidentiality"; DESIGN.md §2, §5): known keys
 * and values — equal values under different keys among them — are committed through the node's
 * own ledger service in its enclave (a test enclave = the real one plus a ping command that
 * commits, fixtures/ledger/leak-enclave.ts), then every byte the host holds or emits is scanned:
 * the data directory (LevelDB files, logs and sealed blobs), the platform directory, the node's
 * pino output and /metrics. No plaintext appears in raw, hex, base64 or UTF-16 form, and no two
 * stored values are equal (randomized encryption: equal values never give equal ciphertexts).
 */
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { test } from 'node:test';
import { fromUtf8, sha256, toHex, utf8 } from '@cloister/core';
import { ClassicLevel } from 'classic-level';
import { BUNDLE_FILE, MANIFEST_FILE } from '../src/build/build.js';
import { bundleEnclave } from '../src/build/bundle.js';
import { signManifest } from '../src/build/manifest.js';
import { loadOrCreateSignerKey } from '../src/build/signer.js';
import { writeFileAtomic } from '../src/fs/index.js';
import { createLogger } from '../src/node/logger.js';
import { startNode } from '../src/node/node.js';
import { tempDir } from './helpers.js';
import { scanBytes, scanDirectory } from './leak-scan.js';

const ENTRY = 'packages/host/test/fixtures/ledger/leak-enclave.ts';

async function leakBuild(): Promise<string> {
  const outDir = tempDir('cloister-leak-build-');
  const { code } = await bundleEnclave({ enclave: ENTRY });
  const key = loadOrCreateSignerKey(join(tempDir('cloister-leak-signer-'), 'signer.pem'));
  const manifest = signManifest({ bundleHash: sha256(code), product: 1, svn: 1 }, key.privateKey);
  mkdirSync(outDir, { recursive: true });
  writeFileAtomic(join(outDir, BUNDLE_FILE), code, { mode: 0o644 });
  writeFileAtomic(join(outDir, MANIFEST_FILE), manifest, { mode: 0o644 });
  return outDir;
}

test('known keys and values are in no store file, log line or metric, and no two ciphertexts are equal', async () => {
  const enclaveDir = await leakBuild();
  const dataDir = join(tempDir(), 'data');
  const platformDir = join(tempDir(), 'platform');
  const out = new PassThrough();
  const chunks: Buffer[] = [];
  out.on('data', (c: Buffer) => chunks.push(c));
  const logger = createLogger({ level: 'trace', destination: out });
  const node = await startNode({ dataDir, platformDir, enclaveDir, port: 0, logger });

  const secrets = new Map<string, Uint8Array>();
  const shared = 'the same confidential value under several keys';
  secrets.set('shared value', utf8(shared));
  const table = 'confidential-table-name';
  secrets.set('table name', utf8(table));
  let txid = '';
  for (let t = 0; t < 4; t++) {
    const writes: string[][] = [];
    for (let i = 0; i < 50; i++) {
      const k = `known-key-${t}-${i}-alice@example.com`;
      const v = i % 5 === 0 ? shared : `balance of account ${t}/${i}: 1,000,${i} credits`;
      secrets.set(`key ${t}/${i}`, utf8(k));
      secrets.set(`value ${t}/${i}`, utf8(v));
      writes.push([table, toHex(utf8(k)), toHex(utf8(v))]);
    }
    const answer = await node.ping(utf8(JSON.stringify({ ledger: 'leak-app', writes })));
    txid = (JSON.parse(fromUtf8(answer)) as { txid: string }).txid;
  }
  assert.match(txid, /^1\.\d+$/);
  await fetch(`${node.url}/v1/status`);
  const metrics = new Uint8Array(Buffer.from(await (await fetch(`${node.url}/metrics`)).text()));
  await node.close();

  const leaks = [
    ...scanDirectory(dataDir, secrets),
    ...scanDirectory(platformDir, secrets),
    ...scanBytes(Buffer.concat(chunks), secrets, 'logs'),
    ...scanBytes(metrics, secrets, 'metrics'),
  ];
  assert.deepEqual(leaks, []);

  // Every stored value is distinct: node records, log entries, the root record.
  const db = new ClassicLevel<Uint8Array, Uint8Array>(join(dataDir, 'store'), {
    keyEncoding: 'view',
    valueEncoding: 'view',
  });
  // LevelDB compresses its table blocks (Snappy), so the files alone could hide a plaintext
  // behind back-references: every key and value is also scanned as LevelDB returns it.
  const seen = new Set<string>();
  const logical: Buffer[] = [];
  let values = 0;
  for await (const [key, value] of db.iterator()) {
    logical.push(Buffer.from(key), Buffer.from(value));
    const hex = toHex(value);
    assert.ok(!seen.has(hex), 'two stored values are equal');
    seen.add(hex);
    values++;
  }
  await db.close();
  assert.deepEqual(scanBytes(Buffer.concat(logical), secrets, 'store entries'), []);
  // Positive control: the scan does see what is stored in clear by design (the service public
  // key in the genesis entry's public metadata).
  const control = new Map([['service public key', node.servicePublicKey]]);
  assert.ok(scanBytes(Buffer.concat(logical), control, 'store entries').length > 0);
  assert.ok(values > 50, `the store holds the records (${values})`);
});
