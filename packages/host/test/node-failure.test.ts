/**
 * A node never serves without its enclave: when the enclave dies, requests fail by name and the
 * node stops itself (`stopped` settles with 'enclave-failed'), releasing its directories. A fault
 * that arrives while the node is still starting stops it the same way, once the start is done:
 * never a node handed back serving a stopped ledger.
 */
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { get } from 'node:http';
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
import { type Store, StoreError } from '../src/store/index.js';
import { tempDir } from './helpers.js';

const CRASHING = 'packages/host/test/fixtures/node/crashing-enclave.ts';
const STATUS_COMMIT = 'packages/host/test/fixtures/node/status-commit-enclave.ts';

/** A signed build of the fixture enclave `entry`, and fresh data and platform directories. */
async function fixtureNode(entry: string) {
  const dir = tempDir();
  const { code } = await bundleEnclave({ enclave: entry });
  const signer = loadOrCreateSignerKey(join(dir, 'signer.pem'));
  const enclaveDir = join(dir, 'enclave');
  mkdirSync(enclaveDir);
  writeFileAtomic(join(enclaveDir, BUNDLE_FILE), code, { mode: PUBLIC_FILE_MODE });
  const manifest = signManifest(
    { bundleHash: sha256(code), product: 1, svn: 1 },
    signer.privateKey,
  );
  writeFileAtomic(join(enclaveDir, MANIFEST_FILE), manifest, { mode: PUBLIC_FILE_MODE });
  return { dataDir: join(dir, 'data'), platformDir: join(dir, 'platform'), enclaveDir, port: 0 };
}

test('a node whose enclave dies answers ENCLAVE_FAILED and stops itself', async () => {
  const opts = await fixtureNode(CRASHING);
  const logger = createLogger({ level: 'silent' });
  const node = await startNode({ ...opts, logger });
  const health = await fetch(`${node.url}/v1/health`);
  assert.equal(health.status, 200);

  const r = await fetch(`${node.url}/v1/evidence?nonce=00`);
  assert.equal(r.status, 503);
  const body = (await r.json()) as { error: { code: string } };
  assert.equal(body.error.code, 'ENCLAVE_FAILED');
  assert.equal(await node.stopped, 'enclave-failed');
  await assert.rejects(fetch(`${node.url}/v1/health`));

  // The directories were released: the same data directory starts again.
  const again = await startNode({ ...opts, logger });
  assert.deepEqual(again.identityPublicKey, node.identityPublicKey);
  await again.close();
  assert.equal(await again.stopped, 'closed');
});

/**
 * /v1/health's status on a connection of its own (closed after the answer: a kept-alive one would
 * hold a closing server open), or 'unreachable' when nothing answers.
 */
function healthOnce(url: string): Promise<string> {
  return new Promise((resolve) => {
    get(`${url}/v1/health`, { agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => {
        body += c;
      });
      res.on('end', () => resolve((JSON.parse(body) as { status: string }).status));
      res.on('error', () => resolve('unreachable'));
    }).on('error', () => resolve('unreachable'));
  });
}

test('a ledger that stops while the node is starting: the start completes, then the node stops itself (ledger-stopped) and releases everything', async () => {
  const opts = await fixtureNode(STATUS_COMMIT);
  // The events the node logged, in order.
  const events: string[] = [];
  let refusing = false;
  let refused = 0;
  const destination = {
    write: (line: string) => {
      const { event } = JSON.parse(line) as { event?: string };
      if (event) events.push(event);
      // Once the enclave's start has begun its epoch, the only write left in this start is the
      // fixture's commit before it answers service.status: the store refuses it.
      if (event === 'service.epoch-begun') refusing = true;
      return true;
    },
  };
  const logger = createLogger({
    level: 'info',
    destination: destination as unknown as NodeJS.WritableStream,
  });
  const wrapStore = (s: Store): Store => ({
    get: (k) => s.get(k),
    iterate: (o) => s.iterate(o),
    close: () => s.close(),
    write: (b, o) => {
      if (!refusing) return s.write(b, o);
      refused++;
      return Promise.reject(new StoreError('no space left on device (injected)'));
    },
  });
  // With the sign timer on (started before the start is done, as by default).
  const node = await startNode({ ...opts, logger, wrapStore, signIntervalMs: 1000 });
  try {
    // The fault reached the node during its start (before it listened), from a real failed write.
    assert.equal(refused, 1);
    const at = (event: string) => {
      const i = events.indexOf(event);
      assert.ok(i >= 0, `${event} not logged: ${events.join(', ')}`);
      return i;
    };
    assert.ok(at('ledger.stopped') < at('node.ledger-stopped'));
    assert.ok(at('node.ledger-stopped') < at('node.service-ready'));
    assert.ok(at('node.service-ready') < at('node.listening'));

    // The node handed back is already stopping: it never answers as a healthy node.
    const health = await healthOnce(node.url);
    assert.notEqual(health, 'ok');
    assert.equal(await node.stopped, 'ledger-stopped');
    assert.ok(at('node.stopped') > at('node.listening'));
    assert.equal(events.filter((e) => e === 'node.stopped').length, 1);
    // Nothing serves any more.
    await assert.rejects(fetch(`${node.url}/v1/health`));
  } finally {
    // A no-op once the node stopped itself; a node that did not is not left running.
    await node.close();
  }

  // The enclave, the data directory lock and the platform's counter were released: the same
  // directories start again, on a working store, as the same service.
  refusing = false;
  const again = await startNode({ ...opts, logger: createLogger({ level: 'silent' }) });
  try {
    assert.deepEqual(again.serviceIdentity, node.serviceIdentity);
    const st = await fetch(`${again.url}/v1/health`);
    assert.equal(((await st.json()) as { status: string }).status, 'ok');
  } finally {
    await again.close();
  }
  assert.equal(await again.stopped, 'closed');
});
