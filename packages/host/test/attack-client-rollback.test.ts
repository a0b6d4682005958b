/**
 * Attack: the host rolls the whole node back — the data directory AND the simulated platform's
 * counters — to a copy taken while it was stopped, then lets the node write a different history
 * from there (DESIGN.md §2: "roll the disk back to an earlier copy"; docs/platform.md §8: on
 * simulation the host holds the counters file, so the epoch check cannot see this; docs/logchain.md
 * §7: "Clients holding a receipt or a signed root from the cut part detect it").
 *
 * The node starts on the restored copy (the documented limit, asserted so that a change shows).
 * The defence is the client's: a client that verified a receipt from the cut part remembers that
 * signed root (here in its state file, as a CLI or a Node app keeps it across runs) and refuses
 * to connect with ROLLBACK_DETECTED — before any call — to the stale log (its newest signature
 * is behind the root it holds), then, once the host has grown a fork past that size, to the fork
 * (its newest signed root has no consistency proof from the one held), while keeping the root it
 * had. A client without that memory accepts the fork (asserted too).
 */
import assert from 'node:assert/strict';
import { cpSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { type Client, connect, fileState, generateIdentity } from '@cloister/client/node';
import { isCloisterError, toHex } from '@cloister/core';
import { abiKit, echoBody } from '../../enclave/test/app-runtime-wasm.js';
import { createLogger } from '../src/node/logger.js';
import { type RunningNode, startNode } from '../src/node/node.js';
import { loadOrCreateOperatorKey } from '../src/node/operator.js';
import { deployApp } from './deploy-helpers.js';
import { tempDir, testBuild } from './helpers.js';

/** A one-route app (a query echoing its arguments): deploys are what grow the log here. */
function appModule(): Uint8Array {
  const kit = abiKit();
  return kit.module({ routes: [{ name: 'echo', kind: 'query', body: echoBody(kit) }] });
}

interface Status {
  index: number;
  lastSigned: number;
}

async function status(node: RunningNode): Promise<Status> {
  return (await (await fetch(`${node.url}/v1/status`)).json()) as Status;
}

describe('attack: data directory and platform counters rolled back together', () => {
  const home = tempDir('cloister-rollback-home-');
  const dataDir = join(home, 'data');
  const platformDir = join(home, 'platform');
  const operatorPem = join(home, 'operator.pem');
  const module = appModule();
  let enclaveDir: string;
  let constraint: string;
  let node: RunningNode | undefined;
  let client: Client | undefined;

  const start = () =>
    startNode({
      dataDir,
      platformDir,
      enclaveDir,
      port: 0,
      logger: createLogger({ level: 'silent' }),
      signIntervalMs: 20,
      operatorPublicKey: loadOrCreateOperatorKey(operatorPem).publicKey,
    });

  const stop = async () => {
    await client?.close();
    client = undefined;
    await node?.close();
    node = undefined;
  };

  const deploy = async (n: RunningNode, app: string): Promise<string> =>
    (await deployApp(n, operatorPem, app, module)).txid;

  /** A client of `n` whose pins and signed roots live in `stateDir` (kept across runs). */
  const clientOf = async (n: RunningNode, stateDir: string): Promise<Client> =>
    connect(n.url, {
      constraint,
      identity: await generateIdentity(),
      state: fileState(stateDir),
      reconnect: false,
    });

  const rollbackDetected = (e: unknown): boolean => {
    assert.ok(isCloisterError(e), `expected a named error, got ${String(e)}`);
    assert.equal(e.code, 'ROLLBACK_DETECTED', e.message);
    return true;
  };

  before(async () => {
    const build = await testBuild();
    enclaveDir = build.outDir;
    constraint = `C:${toHex(build.measurement)} SEC:INSECURE`;
  });
  after(stop);

  it("a client that saw the cut part refuses the forked log's receipts; its root stays", async () => {
    // 1. The node runs, an app is deployed; the node stops. The host copies both directories.
    node = await start();
    const early = await deploy(node, 'before-copy');
    const service = node.serviceIdentity;
    await stop();
    const copy = tempDir('cloister-rollback-copy-');
    cpSync(dataDir, join(copy, 'data'), { recursive: true });
    cpSync(platformDir, join(copy, 'platform'), { recursive: true });

    // 2. The node runs on; a client verifies the receipt of a later deploy and remembers its root.
    node = await start();
    const cut = await deploy(node, 'in-the-cut-part');
    const stateDir = tempDir('cloister-rollback-client-');
    client = await clientOf(node, stateDir);
    const seen = await client.receipt(cut, { wait: true });
    const remembered = await fileState(stateDir).roots.get(service);
    assert.ok(remembered, 'the client stored the signed root of the receipt it checked');
    assert.equal(remembered.size, seen.verified.size);
    await stop();

    // 3. The host restores both directories. The counter moved back with the store, so the
    //    node cannot see it (docs/platform.md §8, docs/logchain.md §7): it starts and serves.
    rmSync(dataDir, { recursive: true, force: true });
    rmSync(platformDir, { recursive: true, force: true });
    cpSync(join(copy, 'data'), dataDir, { recursive: true });
    cpSync(join(copy, 'platform'), platformDir, { recursive: true });
    node = await start();
    assert.deepEqual(node.serviceIdentity, service, 'the same service key signs the fork');
    assert.ok((await status(node)).index < Number(cut.split('.')[1]), 'the cut part is gone');
    // The stale log alone: its newest signature is behind the root the client holds, so the
    // client refuses it at connect, before a query or call could read the stale state.
    await assert.rejects(clientOf(node, stateDir), (e: unknown) => {
      rollbackDetected(e);
      assert.match((e as Error).message, /older than the size \d+ root/);
      return true;
    });

    // 4. The forked history: the log grows again past the size the client saw, so its roots
    //    look newer, and the txid the client holds a receipt for names another entry.
    let last = '';
    for (let i = 0; (await status(node)).lastSigned <= remembered.size + 1; i++) {
      assert.ok(i < 20, 'the forked log grows');
      last = await deploy(node, `fork-${i}`);
    }

    // 5. The same client state, a new connection: the fork's newest signed root does not extend
    //    the one held (no consistency proof reaches it), so connect refuses it.
    await assert.rejects(clientOf(node, stateDir), rollbackDetected);
    const kept = await fileState(stateDir).roots.get(service);
    assert.ok(kept);
    assert.equal(kept.size, remembered.size);
    assert.deepEqual(kept.root, remembered.root, 'the refused roots replaced nothing');

    // The limit: a client with no memory of the cut part accepts the fork (it is a valid log),
    // the receipt of the txid the first client verified included (now another entry).
    const fresh = await clientOf(node, tempDir('cloister-rollback-fresh-'));
    try {
      const r = await fresh.receipt(last, { wait: true });
      assert.equal(r.verified.txid, last);
      assert.equal((await fresh.receipt(cut, { wait: true })).verified.txid, cut);
      assert.equal((await fresh.receipt(early, { wait: true })).verified.txid, early);
    } finally {
      await fresh.close();
    }
  });
});
