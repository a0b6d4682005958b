/**
 * One client's large transactions must not stop the node (threat model: a client's input never
 * ends the service for others). Each transaction here stays within its own limits (1 MiB values,
 * the 16 MiB write set), but queued together they once made one commit group whose store batch
 * passed the boundary's 64 MiB frame (or the store's 48 MiB write cap): the write failed, the
 * ledger stopped for good and the node with it (a red team's finding). Groups are now bounded by
 * what one transaction may write (engine.ts nextGroup; ledger-engine-group.test.ts pins the rule).
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { connect, generateIdentity } from '@cloister/client/node';
import { toHex } from '@cloister/core';
import { abiKit, SCRATCH2 } from '../../enclave/test/app-runtime-wasm.js';
import { I, i32 } from '../../enclave/test/sandbox-wasm.js';
import { createLogger } from '../src/node/logger.js';
import { type RunningNode, startNode } from '../src/node/node.js';
import { loadOrCreateOperatorKey } from '../src/node/operator.js';
import { deployApp } from './deploy-helpers.js';
import { tempDir, testBuild } from './helpers.js';

/** A transaction writing `mib` random 16-byte keys of 1 MiB each (zeros from a grown memory). */
function writes(kit: ReturnType<typeof abiKit>, mib: number): number[] {
  const body: number[] = [...i32(20), ...I.memoryGrow, I.drop];
  for (let k = 0; k < mib; k++) {
    body.push(
      ...i32(SCRATCH2),
      ...i32(16),
      ...kit.call('random_bytes'),
      ...kit.str('t'),
      ...i32(SCRATCH2),
      ...i32(16),
      ...i32(65536),
      ...i32(1 << 20),
      ...kit.call('ledger_set'),
    );
  }
  return [...body, ...kit.str('ok'), ...kit.call('result_set')];
}

function appModule(): Uint8Array {
  const kit = abiKit({ t: 't', ok: '1' });
  return kit.module({
    routes: [
      { name: 'store2', kind: 'transaction', body: writes(kit, 2) },
      { name: 'store15', kind: 'transaction', body: writes(kit, 15) },
      { name: 'ping', kind: 'query', body: [...kit.str('ok'), ...kit.call('result_set')] },
    ],
  });
}

let node: RunningNode | undefined;
after(() => node?.close());

test("one client's concurrent large transactions all commit, and the node serves others", {
  timeout: 600_000,
}, async () => {
  const build = await testBuild();
  const operatorPem = join(tempDir(), 'operator.pem');
  node = await startNode({
    dataDir: join(tempDir(), 'data'),
    platformDir: join(tempDir(), 'platform'),
    enclaveDir: build.outDir,
    port: 0,
    logger: createLogger({ level: 'silent' }),
    operatorPublicKey: loadOrCreateOperatorKey(operatorPem).publicKey,
  });
  await deployApp(node, operatorPem, 'files', appModule());
  const constraint = `C:${toHex(build.measurement)} SEC:INSECURE`;
  const open = async () =>
    connect(node?.url ?? '', { constraint, identity: await generateIdentity() });
  const index = async () =>
    ((await (await fetch(`${node?.url}/v1/status`)).json()) as { index: number }).index;
  const honest = await open();
  const attacker = await open();
  try {
    const before = await index();
    // 32 of 2 MiB (one session's whole budget of calls), then 3 of 15 MiB: both made a batch
    // over the caps.
    for (const [method, n] of [
      ['store2', 32],
      ['store15', 3],
    ] as const) {
      const done = await Promise.all(
        Array.from({ length: n }, () => attacker.app('files').transact(method, {})),
      );
      assert.deepEqual(
        done.map((t) => t.result),
        done.map(() => 1),
      );
      assert.equal(new Set(done.map((t) => t.txid)).size, n);
    }
    const running = await Promise.race([
      node.stopped.then(() => 'stopped'),
      new Promise((r) => setTimeout(() => r('running'), 500)),
    ]);
    assert.equal(running, 'running', "one client's transactions stopped the node");
    assert.equal((await honest.app('files').query('ping', {})).result, 1);
    assert.ok((await index()) >= before + 35);
  } finally {
    await honest.close();
    await attacker.close();
  }
});
