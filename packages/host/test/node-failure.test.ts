/**
 * A node never serves without its enclave: when the enclave dies, requests fail by name and the
 * node stops itself (`stopped` settles with 'enclave-failed'), releasing its directories.
 */
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { sha256 } from '@cloister/core';
import { BUNDLE_FILE, MANIFEST_FILE } from '../src/build/build.js';
import { bundleEnclave } from '../src/build/bundle.js';
import { signManifest } from '../src/build/manifest.js';
import { loadOrCreateSignerKey } from '../src/build/signer.js';
import { PUBLIC_FILE_MODE, writeFileAtomic } from '../src/fs/index.js';
import { createLogger } from '../src/node/logger.js';
import { startNode } from '../src/node/node.js';
import { tempDir } from './helpers.js';

const CRASHING = 'packages/host/test/fixtures/node/crashing-enclave.ts';

test('a node whose enclave dies answers ENCLAVE_FAILED and stops itself', async () => {
  const dir = tempDir();
  const { code } = await bundleEnclave({ enclave: CRASHING });
  const signer = loadOrCreateSignerKey(join(dir, 'signer.pem'));
  const enclaveDir = join(dir, 'enclave');
  mkdirSync(enclaveDir);
  writeFileAtomic(join(enclaveDir, BUNDLE_FILE), code, { mode: PUBLIC_FILE_MODE });
  const manifest = signManifest(
    { bundleHash: sha256(code), product: 1, svn: 1 },
    signer.privateKey,
  );
  writeFileAtomic(join(enclaveDir, MANIFEST_FILE), manifest, { mode: PUBLIC_FILE_MODE });

  const dataDir = join(dir, 'data');
  const platformDir = join(dir, 'platform');
  const logger = createLogger({ level: 'silent' });
  const node = await startNode({ dataDir, platformDir, enclaveDir, port: 0, logger });
  const health = await fetch(`${node.url}/v1/health`);
  assert.equal(health.status, 200);

  const r = await fetch(`${node.url}/v1/evidence?nonce=00`);
  assert.equal(r.status, 503);
  const body = (await r.json()) as { error: { code: string } };
  assert.equal(body.error.code, 'ENCLAVE_FAILED');
  assert.equal(await node.stopped, 'enclave-failed');
  await assert.rejects(fetch(`${node.url}/v1/health`));

  // The directories were released: the same data directory starts again.
  const again = await startNode({ dataDir, platformDir, enclaveDir, port: 0, logger });
  assert.deepEqual(again.identityPublicKey, node.identityPublicKey);
  await again.close();
  assert.equal(await again.stopped, 'closed');
});
