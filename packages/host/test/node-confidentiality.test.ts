/**
 * The node's identity private key leaves the enclave only sealed: it appears in no form in the
 * data directory, the platform directory, the logs or the metrics (DESIGN.md §2).
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { test } from 'node:test';
import { openNodeState } from '../../enclave/src/node-state.js';
import { createLogger } from '../src/node/logger.js';
import { startNode } from '../src/node/node.js';
import { openSimulationPlatform } from '../src/platform/index.js';
import { tempDir, testBuild } from './helpers.js';
import { scanBytes, scanDirectory } from './leak-scan.js';

test('the identity private key is in no file, log line or metric', async () => {
  const b = await testBuild();
  const dataDir = join(tempDir(), 'data');
  const platformDir = join(tempDir(), 'platform');
  const lines = new PassThrough();
  const chunks: Buffer[] = [];
  lines.on('data', (c: Buffer) => chunks.push(c));
  const logger = createLogger({ level: 'trace', destination: lines });
  const node = await startNode({ dataDir, platformDir, enclaveDir: b.outDir, port: 0, logger });
  await fetch(`${node.url}/v1/evidence?nonce=${'ab'.repeat(32)}`);
  const metrics = new Uint8Array(Buffer.from(await (await fetch(`${node.url}/metrics`)).text()));
  await node.close();

  // Recover the private key the way only the platform's holder can (simulation: the test).
  const platform = openSimulationPlatform({ dir: platformDir });
  const identity = platform.admit(
    new Uint8Array(readFileSync(join(b.outDir, 'enclave.js'))),
    new Uint8Array(readFileSync(join(b.outDir, 'enclave.manifest'))),
  );
  const nodeId = (
    JSON.parse(readFileSync(join(dataDir, 'node.json'), 'utf8')) as { nodeId: string }
  ).nodeId;
  const state = await openNodeState(
    { sealKey: async (policy, svn, keyId) => platform.sealKey(identity, policy, svn, keyId) },
    nodeId,
    b.svn,
    new Uint8Array(readFileSync(join(dataDir, 'sealed', 'node.sealed'))),
  );
  platform.close();
  assert.deepEqual(state.identity.publicKey, node.identityPublicKey);
  const jwk = state.identity.privateKey.export({ format: 'jwk' });
  const scalar = new Uint8Array(Buffer.from(jwk.d ?? '', 'base64url'));
  const pkcs8 = new Uint8Array(state.identity.privateKey.export({ type: 'pkcs8', format: 'der' }));
  assert.equal(scalar.length, 32);
  const secrets = new Map([
    ['identity private scalar', scalar],
    ['identity private key (PKCS #8)', pkcs8],
  ]);

  const leaks = [
    ...scanDirectory(dataDir, secrets),
    ...scanDirectory(platformDir, secrets),
    ...scanBytes(Buffer.concat(chunks), secrets, 'logs'),
    ...scanBytes(metrics, secrets, 'metrics'),
  ];
  assert.deepEqual(leaks, []);
  assert.ok(chunks.length > 0, 'the node logged something');
});
