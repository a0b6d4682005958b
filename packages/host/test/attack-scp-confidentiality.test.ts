/**
 * Attack: the host reads everything it holds and emits after real app traffic (DESIGN.md §2:
 * "nothing leaves the enclave in plaintext unless it is public by design: ledger records, log
 * entries, sealed state ... are encrypted; logs and metrics carry no app data, no keys, no client
 * identities"; DESIGN.md §11: an entry's public metadata is "never the caller, method or data").
 *
 * ledger-confidentiality.test.ts covers ledger writes made by a test command inside the enclave
 * and node-confidentiality.test.ts the node identity key; this goes through the path clients use:
 * a real node with an app deployed, the client SDK over `/v1/scp` with a known identity, a
 * transaction (arguments written to the ledger, notified back and answered), a query, an app
 * refusal whose message carries the arguments, and a repeated request id. Then every byte the host
 * has — the data directory (LevelDB files and their logical keys and values, sealed files), the
 * platform directory, the node's log lines at level trace and /metrics — is scanned for the
 * client's identity key and caller id, the arguments, results, notification and refusal text, the
 * request ids and claims salts, and for the service's own secrets, recovered the way only the
 * platform's holder can (simulation): the service private key, every ledger secret and the root
 * record key. None may appear in any form (raw, hex, base64, UTF-16).
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { test } from 'node:test';
import { connect, generateIdentity } from '@cloister/client/node';
import { isCloisterError, sha256, toHex, utf8 } from '@cloister/core';
import { ClassicLevel } from 'classic-level';
import { openServiceState, serviceStateOwner } from '../../enclave/src/log/index.js';
import { abiKit, echoBody, putArgsBody, SCRATCH2 } from '../../enclave/test/app-runtime-wasm.js';
import { get, i32 } from '../../enclave/test/sandbox-wasm.js';
import { createLogger } from '../src/node/logger.js';
import { startNode } from '../src/node/node.js';
import { loadOrCreateOperatorKey } from '../src/node/operator.js';
import { openSimulationPlatform } from '../src/platform/index.js';
import { deployApp } from './deploy-helpers.js';
import { tempDir, testBuild } from './helpers.js';
import { scanBytes, scanDirectory } from './leak-scan.js';

const APP = 'safebox';

/**
 * put (transaction): t/k := args, notify(args), result = args; echo (query): result = args;
 * refuse (transaction): fails with code "refused" and the arguments as its message.
 */
function appModule(): Uint8Array {
  const kit = abiKit({ t: 't', k: 'k', code: 'refused' });
  const c = kit.call;
  const args = [...i32(SCRATCH2), ...get(1)];
  return kit.module({
    routes: [
      {
        name: 'put',
        kind: 'transaction',
        body: putArgsBody(kit, [...args, ...c('notify')], [...args, ...c('result_set')]),
      },
      { name: 'echo', kind: 'query', body: echoBody(kit) },
      {
        name: 'refuse',
        kind: 'transaction',
        body: putArgsBody(kit, [...kit.str('code'), ...args, ...c('fail')]),
      },
    ],
  });
}

/** Every logical key and value of the LevelDB store (its files are Snappy-compressed). */
async function storeEntries(dir: string): Promise<Buffer> {
  const db = new ClassicLevel<Uint8Array, Uint8Array>(dir, {
    keyEncoding: 'view',
    valueEncoding: 'view',
  });
  const parts: Buffer[] = [];
  try {
    for await (const [key, value] of db.iterator())
      parts.push(Buffer.from(key), Buffer.from(value));
  } finally {
    await db.close();
  }
  return Buffer.concat(parts);
}

test('app data, client identities and service secrets are in no store file, log line or metric', async () => {
  const build = await testBuild();
  const home = tempDir('cloister-scp-leak-');
  const dataDir = join(home, 'data');
  const platformDir = join(home, 'platform');
  const operatorPem = join(home, 'operator.pem');
  const out = new PassThrough();
  const chunks: Buffer[] = [];
  out.on('data', (c: Buffer) => chunks.push(c));
  const node = await startNode({
    dataDir,
    platformDir,
    enclaveDir: build.outDir,
    port: 0,
    logger: createLogger({ level: 'trace', destination: out }),
    signIntervalMs: 20,
    operatorPublicKey: loadOrCreateOperatorKey(operatorPem).publicKey,
  });

  const secrets = new Map<string, Uint8Array>();
  const unique = (what: string): string => {
    const s = `${what}-${toHex(new Uint8Array(randomBytes(12)))}`;
    secrets.set(what, utf8(s));
    return s;
  };
  let servicePublicKey: Uint8Array;
  let metrics: Uint8Array;
  try {
    servicePublicKey = node.servicePublicKey;
    const { codeId } = await deployApp(node, operatorPem, APP, appModule());

    const identity = await generateIdentity();
    secrets.set('client identity key', identity.publicKey);
    const callerId = sha256(
      new Uint8Array([
        ...utf8('cloister/caller/v1'),
        0,
        0,
        APP.length,
        ...utf8(APP),
        ...identity.publicKey,
      ]),
    );
    secrets.set('caller id', callerId);
    const client = await connect(node.url, {
      constraint: `C:${toHex(build.measurement)} SEC:INSECURE APP:${APP}=${toHex(codeId)}`,
      identity,
    });
    try {
      const app = client.app(APP);
      const put = { account: unique('account number'), balance: unique('salary figure') };
      const requestId = unique('request id');
      const first = await app.transact('put', put, { requestId });
      assert.equal(first.json, JSON.stringify(put));
      assert.deepEqual(first.notifications, [put], 'the notification came back');
      secrets.set('transaction arguments', utf8(JSON.stringify(put)));
      secrets.set('claims salt', first.claims.salt);
      const again = await app.transact('put', put, { requestId });
      assert.equal(again.repeated, true);
      assert.equal(again.txid, first.txid);
      const q = { question: unique('query argument') };
      assert.equal((await app.query('echo', q)).json, JSON.stringify(q));
      const refusal = { reason: unique('refusal text') };
      await assert.rejects(app.transact('refuse', refusal), (e: unknown) => {
        assert.ok(isCloisterError(e, 'APP_ERROR'), String(e));
        assert.match((e as Error).message, /refusal text-/, 'the client read the refusal');
        return true;
      });
      // The receipt of the transaction: signed, so the log's signature entries are written too.
      await client.receipt(first.txid, { wait: true, claims: first.claims });
    } finally {
      await client.close();
    }
    metrics = new Uint8Array(Buffer.from(await (await fetch(`${node.url}/metrics`)).text()));
  } finally {
    await node.close();
  }

  // The service's secrets, opened the way only the platform's holder can (simulation).
  const platform = openSimulationPlatform({ dir: platformDir });
  const identity = platform.admit(
    new Uint8Array(readFileSync(join(build.outDir, 'enclave.js'))),
    new Uint8Array(readFileSync(join(build.outDir, 'enclave.manifest'))),
  );
  const { state } = await openServiceState(
    { sealKey: async (policy, svn, keyId) => platform.sealKey(identity, policy, svn, keyId) },
    serviceStateOwner(node.identityPublicKey),
    build.svn,
    new Uint8Array(readFileSync(join(dataDir, 'sealed', 'service.sealed'))),
  );
  platform.close();
  assert.deepEqual(state.servicePublicKey, servicePublicKey, 'the right state was opened');
  const jwk = state.serviceKey.export({ format: 'jwk' });
  secrets.set('service private scalar', new Uint8Array(Buffer.from(jwk.d ?? '', 'base64url')));
  secrets.set('root record key', state.rootKey);
  for (const s of state.secrets) secrets.set(`ledger secret ${s.generation}`, s.secret);

  const logs = Buffer.concat(chunks);
  const entries = await storeEntries(join(dataDir, 'store'));
  const leaks = [
    ...scanDirectory(dataDir, secrets),
    ...scanDirectory(platformDir, secrets),
    ...scanBytes(entries, secrets, 'store entries'),
    ...scanBytes(logs, secrets, 'logs'),
    ...scanBytes(metrics, secrets, 'metrics'),
  ];
  assert.deepEqual(leaks, []);
  // Positive controls: the scan sees what is public by design, and the node did log and count.
  const control = new Map([
    ['service public key', servicePublicKey],
    ['app id in the public metadata', utf8(APP)],
  ]);
  assert.ok(scanBytes(entries, control, 'store entries').length > 0);
  assert.ok(logs.length > 0, 'the node logged');
  assert.match(Buffer.from(metrics).toString(), /cloister_/);
  assert.doesNotMatch(logs.toString(), /app\.trace/, 'app trace is off by default');
});
