/**
 * Serialisable app transactions (docs/app-abi.md §4): what a transaction learns through
 * `ledger_history` or `ledger_prove` is in its read set, like `ledger_get`, so a concurrent write
 * of that key makes it conflict instead of committing a decision taken on an older state (write
 * skew, lost updates). The calls read the snapshot; the conflict check is the transaction's.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createAppRuntime } from '../src/apps/runtime/index.js';
import { createLedgerEngine } from '../src/ledger/ledger/index.js';
import { abiKit } from './app-runtime-wasm.js';
import { hostStores, options } from './ledger-engine-helpers.js';
import { I, i32 } from './sandbox-wasm.js';

const CALLER = Uint8Array.from({ length: 65 }, (_, i) => (i === 0 ? 4 : i));
const kit = abiKit({ t: 't', k: 'k', x: 'x', v: '1' });
const c = kit.call;
const setTo = (key: string) => [
  ...kit.str('t'),
  ...kit.str(key),
  ...kit.str('v'),
  ...c('ledger_set'),
];

const app = kit.module({
  routes: [
    // Writes t/k.
    { name: 'w', kind: 'transaction', body: setTo('k') },
    // Reads t/k through history (or a proof), then writes t/x: a decision from what it read.
    {
      name: 'viaHistory',
      kind: 'transaction',
      body: [
        ...kit.str('t'),
        ...kit.str('k'),
        ...i32(1),
        ...c('ledger_history'),
        I.drop,
        ...setTo('x'),
      ],
    },
    {
      name: 'viaProof',
      kind: 'transaction',
      body: [...kit.str('t'), ...kit.str('k'), ...c('ledger_prove'), I.drop, ...setTo('x')],
    },
  ],
});

for (const method of ['viaHistory', 'viaProof']) {
  test(`a key read through ${method === 'viaHistory' ? 'ledger_history' : 'ledger_prove'} conflicts with a concurrent write of it`, async () => {
    const { createMemoryStore } = await hostStores();
    const engine = await createLedgerEngine(options(createMemoryStore()));
    // No re-run: the conflict itself is what the test looks for.
    const runtime = createAppRuntime({ engine, conflictRetries: 0 });
    await runtime.deploy('A', app);
    const call = (m: string) =>
      runtime.call({ app: 'A', method: m, kind: 'transaction', args: 'null', caller: CALLER });
    // Both run on the same snapshot; `w` commits first in the group, then the reader's commit is
    // checked against it: its read of t/k is stale.
    const [w, r] = await Promise.allSettled([call('w'), call(method)]);
    assert.equal(w.status, 'fulfilled');
    assert.equal(r.status, 'rejected');
    assert.equal((r as PromiseRejectedResult).reason?.code, 'TX_CONFLICT');
    // Re-run on the new state, it commits.
    await call(method);
  });
}
