/// <reference types="node" />
/**
 * The ledger engine (issue 3, points 3, 5, 6, 7, 8; docs/ledger-format.md §11) against a
 * Map-of-Maps model: contents, one state hash move per commit, versions and history, reads at
 * earlier indexes, listing with cursors, state proofs, transactions, caps and group commit.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { verifyStateProof } from '@cloister/core';
import fc from 'fast-check';
import {
  CursorError,
  createLedgerEngine,
  type LedgerEngine,
  type LedgerStore,
  type LedgerView,
  LOOK_AHEAD,
  openLedgerEngine,
  ProofAccessError,
  ReservedTableError,
  TransactionClosedError,
  TransactionConflictError,
  TransactionTooLargeError,
  UnknownIndexError,
} from '../src/ledger/ledger/index.js';
import {
  cloneModel,
  dump,
  hex,
  hostStores,
  type Model,
  modelSet,
  options,
  SECRET,
  type TestStore,
  te,
  unhex,
} from './ledger-engine-helpers.js';
import { documentVectors } from './ledger-vectors.js';

async function fresh(extra = {}): Promise<{ store: TestStore; engine: LedgerEngine }> {
  const store = (await hostStores()).createMemoryStore();
  return { store, engine: await createLedgerEngine(options(store, extra)) };
}

/**
 * Every page of a table at a view, with the page size `limit`. A page reached with a cursor is
 * never empty: these tables hold fewer removed keys than the look-ahead steps over (LOOK_AHEAD).
 */
function listAll(view: LedgerView, ledger: string, table: string, limit = 3): Map<string, string> {
  const out = new Map<string, string>();
  let cursor: Uint8Array | undefined;
  do {
    const page = view.list(ledger, table, { limit, ...(cursor ? { cursor } : {}) });
    assert.ok(page.entries.length <= limit);
    if (cursor) assert.ok(page.entries.length > 0, 'a cursor led to an empty page');
    for (const e of page.entries) {
      assert.ok(!out.has(hex(e.key)), 'a key listed twice');
      out.set(hex(e.key), hex(e.value));
    }
    cursor = page.cursor;
  } while (cursor);
  return out;
}

const LEDGERS = ['app1', 'app2'];
const TABLES = ['t1', 't2'];
const KEYS = ['', '00', '01', '0102', 'ff'.repeat(3), '61'];

/** Checks a view against the model for every (ledger, table, key) of the universe. */
function checkView(view: LedgerView, model: Model): void {
  for (const ledger of LEDGERS) {
    for (const table of TABLES) {
      const want = model.get(ledger)?.get(table) ?? new Map<string, string>();
      assert.deepEqual(listAll(view, ledger, table), want, `list ${ledger}/${table}`);
      for (const k of KEYS) {
        const got = view.get(ledger, table, unhex(k));
        assert.equal(got === undefined ? undefined : hex(got), want.get(k));
        const proof = view.prove({ admin: true }, ledger, table, unhex(k));
        const v = want.get(k);
        const claim = {
          ledger,
          table,
          key: unhex(k),
          ...(v === undefined ? {} : { value: unhex(v) }),
        };
        const verdict = verifyStateProof(view.stateHash, claim, proof);
        assert.equal(verdict.ok, true, `proof ${ledger}/${table}/${k}`);
      }
    }
  }
}

type Op = { ledger: string; table: string; key: string; value?: string };
const opArb: fc.Arbitrary<Op> = fc
  .record({
    ledger: fc.constantFrom(...LEDGERS),
    table: fc.constantFrom(...TABLES),
    key: fc.constantFrom(...KEYS),
    value: fc.option(fc.uint8Array({ maxLength: 40 }).map(hex), { nil: undefined }),
  })
  .map((o) => (o.value === undefined ? { ledger: o.ledger, table: o.table, key: o.key } : o));

describe('ledger engine: model', () => {
  test('random multi-ledger, multi-table commits match the model at every index', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.array(opArb, { maxLength: 8 }), { minLength: 1, maxLength: 5 }),
        async (commits) => {
          const { store, engine } = await fresh();
          const models: Model[] = [new Map()];
          const histories = new Map<string, { index: number; value?: string }[]>();
          for (const ops of commits) {
            const before = engine.stateHash;
            const model = cloneModel(models[models.length - 1] as Model);
            const tx = engine.begin();
            const last = new Map<string, Op>();
            for (const op of ops) {
              if (op.value === undefined) tx.remove(op.ledger, op.table, unhex(op.key));
              else tx.set(op.ledger, op.table, unhex(op.key), unhex(op.value));
              last.set(`${op.ledger}/${op.table}/${op.key}`, op);
            }
            for (const op of last.values()) {
              const got = tx.get(op.ledger, op.table, unhex(op.key));
              assert.equal(got === undefined ? undefined : hex(got), op.value, 'read-your-writes');
            }
            const index = models.length;
            let changed = false;
            for (const [id, op] of last) {
              const live = model.get(op.ledger)?.get(op.table)?.has(op.key) ?? false;
              if (op.value === undefined && !live) continue;
              changed = true;
              modelSet(model, op.ledger, op.table, op.key, op.value);
              const h = histories.get(id) ?? [];
              h.unshift(op.value === undefined ? { index } : { index, value: op.value });
              histories.set(id, h);
            }
            const r = await tx.commit();
            // One transaction, one index (§11.7), even when it changes nothing.
            models.push(model);
            assert.equal(r.index, index);
            assert.equal(r.txid, `1.${index}`);
            if (changed) assert.notDeepEqual(r.stateHash, before);
            else assert.deepEqual(r.stateHash, before);
            assert.equal(engine.index, models.length - 1);
            // Invariant: the root record in the store is the latest acknowledged state.
            const reopened = await openLedgerEngine(options(store));
            assert.equal(reopened.index, engine.index);
            assert.deepEqual(reopened.stateHash, engine.stateHash);
          }
          for (let i = 0; i < models.length; i++) checkView(engine.at(i), models[i] as Model);
          const view = engine.at();
          for (const [id, h] of histories) {
            const [ledger = '', table = '', key = ''] = id.split('/');
            const got = view.history(ledger, table, unhex(key));
            assert.deepEqual(
              got.map((v) =>
                v.value === undefined
                  ? { index: v.index }
                  : { index: v.index, value: hex(v.value) },
              ),
              h,
            );
          }
        },
      ),
      { numRuns: 25 },
    );
  });

  test('the state hash does not depend on the order of writes within a commit', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.uniqueArray(opArb, {
          selector: (o) => `${o.ledger}/${o.table}/${o.key}`,
          maxLength: 10,
        }),
        fc.integer(),
        async (ops, seed) => {
          const a = (await fresh()).engine;
          const b = (await fresh()).engine;
          const shuffled =
            fc.sample(fc.shuffledSubarray(ops, { minLength: ops.length }), {
              seed,
              numRuns: 1,
            })[0] ?? ops;
          for (const [engine, list] of [
            [a, ops],
            [b, shuffled],
          ] as const) {
            const tx = engine.begin();
            for (const op of list)
              tx.set(op.ledger, op.table, unhex(op.key), unhex(op.value ?? ''));
            await tx.commit();
          }
          assert.deepEqual(a.stateHash, b.stateHash);
        },
      ),
      { numRuns: 15 },
    );
  });
});

describe('ledger engine: hierarchy and versions', () => {
  test('pins the state hashes of the core state-proof vectors (core test/ledger-state-proof)', async () => {
    const { engine } = await fresh();
    const tx = engine.begin();
    tx.set('app1', 'accounts', te('alice'), te('100'));
    tx.set('app1', 'accounts', te('bob'), te('250'));
    tx.set('app1', 'other', te('x'), te('1'));
    tx.set('app2', 'accounts', te('carol'), te('75'));
    await tx.commit();
    const t2 = engine.begin();
    t2.remove('app1', 'accounts', te('bob'));
    await t2.commit();
    assert.equal(
      hex(engine.at(1).stateHash),
      '3518ffa23b7f4e175779584b1d934a25754fdec76fd805ad83330554ef436f38',
    );
    assert.equal(
      hex(engine.stateHash),
      'c51f18a451bde066498fac7625e1fab86d1844290eddac90440c00786bfa83fc',
    );
    // The document's state-proof vectors (docs/ledger-format.md 11.9) are this engine's proofs.
    const doc = documentVectors('state-proof-vectors');
    assert.equal(doc.get('state'), hex(engine.stateHash));
    assert.equal(doc.get('state1'), hex(engine.at(1).stateHash));
    const claims = [...doc.keys()].filter((k) => k.split('.').length === 3);
    assert.equal(claims.length, 5);
    for (const name of claims) {
      const [ledger, table, key] = name.split('.') as [string, string, string];
      const proof = engine.at(2).prove({ admin: true }, ledger, table, te(key));
      assert.equal(doc.get(name), hex(proof), name);
    }
  });

  test('a commit over several ledgers and tables moves the state hash once', async () => {
    const { engine } = await fresh();
    assert.equal(engine.index, 0);
    const tx = engine.begin();
    tx.set('app1', 't1', te('a'), te('1'));
    tx.set('app1', 't2', te('b'), te('2'));
    tx.set('app2', 't1', te('c'), te('3'));
    const r = await tx.commit();
    assert.equal(r.index, 1);
    assert.deepEqual(engine.stateHash, r.stateHash);
    assert.equal(engine.at(0).get('app1', 't1', te('a')), undefined);
    assert.deepEqual(engine.at(1).get('app2', 't1', te('c')), te('3'));
    assert.throws(() => engine.at(2), UnknownIndexError);
  });

  test('set and remove add versions; history names the commit of each; old reads stay', async () => {
    const { engine } = await fresh();
    for (const v of ['x', undefined, 'y']) {
      const tx = engine.begin();
      if (v === undefined) tx.remove('a', 't', te('k'));
      else tx.set('a', 't', te('k'), te(v));
      await tx.commit();
    }
    const h = engine.at().history('a', 't', te('k'));
    assert.deepEqual(h, [
      { index: 3, value: te('y') },
      { index: 2, value: undefined },
      { index: 1, value: te('x') },
    ]);
    assert.deepEqual(engine.at().history('a', 't', te('k'), { limit: 1 }), [
      { index: 3, value: te('y') },
    ]);
    assert.equal(engine.at(2).get('a', 't', te('k')), undefined);
    assert.deepEqual(engine.at(1).get('a', 't', te('k')), te('x'));
    // A remove of an absent key adds no version and leaves the state hash; it is still an entry.
    const before = engine.stateHash;
    const tx = engine.begin();
    tx.remove('a', 't', te('nothing'));
    const r = await tx.commit();
    assert.equal(r.index, 4);
    assert.deepEqual(r.stateHash, before);
    assert.deepEqual(engine.at().history('a', 't', te('nothing')), []);
    assert.deepEqual(engine.at(4).get('a', 't', te('k')), te('y'));
  });

  test('tx.version: the committed version at the snapshot (its commit index), own writes ignored, a read for conflicts', async () => {
    const { engine } = await fresh();
    for (const v of ['x', undefined]) {
      const tx = engine.begin();
      if (v === undefined) tx.remove('a', 't', te('k'));
      else tx.set('a', 't', te('k'), te(v));
      await tx.commit();
    }
    const tx = engine.begin();
    assert.deepEqual(tx.version('a', 't', te('k')), { index: 2, value: undefined });
    assert.equal(tx.version('a', 't', te('never')), undefined);
    tx.set('a', 't', te('k'), te('mine'));
    assert.deepEqual(
      tx.version('a', 't', te('k')),
      { index: 2, value: undefined },
      'own write ignored',
    );
    const other = engine.begin();
    other.set('a', 't', te('k'), te('theirs'));
    await other.commit();
    await assert.rejects(tx.commit(), TransactionConflictError, 'the key it read changed');
    const reader = engine.begin();
    assert.deepEqual(reader.version('a', 't', te('k')), { index: 3, value: te('theirs') });
    reader.abort();
  });

  test('reopening from the root record gives the same state; a missing root record is refused', async () => {
    const { store, engine } = await fresh();
    const tx = engine.begin();
    tx.set('a', 't', te('k'), te('v'));
    await tx.commit();
    const again = await openLedgerEngine(options(store));
    assert.equal(again.index, 1);
    assert.deepEqual(again.stateHash, engine.stateHash);
    assert.deepEqual(again.at().get('a', 't', te('k')), te('v'));
    const empty = (await hostStores()).createMemoryStore();
    await assert.rejects(openLedgerEngine(options(empty)), {
      code: 'LEDGER_INTEGRITY',
      failure: 'missing',
    });
    await assert.rejects(createLedgerEngine(options(store)), { code: 'INVALID_INPUT' });
  });
});

describe('ledger engine: transactions', () => {
  test('read-your-writes in get and list', async () => {
    const { engine } = await fresh();
    const t0 = engine.begin();
    t0.set('a', 't', te('k1'), te('old'));
    t0.set('a', 't', te('k2'), te('gone'));
    await t0.commit();
    const tx = engine.begin();
    tx.set('a', 't', te('k1'), te('new'));
    tx.remove('a', 't', te('k2'));
    tx.set('a', 't', te('k3'), te('3'));
    assert.deepEqual(tx.get('a', 't', te('k1')), te('new'));
    assert.equal(tx.get('a', 't', te('k2')), undefined);
    const page = tx.list('a', 't', { limit: 10 });
    const seen = new Map(page.entries.map((e) => [hex(e.key), hex(e.value)]));
    assert.deepEqual(
      seen,
      new Map([
        [hex(te('k1')), hex(te('new'))],
        [hex(te('k3')), hex(te('3'))],
      ]),
    );
    assert.equal(page.cursor, undefined);
    assert.deepEqual(engine.at().get('a', 't', te('k1')), te('old'));
    // Written after a listing: the next listing sees it (the sorted writes are kept per table
    // until that table's next write), and a write elsewhere leaves this table's listing as it is.
    tx.set('a', 't', te('k4'), te('4'));
    tx.set('a', 't', te('k3'), te('three'));
    tx.remove('a', 't', te('k1'));
    tx.set('a', 'u', te('other'), te('x'));
    const again = tx.list('a', 't', { limit: 10 });
    assert.deepEqual(
      new Map(again.entries.map((e) => [hex(e.key), hex(e.value)])),
      new Map([
        [hex(te('k3')), hex(te('three'))],
        [hex(te('k4')), hex(te('4'))],
      ]),
    );
    assert.deepEqual(
      tx.list('a', 'u').entries.map((e) => hex(e.key)),
      [hex(te('other'))],
    );
  });

  test('a transaction lists its own writes across pages with its cursors', async () => {
    const { engine } = await fresh();
    const t0 = engine.begin();
    for (let i = 0; i < 10; i++) t0.set('a', 't', te(`old${i}`), te(`${i}`));
    await t0.commit();
    const tx = engine.begin();
    const want = new Map<string, string>();
    for (let i = 0; i < 10; i++) want.set(hex(te(`old${i}`)), hex(te(`${i}`)));
    for (let i = 0; i < 10; i += 3) {
      tx.remove('a', 't', te(`old${i}`));
      want.delete(hex(te(`old${i}`)));
    }
    for (let i = 0; i < 7; i++) {
      tx.set('a', 't', te(`new${i}`), te('n'));
      want.set(hex(te(`new${i}`)), hex(te('n')));
    }
    tx.set('a', 't', te('old1'), te('changed'));
    want.set(hex(te('old1')), hex(te('changed')));
    const got = new Map<string, string>();
    let cursor: Uint8Array | undefined;
    do {
      const page = tx.list('a', 't', { limit: 2, ...(cursor ? { cursor } : {}) });
      for (const e of page.entries) got.set(hex(e.key), hex(e.value));
      cursor = page.cursor;
    } while (cursor);
    assert.deepEqual(got, want);
  });

  test('abort leaves the store byte-identical and closes the transaction', async () => {
    const { store, engine } = await fresh();
    const t0 = engine.begin();
    t0.set('a', 't', te('k'), te('v'));
    await t0.commit();
    const before = await dump(store);
    const tx = engine.begin();
    for (let i = 0; i < 20; i++) tx.set('a', `t${i % 3}`, te(`k${i}`), te('v'));
    tx.get('a', 't', te('k'));
    tx.abort();
    assert.deepEqual(await dump(store), before);
    assert.equal(tx.state, 'aborted');
    assert.throws(() => tx.set('a', 't', te('x'), te('y')), TransactionClosedError);
    await assert.rejects(tx.commit(), TransactionClosedError);
    assert.equal(engine.index, 1);
  });

  test('set keeps its own copy of the value: the caller changing its bytes later changes nothing', async () => {
    const { engine } = await fresh();
    const tx = engine.begin();
    const value = te('before');
    tx.set('a', 't', te('k'), value);
    value.set(te('AFTER!'));
    assert.deepEqual(tx.get('a', 't', te('k')), te('before'), 'the buffered write is a copy');
    await tx.commit();
    assert.deepEqual(engine.at().get('a', 't', te('k')), te('before'), 'the committed value');
  });

  test('a key or value that is not a Uint8Array is INVALID_INPUT in every call', async () => {
    const { engine } = await fresh();
    const tx = engine.begin();
    const bad = { code: 'INVALID_INPUT' };
    const text = 'k' as unknown as Uint8Array;
    assert.throws(() => tx.get('a', 't', text), bad, 'get');
    assert.throws(() => tx.version('a', 't', text), bad, 'version');
    assert.throws(() => tx.set('a', 't', text, te('v')), bad, 'set of a key');
    assert.throws(() => tx.set('a', 't', te('k'), text), bad, 'set of a value');
    assert.throws(() => tx.remove('a', 't', text), bad, 'remove');
    tx.abort();
  });

  test('names: ledger ids of 1 to 64 and table names of 1 to 255 UTF-8 bytes, without NUL', async () => {
    const { engine } = await fresh();
    const tx = engine.begin();
    const bad = { code: 'INVALID_INPUT' };
    tx.set('l'.repeat(64), 't'.repeat(255), te('k'), te('v'));
    assert.throws(() => tx.set('l'.repeat(65), 't', te('k'), te('v')), bad, '65-byte ledger id');
    assert.throws(() => tx.get('l'.repeat(65), 't', te('k')), bad, '65-byte ledger id read');
    assert.throws(() => tx.set('a', 't'.repeat(256), te('k'), te('v')), bad, '256-byte table');
    assert.throws(() => tx.get('a', 't'.repeat(256), te('k')), bad, '256-byte table read');
    assert.throws(() => tx.set('a\u0000b', 't', te('k'), te('v')), bad, 'NUL in a ledger id');
    assert.throws(() => tx.set('a', 't\u0000u', te('k'), te('v')), bad, 'NUL in a table name');
    assert.throws(() => tx.get('a', '\u0000catalogue', te('k')), bad, 'an internal trie name');
    assert.throws(() => tx.set('', 't', te('k'), te('v')), bad, 'an empty ledger id');
    assert.throws(() => tx.set('a', '', te('k'), te('v')), bad, 'an empty table name');
    await tx.commit();
    const view = engine.at();
    assert.deepEqual(view.get('l'.repeat(64), 't'.repeat(255), te('k')), te('v'), 'longest names');
    assert.throws(() => view.get('l'.repeat(65), 't', te('k')), bad, 'a view refuses it too');
    assert.throws(() => view.list('a', 't\u0000u'), bad, 'a view lists no NUL table');
  });

  test('caps: keys, bytes, key size and value size, each a named error; nothing written', async () => {
    const limits = { maxKeys: 3, maxBytes: 40, maxKeyBytes: 8, maxValueBytes: 16 };
    const { store, engine } = await fresh({ limits });
    const before = await dump(store);
    const tx = engine.begin();
    const err = (limit: string) => (e: unknown) =>
      e instanceof TransactionTooLargeError && e.limit === limit && e.code === 'TX_TOO_LARGE';
    assert.throws(() => tx.set('a', 't', new Uint8Array(9), te('v')), err('key-size'));
    assert.throws(() => tx.set('a', 't', te('k'), new Uint8Array(17)), err('value-size'));
    tx.set('a', 't', te('k1'), new Uint8Array(10));
    tx.set('a', 't', te('k1'), new Uint8Array(12)); // the same key again: one key, 14 bytes
    tx.set('a', 't', te('k2'), new Uint8Array(12));
    assert.throws(() => tx.set('a', 't', te('k3'), new Uint8Array(16)), err('bytes'));
    tx.remove('a', 't', te('k3'));
    assert.throws(() => tx.remove('a', 't', te('k4')), err('keys'));
    tx.abort();
    assert.deepEqual(await dump(store), before);
  });

  test('group commit: concurrent commits share store writes, all acknowledged and visible', async () => {
    const { store, engine: created } = await fresh();
    let writes = 0;
    const counting: LedgerStore = {
      get: (k) => store.get(k),
      write: (batch, o) => {
        assert.equal(o.sync, true, 'every commit batch is written with sync');
        writes++;
        return store.write(batch, o);
      },
    };
    assert.equal(created.index, 0);
    const e = await openLedgerEngine(options(counting));
    const n = 12;
    const txs = Array.from({ length: n }, (_, i) => {
      const tx = e.begin();
      tx.set(`app${i % 3}`, 't', te(`k${i}`), te(`v${i}`));
      return tx;
    });
    const results = await Promise.all(txs.map((tx) => tx.commit()));
    assert.ok(writes < n, `${writes} store writes for ${n} commits`);
    assert.equal(writes, 1);
    // One transaction, one index (§11.7): 1 .. n in commit order, all with the group-end state.
    assert.deepEqual(
      results.map((r) => r.index),
      Array.from({ length: n }, (_, i) => i + 1),
    );
    assert.deepEqual(
      results.map((r) => r.txid),
      Array.from({ length: n }, (_, i) => `1.${i + 1}`),
    );
    for (const r of results) assert.deepEqual(r.stateHash, e.stateHash);
    assert.equal(e.index, n);
    for (let i = 0; i < n; i++)
      assert.deepEqual(e.at().get(`app${i % 3}`, 't', te(`k${i}`)), te(`v${i}`));
    for (const r of results) assert.deepEqual(e.at(r.index).stateHash, r.stateHash);
    assert.deepEqual(e.at(0).get('app0', 't', te('k0')), undefined);
    const reopened = await openLedgerEngine(options(store));
    assert.equal(reopened.index, n);
  });

  test('a conflict inside one batch fails that commit alone; the others share the write', async () => {
    const { engine } = await fresh();
    const t0 = engine.begin();
    t0.set('a', 't', te('k'), te('0'));
    await t0.commit();
    const writes = engine.stats.writes;
    const reader = engine.begin();
    reader.get('a', 't', te('k'));
    reader.set('a', 't', te('x'), te('x'));
    const w1 = engine.begin();
    w1.set('a', 't', te('k'), te('1'));
    const w2 = engine.begin();
    w2.set('b', 'u', te('y'), te('y'));
    const [r1, r2, r3] = await Promise.allSettled([w1.commit(), reader.commit(), w2.commit()]);
    assert.deepEqual(r1.status === 'fulfilled' && r1.value.index, 2);
    assert.ok(r2.status === 'rejected' && r2.reason instanceof TransactionConflictError);
    // The failed transaction takes no index.
    assert.deepEqual(r3.status === 'fulfilled' && r3.value.index, 3);
    assert.equal(engine.stats.writes, writes + 1);
    assert.equal(engine.at().get('a', 't', te('x')), undefined);
    assert.equal(reader.state, 'failed');
  });

  test('conflicts: a key read, or a table listed, that changed since the snapshot', async () => {
    const { engine } = await fresh();
    const t0 = engine.begin();
    t0.set('a', 't', te('k'), te('0'));
    await t0.commit();
    const reader = engine.begin();
    const blind = engine.begin();
    const lister = engine.begin();
    assert.deepEqual(reader.get('a', 't', te('k')), te('0'));
    lister.list('a', 't');
    const writer = engine.begin();
    writer.set('a', 't', te('k'), te('1'));
    await writer.commit();
    reader.set('a', 't', te('other'), te('x'));
    blind.set('a', 't', te('k'), te('2'));
    lister.set('a', 'u', te('z'), te('z'));
    await assert.rejects(reader.commit(), TransactionConflictError);
    await assert.rejects(lister.commit(), TransactionConflictError);
    assert.equal((await blind.commit()).index, 3);
    assert.deepEqual(engine.at().get('a', 't', te('k')), te('2'));
    assert.equal(engine.at().get('a', 't', te('other')), undefined);
  });
});

describe('ledger engine: reserved tables, cursors, proofs', () => {
  test('reserved tables are written by the enclave only and never read, listed or proved by apps', async () => {
    const { engine } = await fresh();
    const internal = engine.begin({ reserved: true });
    internal.set('a', '$keys', te('k'), te('secret'));
    assert.deepEqual(internal.get('a', '$keys', te('k')), te('secret'));
    assert.throws(() => internal.list('a', '$keys'), ReservedTableError);
    await internal.commit();
    const tx = engine.begin();
    assert.throws(() => tx.get('a', '$keys', te('k')), ReservedTableError);
    assert.throws(() => tx.set('a', '$keys', te('k'), te('x')), ReservedTableError);
    assert.throws(() => tx.remove('a', '$keys', te('k')), ReservedTableError);
    assert.throws(() => tx.list('a', '$keys'), ReservedTableError);
    const view = engine.at();
    assert.throws(() => view.get('a', '$keys', te('k')), { code: 'LEDGER_RESERVED' });
    assert.throws(() => view.list('a', '$keys'), ReservedTableError);
    assert.throws(() => view.history('a', '$keys', te('k')), ReservedTableError);
    assert.throws(() => view.prove({ admin: true }, 'a', '$keys', te('k')), ReservedTableError);
    assert.equal(engine.begin({ reserved: true }).get('a', '$keys', te('k'))?.length, 6);
  });

  test('cursors page through a table and are refused for another ledger, table or snapshot', async () => {
    const { engine } = await fresh();
    const tx = engine.begin();
    for (let i = 0; i < 25; i++) {
      tx.set('a', 't', te(`k${i}`), te(`${i}`));
      tx.set('a', 'u', te(`k${i}`), te(`${i}`));
      tx.set('b', 't', te(`k${i}`), te(`${i}`));
    }
    await tx.commit();
    const view = engine.at();
    const all = listAll(view, 'a', 't', 4);
    assert.equal(all.size, 25);
    const page = view.list('a', 't', { limit: 4 });
    const cursor = page.cursor as Uint8Array;
    assert.ok(cursor);
    assert.throws(() => view.list('b', 't', { cursor }), CursorError);
    assert.throws(() => view.list('a', 'u', { cursor }), CursorError);
    const t2 = engine.begin();
    t2.set('a', 't', te('new'), te('n'));
    await t2.commit();
    assert.throws(() => engine.at().list('a', 't', { cursor }), { code: 'LEDGER_CURSOR' });
    assert.equal(engine.at(1).list('a', 't', { cursor, limit: 4 }).entries.length, 4);
    const flipped = Uint8Array.from(cursor);
    flipped[20] = (flipped[20] ?? 0) ^ 1;
    assert.throws(() => view.list('a', 't', { cursor: flipped }), CursorError);
    assert.throws(() => view.list('a', 't', { cursor: cursor.subarray(1) }), CursorError);
    // The format byte is outside the MAC: only the format check refuses another format.
    const otherFormat = Uint8Array.from(cursor);
    otherFormat[0] = 2;
    assert.throws(
      () => view.list('a', 't', { cursor: otherFormat }),
      CursorError,
      'a cursor of another format is refused',
    );
    assert.throws(() => view.list('a', 't', { limit: 1001 }), { code: 'INVALID_INPUT' });
    // Nor a page (or a history) of no entries, or of a fraction of one.
    const limitError = {
      code: 'INVALID_INPUT',
      message: 'a page or history limit must be a whole number 1 to 1000',
    };
    for (const limit of [0, -1, 1.5]) {
      assert.throws(() => view.list('a', 't', { limit }), limitError);
      assert.throws(() => view.history('a', 't', te('k1'), { limit }), limitError);
    }
  });

  test('a listing that ends with a full page says so on it: no cursor, no empty last page', async () => {
    const { engine } = await fresh();
    const tx = engine.begin();
    for (let i = 0; i < 20; i++) tx.set('a', 't', te(`k${i}`), te(`${i}`));
    await tx.commit();
    // Exactly two pages of 10: the second has no cursor.
    const first = engine.at().list('a', 't', { limit: 10 });
    assert.equal(first.entries.length, 10);
    assert.ok(first.cursor);
    const second = engine.at().list('a', 't', { limit: 10, cursor: first.cursor });
    assert.equal(second.entries.length, 10);
    assert.equal(second.cursor, undefined);
    // Keep the first key in path order and remove the 19 after it: the page of one steps over them.
    const order = engine.at().list('a', 't', { limit: 20 });
    assert.equal(order.cursor, undefined);
    const rm = engine.begin();
    for (const e of order.entries.slice(1)) rm.remove('a', 't', e.key);
    await rm.commit();
    const only = engine.at().list('a', 't', { limit: 1 });
    assert.deepEqual(
      only.entries.map((e) => hex(e.key)),
      [hex((order.entries[0] as { key: Uint8Array }).key)],
    );
    assert.equal(only.cursor, undefined);
    // A transaction's own writes count: its buffered removes are stepped over, its sets are not.
    const t2 = engine.begin();
    t2.set('a', 't', (order.entries[5] as { key: Uint8Array }).key, te('back'));
    const two = t2.list('a', 't', { limit: 1 });
    assert.equal(two.entries.length, 1);
    assert.ok(two.cursor, 'a buffered set after the page is one more entry');
    assert.deepEqual(
      t2.list('a', 't', { limit: 1, cursor: two.cursor }).entries.map((e) => hex(e.value)),
      [hex(te('back'))],
    );
    t2.abort();
  });

  test('past LOOK_AHEAD removed keys a full page returns a cursor, and the next page is empty', async () => {
    const { engine } = await fresh();
    const tx = engine.begin();
    for (let i = 0; i < LOOK_AHEAD + 10; i++) tx.set('a', 't', te(`k${i}`), te(`${i}`));
    await tx.commit();
    const order = engine.at().list('a', 't', { limit: 1000 });
    const rm = engine.begin();
    for (const e of order.entries.slice(1)) rm.remove('a', 't', e.key);
    await rm.commit();
    const page = engine.at().list('a', 't', { limit: 1 });
    assert.equal(page.entries.length, 1);
    assert.ok(page.cursor, 'more than LOOK_AHEAD dead entries follow: the page cannot tell');
    const last = engine.at().list('a', 't', { limit: 1, cursor: page.cursor });
    assert.deepEqual(last.entries, []);
    assert.equal(last.cursor, undefined);
  });

  test('proofs go to the owning app or the admin role, and verify offline', async () => {
    const { engine } = await fresh();
    const tx = engine.begin();
    tx.set('a', 't', te('k'), te('v'));
    await tx.commit();
    const old = engine.stateHash;
    const t2 = engine.begin();
    t2.set('a', 't', te('k'), te('w'));
    await t2.commit();
    const view = engine.at();
    assert.throws(() => view.prove({ app: 'b' }, 'a', 't', te('k')), ProofAccessError);
    // Only the admin role itself: a principal that merely names `admin` (false, as JSON would
    // carry it) is no one's.
    assert.throws(
      () => view.prove({ admin: false } as never, 'a', 't', te('k')),
      (e: unknown) =>
        e instanceof ProofAccessError &&
        e.message === "proofs of ledger 'a' go to its app or the admin role",
    );
    const proof = view.prove({ app: 'a' }, 'a', 't', te('k'));
    assert.deepEqual(view.prove({ admin: true }, 'a', 't', te('k')), proof);
    const claim = { ledger: 'a', table: 't', key: te('k'), value: te('w') };
    assert.deepEqual(verifyStateProof(view.stateHash, claim, proof), {
      ok: true,
      present: true,
      index: 2,
    });
    assert.deepEqual(verifyStateProof(old, claim, proof), { ok: false, reason: 'root-mismatch' });
    const wrong = (c: object) => verifyStateProof(view.stateHash, { ...claim, ...c }, proof);
    assert.deepEqual(wrong({ value: te('v') }), { ok: false, reason: 'value-mismatch' });
    assert.deepEqual(wrong({ ledger: 'b' }), { ok: false, reason: 'ledger-mismatch' });
    assert.deepEqual(wrong({ table: 'u' }), { ok: false, reason: 'table-mismatch' });
    assert.deepEqual(wrong({ key: te('j') }), { ok: false, reason: 'key-mismatch' });
    assert.deepEqual(wrong({ value: undefined }), { ok: false, reason: 'key-present' });
    const absent = view.prove({ app: 'a' }, 'a', 't', te('nope'));
    assert.equal(
      verifyStateProof(view.stateHash, { ledger: 'a', table: 't', key: te('nope') }, absent).ok,
      true,
    );
    const noLedger = view.prove({ admin: true }, 'zz', 't', te('k'));
    assert.deepEqual(
      verifyStateProof(view.stateHash, { ledger: 'zz', table: 't', key: te('k') }, noLedger),
      {
        ok: true,
        present: false,
      },
    );
    assert.deepEqual(
      verifyStateProof(
        engine.at(1).stateHash,
        { ...claim, value: te('v') },
        engine.at(1).prove({ admin: true }, 'a', 't', te('k')),
      ),
      {
        ok: true,
        present: true,
        index: 1,
      },
    );
    void SECRET;
  });
});
