/**
 * Fuel that cannot be dodged (docs/app-abi.md §11): an import reached through `call_indirect`
 * pays its base, `ecdsa_verify` copies nothing for lengths that cannot verify, and `ledger_list`
 * and `ledger_history` pay for every entry they read as they read it — the removed keys a listing
 * steps over included — so one call's work is bounded by its fuel, whatever the table holds.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, test } from 'node:test';
import {
  type AppRuntime,
  createAppRuntime,
  FUEL_PER_ENTRY,
  FUEL_PER_KEY_WRITTEN,
  HOST_CHARGED_BASE,
  IMPORTS,
  JSON_FUEL_PER_BYTE,
} from '../src/apps/runtime/index.js';
import { FuelExhaustedError } from '../src/apps/sandbox/index.js';
import { createLedgerEngine, type LedgerEngine } from '../src/ledger/ledger/index.js';
import { abiKit } from './app-runtime-wasm.js';
import { hostStores, options } from './ledger-engine-helpers.js';
import { I, i32 } from './sandbox-wasm.js';

const CALLER = Uint8Array.from({ length: 65 }, (_, i) => (i === 0 ? 4 : i));
const te = (s: string): Uint8Array => new TextEncoder().encode(s);
// A JSON string of exactly 1,000 bytes, and one of 1.
const NOTE = JSON.stringify('x'.repeat(998));
const kit = abiKit({ t: 't', k: 'k', j: 'j', note: NOTE, one: '1' });
const c = kit.call;
const VERIFY_BASE = IMPORTS.cloister?.ecdsa_verify?.cost as number;

/** ecdsa_verify(pub, 65, msg, 0, sig, 64) with pointers into page 0: verifies nothing, returns 0. */
const verifyArgs = [...i32(0), ...i32(65), ...i32(0), ...i32(0), ...i32(0), ...i32(64)];

/** ledger_set(t, key, key) and ledger_remove(t, key). */
const setOf = (key: string) => [
  ...kit.str('t'),
  ...kit.str(key),
  ...kit.str(key),
  ...c('ledger_set'),
];
const delOf = (key: string) => [...kit.str('t'), ...kit.str(key), ...c('ledger_remove')];

const app = kit.module({
  tabled: ['ecdsa_verify', 'buffer_read'],
  routes: [
    { name: 'noteBig', kind: 'query', body: [...kit.str('note'), ...c('notify')] },
    { name: 'setK', kind: 'transaction', body: setOf('k') },
    { name: 'setKK', kind: 'transaction', body: [...setOf('k'), ...setOf('k')] },
    { name: 'setKJ', kind: 'transaction', body: [...setOf('k'), ...setOf('j')] },
    { name: 'setKdelJ', kind: 'transaction', body: [...setOf('k'), ...delOf('j')] },
    { name: 'setKdelK', kind: 'transaction', body: [...setOf('k'), ...delOf('k')] },
    { name: 'noteSmall', kind: 'query', body: [...kit.str('one'), ...c('notify')] },
    { name: 'resBig', kind: 'transaction', body: [...kit.str('note'), ...c('result_set')] },
    { name: 'resSmall', kind: 'transaction', body: [...kit.str('one'), ...c('result_set')] },
    { name: 'readDirect', kind: 'query', body: [...i32(0), ...c('buffer_read')] },
    {
      name: 'readIndirect',
      kind: 'query',
      body: [...i32(0), ...kit.callIndirect('buffer_read', 1)],
    },
    { name: 'direct', kind: 'query', body: [...verifyArgs, ...c('ecdsa_verify'), I.drop] },
    {
      name: 'indirect',
      kind: 'query',
      body: [...verifyArgs, ...kit.callIndirect('ecdsa_verify', 0), I.drop],
    },
    {
      // Lengths that cannot verify, with ranges far outside the 64 KiB memory: nothing is read.
      name: 'hugeLengths',
      kind: 'query',
      body: [
        ...[...i32(0), ...i32(0x7fff_0000), ...i32(0), ...i32(0)],
        ...[...i32(0), ...i32(0x7fff_0000)],
        ...c('ecdsa_verify'),
        I.drop,
      ],
    },
    {
      name: 'list1',
      kind: 'query',
      body: [...kit.str('t'), ...i32(0), ...i32(0), ...i32(1), ...c('ledger_list'), I.drop],
    },
    {
      name: 'listAll',
      kind: 'query',
      body: [...kit.str('t'), ...i32(0), ...i32(0), ...i32(1000), ...c('ledger_list'), I.drop],
    },
    {
      name: 'history',
      kind: 'query',
      body: [...kit.str('t'), ...kit.str('k'), ...i32(1000), ...c('ledger_history'), I.drop],
    },
  ],
});

async function world(): Promise<{ engine: LedgerEngine; rt: AppRuntime }> {
  const { createMemoryStore } = await hostStores();
  const engine = await createLedgerEngine(options(createMemoryStore()));
  const rt = createAppRuntime({ engine });
  await rt.deploy('F', app);
  return { engine, rt };
}

const query = (rt: AppRuntime, method: string, fuel?: number) =>
  rt.call({
    app: 'F',
    method,
    kind: 'query',
    args: '{}',
    caller: CALLER,
    ...(fuel === undefined ? {} : { fuel }),
  });

/** The fuel a call used, whether it finished or ran out. */
async function fuelOf(rt: AppRuntime, method: string, fuel?: number): Promise<number> {
  try {
    return (await query(rt, method, fuel)).fuelUsed;
  } catch (e) {
    assert.ok(e instanceof FuelExhaustedError, `expected fuel exhaustion, got ${String(e)}`);
    return e.fuelUsed;
  }
}

/** Writes `values` into table 't' of app ledger 'F' (one commit), then removes `remove` keys. */
async function fill(engine: LedgerEngine, values: [string, Uint8Array][], remove: string[] = []) {
  const tx = engine.begin();
  for (const [k, v] of values) tx.set('F', 't', te(k), v);
  await tx.commit();
  if (remove.length === 0) return;
  const rm = engine.begin();
  for (const k of remove) rm.remove('F', 't', te(k));
  await rm.commit();
}

/** The §11 cost table of docs/app-abi.md: `module.field` → base fuel, row for row. */
function documentedBases(): Map<string, number> {
  const doc = readFileSync(new URL('../../../docs/app-abi.md', import.meta.url), 'utf8');
  const section = doc.slice(doc.indexOf('## 11. Fuel'), doc.indexOf('## 12. Limits'));
  const fields = Object.keys(IMPORTS.cloister ?? {});
  const out = new Map<string, number>();
  for (const line of section.split('\n')) {
    const row = /^\| (.+?) \| ([\d,]+) \| /.exec(line);
    if (row?.[1] === undefined || row[2] === undefined) continue;
    const base = Number(row[2].replaceAll(',', ''));
    for (const [, name] of row[1].matchAll(/`([^`]+)`/g)) {
      if (name === undefined) continue;
      if (name.startsWith('env.')) out.set(name, base);
      else if (name.endsWith('*')) {
        for (const f of fields.filter((f) => f.startsWith(name.slice(0, -1)))) {
          out.set(`cloister.${f}`, base);
        }
      } else out.set(`cloister.${name}`, base);
    }
  }
  return out;
}

describe('fuel: the cost table is the documented one', () => {
  test('every import has the base docs/app-abi.md §11 gives it, and every row is an import', () => {
    const code = new Map<string, number>();
    for (const [module, fields] of Object.entries(IMPORTS)) {
      for (const [field, spec] of Object.entries(fields)) code.set(`${module}.${field}`, spec.cost);
    }
    const doc = documentedBases();
    assert.ok(doc.size >= 30, `the §11 table was read (${doc.size} imports)`);
    assert.deepEqual([...code].sort(), [...doc].sort(), 'IMPORTS bases and the §11 table differ');
  });
});

describe('fuel: host functions pay their base however they are called', () => {
  test('ecdsa_verify through call_indirect pays its host-charged base, as a direct call does', async () => {
    const { rt } = await world();
    const direct = await fuelOf(rt, 'direct');
    const indirect = await fuelOf(rt, 'indirect');
    assert.ok(direct >= VERIFY_BASE, `direct ${direct}`);
    assert.ok(indirect >= VERIFY_BASE, `indirect ${indirect} (was about 10 + the loop)`);
    assert.ok(Math.abs(indirect - direct) < 100, `${indirect} vs ${direct}`);
    // And it stops where the base cannot be paid.
    await assert.rejects(query(rt, 'indirect', VERIFY_BASE / 2), FuelExhaustedError);
  });

  test('a small import (buffer_read, base 250) through call_indirect pays its base too', async () => {
    // Its base was charged at the call site only: through a table a loop of it paid 13 units a
    // call for about 170 ns of work.
    const base = IMPORTS.cloister?.buffer_read?.cost as number;
    assert.ok(base >= HOST_CHARGED_BASE);
    const { rt } = await world();
    const direct = await fuelOf(rt, 'readDirect');
    const indirect = await fuelOf(rt, 'readIndirect');
    assert.ok(direct >= base, `direct ${direct}`);
    assert.ok(indirect >= base, `indirect ${indirect}`);
    assert.ok(Math.abs(indirect - direct) <= 10, `${indirect} vs ${direct}`);
  });

  test('ecdsa_verify with lengths that cannot verify reads nothing (no 2 GiB copies)', async () => {
    const { rt } = await world();
    const r = await query(rt, 'hugeLengths');
    assert.ok(r.fuelUsed < VERIFY_BASE + 1000, `${r.fuelUsed}`);
  });
});

describe('fuel: what the runtime does with a result or notification is paid by the call', () => {
  test('a notification and a result pay JSON_FUEL_PER_BYTE a byte for their JSON check', async () => {
    // At the copy's 1/16 alone, 64 notifications of 64 KiB held the enclave 230 ms on 269,000.
    const { rt } = await world();
    const extra = 999 * JSON_FUEL_PER_BYTE + Math.ceil(1000 / 16) - 1;
    assert.equal((await fuelOf(rt, 'noteBig')) - (await fuelOf(rt, 'noteSmall')), extra);
    const txFuel = async (method: string, requestId?: string) =>
      (
        await rt.call({
          app: 'F',
          method,
          kind: 'transaction',
          args: '{}',
          caller: CALLER,
          ...(requestId === undefined ? {} : { requestId }),
        })
      ).fuelUsed;
    assert.equal((await txFuel('resBig')) - (await txFuel('resSmall')), extra);
    // With a request id the result is stored as the outcome: 1 more a byte, ledger_set's rate.
    const stored = (await txFuel('resBig', 'r1')) - (await txFuel('resSmall', 'r2'));
    assert.equal(stored, extra + 999);
  });
});

describe('fuel: each key a transaction writes pays its share of the commit', () => {
  test('a key written the first time pays FUEL_PER_KEY_WRITTEN; written again, or removed after, it does not', async () => {
    // At ledger_set's 3,000 alone, 9,999 small writes held the enclave about 650 ms at commit.
    // (The routes' own instructions are charged at the dispatcher's entry, whichever runs: the
    // differences are the host's charges alone.)
    const { rt } = await world();
    const fuel = async (method: string) =>
      (await rt.call({ app: 'F', method, kind: 'transaction', args: '{}', caller: CALLER }))
        .fuelUsed;
    const one = await fuel('setK');
    const setBase = (IMPORTS.cloister?.ledger_set?.cost as number) + 3; // 3 bytes: t, k, k
    const removeBase = (IMPORTS.cloister?.ledger_remove?.cost as number) + 2;
    assert.equal((await fuel('setKK')) - one, setBase, 'the same key again');
    assert.equal((await fuel('setKJ')) - one, setBase + FUEL_PER_KEY_WRITTEN, 'another key');
    assert.equal((await fuel('setKdelK')) - one, removeBase, 'its own key removed');
    assert.equal(
      (await fuel('setKdelJ')) - one,
      removeBase + FUEL_PER_KEY_WRITTEN,
      'another key removed',
    );
  });
});

describe('fuel: list and history pay per entry read, as they read it', () => {
  test('a listing that steps over removed keys pays for each; a small budget stops it', async () => {
    const { engine, rt } = await world();
    const keys = Array.from({ length: 300 }, (_, i) => `gone${i}`);
    await fill(
      engine,
      keys.map((k) => [k, te('v')]),
      keys,
    );
    // 300 removed keys and nothing live: the page is empty, but the walk read 300 entries.
    const all = await fuelOf(rt, 'list1');
    assert.ok(all >= 300 * FUEL_PER_ENTRY, `${all} for 300 removed keys`);
    const limit = 20 * FUEL_PER_ENTRY;
    const stopped = await fuelOf(rt, 'list1', limit);
    assert.ok(stopped > limit && stopped <= limit + FUEL_PER_ENTRY + 64, `${stopped}`);
  });

  test('a page of 1 MB values stops at the first entry the fuel cannot pay for', async () => {
    const { engine, rt } = await world();
    const big = new Uint8Array(1_000_000).fill(7);
    await fill(engine, [
      ['a', big],
      ['b', big],
      ['c', big],
    ]);
    const whole = await fuelOf(rt, 'listAll');
    assert.ok(whole >= 3_000_000 + 3 * FUEL_PER_ENTRY, `${whole}`);
    const limit = 10_000;
    const used = await fuelOf(rt, 'listAll', limit);
    // One entry read past the budget at most (it was 3 MB and more before: the page was built first).
    assert.ok(used <= limit + FUEL_PER_ENTRY + 1_000_064, `${used}`);
  });

  test('history pays per version read; a small budget stops it after one', async () => {
    const { engine, rt } = await world();
    const big = new Uint8Array(1_000_000);
    for (let i = 0; i < 3; i++) await fill(engine, [['k', big.fill(i)]]);
    const whole = await fuelOf(rt, 'history');
    assert.ok(whole >= 3_000_000 + 3 * FUEL_PER_ENTRY, `${whole}`);
    const used = await fuelOf(rt, 'history', 10_000);
    assert.ok(used <= 10_000 + FUEL_PER_ENTRY + 1_000_000, `${used}`);
  });
});
