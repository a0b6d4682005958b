/// <reference types="node" />
/**
 * Crash safety of the ledger engine (issue 3, point 10; docs/ledger-format.md §11.7), the long
 * runs (`npm run test:slow`): 10 seeds x 25 power cuts of the fault-injecting store (250 cuts,
 * keep 'none' and 'prefix'), and 3 seeds x 10 SIGKILLs of a child committing to LevelDB in a loop.
 * Every reopening shows exactly the last acknowledged commit or a later one, and its reads and
 * proofs verify against the model at that index.
 *
 * Replay: a failure names its seed; `CLOISTER_CRASH_SEED=<seed>` reruns exactly that seed (and
 * `CLOISTER_CRASH_CUTS=<n>` stops after the failing cut).
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { runKills } from './fixtures/ledger/kill-run.js';
import { runPowerCuts } from './fixtures/ledger/power-cut.js';

const replay = process.env.CLOISTER_CRASH_SEED;
const CUT_SEEDS = replay === undefined ? [101, 102, 103, 104, 105, 106, 107, 108, 109, 110] : [];
const CUTS_PER_SEED = Number(process.env.CLOISTER_CRASH_CUTS ?? 25);
const KILL_SEEDS = replay === undefined ? [201, 202, 203] : [Number(replay)];
const KILLS_PER_SEED = 10;

describe('ledger crash safety (long)', () => {
  let totalCuts = 0;
  for (const seed of replay === undefined ? CUT_SEEDS : [Number(replay)]) {
    test(`${CUTS_PER_SEED} power cuts, seed ${seed}`, async (t) => {
      const r = await runPowerCuts(seed, CUTS_PER_SEED);
      t.diagnostic(`seed ${seed}: ${JSON.stringify(r)}`);
      assert.equal(r.cuts, CUTS_PER_SEED);
      totalCuts += r.cuts;
    });
  }

  test('at least 200 power cuts were made (issue 3, point 10)', {
    skip: replay !== undefined,
  }, (t) => {
    t.diagnostic(`power cuts: ${totalCuts}`);
    assert.ok(totalCuts >= 200, `${totalCuts} cuts`);
  });

  for (const seed of KILL_SEEDS) {
    test(`${KILLS_PER_SEED} SIGKILLs of a committing child, seed ${seed}`, async (t) => {
      const r = await runKills(seed, KILLS_PER_SEED);
      t.diagnostic(`seed ${seed}: ${JSON.stringify(r)}`);
      assert.equal(r.kills, KILLS_PER_SEED);
      assert.ok(r.acked > 0, 'the children acknowledged commits before they were killed');
    });
  }
});
