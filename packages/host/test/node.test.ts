/**
 * The node end to end, in process: HTTP endpoints and their limits, evidence verified with the
 * isomorphic verifier, metrics free of identities, and the actionable start-up errors.
 */
import assert from 'node:assert/strict';
import { rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fromBase64, fromHex, toHex, verifyEvidence } from '@cloister/core';
import { createLogger } from '../src/node/logger.js';
import { type RunningNode, startNode } from '../src/node/node.js';
import { tempDir, testBuild } from './helpers.js';

const silent = createLogger({ level: 'silent' });

function get(url: string, opts: { method?: string; body?: string } = {}) {
  return new Promise<{ status: number; body: string; type: string }>((resolve, reject) => {
    const headers =
      opts.body === undefined ? {} : { 'content-length': Buffer.byteLength(opts.body) };
    const req = request(url, { method: opts.method ?? 'GET', headers, agent: false }, (res) => {
      let body = '';
      res.on('data', (c) => {
        body += c;
      });
      res.on('end', () =>
        resolve({ status: res.statusCode ?? 0, body, type: String(res.headers['content-type']) }),
      );
    });
    req.on('error', reject);
    req.end(opts.body);
  });
}

describe('node', () => {
  let node: RunningNode;
  let measurement: string;
  let platformDir: string;
  let enclaveDir: string;

  before(async () => {
    const build = await testBuild();
    measurement = toHex(build.measurement);
    enclaveDir = build.outDir;
    platformDir = join(tempDir(), 'platform');
    node = await startNode({
      dataDir: join(tempDir(), 'data'),
      platformDir,
      enclaveDir,
      port: 0,
      logger: silent,
    });
  });
  after(() => node?.close());

  it('answers health', async () => {
    const r = await get(`${node.url}/v1/health`);
    assert.equal(r.status, 200);
    assert.deepEqual(JSON.parse(r.body), { status: 'ok', platform: 'simulation' });
  });

  it('serves evidence that verifies for the nonce asked', async () => {
    const nonce = crypto.getRandomValues(new Uint8Array(64));
    const r = await get(`${node.url}/v1/evidence?nonce=${toHex(nonce)}`);
    assert.equal(r.status, 200);
    const body = JSON.parse(r.body) as { evidence: string; identityPublicKey: string };
    const identityPublicKey = fromHex(body.identityPublicKey);
    assert.deepEqual(identityPublicKey, node.identityPublicKey);
    const v = await verifyEvidence(fromBase64(body.evidence), {
      nonce,
      identityPublicKey,
      constraint: `C:${measurement} SEC:INSECURE`,
    });
    assert.equal(v.platform, 'simulation');
    assert.equal(v.secure, false);
    await assert.rejects(
      verifyEvidence(fromBase64(body.evidence), {
        nonce: new Uint8Array(64),
        identityPublicKey,
        constraint: `C:${measurement} SEC:INSECURE`,
      }),
      { code: 'NONCE_MISMATCH' },
    );
  });

  it('refuses bad requests with a named error and keeps serving', async () => {
    const cases: [string, { method?: string; body?: string }, number, string][] = [
      [`/v1/evidence?nonce=${'ab'.repeat(65)}`, {}, 400, 'INVALID_INPUT'],
      ['/v1/evidence?nonce=xyz', {}, 400, 'ENCODING'],
      ['/v1/evidence', {}, 400, 'INVALID_INPUT'],
      ['/v1/evidence?nonce=00&nonce=01', {}, 400, 'INVALID_INPUT'],
      ['/v1/health', { method: 'POST' }, 405, 'INVALID_INPUT'],
      ['/v1/health', { method: 'GET', body: 'x'.repeat(10) }, 413, 'REQUEST_TOO_LARGE'],
      [`/v1/health?${'a'.repeat(3000)}`, {}, 414, 'REQUEST_TOO_LARGE'],
      ['/v1/nothing', {}, 404, 'NOT_FOUND'],
    ];
    for (const [path, opts, status, code] of cases) {
      const r = await get(`${node.url}${path}`, opts);
      assert.equal(r.status, status, path);
      const err = (JSON.parse(r.body) as { error: { code: string; hint: string } }).error;
      assert.equal(err.code, code, path);
      assert.ok(err.hint.length > 10, 'every error carries a next step');
    }
    assert.equal((await get(`${node.url}/v1/health`)).status, 200);
  });

  it('exposes metrics without keys, nonces or identities', async () => {
    const nonce = 'c0ffee'.repeat(10);
    await get(`${node.url}/v1/evidence?nonce=${nonce}`);
    const r = await get(`${node.url}/metrics`);
    assert.equal(r.status, 200);
    assert.match(r.body, /cloister_http_requests_total\{route="\/v1\/evidence",status="200"\}/);
    assert.match(r.body, /cloister_enclave_calls_total/);
    assert.ok(!r.body.includes(nonce));
    assert.ok(!r.body.includes(toHex(node.identityPublicKey)));
    assert.ok(!r.body.includes(node.nodeId));
  });

  it('names a port in use', async () => {
    const port = Number(new URL(node.url).port);
    await assert.rejects(
      startNode({ dataDir: join(tempDir(), 'd'), platformDir, enclaveDir, port, logger: silent }),
      { code: 'PORT_IN_USE' },
    );
  });

  it('refuses a second node on the same data directory', async () => {
    const dataDir = join(tempDir(), 'shared');
    const a = await startNode({ dataDir, platformDir, enclaveDir, port: 0, logger: silent });
    try {
      await assert.rejects(
        startNode({ dataDir, platformDir, enclaveDir, port: 0, logger: silent }),
        {
          code: 'DATA_DIR_LOCKED',
        },
      );
    } finally {
      await a.close();
    }
  });

  it('names an unusable data directory', async () => {
    const file = join(tempDir(), 'a-file');
    writeFileSync(file, 'not a directory');
    await assert.rejects(
      startNode({ dataDir: join(file, 'data'), platformDir, enclaveDir, port: 0, logger: silent }),
      { code: 'DATA_DIR' },
    );
  });

  it('refuses a platform directory inside the data directory', async () => {
    const dataDir = join(tempDir(), 'data');
    await assert.rejects(
      startNode({
        dataDir,
        platformDir: join(dataDir, 'platform'),
        enclaveDir,
        port: 0,
        logger: silent,
      }),
      { code: 'PLATFORM_DIR' },
    );
  });

  it('names a missing enclave build', async () => {
    await assert.rejects(
      startNode({
        dataDir: join(tempDir(), 'd'),
        platformDir,
        enclaveDir: join(tempDir(), 'none'),
        port: 0,
        logger: silent,
      }),
      /run `cloister build`/,
    );
  });

  it('stops cleanly when its data directory lock is taken from it (no crash)', async () => {
    const dataDir = join(tempDir(), 'lost');
    const n = await startNode({ dataDir, platformDir, enclaveDir, port: 0, logger: silent });
    // As after a pause: another start took the lock over as stale, failed, and removed it.
    rmSync(join(dataDir, 'lock'), { recursive: true });
    // The node notices at its next lock refresh (every 5 s), logs and closes itself.
    assert.equal(await n.stopped, 'data-dir-lock-lost');
    await assert.rejects(fetch(`${n.url}/v1/health`));
    // Its store was closed properly: the next start opens it.
    const again = await startNode({ dataDir, platformDir, enclaveDir, port: 0, logger: silent });
    await again.close();
  });

  it('frees its port and directories on close', async () => {
    const dataDir = join(tempDir(), 'closing');
    const n = await startNode({ dataDir, platformDir, enclaveDir, port: 0, logger: silent });
    const port = Number(new URL(n.url).port);
    await n.close();
    await n.close();
    await new Promise<void>((resolve, reject) => {
      const s = createServer().once('error', reject);
      s.listen(port, '127.0.0.1', () => s.close(() => resolve()));
    });
    const again = await startNode({ dataDir, platformDir, enclaveDir, port: 0, logger: silent });
    await again.close();
  });
});
