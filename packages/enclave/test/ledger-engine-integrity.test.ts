/// <reference types="node" />
/**
 * Integrity of the ledger engine (issue 3, point 9; docs/ledger-format.md §11): every record a
 * commit writes — admin, catalogue, table and version-index nodes, and the root record — is
 * flipped, deleted, swapped, duplicated or replaced by an older copy in a memory store; reopening
 * and reading everything then either returns exactly the model's data or throws a
 * LedgerIntegrityError naming the record's role, never wrong data, never another error. And power
 * cuts (the faulty store) after acknowledged commits.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { verifyStateProof } from '@cloister/core';
import { createLedgerKeyring } from '../src/ledger/crypto.js';
import { LedgerIntegrityError } from '../src/ledger/errors.js';
import {
  createLedgerEngine,
  type LedgerEngine,
  LedgerStateError,
  openLedgerEngine,
  ROOT_STORE_KEY,
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
  storeOf,
  type TestStore,
  te,
  unhex,
} from './ledger-engine-helpers.js';

const ROOT = hex(ROOT_STORE_KEY);
const ROLES = [
  'root record',
  'admin trie',
  'catalogue of ledger',
  'table',
  'version index',
  'history',
];

/** Commits `ops` (value undefined: remove) and applies them to a copy of `model`. */
async function commit(
  engine: LedgerEngine,
  model: Model,
  ops: readonly [string, string, string, string?][],
): Promise<Model> {
  const next = cloneModel(model);
  const tx = engine.begin();
  for (const [l, t, k, v] of ops) {
    if (v === undefined) tx.remove(l, t, te(k));
    else tx.set(l, t, te(k), te(v));
    modelSet(next, l, t, hex(te(k)), v === undefined ? undefined : hex(te(v)));
  }
  await tx.commit();
  return next;
}

const UNIVERSE: [string, string, string][] = [];
for (const l of ['app1', 'app2'])
  for (const t of ['t1', 't2']) for (const k of ['a', 'b', 'c', 'd']) UNIVERSE.push([l, t, k]);

/** Reads everything at the latest state and at `index - 1`; throws on any difference. */
function readAll(engine: LedgerEngine, models: readonly Model[]): void {
  for (const i of [engine.index, engine.index - 1]) {
    const view = engine.at(i);
    const model = models[i] as Model;
    for (const [l, t, k] of UNIVERSE) {
      const want = model
        .get(l)
        ?.get(t)
        ?.get(hex(te(k)));
      const got = view.get(l, t, te(k));
      assert.equal(got === undefined ? undefined : hex(got), want, 'never wrong data');
      view.history(l, t, te(k));
      const proof = view.prove({ admin: true }, l, t, te(k));
      const claim = { ledger: l, table: t, key: te(k), ...(want ? { value: unhex(want) } : {}) };
      assert.equal(verifyStateProof(view.stateHash, claim, proof).ok, true);
    }
    for (const l of ['app1', 'app2']) {
      for (const t of ['t1', 't2']) {
        const page = view.list(l, t, { limit: 100 });
        const got = new Map(page.entries.map((e) => [hex(e.key), hex(e.value)]));
        assert.deepEqual(got, model.get(l)?.get(t) ?? new Map(), 'never wrong data in a listing');
      }
    }
  }
}

interface Built {
  readonly before: Map<string, string>;
  readonly after: Map<string, string>;
  readonly models: Model[];
}

/** Three commits over two ledgers and two tables; the store before and after the last. */
async function build(): Promise<Built> {
  const store = (await hostStores()).createMemoryStore();
  const engine = await createLedgerEngine(options(store));
  const models: Model[] = [new Map()];
  let m = models[0] as Model;
  m = await commit(engine, m, [
    ['app1', 't1', 'a', '1'],
    ['app1', 't2', 'b', '2'],
    ['app2', 't1', 'c', '3'],
  ]);
  models.push(m);
  m = await commit(engine, m, [
    ['app1', 't1', 'b', 'x'.repeat(600)],
    ['app2', 't2', 'd', '4'],
  ]);
  models.push(m);
  const before = await dump(store);
  m = await commit(engine, m, [
    ['app1', 't1', 'a', '5'],
    ['app1', 't1', 'b'],
    ['app2', 't1', 'd', '6'],
    ['app2', 't2', 'a', '7'],
  ]);
  models.push(m);
  return { before, after: await dump(store), models };
}

/** Opens the engine over `entries` and reads everything: 'ok' or the integrity error. */
async function attempt(
  entries: Map<string, string>,
  models: Model[],
): Promise<'ok' | LedgerIntegrityError> {
  const store: TestStore = await storeOf(entries);
  try {
    const engine = await openLedgerEngine(options(store, { cacheBytes: 0 }));
    readAll(engine, models);
    return 'ok';
  } catch (e) {
    if (e instanceof LedgerIntegrityError) return e;
    throw e;
  }
}

function assertNamed(r: 'ok' | LedgerIntegrityError, what: string): void {
  assert.ok(r instanceof LedgerIntegrityError, `${what}: expected a LedgerIntegrityError`);
  assert.ok(
    ROLES.some((role) => r.message.includes(role)),
    `${what}: the error names the record: ${r.message}`,
  );
}

describe('ledger engine integrity: every record of a commit', () => {
  test('the untouched store reads back exactly', async () => {
    const { after, models } = await build();
    assert.equal(await attempt(after, models), 'ok');
  });

  test('a flipped bit, a deleted record, a swap, a duplicate or an older copy: named error', async () => {
    const { before, after, models } = await build();
    const changed = [...after.keys()].filter((k) => before.get(k) !== after.get(k));
    const added = changed.filter((k) => k !== ROOT);
    assert.ok(added.length >= 6, `the last commit wrote ${added.length} node records`);
    assert.ok(changed.includes(ROOT));
    const olderNodes = [...before.keys()].filter((k) => k !== ROOT);
    for (const key of changed) {
      const value = after.get(key) as string;
      const bytes = unhex(value);
      for (const at of [0, 5, 20, bytes.length - 1]) {
        const flipped = Uint8Array.from(bytes);
        flipped[at] = (flipped[at] ?? 0) ^ 0x10;
        assertNamed(
          await attempt(new Map([...after, [key, hex(flipped)]]), models),
          `flip ${at} of ${key}`,
        );
      }
      const without = new Map(after);
      without.delete(key);
      assertNamed(await attempt(without, models), `delete ${key}`);
      const other = added.find((k) => k !== key) as string;
      const swapped = new Map([...after, [key, after.get(other) as string], [other, value]]);
      assertNamed(await attempt(swapped, models), `swap ${key}`);
      const duplicated = new Map([...after, [key, after.get(other) as string]]);
      assertNamed(await attempt(duplicated, models), `duplicate onto ${key}`);
      if (key !== ROOT) {
        const older = new Map([...after, [key, before.get(olderNodes[0] as string) as string]]);
        assertNamed(await attempt(older, models), `older record under ${key}`);
      }
    }
  });

  test('an older root record reopens the older state consistently, or is refused with minIndex', async () => {
    const { before, after, models } = await build();
    const rolled = new Map([...after, [ROOT, before.get(ROOT) as string]]);
    const store = await storeOf(rolled);
    const engine = await openLedgerEngine(options(store));
    assert.equal(
      engine.index,
      2,
      'whole-store rollback is issue 4: detected by the platform counter',
    );
    readAll(engine, models.slice(0, 3));
    await assert.rejects(openLedgerEngine(options(store, { minIndex: 3 })), (e: unknown) => {
      return e instanceof LedgerIntegrityError && e.message.includes('root record');
    });
  });
});

describe('ledger engine integrity: during a commit', () => {
  test('a record that fails verification while a commit is applied rejects it and stops the engine', async () => {
    const store = (await hostStores()).createMemoryStore();
    const engine = await createLedgerEngine(options(store, { cacheBytes: 0 }));
    await commit(engine, new Map(), [['app1', 't1', 'a', '1']]);
    const nodes = [...(await dump(store)).keys()].filter((k) => k !== ROOT);
    await store.write(
      nodes.map((k) => ({ type: 'del' as const, key: unhex(k) })),
      { sync: true },
    );
    const tx = engine.begin();
    tx.set('app1', 't1', te('b'), te('2'));
    await assert.rejects(
      tx.commit(),
      (e: unknown) => e instanceof LedgerIntegrityError && e.failure === 'missing',
    );
    assert.throws(() => engine.begin(), LedgerStateError);
  });
});

describe('ledger engine integrity: power cuts', () => {
  test('after acknowledged commits, reopening shows the last acknowledged one or a later one', async () => {
    const { createMemoryStore, createFaultyStore } = await hostStores();
    for (const seed of [1, 2, 3]) {
      let store = createFaultyStore(createMemoryStore(), { seed });
      const engine = await createLedgerEngine(options(store));
      const models: Model[] = [new Map()];
      let m = models[0] as Model;
      for (let i = 0; i < 3; i++) {
        m = await commit(engine, m, [
          ['app1', 't1', 'a', `${seed}.${i}`],
          ['app2', 't2', `k${i}`, 'v'],
        ]);
        models.push(m);
      }
      const acknowledged = engine.index;
      // More commits in flight when the power goes.
      const inFlight = [0, 1, 2].map((i) => {
        const next = cloneModel(models[models.length - 1] as Model);
        const tx = engine.begin();
        tx.set('app1', 't2', te(`late${i}`), te('x'));
        modelSet(next, 'app1', 't2', hex(te(`late${i}`)), hex(te('x')));
        return { tx, next };
      });
      const pending = inFlight.map(({ tx }) => tx.commit().catch((e: unknown) => e));
      store = await store.powerCut({ keep: 'prefix' });
      await Promise.all(pending);
      const reopened = await openLedgerEngine(options(store));
      assert.ok(
        reopened.index >= acknowledged,
        `seed ${seed}: ${reopened.index} >= ${acknowledged}`,
      );
      for (let i = models.length; i <= reopened.index; i++) {
        const prev = cloneModel(models[i - 1] as Model);
        modelSet(prev, 'app1', 't2', hex(te(`late${i - 4}`)), hex(te('x')));
        models.push(prev);
      }
      readAll(reopened, models);
    }
  });

  test('a failed store write rejects the commit, stops the engine, and reopening shows the last acknowledged state', async () => {
    const { createMemoryStore, createFaultyStore } = await hostStores();
    const inner = createMemoryStore();
    const store = createFaultyStore(inner, { seed: 9, writeFailureRate: 1 });
    const good = await createLedgerEngine(options(inner));
    let m: Model = new Map();
    m = await commit(good, m, [['app1', 't1', 'a', '1']]);
    const engine = await openLedgerEngine(options(store));
    const tx = engine.begin();
    tx.set('app1', 't1', te('b'), te('2'));
    await assert.rejects(tx.commit(), LedgerStateError);
    assert.throws(() => engine.begin(), LedgerStateError);
    const reopened = await openLedgerEngine(options(inner));
    assert.equal(reopened.index, 1);
    assert.equal(reopened.at().get('app1', 't1', te('b')), undefined);
    assert.deepEqual(reopened.at().get('app1', 't1', te('a')), te('1'));
    void m;
  });
});

describe('ledger engine integrity: at open', () => {
  // docs/ledger-format.md §11.5: opening loads the admin root, so a store whose admin root is
  // gone or damaged is refused at once, naming it, not at the first read.
  test('a missing or damaged admin root record refuses the open, naming the admin trie', async () => {
    const store = (await hostStores()).createMemoryStore();
    const engine = await createLedgerEngine(options(store));
    await commit(engine, new Map(), [['app1', 't1', 'a', '1']]);
    // The admin level's records are keyed under the engine secret itself (§11.1).
    const adminRoot = hex(createLedgerKeyring({ origin: SECRET }).storeKey(engine.at().stateHash));
    const entries = await dump(store);
    const record = entries.get(adminRoot);
    assert.ok(record !== undefined, 'the admin root has a record of its own');
    const flipped = `${record.slice(0, -2)}${(Number.parseInt(record.slice(-2), 16) ^ 1).toString(16).padStart(2, '0')}`;
    for (const [what, damaged] of [
      ['deleted', new Map([...entries].filter(([k]) => k !== adminRoot))],
      ['flipped', new Map([...entries, [adminRoot, flipped]])],
    ] as const) {
      await assert.rejects(
        openLedgerEngine(options(await storeOf(damaged), { cacheBytes: 0 })),
        (e: unknown) => e instanceof LedgerIntegrityError && e.message.includes('admin trie'),
        what,
      );
    }
    // The intact store opens (the refusals above are the damage's).
    await openLedgerEngine(options(await storeOf(entries), { cacheBytes: 0 }));
  });
});
