/// <reference types="node" />
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { isCloisterError } from '@cloister/core';
import fc from 'fast-check';
import { createFaultyStore, type FaultyStore } from '../src/store/faulty.js';
import { type LevelStore, openLevelStore } from '../src/store/level.js';
import { createMemoryStore } from '../src/store/memory.js';
import { type BatchOp, type Store, StoreError } from '../src/store/store.js';
import { runStoreConformance } from './store-conformance.js';

const root = mkdtempSync(join(tmpdir(), 'cloister-store-'));
after(() => rmSync(root, { recursive: true, force: true }));
let dirs = 0;
const freshDir = (): string => join(root, `db${dirs++}`);

runStoreConformance('memory', { create: async () => createMemoryStore() });

runStoreConformance('level', {
  create: () => openLevelStore(freshDir()),
  reopen: async (s) => {
    const dir = (s as LevelStore).dir;
    await s.close();
    return openLevelStore(dir);
  },
  runs: 25,
});

runStoreConformance('faulty over memory', {
  create: async () => createFaultyStore(createMemoryStore()),
});

runStoreConformance('faulty over level', {
  create: async () => createFaultyStore(await openLevelStore(freshDir())),
  runs: 15,
});

const b = (...xs: number[]): Uint8Array => new Uint8Array(xs);
const hex = (x: Uint8Array): string => Buffer.from(x).toString('hex');

async function dump(s: Store): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for await (const e of s.iterate()) out[hex(e.key)] = hex(e.value);
  return out;
}

function modelApply(model: Record<string, string>, batch: readonly BatchOp[]): void {
  for (const op of batch) {
    if (op.type === 'put') model[hex(op.key)] = hex(op.value);
    else delete model[hex(op.key)];
  }
}

const canonical = (r: Record<string, string>): string => JSON.stringify(Object.entries(r).sort());

const keyArb = fc.integer({ min: 0, max: 5 }).map((k) => b(k));
const opArb: fc.Arbitrary<BatchOp> = fc.oneof(
  fc.record({
    type: fc.constant('put' as const),
    key: keyArb,
    value: fc.uint8Array({ maxLength: 3 }),
  }),
  fc.record({ type: fc.constant('del' as const), key: keyArb }),
);
const writesArb = fc.array(
  fc.tuple(fc.array(opArb, { minLength: 1, maxLength: 4 }), fc.boolean()),
  {
    maxLength: 10,
  },
);

describe('faulty store: power cuts', () => {
  test('a power cut keeps exactly the state of the last sync write', async () => {
    await fc.assert(
      fc.asyncProperty(writesArb, async (writes) => {
        const s = createFaultyStore(createMemoryStore());
        const model: Record<string, string> = {};
        let synced: Record<string, string> = {};
        for (const [batch, sync] of writes) {
          await s.write(batch, { sync });
          modelApply(model, batch);
          if (sync) synced = { ...model };
        }
        assert.deepEqual(await dump(s), model, 'before the cut every write is visible');
        const after = await s.powerCut();
        assert.deepEqual(await dump(after), synced);
        assert.equal(after.unsyncedWrites, 0);
      }),
      { numRuns: 150 },
    );
  });

  test("keep: 'prefix' keeps the synced state plus a prefix of the later writes", async () => {
    await fc.assert(
      fc.asyncProperty(writesArb, fc.integer(), async (writes, seed) => {
        const s = createFaultyStore(createMemoryStore(), { seed });
        const model: Record<string, string> = {};
        let candidates: Record<string, string>[] = [{}];
        for (const [batch, sync] of writes) {
          await s.write(batch, { sync });
          modelApply(model, batch);
          candidates = sync ? [{ ...model }] : [...candidates, { ...model }];
        }
        const got = await dump(await s.powerCut({ keep: 'prefix' }));
        assert.ok(
          candidates.some((c) => canonical(c) === canonical(got)),
          'the survivor is the synced state plus some prefix of later writes',
        );
      }),
      { numRuns: 150 },
    );
  });

  test('the same seed replays the same prefix', async () => {
    const run = async (): Promise<Record<string, string>> => {
      const s = createFaultyStore(createMemoryStore(), { seed: 42 });
      for (let i = 0; i < 10; i++)
        await s.write([{ type: 'put', key: b(i), value: b(i) }], { sync: false });
      return dump(await s.powerCut({ keep: 'prefix' }));
    };
    assert.deepEqual(await run(), await run());
  });

  test('a store that lost power refuses every use; the new one works and can lose power again', async () => {
    const s = createFaultyStore(createMemoryStore());
    await s.write([{ type: 'put', key: b(1), value: b(1) }], { sync: true });
    await s.write([{ type: 'put', key: b(2), value: b(2) }], { sync: false });
    assert.equal(s.unsyncedWrites, 1);
    const t = await s.powerCut();
    assert.throws(() => s.get(b(1)), StoreError);
    await assert.rejects(s.write([], { sync: true }), StoreError);
    await assert.rejects(s.powerCut(), StoreError);
    assert.deepEqual(t.get(b(1)), b(1));
    assert.equal(t.get(b(2)), undefined);
    await t.write([{ type: 'del', key: b(1) }], { sync: false });
    const u = await t.powerCut();
    assert.deepEqual(u.get(b(1)), b(1));
    await u.close();
  });

  test('writes in flight at the cut: sync ones survive, unsynced ones are lost', async () => {
    const s = createFaultyStore(createMemoryStore());
    const w1 = s.write([{ type: 'put', key: b(1), value: b(1) }], { sync: true });
    const w2 = s.write([{ type: 'put', key: b(2), value: b(2) }], { sync: false });
    const t = await s.powerCut();
    await Promise.all([w1, w2]);
    assert.deepEqual(await dump(t), { '01': '01' });
  });

  test('power cut over LevelDB: the synced state survives a reopen too', async () => {
    const dir = freshDir();
    const s: FaultyStore = createFaultyStore(await openLevelStore(dir));
    await s.write([{ type: 'put', key: b(1), value: b(1) }], { sync: true });
    await s.write(
      [
        { type: 'put', key: b(1), value: b(9) },
        { type: 'put', key: b(2), value: b(2) },
      ],
      {
        sync: false,
      },
    );
    const t = await s.powerCut();
    await t.close();
    const reopened = await openLevelStore(dir);
    assert.deepEqual(await dump(reopened), { '01': '01' });
    await reopened.close();
  });
  test("keep: 'prefix' keeps, over seeds, every prefix length: none, some, all", async () => {
    // A cut that always kept everything (or nothing) would leave the crash tests nothing to find.
    const kept = new Set<number>();
    for (let seed = 1; seed <= 40; seed++) {
      const s = createFaultyStore(createMemoryStore(), { seed });
      for (let i = 0; i < 3; i++) {
        await s.write([{ type: 'put', key: b(i), value: b(i) }], { sync: false });
      }
      const t = await s.powerCut({ keep: 'prefix' });
      const got = await dump(t);
      const n = Object.keys(got).length;
      // Always a prefix: writes 0..n-1 and nothing after.
      assert.deepEqual(
        got,
        Object.fromEntries([0, 1, 2].slice(0, n).map((i) => [hex(b(i)), hex(b(i))])),
      );
      kept.add(n);
    }
    assert.deepEqual([...kept].sort(), [0, 1, 2, 3]);
  });

  test('closing the wrapper that lost power leaves the store under the new one open', async () => {
    const s = createFaultyStore(createMemoryStore());
    await s.write([{ type: 'put', key: b(1), value: b(1) }], { sync: true });
    const t = await s.powerCut();
    await s.close();
    assert.deepEqual(t.get(b(1)), b(1));
    await t.write([{ type: 'put', key: b(2), value: b(2) }], { sync: true });
    assert.deepEqual(await dump(t), { '01': '01', '02': '02' });
    await t.close();
  });

  test('close lets the writes in flight finish before it closes the inner store', async () => {
    const inner = createMemoryStore();
    const s = createFaultyStore(inner);
    const w = s.write([{ type: 'put', key: b(1), value: b(1) }], { sync: true });
    await s.close();
    await w; // applied, not refused by a store closed under it
  });
});

describe('faulty store: seeded failures', () => {
  test('a failed write applies nothing, and the same seed fails the same writes', async () => {
    const run = async (): Promise<boolean[]> => {
      const s = createFaultyStore(createMemoryStore(), { seed: 7, writeFailureRate: 0.5 });
      const outcome: boolean[] = [];
      for (let i = 0; i < 40; i++) {
        const batch: BatchOp[] = [
          { type: 'put', key: b(0), value: b(i) },
          { type: 'put', key: b(1, i), value: b(i) },
        ];
        try {
          await s.write(batch, { sync: i % 2 === 0 });
          outcome.push(true);
          assert.deepEqual(s.get(b(0)), b(i));
        } catch (e) {
          assert.ok(isCloisterError(e, 'STORE'));
          outcome.push(false);
          assert.equal(s.get(b(1, i)), undefined, 'nothing of a failed batch is applied');
        }
      }
      return outcome;
    };
    const first = await run();
    assert.deepEqual(await run(), first);
    assert.ok(first.includes(true) && first.includes(false));
  });

  test('read failures are StoreErrors; rates are checked', () => {
    const s = createFaultyStore(createMemoryStore(), { readFailureRate: 1 });
    assert.throws(() => s.get(b(1)), StoreError);
    assert.throws(
      () => createFaultyStore(createMemoryStore(), { writeFailureRate: 2 }),
      /between 0 and 1/,
    );
    assert.throws(() => createFaultyStore(createMemoryStore(), { seed: 1.5 }), /whole number/);
  });
});

describe('level store: opening', () => {
  test('a directory already open is a StoreError that names it and says what to do', async () => {
    const dir = freshDir();
    const s = await openLevelStore(dir);
    await assert.rejects(openLevelStore(dir), (e: unknown) => {
      assert.ok(e instanceof StoreError);
      assert.ok(e.message.includes(dir));
      assert.match(e.message, /another process/);
      return true;
    });
    await s.close();
  });

  test('a path that is a file is a StoreError naming the path', async () => {
    const file = join(root, 'not-a-dir');
    writeFileSync(file, 'x');
    await assert.rejects(openLevelStore(file), (e: unknown) => {
      assert.ok(e instanceof StoreError);
      assert.ok(e.message.includes(file));
      return true;
    });
  });

  test('createIfMissing: false refuses a missing directory', async () => {
    const dir = freshDir();
    await assert.rejects(openLevelStore(dir, { createIfMissing: false }), StoreError);
  });
});
