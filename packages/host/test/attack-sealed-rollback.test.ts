/**
 * Attack: the host rolls back ONE sealed or platform file beside an otherwise current node
 * (DESIGN.md §2: "serve stale storage; roll the disk back to an earlier copy"), each of which
 * authenticates on its own (it is a genuine older copy from the same directory), so only the
 * enclave's cross-checks can catch it:
 *
 * - `sealed/service.sealed` from before a secret rotation, beside the log that holds the rotation
 *   entry (docs/logchain.md §6 and §8: "a rotation entry naming a generation the sealed state
 *   lacks (an older service.sealed restored) is a RollbackDetectedError");
 * - the platform's `counters.json` from two starts ago, so the epoch counter is behind the
 *   store's sealed epoch by more than an interrupted increment (docs/logchain.md §5, row
 *   `e > v + 1`: "platform counters rolled back").
 *
 * Each start is refused by name and the node does not serve; with the current file
 * put back, the same data directory starts and serves again (so the refusal is the rollback's, not
 * damage the test did).
 */
import assert from 'node:assert/strict';
import { copyFileSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { createLogger } from '../src/node/logger.js';
import { rotateServiceSecret, startNode } from '../src/node/node.js';
import { tempDir, testBuild } from './helpers.js';

const silent = createLogger({ level: 'silent' });

/** A node's directories; `run` starts it, checks it serves, and stops it. */
async function world() {
  const { outDir: enclaveDir } = await testBuild();
  const home = tempDir('cloister-sealed-rollback-');
  const dirs = { dataDir: join(home, 'data'), platformDir: join(home, 'platform'), enclaveDir };
  const start = () => startNode({ ...dirs, port: 0, logger: silent, signIntervalMs: 0 });
  const run = async (): Promise<{ epoch: number; generation: number }> => {
    const node = await start();
    try {
      const r = await fetch(`${node.url}/v1/status`);
      assert.equal(r.status, 200);
      return (await r.json()) as { epoch: number; generation: number };
    } finally {
      await node.close();
    }
  };
  return { ...dirs, home, start, run };
}

describe('attack: one sealed or platform file rolled back', () => {
  it('service.sealed from before a secret rotation, beside the rotated log: refused', async () => {
    const w = await world();
    await w.run();
    const sealed = join(w.dataDir, 'sealed', 'service.sealed');
    const before = join(w.home, 'service.sealed.before-rotation');
    copyFileSync(sealed, before);
    const rotated = await rotateServiceSecret({ ...w, logger: silent });
    assert.equal(rotated.generation, 1);
    const after = join(w.home, 'service.sealed.after-rotation');
    copyFileSync(sealed, after);
    assert.notDeepEqual(readFileSync(before), readFileSync(after));

    // The older blob is genuine (it opens), but it lacks the generation the log rotated to.
    // docs/logchain.md §6/§8 name this RollbackDetectedError (the log's check of the rotation
    // entry); today the engine meets a record under generation 1 first, while it opens, and
    // refuses with LEDGER_INTEGRITY naming that generation. Either refusal is safe: nothing is
    // served, nothing is written under the old generation.
    copyFileSync(before, sealed);
    await assert.rejects(w.start(), (e: Error & { code?: string }) => {
      assert.ok(['ROLLBACK_DETECTED', 'LEDGER_INTEGRITY'].includes(e.code ?? ''), String(e));
      assert.match(e.message, /generation 1\b/);
      return true;
    });

    // Control: the current blob starts the same directory, on the rotated generation.
    copyFileSync(after, sealed);
    assert.equal((await w.run()).generation, 1);
  });

  it('sealed files from before a security upgrade, given to the older version on the store the newer one ran on: refused', async () => {
    // Each old file opens at its own version (sealed at svn 2, max 2), and the epoch counter is
    // only about the store's age: the store's sealed checkpoint records the highest version that
    // ran on it, and the older one refuses it (a red team started version 2 here, which then
    // served the app version 3 had deployed).
    const home = tempDir('cloister-svn-rollback-');
    const dirs = { dataDir: join(home, 'data'), platformDir: join(home, 'platform') };
    const start = async (svn: number) =>
      startNode({ ...dirs, enclaveDir: (await testBuild(svn)).outDir, port: 0, logger: silent });
    const sealed = (f: string) => join(dirs.dataDir, 'sealed', f);
    const files = ['node.sealed', 'service.sealed'];
    await (await start(2)).close();
    for (const f of files) copyFileSync(sealed(f), join(home, `${f}.v2`));
    const v3 = await start(3);
    const service = v3.serviceIdentity;
    await v3.close();
    for (const f of files) copyFileSync(sealed(f), join(home, `${f}.v3`));

    for (const f of files) copyFileSync(join(home, `${f}.v2`), sealed(f));
    await assert.rejects(start(2), (e: Error & { code?: string }) => {
      assert.equal(e.code, 'SECURITY_VERSION_ROLLBACK', e.message);
      assert.match(
        e.message,
        /the store was last run by \(its sealed checkpoint records\) security version 3; this enclave is version 2/,
      );
      return true;
    });
    // Control: version 3 with its own files starts the same directory, the same service.
    for (const f of files) copyFileSync(join(home, `${f}.v3`), sealed(f));
    const again = await start(3);
    assert.deepEqual(again.serviceIdentity, service);
    await again.close();
  });

  it('counters.json from two starts ago (the counter behind the sealed epoch): refused', async () => {
    const w = await world();
    const counters = join(w.platformDir, 'counters.json');
    const first = await w.run();
    const old = join(w.home, 'counters.json.old');
    copyFileSync(counters, old);
    await w.run();
    const third = await w.run();
    assert.equal(third.epoch, first.epoch + 2);
    const current = join(w.home, 'counters.json.current');
    copyFileSync(counters, current);

    // The old file authenticates (same platform directory: its MAC holds), but it is two epochs
    // behind the store's checkpoint: not the one interrupted increment a kill can leave.
    copyFileSync(old, counters);
    await assert.rejects(w.start(), (e: Error & { code?: string }) => {
      assert.equal(e.code, 'ROLLBACK_DETECTED', e.message);
      assert.match(e.message, /counter \(\d+\) is behind the store's epoch/);
      return true;
    });

    // Control: the current counters start the same directory.
    copyFileSync(current, counters);
    assert.equal((await w.run()).epoch, third.epoch + 1);
  });
});
