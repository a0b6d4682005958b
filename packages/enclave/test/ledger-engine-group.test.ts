/// <reference types="node" />
/**
 * Group commit and the log port (docs/ledger-format.md §11.7, issue 4): one transaction = one log
 * entry = one commit index; a group of k entries gets k consecutive indexes in ONE store write;
 * a transaction writing a key an earlier one of its group wrote is deferred (with everything
 * queued after it) to the next group; a fake CommitLog sees every group's items in order with
 * their first index and the state hashes before and after, and its puts land in the group's batch.
 * Log-only items, signatures starting their own group, secret rotation and checkpoint re-writes.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { verifyStateProof } from '@cloister/core';
import fc from 'fast-check';
import type { LedgerSecret } from '../src/ledger/crypto.js';
import {
  type CommitLog,
  createLedgerEngine,
  type LedgerEngine,
  type LedgerEngineOptions,
  LedgerStateError,
  type LedgerStore,
  type LogItem,
  openLedgerEngine,
  ROOT_STORE_KEY,
  TransactionConflictError,
  TransactionTooLargeError,
} from '../src/ledger/ledger/index.js';
import type { RecordPut } from '../src/ledger/node-store.js';
import { EMPTY_ROOT } from '../src/ledger/trie/node.js';
import {
  dump,
  fakeSeal,
  hex,
  hostStores,
  options,
  type TestStore,
  te,
} from './ledger-engine-helpers.js';

interface StageCall {
  readonly items: readonly LogItem[];
  readonly firstIndex: number;
  readonly base: string;
  readonly after: string;
}

/** Store key of a log entry (contract: 0x02 ‖ u64be(index)). */
function entryKey(index: number): Uint8Array {
  const k = new Uint8Array(9);
  k[0] = 0x02;
  new DataView(k.buffer).setBigUint64(1, BigInt(index));
  return k;
}

/**
 * A fake CommitLog: records every call; its checkpoint is "cp:<entries>:<epoch>" counting the
 * staged entries too (the root record of a group describes the log with them).
 */
function fakeLog(entries = 0) {
  let staged = 0;
  const log = {
    entries,
    epoch: 0,
    generation: 0,
    stages: [] as StageCall[],
    settles: [] as boolean[],
    opens: [] as { checkpoint: string; index: number; at: (i: number) => Uint8Array }[],
    checkpoint(): Uint8Array {
      return te(`cp:${log.entries + staged}:${log.epoch}`);
    },
    async open(checkpoint: Uint8Array, index: number, at: (i: number) => Uint8Array) {
      log.opens.push({ checkpoint: new TextDecoder().decode(checkpoint), index, at });
      log.entries = index;
    },
    stage(items: readonly LogItem[], firstIndex: number, base: Uint8Array, after: Uint8Array) {
      assert.equal(staged, 0, 'stage twice without settle');
      assert.equal(firstIndex, log.entries + 1, 'entries follow the log');
      log.stages.push({ items, firstIndex, base: hex(base), after: hex(after) });
      staged = items.length;
      return items.map(
        (item, j): RecordPut => ({
          type: 'put',
          key: entryKey(firstIndex + j),
          value: te(`${item.kind} ${firstIndex + j}`),
        }),
      );
    },
    settle(ok: boolean) {
      log.settles.push(ok);
      if (ok) log.entries += staged;
      staged = 0;
    },
  };
  const port: CommitLog = log;
  void port;
  return log;
}

/** The store's batches, as key hex lists. */
function recording(store: LedgerStore): { store: LedgerStore; batches: string[][] } {
  const batches: string[][] = [];
  return {
    batches,
    store: {
      get: (k) => store.get(k),
      write: (batch, o) => {
        assert.equal(o.sync, true);
        batches.push(batch.map((p) => hex(p.key)));
        return store.write(batch, o);
      },
    },
  };
}

async function fresh(extra: Partial<LedgerEngineOptions> = {}) {
  const inner = (await hostStores()).createMemoryStore();
  const rec = recording(inner);
  const engine = await createLedgerEngine(options(rec.store, extra));
  return { inner, store: rec.store, batches: rec.batches, engine };
}

function commitSet(engine: LedgerEngine, writes: [string, string?][], table = 't') {
  const tx = engine.begin();
  for (const [k, v] of writes) {
    if (v === undefined) tx.remove('a', table, te(k));
    else tx.set('a', table, te(k), te(v));
  }
  return tx;
}

const GEN1: LedgerSecret = { generation: 1, secret: new Uint8Array(32).fill(9) };

describe('ledger engine: one index per transaction', () => {
  test('k transactions in a group get k indexes in one store write; each version its own index', async () => {
    const log = fakeLog();
    const { engine, batches } = await fresh({ log });
    await commitSet(engine, [['x', '0']]).commit();
    const base = engine.stateHash;
    const writesBefore = batches.length;
    const txs = [
      commitSet(engine, [['x', '1']]),
      commitSet(engine, [['y', '2']]),
      commitSet(engine, [
        ['z', '3'],
        ['x2', '4'],
      ]),
      commitSet(engine, [['never']]),
    ];
    const claims = new Uint8Array(32).fill(1);
    const results = await Promise.all(
      txs.map((tx, i) => tx.commit(i === 1 ? { claims, app: 'a' } : undefined)),
    );
    assert.equal(batches.length, writesBefore + 1, 'one store write for the group');
    assert.deepEqual(
      results.map((r) => [r.term, r.index, r.txid]),
      [
        [1, 2, '1.2'],
        [1, 3, '1.3'],
        [1, 4, '1.4'],
        [1, 5, '1.5'],
      ],
    );
    for (const r of results) assert.deepEqual(r.stateHash, engine.stateHash);
    assert.equal(engine.index, 5);
    // The version index maps every index of the group to the group-end state hash.
    for (let i = 2; i <= 5; i++) assert.deepEqual(engine.at(i).stateHash, engine.stateHash);
    assert.deepEqual(engine.at(1).get('a', 't', te('x')), te('0'));
    const v = engine.at();
    assert.deepEqual(v.history('a', 't', te('x')), [
      { index: 2, value: te('1') },
      { index: 1, value: te('0') },
    ]);
    assert.deepEqual(v.history('a', 't', te('y')), [{ index: 3, value: te('2') }]);
    assert.deepEqual(v.history('a', 't', te('x2')), [{ index: 4, value: te('4') }]);
    const proof = v.prove({ app: 'a' }, 'a', 't', te('z'));
    const claim = { ledger: 'a', table: 't', key: te('z'), value: te('3') };
    assert.deepEqual(verifyStateProof(v.stateHash, claim, proof), {
      ok: true,
      present: true,
      index: 4,
    });
    // The log saw the group's items in order, and its puts are in the same batch.
    const call = log.stages.at(-1) as StageCall;
    assert.equal(call.firstIndex, 2);
    assert.equal(call.base, hex(base));
    assert.equal(call.after, hex(engine.stateHash));
    assert.deepEqual(
      call.items.map((it) => [
        it.kind,
        it.writes.map((w) => `${new TextDecoder().decode(w.key)}=${w.value && hex(w.value)}`),
      ]),
      [
        ['transaction', [`x=${hex(te('1'))}`]],
        ['transaction', [`y=${hex(te('2'))}`]],
        ['transaction', [`z=${hex(te('3'))}`, `x2=${hex(te('4'))}`]],
        ['transaction', []],
      ],
    );
    assert.deepEqual(call.items[1], {
      kind: 'transaction',
      writes: call.items[1]?.writes,
      claims,
      app: 'a',
    });
    const batch = batches.at(-1) as string[];
    for (let i = 2; i <= 5; i++) assert.ok(batch.includes(hex(entryKey(i))), `entry ${i}`);
    assert.ok(batch.includes(hex(ROOT_STORE_KEY)));
    assert.deepEqual(log.settles, [true, true]);
    assert.equal(engine.stats.commits, 5);
    await assert.rejects(commitSet(engine, []).commit({ claims: new Uint8Array(31) }), {
      code: 'INVALID_INPUT',
    });
  });

  test("a group writes no more bytes than one transaction may and at most four transactions' worth of keys: large transactions queued together take several groups", async () => {
    // Unbounded, a few large transactions (each within its own limits) made one batch over the
    // store's write cap: the write failed and stopped the ledger for every client (red team).
    const log = fakeLog();
    const { engine, batches } = await fresh({ log, limits: { maxBytes: 1000, maxKeys: 2 } });
    const before = batches.length;
    const big = (k: string) => commitSet(engine, [[k, 'v'.repeat(399)]]); // 400 bytes each
    const small = (k: string) => commitSet(engine, [[k, 'v']]);
    // 400 + 400 fit; a third makes 1,200 > 1,000: it starts the next group, which seven one-key
    // transactions fill to the eight keys (GROUP_KEYS_FACTOR × 2); the last two make a fourth.
    const txs = [big('a'), big('b'), big('c'), big('d'), big('e')];
    const smalls = ['f', 'g', 'h', 'i', 'j', 'k', 'l', 'm', 'n'].map(small);
    const results = await Promise.all([...txs, ...smalls].map((tx) => tx.commit()));
    assert.deepEqual(
      log.stages.map((st) => st.items.length),
      [2, 2, 8, 2],
    );
    assert.equal(batches.length, before + 4);
    assert.deepEqual(
      results.map((r) => r.index),
      Array.from({ length: 14 }, (_, i) => i + 1),
      'indexes in queue order',
    );
    // Alone, a transaction at the limit is one group, as it always was.
    const full = commitSet(engine, [['z', 'v'.repeat(999)]]);
    const alone = full.commit();
    const next = small('y').commit();
    await Promise.all([alone, next]);
    assert.deepEqual(
      log.stages.slice(-2).map((st) => st.items.length),
      [1, 1],
    );
  });

  test('a batch over the store cap is never sent: a group goes again one by one, a transaction alone over it is TX_TOO_LARGE, and the engine goes on', async () => {
    // A store that refuses a large batch stopped the engine for good (every client's commits).
    const sizes: number[] = [];
    const sizing = (inner: LedgerStore): LedgerStore => ({
      get: (k) => inner.get(k),
      write: (batch, o) => {
        sizes.push(
          batch.reduce((n, p) => n + p.key.length + (p.type === 'put' ? p.value.length : 0), 0),
        );
        return inner.write(batch, o);
      },
    });
    const value = (n: number) => 'v'.repeat(n);
    // Calibration: what the same commits write one at a time. A value's leaf sits in its table's
    // records (with its neighbours'), so values in separate tables are separate records, and any
    // two of them together pass the cap.
    {
      const inner = (await hostStores()).createMemoryStore();
      const e = await createLedgerEngine(options(sizing(inner), { log: fakeLog() }));
      await commitSet(e, [['x', '0']]).commit();
      for (const k of ['a', 'b', 'c']) await commitSet(e, [[k, value(1500)]], `t${k}`).commit();
    }
    const cap = Math.max(...sizes.slice(-3)) + 200;
    sizes.length = 0;
    const inner = (await hostStores()).createMemoryStore();
    const log = fakeLog();
    const engine = await createLedgerEngine(
      options(sizing(inner), { log, maxBatch: { bytes: cap, ops: 1000 } }),
    );
    await commitSet(engine, [['x', '0']]).commit();
    const written = sizes.length;
    // Three that fit alone but not together: each commits, in a group of its own, in order.
    const three = await Promise.all(
      ['a', 'b', 'c'].map((k) => commitSet(engine, [[k, value(1500)]], `t${k}`).commit()),
    );
    assert.deepEqual(
      three.map((r) => r.index),
      [2, 3, 4],
    );
    // Staged together, found too large before the write and settled unwritten; then one by one.
    assert.deepEqual(
      log.stages.slice(1).map((st) => st.items.length),
      [3, 1, 1, 1],
    );
    assert.deepEqual(log.settles.slice(1), [false, true, true, true]);
    assert.equal(sizes.length, written + 3, 'no batch over the cap was sent');
    assert.ok(sizes.slice(written).every((n) => n <= cap));
    // One alone over the cap: refused by name; nothing of it is stored, and the engine goes on.
    await assert.rejects(commitSet(engine, [['big', value(4000)]]).commit(), (e: unknown) => {
      assert.ok(e instanceof TransactionTooLargeError, String(e));
      assert.equal(e.limit, 'batch');
      assert.match(e.message, /above the store's \d+ bytes and 1000 operations a batch/);
      return true;
    });
    assert.equal(engine.index, 4);
    assert.equal(engine.at().get('a', 't', te('big')), undefined);
    const after = await commitSet(engine, [['d', 'small']]).commit();
    assert.equal(after.index, 5);
    assert.deepEqual(engine.at().get('a', 'ta', te('a')), te(value(1500)));
    // What the store holds opens and reads back the same.
    const reopened = await openLedgerEngine(options(inner, { log: fakeLog(5) }));
    assert.equal(reopened.index, 5);
    assert.deepEqual(reopened.at().get('a', 't', te('d')), te('small'));
    assert.equal(reopened.at().get('a', 't', te('big')), undefined);
  });

  test('a writer of a key an earlier transaction of the group wrote is deferred, order kept', async () => {
    const log = fakeLog();
    const { engine, batches } = await fresh({ log });
    await commitSet(engine, [['k', '0']]).commit();
    const writesBefore = batches.length;
    const t1 = commitSet(engine, [['k', '1']]);
    const t2 = commitSet(engine, [
      ['k', '2'],
      ['j', 'b'],
    ]);
    const t3 = commitSet(engine, [['other', '3']]);
    const [r1, r2, r3] = await Promise.all([t1.commit(), t2.commit(), t3.commit()]);
    assert.deepEqual([r1?.index, r2?.index, r3?.index], [2, 3, 4]);
    assert.equal(batches.length, writesBefore + 2, 'the deferred ones made the next group');
    assert.deepEqual(
      log.stages.slice(-2).map((s) => [s.firstIndex, s.items.length]),
      [
        [2, 1],
        [3, 2],
      ],
    );
    const v = engine.at();
    // Both versions stay in history, each with its own index.
    assert.deepEqual(v.history('a', 't', te('k')), [
      { index: 3, value: te('2') },
      { index: 2, value: te('1') },
      { index: 1, value: te('0') },
    ]);
    assert.deepEqual(engine.at(2).get('a', 't', te('k')), te('1'));
    assert.equal(engine.at(2).get('a', 't', te('other')), undefined);
    assert.deepEqual(engine.at(3).get('a', 't', te('other')), te('3'));
    assert.deepEqual(r1?.stateHash, engine.at(2).stateHash);
    assert.deepEqual(r2?.stateHash, r3?.stateHash);
  });

  test('reads and listings of what an earlier transaction of the group wrote still conflict', async () => {
    const { engine } = await fresh();
    const t0 = commitSet(engine, [
      ['k', '0'],
      ['gone', 'g'],
    ]);
    await t0.commit();
    const w1 = commitSet(engine, [
      ['k', '1'],
      ['tmp', 't'],
    ]);
    const w2 = commitSet(engine, [['gone'], ['k2', '2']]);
    // Snapshot 1, reads k: w1, accepted before it in the group, wrote k.
    const reader = engine.begin();
    reader.get('a', 't', te('k'));
    reader.set('a', 't', te('r'), te('r'));
    // Lists t, which w1 wrote earlier in the group.
    const lister = engine.begin();
    lister.list('a', 't');
    lister.set('a', 'u', te('l'), te('l'));
    const none = commitSet(engine, [['never']]);
    const out = await Promise.allSettled([w1, w2, reader, lister, none].map((tx) => tx.commit()));
    const [r1, r2, r3, r4, r5] = out;
    assert.ok(r3?.status === 'rejected' && r3.reason instanceof TransactionConflictError);
    assert.ok(r4?.status === 'rejected' && r4.reason instanceof TransactionConflictError);
    assert.deepEqual(
      [r1, r2, r5].map((r) => r?.status === 'fulfilled' && r.value.index),
      [2, 3, 4],
    );
    assert.equal(engine.index, 4);
    const v = engine.at();
    assert.equal(v.get('a', 't', te('r')), undefined);
    assert.equal(v.get('a', 'u', te('l')), undefined);
    assert.deepEqual(v.history('a', 't', te('gone')), [
      { index: 3, value: undefined },
      { index: 1, value: te('g') },
    ]);
    assert.deepEqual(v.history('a', 't', te('never')), []);
  });
});

describe('ledger engine: concurrent transactions against a serial model', () => {
  test('random concurrent blind transactions: indexes in commit order, state and history exact', async () => {
    const keys = ['a', 'b', 'c', 'd'];
    const txArb = fc.array(
      fc.record({
        key: fc.constantFrom(...keys),
        value: fc.option(fc.constantFrom('1', '2', '3')),
      }),
      { maxLength: 3 },
    );
    await fc.assert(
      fc.asyncProperty(
        fc.array(txArb, { minLength: 1, maxLength: 12 }),
        fc.nat(5),
        async (txs, cut) => {
          const log = fakeLog();
          const { engine } = await fresh({ log, maxGroup: 2 + cut });
          // The serial model: transaction i (index i + 1) applied in commit order.
          const model = new Map<string, string>();
          const history = new Map<string, { index: number; value: Uint8Array | undefined }[]>();
          const pending = txs.map((ops, i) => {
            const last = new Map<string, string | null>();
            for (const op of ops) last.set(op.key, op.value);
            const tx = engine.begin();
            for (const [k, v] of last) {
              if (v === null) tx.remove('a', 't', te(k));
              else tx.set('a', 't', te(k), te(v));
              if (v === null && !model.has(k)) continue;
              if (v === null) model.delete(k);
              else model.set(k, v);
              const h = history.get(k) ?? [];
              h.unshift({ index: i + 1, value: v === null ? undefined : te(v) });
              history.set(k, h);
            }
            return tx.commit();
          });
          const results = await Promise.all(pending);
          assert.deepEqual(
            results.map((r) => r.index),
            txs.map((_, i) => i + 1),
          );
          const v = engine.at();
          for (const k of keys) {
            const want = model.get(k);
            assert.deepEqual(v.get('a', 't', te(k)), want === undefined ? undefined : te(want));
            assert.deepEqual(v.history('a', 't', te(k)), history.get(k) ?? []);
          }
          // Each group's items are its transactions, firstIndex following on.
          let next = 1;
          for (const st of log.stages) {
            assert.equal(st.firstIndex, next);
            next += st.items.length;
            const seen = new Set<string>();
            for (const item of st.items) {
              for (const w of item.writes) {
                const k = hex(w.key);
                assert.ok(!seen.has(k), 'a key written twice in one group');
                seen.add(k);
              }
            }
          }
          assert.equal(next, txs.length + 1);
        },
      ),
      { numRuns: 30 },
    );
  });
});

describe('ledger engine: the log port', () => {
  test('a failed write settles the log with false and stops the engine', async () => {
    const { createMemoryStore, createFaultyStore } = await hostStores();
    const inner = createMemoryStore();
    const log = fakeLog();
    await createLedgerEngine(options(inner, { log }));
    const store = createFaultyStore(inner, { seed: 4, writeFailureRate: 1 });
    const engine = await openLedgerEngine(options(store, { log }));
    const tx = commitSet(engine, [['k', 'v']]);
    await assert.rejects(tx.commit(), LedgerStateError);
    assert.equal(log.stages.length, 1);
    assert.deepEqual(log.settles, [false]);
    assert.equal(log.entries, 0);
    assert.throws(() => engine.begin(), LedgerStateError);
    await assert.rejects(engine.append({ kind: 'signature', writes: [] }), LedgerStateError);
  });

  test('reopening hands the sealed checkpoint, the index and the version index to log.open', async () => {
    const log = fakeLog();
    const { engine, inner } = await fresh({ log });
    assert.equal(log.opens.length, 0, 'createLedgerEngine does not open the log');
    const fresh0 = fakeLog();
    await openLedgerEngine(options(inner, { log: fresh0 }));
    assert.deepEqual(
      fresh0.opens.map((o) => [o.checkpoint, o.index]),
      [['cp:0:0', 0]],
    );
    await commitSet(engine, [['a', '1']]).commit();
    const mid = engine.stateHash;
    await Promise.all([
      commitSet(engine, [['b', '2']]).commit(),
      commitSet(engine, [['c', '3']]).commit(),
    ]);
    const again = fakeLog();
    const reopened = await openLedgerEngine(options(inner, { log: again }));
    const [o] = again.opens;
    assert.ok(o);
    assert.equal(o.checkpoint, 'cp:3:0');
    assert.equal(o.index, 3);
    assert.deepEqual(o.at(0), EMPTY_ROOT);
    assert.deepEqual(o.at(1), mid);
    assert.deepEqual(o.at(2), engine.stateHash);
    assert.deepEqual(o.at(3), engine.stateHash);
    assert.throws(() => o.at(4), { code: 'LEDGER_INDEX' });
    assert.equal(reopened.index, 3);
    // A failing log.open fails the open.
    const bad = fakeLog();
    bad.open = async () => {
      throw new Error('tail cut');
    };
    await assert.rejects(openLedgerEngine(options(inner, { log: bad })), /tail cut/);
  });

  test('log-only items take an index; a signature starts its own group, so base is what it signs', async () => {
    const log = fakeLog();
    const { engine } = await fresh({ log });
    const genesis = await engine.append({ kind: 'genesis', writes: [] });
    assert.deepEqual([genesis.index, genesis.txid], [1, '1.1']);
    assert.deepEqual(genesis.stateHash, EMPTY_ROOT);
    const p1 = commitSet(engine, [['a', '1']]).commit();
    const p2 = commitSet(engine, [['b', '2']]).commit();
    const sig = engine.append({ kind: 'signature', writes: [] });
    const p3 = commitSet(engine, [['c', '3']]).commit();
    const [r1, r2, rs, r3] = await Promise.all([p1, p2, sig, p3]);
    assert.deepEqual([r1?.index, r2?.index, rs?.index, r3?.index], [2, 3, 4, 5]);
    const [g0, g1, g2] = log.stages;
    assert.deepEqual(
      [g0, g1, g2].map((s) => [s?.firstIndex, s?.items.map((i) => i.kind)]),
      [
        [1, ['genesis']],
        [2, ['transaction', 'transaction']],
        [4, ['signature', 'transaction']],
      ],
    );
    // The signature's base is the state after entry 3.
    assert.equal(g2?.base, hex(engine.at(3).stateHash));
    assert.equal(g2?.base, g1?.after);
    assert.deepEqual(rs?.stateHash, r3?.stateHash);
    await assert.rejects(engine.append({ kind: 'transaction', writes: [] } as never), {
      code: 'INVALID_INPUT',
    });
  });

  test('writeCheckpoint re-writes the sealed root record with the current checkpoint, in queue order', async () => {
    const log = fakeLog();
    const { engine, inner, batches } = await fresh({ log });
    const p = commitSet(engine, [['a', '1']]).commit();
    log.epoch = 7;
    const cp = engine.writeCheckpoint();
    await Promise.all([p, cp]);
    assert.deepEqual(batches.at(-1), [hex(ROOT_STORE_KEY)]);
    const again = fakeLog();
    await openLedgerEngine(options(inner, { log: again }));
    assert.equal(again.opens[0]?.checkpoint, 'cp:1:7');
    // The plaintext: 0x02 ‖ u64be(index) ‖ stateHash ‖ versionsRoot ‖ u32be(len) ‖ checkpoint.
    const plain = fakeSeal.open(inner.get(ROOT_STORE_KEY) as Uint8Array);
    assert.equal(plain[0], 0x02);
    assert.equal(plain.length, 77 + 6);
    assert.equal(Buffer.from(plain).readBigUInt64BE(1), 1n);
    assert.deepEqual(plain.subarray(9, 41), engine.stateHash);
    assert.equal(Buffer.from(plain).readUInt32BE(73), 6);
    assert.equal(new TextDecoder().decode(plain.subarray(77)), 'cp:1:7');
    // A length that does not match, or format 1, is malformed.
    for (const bad of [plain.subarray(0, 80), Uint8Array.of(1, ...plain.subarray(1, 73))]) {
      const store = (await hostStores()).createMemoryStore();
      await store.write([{ type: 'put', key: ROOT_STORE_KEY, value: fakeSeal.seal(bad) }], {
        sync: true,
      });
      await assert.rejects(openLedgerEngine(options(store)), {
        code: 'LEDGER_INTEGRITY',
        failure: 'malformed',
      });
    }
    // Without a log: an empty checkpoint, still written.
    const bare = await fresh();
    await bare.engine.writeCheckpoint();
    assert.equal(bare.engine.stats.writes, 1);
    const barePlain = fakeSeal.open(bare.inner.get(ROOT_STORE_KEY) as Uint8Array);
    assert.equal(barePlain.length, 77);
  });
});

describe('ledger engine: secret rotation', () => {
  test('records written after a rotation use the new generation; older ones still read', async () => {
    const log = fakeLog();
    const { engine, inner } = await fresh({ log });
    await commitSet(engine, [
      ['a', '1'],
      ['b', '2'],
    ]).commit();
    const before = await dump(inner as TestStore);
    const generationOf = (value: string): number => Buffer.from(value, 'hex').readUInt32BE(1);
    for (const [k, v] of before) if (k.startsWith('01')) assert.equal(generationOf(v), 0);
    await assert.rejects(engine.rotate({ generation: 0, secret: GEN1.secret }), {
      code: 'INVALID_INPUT',
    });
    assert.equal(engine.generation, 0);
    const rot = await engine.rotate(GEN1);
    assert.equal(rot.index, 2);
    assert.equal(engine.generation, 1);
    assert.deepEqual(log.stages.at(-1)?.items, [{ kind: 'rotation', writes: [], generation: 1 }]);
    // The rotation entry's own batch (its version-index records) still uses generation 0.
    const rotated = await dump(inner as TestStore);
    for (const [k, v] of rotated) if (k.startsWith('01')) assert.equal(generationOf(v), 0);
    await commitSet(engine, [['c', '3']], 'u').commit();
    const after = await dump(inner as TestStore);
    const added = [...after].filter(([k]) => k.startsWith('01') && !rotated.has(k));
    assert.ok(added.length > 0);
    for (const [, v] of added) assert.equal(generationOf(v), 1, 'new records use generation 1');
    assert.deepEqual(engine.at().get('a', 't', te('a')), te('1'));
    // Reopened with both generations: everything reads, cold.
    const reopened = await openLedgerEngine(options(inner, { secrets: [GEN1], cacheBytes: 0 }));
    assert.deepEqual(reopened.at().get('a', 't', te('b')), te('2'));
    assert.deepEqual(reopened.at().get('a', 'u', te('c')), te('3'));
    assert.deepEqual(reopened.at(1).get('a', 't', te('a')), te('1'));
    // Without generation 1 the newer records do not authenticate.
    await assert.rejects(openLedgerEngine(options(inner, { cacheBytes: 0 })), {
      code: 'LEDGER_INTEGRITY',
    });
    // A reopened engine keeps sealing under the highest generation.
    await commitSet(reopened, [['d', '4']]).commit();
    const last = await dump(inner as TestStore);
    for (const [k, v] of last)
      if (k.startsWith('01') && !after.has(k)) assert.equal(generationOf(v), 1);
  });
});

describe('table roots shared by the readers of one state (Levels.rootsAt)', () => {
  test('readers of one state share its roots; another state gets its own; reads stay right across states', async () => {
    const { createMemoryStore } = await hostStores();
    const engine = await createLedgerEngine(options(createMemoryStore()));
    const states: { index: number; value: string }[] = [];
    for (let i = 0; i < 6; i++) {
      const tx = engine.begin();
      tx.set('a', i % 2 ? 't' : 'u', te('k'), te(`v${i}`));
      tx.set('b', 't', te('k'), te(`w${i}`));
      states.push({ index: (await tx.commit()).index, value: `v${i}` });
    }
    // Interleave readers of old and current states: each must see its own state's roots.
    for (let round = 0; round < 3; round++) {
      for (const [i, st] of states.entries()) {
        const view = engine.at(st.index);
        assert.equal(new TextDecoder().decode(view.get('a', i % 2 ? 't' : 'u', te('k'))), st.value);
        assert.equal(new TextDecoder().decode(view.get('b', 't', te('k'))), `w${i}`);
        const cur = engine.begin();
        assert.equal(new TextDecoder().decode(cur.get('b', 't', te('k'))), 'w5');
        assert.equal(cur.get('a', 'never', te('k')), undefined);
        cur.abort();
      }
    }
    const { createLevels } = await import('../src/ledger/ledger/state.js');
    const levels = createLevels({
      records: createMemoryStore(),
      secret: { generation: 0, secret: new Uint8Array(32).fill(7) },
      cacheBytes: 1 << 20,
    });
    const h1 = new Uint8Array(32).fill(1);
    const h2 = new Uint8Array(32).fill(2);
    const m1 = levels.rootsAt(h1);
    assert.equal(levels.rootsAt(Uint8Array.from(h1)), m1, 'same state: the same roots');
    const m2 = levels.rootsAt(h2);
    assert.notEqual(m2, m1);
    assert.equal(m2.tables.size, 0);
    levels.reset();
    assert.notEqual(levels.rootsAt(h2), m2, 'reset drops them');
  });
});

describe('version index paths (docs/ledger-format.md §11.2)', () => {
  test('16 consecutive indexes share a block path; digit 63 is the index mod 16', async () => {
    const { createLevels, versionPath } = await import('../src/ledger/ledger/state.js');
    const { u64, VERSIONS_TRIE } = await import('../src/ledger/ledger/format.js');
    const { createMemoryStore } = await hostStores();
    const levels = createLevels({
      records: createMemoryStore(),
      secret: { generation: 0, secret: new Uint8Array(32).fill(7) },
      cacheBytes: 1 << 20,
    });
    const ring = levels.admin.keyring;
    const seen = new Set<string>();
    for (let i = 0; i < 64; i++) {
      const path = versionPath(ring, i);
      const block = ring.table(VERSIONS_TRIE).path(u64(Math.floor(i / 16)));
      assert.deepEqual(path.subarray(0, 31), block.subarray(0, 31));
      assert.equal((path[31] as number) >> 4, (block[31] as number) >> 4);
      assert.equal((path[31] as number) & 15, i % 16);
      seen.add(hex(path));
    }
    assert.equal(seen.size, 64, 'distinct indexes, distinct paths');
    assert.notDeepEqual(
      versionPath(ring, 15).subarray(0, 31),
      versionPath(ring, 16).subarray(0, 31),
    );
  });

  test('a group of 40 entries spanning blocks: every index reads back, also after reopening', async () => {
    const { createMemoryStore } = await hostStores();
    const store = createMemoryStore();
    const engine = await createLedgerEngine(options(store));
    const commits = Array.from({ length: 40 }, (_, i) => {
      const tx = engine.begin();
      tx.set('a', 't', te(`k${i}`), te(`v${i}`));
      return tx.commit();
    });
    const results = await Promise.all(commits);
    assert.deepEqual(
      results.map((r) => r.index),
      Array.from({ length: 40 }, (_, i) => i + 1),
    );
    for (let i = 1; i <= 40; i++) {
      assert.deepEqual(engine.at(i).stateHash, engine.stateHash);
      assert.deepEqual(engine.at(i).get('a', 't', te(`k${i - 1}`)), te(`v${i - 1}`));
    }
    const reopened = await openLedgerEngine(options(store));
    assert.equal(reopened.index, 40);
    for (const i of [1, 15, 16, 31, 32, 40]) {
      assert.deepEqual(reopened.at(i).stateHash, engine.stateHash);
    }
  });
});

describe('what an update caches (docs/ledger-format.md §9.2)', () => {
  test('the compact branches an update caches keep their built leaves checked', async () => {
    const { createNodeCache } = await import('../src/ledger/node-cache.js');
    const { createTrie } = await import('../src/ledger/trie/trie.js');
    const { createHash } = await import('node:crypto');
    const cache = createNodeCache(1 << 24);
    const trie = createTrie({ source: { get: () => undefined }, cache });
    const h = (s: string): Uint8Array => new Uint8Array(createHash('sha256').update(s).digest());
    const ops = Array.from({ length: 40 }, (_, i) => ({
      type: 'put' as const,
      path: h(`p${i}`),
      salt: h(`s${i}`),
      key: te(`k${i}`),
      value: te(`v${i}`),
    }));
    const up = trie.update(EMPTY_ROOT, ops);
    let branches = 0;
    for (const r of up.records) {
      const n = cache.get(r.hash);
      if (n?.kind !== 'branch') continue;
      branches++;
      assert.ok(n.leafSlots !== 0 || n.embedded !== undefined);
      assert.equal(n.checkedLeaves & n.leafSlots, n.leafSlots, 'every embedded leaf checked');
    }
    assert.ok(branches > 0);
    for (const op of ops) assert.deepEqual(trie.get(up.root, op.path)?.value, op.value);
  });

  test('commits to one table read nothing back from the store (root leaves are cached)', async () => {
    const { createMemoryStore } = await hostStores();
    const inner = createMemoryStore();
    let reads = 0;
    const store: LedgerStore = {
      get(k) {
        reads++;
        return inner.get(k);
      },
      write: (b, o) => inner.write(b, o),
    };
    const engine = await createLedgerEngine(options(store));
    reads = 0;
    for (let i = 0; i < 20; i++) {
      const tx = engine.begin();
      tx.set('a', 't', te(`k${i}`), te(`v${i}`));
      await tx.commit();
    }
    assert.equal(reads, 0);
    assert.deepEqual(engine.at().get('a', 't', te('k7')), te('v7'));
  });
});
