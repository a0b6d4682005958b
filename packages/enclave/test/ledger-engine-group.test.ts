/// <reference types="node" />
/**
 * Group commit as one commit (docs/ledger-format.md §11.7): a commit index covers one group; its
 * transactions are serialised in queue order, conflict-checked against the earlier ones of the
 * group, and the last write of a key wins (one version per key per index).
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  createLedgerEngine,
  type LedgerEngine,
  TransactionConflictError,
} from '../src/ledger/ledger/index.js';
import { hostStores, options, type TestStore, te } from './ledger-engine-helpers.js';

async function fresh(): Promise<{ store: TestStore; engine: LedgerEngine }> {
  const store = (await hostStores()).createMemoryStore();
  return { store, engine: await createLedgerEngine(options(store)) };
}

describe('ledger engine: one commit per group', () => {
  test('one group is one commit: serialised in queue order, the last write of a key wins', async () => {
    const { engine } = await fresh();
    const t0 = engine.begin();
    t0.set('a', 't', te('k'), te('0'));
    t0.set('a', 't', te('gone'), te('g'));
    await t0.commit();
    const w1 = engine.begin();
    w1.set('a', 't', te('k'), te('1'));
    w1.set('a', 't', te('tmp'), te('t'));
    const w2 = engine.begin();
    w2.set('a', 't', te('k'), te('2'));
    w2.remove('a', 't', te('tmp'));
    w2.remove('a', 't', te('gone'));
    // Snapshot 1, reads k: w1, accepted before it in the group, wrote k.
    const reader = engine.begin();
    reader.get('a', 't', te('k'));
    reader.set('a', 't', te('r'), te('r'));
    // Lists t, which w1 wrote earlier in the group.
    const lister = engine.begin();
    lister.list('a', 't');
    lister.set('a', 'u', te('l'), te('l'));
    const none = engine.begin();
    none.remove('a', 't', te('never'));
    const out = await Promise.allSettled([w1, w2, reader, lister, none].map((tx) => tx.commit()));
    const [r1, r2, r3, r4, r5] = out;
    assert.ok(r3?.status === 'rejected' && r3.reason instanceof TransactionConflictError);
    assert.ok(r4?.status === 'rejected' && r4.reason instanceof TransactionConflictError);
    for (const r of [r1, r2, r5]) {
      assert.ok(r?.status === 'fulfilled');
      assert.equal(r.value.index, 2);
      assert.deepEqual(r.value.stateHash, engine.stateHash);
    }
    assert.equal(engine.index, 2);
    const v = engine.at();
    assert.deepEqual(v.get('a', 't', te('k')), te('2'));
    assert.equal(v.get('a', 't', te('tmp')), undefined);
    assert.equal(v.get('a', 't', te('gone')), undefined);
    assert.equal(v.get('a', 't', te('r')), undefined);
    assert.equal(v.get('a', 'u', te('l')), undefined);
    assert.deepEqual(v.history('a', 't', te('k')), [
      { index: 2, value: te('2') },
      { index: 1, value: te('0') },
    ]);
    // Set then removed in one group, with no value before: no version at all.
    assert.deepEqual(v.history('a', 't', te('tmp')), []);
    assert.deepEqual(v.history('a', 't', te('gone')), [
      { index: 2, value: undefined },
      { index: 1, value: te('g') },
    ]);
    assert.deepEqual(engine.at(1).get('a', 't', te('k')), te('0'));
  });
});
