/**
 * ABI v1 call by call (docs/app-abi.md): context, notifications, list with the ledger's cursors,
 * history and proof encodings, crypto with named keys, AssemblyScript runtime imports. Modules
 * stash what they saw in their table `out`; the test reads it back from the engine.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { CloisterError, sha256, verifyStateProof } from '@cloister/core';
import {
  AppAbortError,
  type AppRuntime,
  createAppRuntime,
  MAX_TRACE_LINES,
  QueryWriteError,
  ResultInvalidError,
} from '../src/apps/runtime/index.js';
import { createLedgerEngine, type LedgerEngine } from '../src/ledger/ledger/index.js';
import { abiKit, SCRATCH, SCRATCH2 } from './app-runtime-wasm.js';
import { hostStores, options } from './ledger-engine-helpers.js';
import { brIf, get, I, i32, loop, T, tee } from './sandbox-wasm.js';

const te = (s: string): Uint8Array => new TextEncoder().encode(s);
const CALLER = Uint8Array.from({ length: 65 }, (_, i) => (i === 0 ? 4 : i));
const asString = (s: string): Uint8Array => {
  const body = new Uint8Array(Buffer.from(s, 'utf16le'));
  const out = new Uint8Array(4 + body.length);
  new DataView(out.buffer).setUint32(0, body.length, true);
  out.set(body, 4);
  return out;
};

/** Results and notifications at the edges of "JSON text" (docs/app-abi.md §3.2). */
const JSON_CASES = {
  bom: '\uFEFF1',
  deep64: `${'['.repeat(64)}${']'.repeat(64)}`,
  deep65: `${'{"a":'.repeat(64)}[]${'}'.repeat(64)}`,
  quoted: `["${'['.repeat(100)}\\"{"]`,
} as const;

const kit = abiKit({
  out: 'out',
  l: 'l',
  a: 'a',
  b: 'b',
  c: 'c',
  d: 'd',
  e: 'e',
  h: 'h',
  k: 'k',
  aes: 'aes',
  signer: 'signer',
  missing: 'missing',
  msg: 'hello',
  other: 'hellO',
  aad: 'aad',
  n1: '{"n":1}',
  n2: '[2]',
  bad: 'not json',
  ...JSON_CASES,
  qstr: '"query"',
  tstr: '"transaction"',
  astr: asString('boom'),
  fstr: asString('app.ts'),
  ctx: 'ctx',
  rid: 'rid',
  page1: 'page1',
  page2: 'page2',
  page3: 'page3',
  hist: 'hist',
  proof: 'proof',
  sh: 'sh',
  ct: 'ct',
  pt: 'pt',
  st: 'st',
  dig: 'dig',
  rnd: 'rnd',
  pub: 'pub',
  ver: 'ver',
});
const c = kit.call;
const S3 = 49_152;

const setL = (i: number) => [0x21, i];
const stash = (key: string, ptr: number[], len: number[]) => [
  ...kit.str('out'),
  ...kit.str(key),
  ...ptr,
  ...len,
  ...c('ledger_set'),
];
/** n (on the stack) → local 2; buffer_read to `to`; stash `to`, n as out/key. */
const stashBuf = (key: string, to: number) => [
  ...setL(2),
  ...i32(to),
  ...c('buffer_read'),
  ...stash(key, i32(to), get(2)),
];
const storeI32 = (addr: number, value: number[]) => [...i32(addr), ...value, 0x36, 2, 0];
const storeI64 = (addr: number, value: number[]) => [...i32(addr), ...value, 0x37, 3, 0];
const storeF64 = (addr: number, value: number[]) => [...i32(addr), ...value, 0x39, 3, 0];
const loadI32 = (addr: number) => [...i32(addr), 0x28, 2, 0];
const set = (table: string, key: string, value: string) => [
  ...kit.str(table),
  ...kit.str(key),
  ...kit.str(value),
  ...c('ledger_set'),
];

const ctx = [
  ...storeI32(SCRATCH, c('context_kind')),
  ...storeI32(SCRATCH + 4, c('context_request_id')),
  ...storeI64(SCRATCH + 8, c('context_index')),
  ...storeI64(SCRATCH + 16, c('context_time')),
  ...storeF64(SCRATCH + 24, c('env.Date.now')),
  ...storeF64(SCRATCH + 32, c('env.seed')),
  ...stash('ctx', i32(SCRATCH), i32(40)),
  ...c('context_request_id'),
  ...setL(2),
  ...i32(SCRATCH2),
  ...c('buffer_read'),
  // max(n, 0): -1 (no request id) stashes an empty value.
  ...stash('rid', i32(SCRATCH2), [...get(2), ...i32(0), ...get(2), ...i32(0), 0x4e, 0x1b]),
];

const qkind = [
  ...c('context_kind'),
  I.i32Eqz,
  0x04,
  0x40,
  ...kit.str('qstr'),
  ...c('result_set'),
  I.else,
  ...kit.str('tstr'),
  ...c('result_set'),
  I.end,
];

// Keys and values are one byte each: entries are 10 bytes, so with 2 per page the cursor length
// sits at +24 and the cursor at +28 of the page.
const list = [
  ...kit.str('l'),
  ...i32(0),
  ...i32(0),
  ...i32(2),
  ...c('ledger_list'),
  ...stashBuf('page1', SCRATCH),
  ...kit.str('l'),
  ...i32(SCRATCH + 28),
  ...loadI32(SCRATCH + 24),
  ...i32(2),
  ...c('ledger_list'),
  ...stashBuf('page2', SCRATCH2),
  ...kit.str('l'),
  ...i32(SCRATCH2 + 28),
  ...loadI32(SCRATCH2 + 24),
  ...i32(2),
  ...c('ledger_list'),
  ...stashBuf('page3', S3),
];

const crypto = [
  // AES: create, encrypt, decrypt, tampered decrypt, wrong kind, exists, missing.
  ...i32(2),
  ...kit.str('aes'),
  ...c('key_create'),
  I.drop,
  ...kit.str('aes'),
  ...kit.str('msg'),
  ...kit.str('aad'),
  ...c('key_encrypt'),
  ...stashBuf('ct', SCRATCH),
  ...kit.str('aes'),
  ...i32(SCRATCH),
  ...get(2),
  ...kit.str('aad'),
  ...c('key_decrypt'),
  ...stashBuf('pt', SCRATCH2),
  ...i32(SCRATCH + 20),
  ...i32(0x55),
  0x3a,
  0,
  0, // i32.store8: tamper one ciphertext byte
  ...storeI32(S3, [
    ...kit.str('aes'),
    ...i32(SCRATCH),
    ...get(2),
    ...kit.str('aad'),
    ...c('key_decrypt'),
  ]),
  ...storeI32(S3 + 4, [...kit.str('aes'), ...c('key_public')]),
  ...storeI32(S3 + 8, [...i32(2), ...kit.str('aes'), ...c('key_create')]),
  ...storeI32(S3 + 12, [...kit.str('missing'), ...kit.str('msg'), ...c('key_sign')]),
  // ECDSA: create, public, sign, verify good and bad message.
  ...storeI32(S3 + 16, [...i32(1), ...kit.str('signer'), ...c('key_create')]),
  ...kit.str('signer'),
  ...c('key_public'),
  I.drop,
  ...i32(SCRATCH),
  ...c('buffer_read'),
  ...stash('pub', i32(SCRATCH), i32(65)),
  ...kit.str('signer'),
  ...kit.str('msg'),
  ...c('key_sign'),
  I.drop,
  ...i32(SCRATCH + 100),
  ...c('buffer_read'),
  ...storeI32(S3 + 20, [
    ...i32(SCRATCH),
    ...i32(65),
    ...kit.str('msg'),
    ...i32(SCRATCH + 100),
    ...i32(64),
    ...c('ecdsa_verify'),
  ]),
  ...storeI32(S3 + 24, [
    ...i32(SCRATCH),
    ...i32(65),
    ...kit.str('other'),
    ...i32(SCRATCH + 100),
    ...i32(64),
    ...c('ecdsa_verify'),
  ]),
  ...stash('st', i32(S3), i32(28)),
  // SHA-256 and randomness.
  ...kit.str('msg'),
  ...i32(SCRATCH2),
  ...c('sha256'),
  ...stash('dig', i32(SCRATCH2), i32(32)),
  ...i32(SCRATCH2),
  ...i32(32),
  ...c('random_bytes'),
  ...stash('rnd', i32(SCRATCH2), i32(32)),
];

const app = kit.module({
  locals: [T.i32],
  routes: [
    { name: 'ctx', kind: 'transaction', body: ctx },
    { name: 'kind', kind: 'query', body: qkind },
    { name: 'kindTx', kind: 'transaction', body: qkind },
    {
      name: 'notify',
      kind: 'transaction',
      body: [...kit.str('n1'), ...c('notify'), ...kit.str('n2'), ...c('notify')],
    },
    { name: 'notifyQ', kind: 'query', body: [...kit.str('n1'), ...c('notify')] },
    { name: 'notifyBad', kind: 'transaction', body: [...kit.str('bad'), ...c('notify')] },
    { name: 'resultBad', kind: 'query', body: [...kit.str('bad'), ...c('result_set')] },
    ...(['bom', 'deep64', 'deep65', 'quoted'] as const).flatMap((k) => [
      { name: `result.${k}`, kind: 'query' as const, body: [...kit.str(k), ...c('result_set')] },
      { name: `notify.${k}`, kind: 'query' as const, body: [...kit.str(k), ...c('notify')] },
    ]),
    {
      name: 'fill',
      kind: 'transaction',
      body: [
        ...set('l', 'a', 'a'),
        ...set('l', 'b', 'b'),
        ...set('l', 'c', 'c'),
        ...set('l', 'd', 'd'),
        ...set('l', 'e', 'e'),
      ],
    },
    { name: 'list', kind: 'transaction', body: list },
    {
      name: 'badCursor',
      kind: 'query',
      body: [...kit.str('l'), ...kit.str('n1'), ...i32(2), ...c('ledger_list'), I.drop],
    },
    { name: 'h1', kind: 'transaction', body: set('h', 'k', 'a') },
    { name: 'h2', kind: 'transaction', body: set('h', 'k', 'b') },
    {
      name: 'hrm',
      kind: 'transaction',
      body: [...kit.str('h'), ...kit.str('k'), ...c('ledger_remove')],
    },
    {
      name: 'hist',
      kind: 'transaction',
      body: [
        ...kit.str('h'),
        ...kit.str('k'),
        ...i32(10),
        ...c('ledger_history'),
        ...stashBuf('hist', SCRATCH),
      ],
    },
    {
      name: 'prove',
      kind: 'transaction',
      body: [
        ...kit.str('h'),
        ...kit.str('k'),
        ...c('ledger_prove'),
        ...stashBuf('proof', SCRATCH),
        ...i32(SCRATCH2),
        ...c('ledger_state_hash'),
        ...stash('sh', i32(SCRATCH2), i32(32)),
      ],
    },
    { name: 'crypto', kind: 'transaction', body: crypto },
    {
      name: 'keyInQuery',
      kind: 'query',
      body: [...i32(1), ...kit.str('signer'), ...c('key_create'), I.drop],
    },
    {
      name: 'abort',
      kind: 'query',
      body: [
        ...i32(kit.ptr('astr') + 4),
        ...i32(kit.ptr('fstr') + 4),
        ...i32(12),
        ...i32(3),
        ...c('env.abort'),
      ],
    },
    {
      name: 'trace',
      kind: 'query',
      body: [
        ...i32(kit.ptr('astr') + 4),
        ...i32(2),
        0x44,
        ...new Uint8Array(new Float64Array([1.5]).buffer),
        0x44,
        ...new Uint8Array(new Float64Array([2]).buffer),
        0x44,
        ...new Uint8Array(8),
        0x44,
        ...new Uint8Array(8),
        0x44,
        ...new Uint8Array(8),
        ...c('env.trace'),
      ],
    },
  ],
});

interface Setup {
  engine: LedgerEngine;
  rt: AppRuntime;
  traces: [string, string, readonly number[]][];
  setClock(t: number): void;
}

async function setup(): Promise<Setup> {
  const { createMemoryStore } = await hostStores();
  const engine = await createLedgerEngine(options(createMemoryStore()));
  let clock = 10_000;
  const traces: [string, string, readonly number[]][] = [];
  const rt = createAppRuntime({
    engine,
    now: () => clock,
    trace: (a, m, v) => traces.push([a, m, v]),
  });
  await rt.deploy('abi', app);
  return { engine, rt, traces, setClock: (t) => (clock = t) };
}

const tx = (rt: AppRuntime, method: string, extra: object = {}) =>
  rt.call({ app: 'abi', method, kind: 'transaction', args: '{}', caller: CALLER, ...extra });
const q = (rt: AppRuntime, method: string) =>
  rt.call({ app: 'abi', method, kind: 'query', args: '{}', caller: CALLER });
const out = (engine: LedgerEngine, key: string): Uint8Array => {
  const v = engine.at().get('abi', 'out', te(key));
  assert.ok(v, `out/${key} was written`);
  return v;
};

const view = (b: Uint8Array): DataView => new DataView(b.buffer, b.byteOffset, b.byteLength);

function decodePage(b: Uint8Array): { keys: string[]; cursor: Uint8Array } {
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const n = dv.getUint32(0, true);
  let o = 4;
  const keys: string[] = [];
  for (let i = 0; i < n; i++) {
    const kl = dv.getUint32(o, true);
    keys.push(new TextDecoder().decode(b.subarray(o + 4, o + 4 + kl)));
    o += 4 + kl;
    const vl = dv.getUint32(o, true);
    o += 4 + vl;
  }
  const cl = dv.getUint32(o, true);
  assert.equal(o + 4 + cl, b.length);
  return { keys, cursor: b.subarray(o + 4, o + 4 + cl) };
}

describe('ABI v1: context', () => {
  test('kind, request id, committed index, monotonic time, Date.now and seed', async () => {
    const { engine, rt, setClock } = await setup();
    setClock(50_000);
    await tx(rt, 'ctx', { requestId: 'req-7' });
    const index = engine.index;
    const dv = view(out(engine, 'ctx'));
    assert.equal(dv.getInt32(0, true), 1, 'transaction');
    assert.equal(dv.getInt32(4, true), 5, 'request id size');
    assert.equal(dv.getBigInt64(8, true), BigInt(index - 1), 'reads at the snapshot');
    assert.equal(dv.getBigInt64(16, true), 50_000n);
    assert.equal(dv.getFloat64(24, true), 50_000);
    assert.ok(dv.getFloat64(32, true) >= 1);
    assert.equal(new TextDecoder().decode(out(engine, 'rid')), 'req-7');
    // The clock goes back: time stays where it was.
    setClock(20_000);
    await tx(rt, 'ctx');
    const dv2 = view(out(engine, 'ctx'));
    assert.equal(dv2.getBigInt64(16, true), 50_000n);
    assert.equal(dv2.getInt32(4, true), -1, 'no request id');
    assert.equal(out(engine, 'rid').length, 0, 'after a status the host buffer is empty');
  });

  test('context_kind tells queries from transactions', async () => {
    const { rt } = await setup();
    assert.equal((await q(rt, 'kind')).result, '"query"');
    assert.equal((await tx(rt, 'kindTx')).result, '"transaction"');
  });
});

describe('ABI v1: results and notifications', () => {
  test('notifications come in order, and repeat with the request outcome', async () => {
    const { rt } = await setup();
    const r = await tx(rt, 'notify', { requestId: 'n' });
    assert.deepEqual(r.notifications, ['{"n":1}', '[2]']);
    const again = await tx(rt, 'notify', { requestId: 'n' });
    assert.equal(again.repeated, true);
    assert.deepEqual(again.notifications, ['{"n":1}', '[2]']);
    assert.deepEqual((await q(rt, 'notifyQ')).notifications, ['{"n":1}']);
  });

  test('a notification or result that is not JSON fails clearly', async () => {
    const { rt } = await setup();
    await assert.rejects(tx(rt, 'notifyBad'), ResultInvalidError);
    const e = await q(rt, 'resultBad').catch((x: unknown) => x);
    assert.ok(e instanceof ResultInvalidError);
    assert.equal(e.code, 'APP_RESULT_INVALID');
  });

  test('a byte-order mark, or nesting deeper than maxJsonDepth (64), is refused; brackets in strings do not count', async () => {
    const { rt } = await setup();
    for (const how of ['result', 'notify']) {
      const what = how === 'result' ? 'result' : 'notification';
      const bom = await q(rt, `${how}.bom`).catch((x: unknown) => x);
      assert.ok(bom instanceof ResultInvalidError, String(bom));
      assert.equal(bom.message, `the app's ${what} is not valid JSON text`);
      const deep = await q(rt, `${how}.deep65`).catch((x: unknown) => x);
      assert.ok(deep instanceof ResultInvalidError, String(deep));
      assert.equal(
        deep.message,
        `the app's ${what} nests arrays and objects deeper than 64 levels`,
      );
      for (const ok of ['deep64', 'quoted']) {
        const r = await q(rt, `${how}.${ok}`);
        const text = JSON_CASES[ok as keyof typeof JSON_CASES];
        if (how === 'result') assert.equal(r.result, text);
        else assert.deepEqual(r.notifications, [text]);
      }
    }
  });
});

describe('ABI v1: ledger', () => {
  test('list pages through a table with the ledger cursors', async () => {
    const { engine, rt } = await setup();
    await tx(rt, 'fill');
    await tx(rt, 'list');
    const p1 = decodePage(out(engine, 'page1'));
    const p2 = decodePage(out(engine, 'page2'));
    const p3 = decodePage(out(engine, 'page3'));
    assert.equal(p1.keys.length, 2);
    assert.equal(p2.keys.length, 2);
    assert.equal(p3.keys.length, 1);
    assert.ok(p1.cursor.length > 0 && p2.cursor.length > 0);
    assert.equal(p3.cursor.length, 0, 'the listing is complete');
    assert.deepEqual([...p1.keys, ...p2.keys, ...p3.keys].sort(), ['a', 'b', 'c', 'd', 'e']);
  });

  test('a forged cursor is LEDGER_CURSOR', async () => {
    const { rt } = await setup();
    await tx(rt, 'fill');
    const e = await q(rt, 'badCursor').catch((x: unknown) => x);
    assert.ok(e instanceof CloisterError);
    assert.equal(e.code, 'LEDGER_CURSOR');
  });

  test('history: versions newest first, a removal as -1', async () => {
    const { engine, rt } = await setup();
    const i1 = (await tx(rt, 'h1')).txid;
    const i2 = (await tx(rt, 'h2')).txid;
    const i3 = (await tx(rt, 'hrm')).txid;
    await tx(rt, 'hist');
    const b = out(engine, 'hist');
    const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
    assert.equal(dv.getUint32(0, true), 3);
    assert.equal(`1.${dv.getBigUint64(4, true)}`, i3);
    assert.equal(dv.getInt32(12, true), -1);
    assert.equal(`1.${dv.getBigUint64(16, true)}`, i2);
    assert.equal(dv.getInt32(24, true), 1);
    assert.equal(b[28], 0x62);
    assert.equal(`1.${dv.getBigUint64(29, true)}`, i1);
    assert.equal(b.length, 29 + 12 + 1);
  });

  test('a proof of the app own record verifies offline against the stated hash', async () => {
    const { engine, rt } = await setup();
    await tx(rt, 'h1');
    await tx(rt, 'prove');
    const verdict = verifyStateProof(
      out(engine, 'sh'),
      { ledger: 'abi', table: 'h', key: te('k'), value: te('a') },
      out(engine, 'proof'),
    );
    assert.equal(verdict.ok, true);
    assert.equal(verdict.ok && verdict.present, true);
    const wrong = verifyStateProof(
      out(engine, 'sh'),
      { ledger: 'abi', table: 'h', key: te('k'), value: te('b') },
      out(engine, 'proof'),
    );
    assert.equal(wrong.ok, false);
  });
});

describe('ABI v1: crypto', () => {
  test('AES-GCM, ECDSA P-256, SHA-256, randomness, statuses', async () => {
    const { engine, rt } = await setup();
    await tx(rt, 'crypto');
    const ct = out(engine, 'ct');
    assert.equal(ct.length, 12 + 5 + 16);
    assert.equal(new TextDecoder().decode(out(engine, 'pt')), 'hello');
    const st = view(out(engine, 'st'));
    assert.equal(st.getInt32(0, true), -4, 'tampered: AUTH_FAILED');
    assert.equal(st.getInt32(4, true), -3, 'public key of an AES key: WRONG_KIND');
    assert.equal(st.getInt32(8, true), -2, 'create twice: EXISTS');
    assert.equal(st.getInt32(12, true), -1, 'sign with a missing key: NOT_FOUND');
    assert.equal(st.getInt32(16, true), 0, 'created');
    assert.equal(st.getInt32(20, true), 1, 'verifies');
    assert.equal(st.getInt32(24, true), 0, 'another message does not');
    assert.deepEqual(out(engine, 'dig'), sha256(te('hello')));
    assert.equal(out(engine, 'rnd').length, 32);
    // Keys live in $keys, which no app-facing read reaches.
    assert.throws(() => engine.at().get('abi', '$keys', te('aes')), /reserved/);
  });

  test('a second run draws other randomness and another nonce', async () => {
    const { engine, rt } = await setup();
    await tx(rt, 'crypto');
    const r1 = out(engine, 'rnd');
    const { engine: e2, rt: rt2 } = await setup();
    await tx(rt2, 'crypto');
    assert.notDeepEqual(out(e2, 'rnd'), r1);
    // Another key of the same name in another ledger: its own public key, not one the runtime
    // kept parsed for the first (parsed keys are kept by the digest of their stored bytes).
    const [p1, p2] = [out(engine, 'pub'), out(e2, 'pub')];
    assert.equal(p1.length, 65);
    assert.equal(p1[0], 4);
    assert.notDeepEqual(p2, p1);
  });

  test('key_create in a query is a write: APP_QUERY_WRITE', async () => {
    const { rt } = await setup();
    await assert.rejects(q(rt, 'keyInQuery'), QueryWriteError);
  });
});

describe('ABI v1: AssemblyScript runtime imports', () => {
  test('env.abort reads AssemblyScript strings; env.trace goes to the sink only', async () => {
    const { rt, traces } = await setup();
    const e = await q(rt, 'abort').catch((x: unknown) => x);
    assert.ok(e instanceof AppAbortError);
    assert.equal(e.appMessage, 'boom');
    assert.equal(e.file, 'app.ts');
    assert.match(e.message, /boom at app\.ts:12:3/);
    const r = await q(rt, 'trace');
    assert.equal(r.result, 'null');
    assert.deepEqual(traces, [['abi', 'boom', [1.5, 2]]]);
  });

  test('one call hands on at most MAX_TRACE_LINES trace lines, and pays for every one', async () => {
    // 690,000 lines of one call held a node 2.5 s with app trace on.
    const { rt, traces } = await setup();
    // The 'trace' route's call (no values), in a loop counted in local 2 (after the 2 params).
    const one = [
      ...i32(kit.ptr('astr') + 4),
      ...i32(0),
      ...Array.from({ length: 5 }, () => [0x44, ...new Uint8Array(8)]).flat(),
      ...c('env.trace'),
    ];
    const n = MAX_TRACE_LINES + 500;
    const looped = [
      ...loop(),
      ...one,
      ...get(2),
      ...i32(1),
      I.i32Add,
      ...tee(2),
      ...i32(n),
      I.i32LtU,
      ...brIf(0),
      I.end,
    ];
    const loopApp = kit.module({
      locals: [T.i32],
      routes: [{ name: 'many', kind: 'query', body: looped }],
    });
    const many = async (on: AppRuntime) => {
      await on.deploy('T', loopApp);
      return on.call({ app: 'T', method: 'many', kind: 'query', args: '{}', caller: CALLER });
    };
    const withTrace = await many(rt);
    assert.equal(traces.length, MAX_TRACE_LINES);
    assert.ok(traces.every(([a, m]) => a === 'T' && m === 'boom'));
    // The same call with trace off pays the same fuel: the dropped lines were charged.
    const without = await many(createAppRuntime({ engine: (await setup()).engine }));
    assert.equal(withTrace.fuelUsed, without.fuelUsed);
  });
});
