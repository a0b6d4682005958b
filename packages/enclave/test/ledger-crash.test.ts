/// <reference types="node" />
/**
 * Crash safety of the ledger engine (issue 3, point 10; docs/ledger-format.md §11.7), the quick
 * part: a few seeded power cuts of the fault-injecting store, and a few SIGKILLs of a child
 * committing to LevelDB in a loop. Every reopening shows exactly the last acknowledged commit or
 * a later one, and its reads and proofs verify against the model. The long runs (>= 200 cuts,
 * tens of kills) are in ledger-crash-slow.test.ts (`npm run test:slow`).
 *
 * Replay: a failure names its seed; `CLOISTER_CRASH_SEED=<seed>` reruns exactly that seed (and
 * `CLOISTER_CRASH_CUTS=<n>` stops after the failing cut).
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { runKills } from './fixtures/ledger/kill-run.js';
import { runPowerCuts } from './fixtures/ledger/power-cut.js';

const replay = process.env.CLOISTER_CRASH_SEED;
const seeds = replay === undefined ? [1, 2] : [Number(replay)];
const cuts = Number(process.env.CLOISTER_CRASH_CUTS ?? 4);

describe('ledger crash safety (quick)', () => {
  for (const seed of seeds) {
    test(`power cuts, seed ${seed}: reopening shows the last acknowledged commit or a later one`, async (t) => {
      const r = await runPowerCuts(seed, cuts);
      t.diagnostic(`seed ${seed}: ${JSON.stringify(r)}`);
      assert.equal(r.cuts, cuts);
      assert.ok(r.finalIndex > 0, 'the run committed something');
    });
  }

  test('the power-cut check fails, naming its seed, when a store loses acknowledged commits', async () => {
    await assert.rejects(
      runPowerCuts(3, 6, { sabotage: true }),
      /CLOISTER_CRASH_SEED=3 .*reopened at \d+, but \d+ was acknowledged/,
    );
  });

  test(`SIGKILL of a committing child, seed ${seeds[0]}: reopening shows the last acked commit or a later one`, async (t) => {
    const seed = seeds[0] as number;
    const r = await runKills(seed, 3);
    t.diagnostic(`seed ${seed}: ${JSON.stringify(r)}`);
    assert.equal(r.kills, 3);
    assert.ok(r.acked > 0, 'the child acknowledged commits before it was killed');
  });
});
