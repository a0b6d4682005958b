/**
 * The app runtime (docs/app-abi.md) on the real ledger engine over the in-memory store: deploy
 * checks, transactions all or nothing, queries read-only, request ids exactly-once, isolation of
 * apps and of reserved tables, app errors distinct from traps, fuel through the ABI.
 */
import assert from 'node:assert/strict';
import { createPublicKey, generateKeyPairSync, verify } from 'node:crypto';
import { describe, test } from 'node:test';
import {
  CloisterError,
  claimsDigest,
  concatBytes,
  fromHex,
  MAX_RESULT_BYTES,
  sha256,
  toHex,
  utf8,
} from '@cloister/core';
import {
  AbiError,
  AbiVersionError,
  AppAbortError,
  AppError,
  AppNotFoundError,
  type AppRuntime,
  callerIdOf,
  createAppRuntime,
  DEFAULT_ABI_LIMITS,
  JSON_FUEL_PER_BYTE,
  MethodKindError,
  MethodUnknownError,
  QueryWriteError,
  REQUESTS_TABLE,
  RequestIdReusedError,
} from '../src/apps/runtime/index.js';
import { AppTrapError, FuelExhaustedError, UnknownImportError } from '../src/apps/sandbox/index.js';
import {
  createLedgerEngine,
  type LedgerEngine,
  openLedgerEngine,
} from '../src/ledger/ledger/index.js';
import { type AbiKit, abiKit, SCRATCH, SCRATCH2 } from './app-runtime-wasm.js';
import { hostStores, options } from './ledger-engine-helpers.js';
import { get, I, i32, loop, T, wasm } from './sandbox-wasm.js';

const te = (s: string): Uint8Array => new TextEncoder().encode(s);
const td = (b: Uint8Array | undefined): string | undefined =>
  b === undefined ? undefined : new TextDecoder().decode(b);

const ALICE = concatBytes(Uint8Array.of(4), new Uint8Array(64).fill(0xa1));
const BOB = concatBytes(Uint8Array.of(4), new Uint8Array(64).fill(0xb0));

const kit: AbiKit = abiKit({
  t: 't',
  k: 'k',
  who: 'who',
  me: 'me',
  out: 'out',
  pub: 'pub',
  sig: 'sig',
  keyname: 'signer',
  msg: 'hello',
  ecode: 'E_NOPE',
  emsg: 'not today',
  // 1024 bytes that are not UTF-8 but for the last: each decodes to U+FFFD (3 bytes).
  ebad: Uint8Array.from({ length: 1024 }, (_, i) => (i === 1023 ? 0x21 : 0xff)),
  keys: '$keys',
  requests: '$requests',
  other: 'B',
  slash: 'B/t',
  nul: 'B\u0000t',
  one: '1',
});
const c = kit.call;

/** args → t/k; result = args. */
const put = [
  ...i32(SCRATCH2),
  ...c('call_args'),
  ...kit.str('t'),
  ...kit.str('k'),
  ...i32(SCRATCH2),
  ...get(1),
  ...c('ledger_set'),
  ...i32(SCRATCH2),
  ...get(1),
  ...c('result_set'),
];
/** t/k → result (null when absent). */
const read = [
  ...kit.str('t'),
  ...kit.str('k'),
  ...c('ledger_get'),
  0x21,
  2, // local.set 2
  ...get(2),
  ...i32(0),
  I.i32GeU - 1, // i32.ge_s (0x4e)
  0x04,
  0x40,
  ...i32(SCRATCH2),
  ...c('buffer_read'),
  ...i32(SCRATCH2),
  ...get(2),
  ...c('result_set'),
  I.end,
];
/** Reads t/k in the named table (string name) → result. */
const readTable = (name: string) => [
  ...kit.str(name),
  ...kit.str('k'),
  ...c('ledger_get'),
  0x21,
  2,
  ...get(2),
  ...i32(0),
  0x4e,
  0x04,
  0x40,
  ...i32(SCRATCH2),
  ...c('buffer_read'),
  ...i32(SCRATCH2),
  ...get(2),
  ...c('result_set'),
  I.end,
];
const hashLoop = [
  ...loop(),
  ...i32(SCRATCH),
  ...i32(4096),
  ...i32(SCRATCH),
  ...c('sha256'),
  0x0c,
  0,
  I.end,
];

const app = kit.module({
  locals: [T.i32],
  routes: [
    { name: 'put', kind: 'transaction', body: put },
    { name: 'get', kind: 'query', body: read },
    { name: 'putThenTrap', kind: 'transaction', body: [...put, I.unreachable] },
    {
      name: 'putThenFail',
      kind: 'transaction',
      body: [...put, ...kit.str('ecode'), ...kit.str('emsg'), ...c('fail')],
    },
    {
      name: 'failInvalidUtf8',
      kind: 'query',
      body: [...kit.str('ecode'), ...kit.str('ebad'), ...c('fail')],
    },
    { name: 'queryWrite', kind: 'query', body: put },
    { name: 'hashLoop', kind: 'query', body: hashLoop },
    { name: 'readKeys', kind: 'query', body: readTable('keys') },
    { name: 'readRequests', kind: 'transaction', body: readTable('requests') },
    {
      name: 'listKeys',
      kind: 'query',
      body: [...kit.str('keys'), ...i32(0), ...i32(0), ...i32(10), ...c('ledger_list'), I.drop],
    },
    {
      name: 'writeKeys',
      kind: 'transaction',
      body: [...kit.str('keys'), ...kit.str('k'), ...kit.str('k'), ...c('ledger_set')],
    },
    { name: 'readOther', kind: 'query', body: readTable('other') },
    { name: 'readSlash', kind: 'query', body: readTable('slash') },
    { name: 'readNul', kind: 'query', body: readTable('nul') },
    {
      name: 'oobRead',
      kind: 'query',
      body: [...kit.str('t'), ...i32(0xffff_ff00 | 0), ...i32(0x1000), ...c('ledger_get'), I.drop],
    },
    {
      name: 'oobWrite',
      kind: 'query',
      body: [
        ...kit.str('t'),
        ...kit.str('k'),
        ...c('ledger_get'),
        I.drop,
        ...i32(0x7fff_fff0),
        ...c('buffer_read'),
      ],
    },
    {
      name: 'oobCaller',
      kind: 'query',
      body: [...i32(65_536 - 16), ...c('context_caller')],
    },
    {
      name: 'whoami',
      kind: 'transaction',
      body: [
        ...i32(SCRATCH),
        ...c('context_caller'),
        ...kit.str('who'),
        ...kit.str('me'),
        ...i32(SCRATCH),
        ...i32(32),
        ...c('ledger_set'),
      ],
    },
    {
      name: 'sign',
      kind: 'transaction',
      body: [
        ...i32(1),
        ...kit.str('keyname'),
        ...c('key_create'),
        I.drop,
        ...kit.str('keyname'),
        ...c('key_public'),
        0x21,
        2,
        ...i32(SCRATCH),
        ...c('buffer_read'),
        ...kit.str('out'),
        ...kit.str('pub'),
        ...i32(SCRATCH),
        ...get(2),
        ...c('ledger_set'),
        ...kit.str('keyname'),
        ...kit.str('msg'),
        ...c('key_sign'),
        0x21,
        2,
        ...i32(SCRATCH),
        ...c('buffer_read'),
        ...kit.str('out'),
        ...kit.str('sig'),
        ...i32(SCRATCH),
        ...get(2),
        ...c('ledger_set'),
      ],
    },
    // 8 MB: the fuel on its declared length (about 70 million) is paid, then the cap refuses it;
    // one of 100 MB ends on the fuel first (docs/app-abi.md §1.2: fuel, then caps).
    { name: 'huge', kind: 'query', body: [...i32(0), ...i32(8_000_000), ...c('result_set')] },
    { name: 'absurd', kind: 'query', body: [...i32(0), ...i32(100_000_000), ...c('result_set')] },
    {
      name: 'manyNotes',
      kind: 'query',
      body: [...loop(), ...kit.str('one'), ...c('notify'), 0x0c, 0, I.end],
    },
    {
      // Writes, then returns one byte more than SCP's largest result (1 page of memory: the cap
      // is checked before any byte is read, so only the cap can refuse it).
      name: 'putHuge',
      kind: 'transaction',
      body: [...put, ...i32(0), ...i32(MAX_RESULT_BYTES + 1), ...c('result_set')],
    },
    {
      name: 'abort',
      kind: 'transaction',
      body: [...put, ...i32(0), ...i32(0), ...i32(7), ...i32(9), ...c('env.abort')],
    },
  ],
});

async function setup(): Promise<{ engine: LedgerEngine; rt: AppRuntime }> {
  const { createMemoryStore } = await hostStores();
  const engine = await createLedgerEngine(options(createMemoryStore()));
  let clock = 1_000;
  const rt = createAppRuntime({ engine, now: () => (clock += 5) });
  await rt.deploy('A', app);
  return { engine, rt };
}

const tx = (rt: AppRuntime, method: string, args = 'null', extra: object = {}) =>
  rt.call({ app: 'A', method, kind: 'transaction', args, caller: ALICE, ...extra });
const q = (rt: AppRuntime, method: string, extra: object = {}, appId = 'A') =>
  rt.call({ app: appId, method, kind: 'query', args: 'null', caller: ALICE, ...extra });

async function rejects(p: Promise<unknown>, cls: new (...a: never[]) => Error, code?: string) {
  let err: unknown;
  try {
    await p;
  } catch (e) {
    err = e;
  }
  assert.ok(err instanceof cls, `expected ${cls.name}, got ${String(err)}`);
  if (code !== undefined) assert.equal((err as CloisterError).code, code);
  return err as Error;
}

describe('app runtime: deploy', () => {
  test('reports app id, code id (SHA-256 of the original module) and routes', async () => {
    const { rt } = await setup();
    const info = rt.app('A');
    assert.ok(info);
    assert.equal(info.codeId, Buffer.from(sha256(app)).toString('hex'));
    assert.equal(info.abiVersion, 1);
    assert.deepEqual(info.routes[0], { name: 'put', kind: 'transaction' });
    assert.deepEqual(info.routes[1], { name: 'get', kind: 'query' });
  });

  test('an unknown import is refused, naming it', async () => {
    const { rt } = await setup();
    const bad = kit.module({
      routes: [],
      extraImports: [{ module: 'cloister', field: 'ledger_drop_all' }],
    });
    const e = await rejects(rt.deploy('X', bad), UnknownImportError, 'APP_IMPORT_UNKNOWN');
    assert.match(e.message, /"cloister"\."ledger_drop_all"/);
    const wasi = kit.module({
      routes: [],
      extraImports: [{ module: 'wasi_snapshot_preview1', field: 'fd_write' }],
    });
    await rejects(rt.deploy('X', wasi), UnknownImportError, 'APP_IMPORT_UNKNOWN');
  });

  test('a wrong or missing ABI version is refused, naming it', async () => {
    const { rt } = await setup();
    const v2 = await rejects(
      rt.deploy('X', kit.module({ routes: [], version: 2 })),
      AbiVersionError,
      'APP_ABI_VERSION',
    );
    assert.match(v2.message, /ABI version 2 is not supported/);
    const none = await rejects(
      rt.deploy('X', kit.module({ routes: [], version: 'none' })),
      AbiVersionError,
    );
    assert.match(none.message, /cloister_abi_version/);
    assert.equal(rt.app('X'), undefined);
  });

  test('the ABI exports are checked at deploy: each missing or mistyped one named (coverage gap)', async () => {
    const { rt } = await setup();
    const version = { results: [T.i32], body: i32(1), export: 'cloister_abi_version' };
    const routes = { body: [], export: 'cloister_routes' };
    const callFn = { params: [T.i32, T.i32], body: [], export: 'cloister_call' };
    const cases: [Parameters<typeof wasm>[0]['funcs'], string][] = [
      [[version, callFn], 'the module exports no function cloister_routes () -> ()'],
      [
        [version, { ...routes, results: [T.i32], body: i32(0) }, callFn],
        'the module exports no function cloister_routes () -> ()',
      ],
      [[version, routes], 'the module exports no function cloister_call (i32, i32) -> ()'],
      [
        [version, routes, { ...callFn, params: [T.i32] }],
        'the module exports no function cloister_call (i32, i32) -> ()',
      ],
      [
        [version, routes, callFn, { results: [T.i32], body: i32(0), export: 'cloister_migrate' }],
        'cloister_migrate, when exported, is a function () -> ()',
      ],
    ];
    for (const [funcs, message] of cases) {
      const e = await rejects(
        rt.deploy('X', wasm({ funcs, memory: [0x00, 1] })),
        AbiError,
        'APP_ABI',
      );
      assert.ok(e.message.includes(message), e.message);
    }
    assert.equal(rt.app('X'), undefined);
    // The same exports, well typed, deploy.
    await rt.deploy('X', wasm({ funcs: [version, routes, callFn], memory: [0x00, 1] }));
  });

  test('the ledger is unreachable at deploy, and a text argument must be UTF-8 (coverage gap)', async () => {
    const { rt } = await setup();
    const route = [...i32(0), ...kit.str('t'), ...i32(0), ...c('route')];
    const attempts: [string, number[]][] = [
      ['ledger_get', [...kit.str('t'), ...kit.str('k'), ...c('ledger_get'), I.drop]],
      ['context_index', [...c('context_index'), I.drop]],
    ];
    for (const [name, body] of attempts) {
      const m = kit.module({ routes: [], routesBody: [...body, ...route] });
      const e = await rejects(rt.deploy(`L${name}`, m), AbiError, 'APP_ABI');
      assert.match(
        e.message,
        new RegExp(`${name}.*the ledger is reachable only during a call, not at deploy`),
      );
    }
    // A table name of one byte 0xff: not UTF-8, named (not read as U+FFFD, another table).
    const notUtf8 = kit.module({
      routes: [
        {
          name: 'read',
          kind: 'query',
          body: [
            ...i32(SCRATCH),
            ...i32(0xff),
            0x3a, // i32.store8
            0x00,
            0x00,
            ...i32(SCRATCH),
            ...i32(1),
            ...kit.str('k'),
            ...c('ledger_get'),
            I.drop,
          ],
        },
      ],
    });
    await rt.deploy('U', notUtf8);
    const e = await rejects(q(rt, 'read', {}, 'U'), AbiError, 'APP_ABI');
    assert.match(e.message, /ledger_get.*is not valid UTF-8/);
  });

  test('an ABI import declared with another type is refused, naming it', async () => {
    const { rt } = await setup();
    const bad = kit.module({
      routes: [],
      typeOverride: { ledger_get: { params: [T.i64], results: [T.i32] } },
    });
    const e = await rejects(rt.deploy('X', bad), AbiError, 'APP_ABI');
    assert.match(e.message, /ledger_get/);
  });

  test('at deploy only imports with one answer work: randomness, time and call context are refused', async () => {
    const { rt } = await setup();
    // cloister_routes runs again at every start (§15): a route table that depends on randomness
    // or the clock would differ after a restart.
    const route = [...i32(0), ...kit.str('t'), ...i32(0), ...c('route')];
    const attempts: [string, number[]][] = [
      ['random_bytes', [...i32(SCRATCH), ...i32(8), ...c('random_bytes')]],
      ['context_time', [...c('context_time'), I.drop]],
      ['env.Date.now', [...c('env.Date.now'), I.drop]],
      ['env.seed', [...c('env.seed'), I.drop]],
      ['context_caller', [...i32(SCRATCH), ...c('context_caller')]],
      ['call_args', [...i32(SCRATCH), ...c('call_args')]],
      ['context_kind', [...c('context_kind'), I.drop]],
      ['context_request_id', [...c('context_request_id'), I.drop]],
      ['result_set', [...kit.str('t'), ...c('result_set')]],
      ['notify', [...kit.str('t'), ...c('notify')]],
    ];
    for (const [name, body] of attempts) {
      const m = kit.module({ routes: [], routesBody: [...body, ...route] });
      const e = await rejects(rt.deploy(`D${name.replace('.', '')}`, m), AbiError, 'APP_ABI');
      assert.match(e.message, new RegExp(`${name.replace('.', '\\.')}.*not available at deploy`));
    }
    // A pure import is fine there.
    const hashed = kit.module({
      routes: [],
      routesBody: [...kit.str('t'), ...i32(SCRATCH), ...c('sha256'), ...route],
    });
    await rt.deploy('Hashed', hashed);
  });

  test('a module whose own code fails at deploy is refused naming the step, not "the app refused the call"', async () => {
    const { rt } = await setup();
    const spin = [...loop(), 0x0c, 0, I.end];
    for (const [body, code, said] of [
      [
        [...kit.str('ecode'), ...kit.str('emsg'), ...c('fail')],
        'APP_ERROR',
        'fail(E_NOPE, not today)',
      ],
      [[I.unreachable], 'APP_TRAP', ''],
      [spin, 'APP_FUEL_EXHAUSTED', ''],
    ] as const) {
      const e = await rejects(
        rt.deploy('F', kit.module({ routes: [], routesBody: [...body] })),
        CloisterError,
        code,
      );
      assert.match(e.message, /^the module's cloister_routes failed at deploy: /);
      assert.ok(e.message.includes(said));
      assert.doesNotMatch(e.message, /refused the call: /);
      assert.match((e as CloisterError).hint, /must not fail \(docs\/app-abi\.md §3\.1\)/);
      assert.equal(rt.app('F'), undefined);
    }
  });

  test('route rules: bad kind, duplicates, route outside registration', async () => {
    const { rt } = await setup();
    const badKind = kit.module({
      routes: [],
      routesBody: [
        ...kit.str('t'),
        0x1a,
        0x1a,
        ...i32(5),
        ...kit.str('t'),
        ...i32(0),
        ...c('route'),
      ],
    });
    await rejects(rt.deploy('X', badKind), AbiError, 'APP_ABI');
    const dup = kit.module({
      routes: [
        { name: 'a', kind: 'query', body: [] },
        { name: 'a', kind: 'query', body: [] },
      ],
    });
    await rejects(rt.deploy('X', dup), AbiError, 'APP_ABI');
    const late = kit.module({
      routes: [
        { name: 'r', kind: 'query', body: [...i32(0), ...kit.str('t'), ...i32(0), ...c('route')] },
      ],
    });
    await rt.deploy('L', late);
    await rejects(q(rt, 'r', {}, 'L'), AbiError, 'APP_ABI');
  });
});

describe('app runtime: transactions and queries', () => {
  test('a transaction writes and a later query reads it; txid is term.index', async () => {
    const { engine, rt } = await setup();
    const before = engine.index;
    const r = await tx(rt, 'put', '{"n":1}');
    assert.equal(r.result, '{"n":1}');
    assert.equal(r.txid, `1.${before + 1}`);
    assert.equal(r.repeated, false);
    assert.ok(r.fuelUsed > 0);
    const g = await q(rt, 'get');
    assert.equal(g.result, '{"n":1}');
    assert.equal(g.txid, undefined);
    assert.equal(td(engine.at().get('A', 't', te('k'))), '{"n":1}');
  });

  test('a query with nothing stored returns null', async () => {
    const { rt } = await setup();
    assert.equal((await q(rt, 'get')).result, 'null');
  });

  test('a trap mid-transaction leaves no write and the next call succeeds', async () => {
    const { engine, rt } = await setup();
    await tx(rt, 'put', '"first"');
    const index = engine.index;
    const e = await rejects(tx(rt, 'putThenTrap', '"second"'), AppTrapError, 'APP_TRAP');
    assert.equal((e as AppTrapError).trap, 'unreachable');
    assert.equal(engine.index, index, 'nothing committed');
    assert.equal((await q(rt, 'get')).result, '"first"');
    assert.equal((await tx(rt, 'put', '"third"')).result, '"third"');
    assert.equal((await q(rt, 'get')).result, '"third"');
  });

  test('an AssemblyScript abort is APP_ABORT and leaves no write', async () => {
    const { engine, rt } = await setup();
    const index = engine.index;
    const e = await rejects(tx(rt, 'abort', '"x"'), AppAbortError, 'APP_ABORT');
    assert.match(e.message, /:7:9/);
    assert.equal(engine.index, index);
    assert.equal((await q(rt, 'get')).result, 'null');
  });

  test('an app error (code + message) is distinct from a trap and leaves no write', async () => {
    const { engine, rt } = await setup();
    const index = engine.index;
    const e = (await rejects(tx(rt, 'putThenFail', '"x"'), AppError, 'APP_ERROR')) as AppError;
    assert.equal(e.appCode, 'E_NOPE');
    assert.equal(e.appMessage, 'not today');
    assert.equal(e.kind, 'app-error');
    assert.ok(!(e instanceof AppTrapError));
    assert.equal(engine.index, index);
    assert.equal((await q(rt, 'get')).result, 'null');
    assert.equal((await tx(rt, 'put', '1')).result, '1');
  });

  test('an app error message stays within 1024 UTF-8 bytes even when U+FFFD replaces what is not UTF-8', async () => {
    const { rt } = await setup();
    const e = (await rejects(q(rt, 'failInvalidUtf8'), AppError, 'APP_ERROR')) as AppError;
    const bytes = new TextEncoder().encode(e.appMessage).length;
    assert.ok(bytes <= 1024, `${bytes} bytes`);
    assert.match(e.appMessage, /^\uFFFD+…$/);
  });

  test('a query that writes fails clearly and writes nothing', async () => {
    const { engine, rt } = await setup();
    const index = engine.index;
    const e = await rejects(q(rt, 'queryWrite'), QueryWriteError, 'APP_QUERY_WRITE');
    assert.match(e.message, /ledger_set in a query/);
    assert.equal(engine.index, index);
    assert.equal((await q(rt, 'get')).result, 'null');
  });

  test('method and kind are checked before any instance runs', async () => {
    const { rt } = await setup();
    const unknown = await rejects(q(rt, 'nope'), MethodUnknownError, 'APP_METHOD_UNKNOWN');
    // The app's own methods, sorted, with their kinds: a typo is fixed from the message alone.
    assert.match(
      unknown.message,
      /has no method 'nope'; its methods: .*get \(query\).*put \(transaction\)/,
    );
    const many = Array.from({ length: 30 }, (_, i) => ({
      name: `m${String(i).padStart(2, '0')}`,
      kind: 'query',
    }));
    const listed = new MethodUnknownError('a', 'x', many).message;
    assert.match(listed, /m00 \(query\), .*m23 \(query\), and 6 more$/);
    assert.doesNotMatch(listed, /m24/);
    await rejects(q(rt, 'put'), MethodKindError, 'APP_METHOD_KIND');
    await rejects(tx(rt, 'get'), MethodKindError, 'APP_METHOD_KIND');
    await rejects(tx(rt, 'put', '{not json'), CloisterError, 'INVALID_INPUT');
    await rejects(q(rt, 'get', {}, 'Nope'), CloisterError, 'APP_NOT_FOUND');
  });

  test('caller id = SHA-256(label, app id, identity key), differs per app', async () => {
    const { engine, rt } = await setup();
    await tx(rt, 'whoami');
    const seen = engine.at().get('A', 'who', te('me'));
    const want = sha256(utf8('cloister/caller/v1'), Uint8Array.of(0, 0, 1), utf8('A'), ALICE);
    assert.deepEqual(seen, want);
    assert.deepEqual(callerIdOf('A', ALICE), want);
    assert.notDeepEqual(callerIdOf('B', ALICE), want);
    assert.notDeepEqual(callerIdOf('A', BOB), want);
  });
});

describe('app runtime: request ids', () => {
  test('a repeated (caller, request id) gets the first outcome and writes nothing', async () => {
    const { engine, rt } = await setup();
    const first = await tx(rt, 'put', '"one"', { requestId: 'r-1' });
    const index = engine.index;
    const again = await tx(rt, 'put', '"one"', { requestId: 'r-1' });
    assert.equal(again.result, '"one"');
    assert.equal(again.repeated, true);
    assert.equal(again.txid, first.txid);
    assert.equal(engine.index, index, 'no second commit');
    assert.equal((await q(rt, 'get')).result, '"one"');
    assert.equal(engine.at().history('A', 't', te('k')).length, 1, 'one version only');
    // Another caller with the same request id is another request.
    const bob = await rt.call({
      app: 'A',
      method: 'put',
      kind: 'transaction',
      args: '"bob"',
      caller: BOB,
      requestId: 'r-1',
    });
    assert.equal(bob.repeated, false);
    assert.equal((await q(rt, 'get')).result, '"bob"');
  });

  test('a request id is 1 to 128 bytes of UTF-8, exactly; others are refused before anything runs', async () => {
    const { engine, rt } = await setup();
    const badId = (e: unknown) =>
      e instanceof CloisterError &&
      e.code === 'INVALID_INPUT' &&
      /a request id is 1\.\.128 bytes of UTF-8/.test(e.message);
    const index = engine.index;
    for (const requestId of ['', 'x'.repeat(129), '\u00e9'.repeat(65)]) {
      await assert.rejects(tx(rt, 'put', '"x"', { requestId }), badId, `${requestId.length} chars`);
      assert.throws(() => rt.requestStatus('A', ALICE, requestId), badId);
    }
    assert.equal(engine.index, index, 'nothing committed');
    for (const requestId of ['x'.repeat(128), '\u00e9'.repeat(64)]) {
      assert.equal((await tx(rt, 'put', '"x"', { requestId })).repeated, false);
      assert.equal(rt.requestStatus('A', ALICE, requestId).state, 'committed');
    }
  });

  test('a request id reused for another call is refused, naming the first; nothing runs', async () => {
    const { engine, rt } = await setup();
    const first = await tx(rt, 'put', '"one"', { requestId: 'r-5' });
    const index = engine.index;
    const reused = (e: unknown) => {
      assert.ok(e instanceof RequestIdReusedError, String(e));
      assert.equal(e.code, 'REQUEST_ID_REUSED');
      assert.ok(e.message.includes(`transaction ${first.txid}:`), e.message);
      return true;
    };
    // Other argument bytes (even JSON of the same value, spaced), or another method.
    await assert.rejects(tx(rt, 'put', '"two"', { requestId: 'r-5' }), reused);
    await assert.rejects(tx(rt, 'put', ' "one"', { requestId: 'r-5' }), reused);
    await assert.rejects(tx(rt, 'whoami', '"one"', { requestId: 'r-5' }), reused);
    assert.equal(engine.index, index, 'nothing committed');
    assert.equal((await q(rt, 'get')).result, '"one"');
    // The very same call is still answered with its first outcome.
    const again = await tx(rt, 'put', '"one"', { requestId: 'r-5' });
    assert.deepEqual([again.repeated, again.txid], [true, first.txid]);
  });

  test('an outcome stored without a call digest (before it was kept) is answered as before', async () => {
    const { engine, rt } = await setup();
    const t = engine.begin({ reserved: true });
    const key = new Uint8Array([...callerIdOf('A', ALICE), ...te('r-old')]);
    const old = { v: 1, result: '"stored"', notifications: [], codeId: toHex(sha256(app)) };
    t.set('A', REQUESTS_TABLE, key, te(JSON.stringify(old)));
    const { txid } = await t.commit();
    const again = await tx(rt, 'put', '"anything"', { requestId: 'r-old' });
    assert.deepEqual([again.repeated, again.result, again.txid], [true, '"stored"', txid]);
  });

  test('a retry is answered from its outcome before the current code is checked (upgrades, limits)', async () => {
    const { engine, rt } = await setup();
    const first = await tx(rt, 'put', '"one"', { requestId: 'r-up' });
    const index = engine.index;
    const repeatsFirst = async (r: AppRuntime, what: string) => {
      const again = await tx(r, 'put', '"one"', { requestId: 'r-up' });
      assert.deepEqual(
        [again.repeated, again.result, again.txid, again.codeId],
        [true, '"one"', first.txid, first.codeId],
        what,
      );
    };
    // v2 made `put` a query: the retry still learns that its transaction committed.
    const v2 = kit.module({
      locals: [T.i32],
      routes: [
        { name: 'get', kind: 'query', body: read },
        { name: 'put', kind: 'query', body: read },
      ],
    });
    rt.install(await rt.prepare('A', v2));
    assert.notEqual(rt.app('A')?.codeId, first.codeId);
    await repeatsFirst(rt, 'put became a query');
    // A new request meets the current code's checks, and reusing the id for another call is
    // still refused.
    await rejects(tx(rt, 'put', '"one"', { requestId: 'r-new' }), MethodKindError);
    await assert.rejects(tx(rt, 'put', '"two"', { requestId: 'r-up' }), RequestIdReusedError);
    // v3 has no `put` at all.
    rt.install(
      await rt.prepare(
        'A',
        kit.module({ locals: [T.i32], routes: [{ name: 'get', kind: 'query', body: read }] }),
      ),
    );
    await repeatsFirst(rt, 'put was removed');
    await rejects(tx(rt, 'put', '"one"', { requestId: 'r-new' }), MethodUnknownError);
    // A runtime whose argument limit the first call's arguments now exceed.
    const strict = createAppRuntime({ engine, limits: { maxArgsBytes: 2 } });
    await strict.deploy('A', app);
    await repeatsFirst(strict, 'the arguments are over the new limit');
    await rejects(
      tx(strict, 'put', '"one"', { requestId: 'r-new' }),
      CloisterError,
      'INVALID_INPUT',
    );
    assert.equal(engine.index, index, 'nothing committed');
  });

  test('a failed transaction stores no outcome: its retry runs', async () => {
    const { rt } = await setup();
    await rejects(tx(rt, 'putThenTrap', '"x"', { requestId: 'r-2' }), AppTrapError);
    const r = await tx(rt, 'put', '"y"', { requestId: 'r-2' });
    assert.equal(r.repeated, false);
    assert.equal(r.result, '"y"');
  });

  test('the outcome is durable in the ledger: a new runtime on the same engine repeats it', async () => {
    const { engine, rt } = await setup();
    await tx(rt, 'put', '"one"', { requestId: 'r-3' });
    const rt2 = createAppRuntime({ engine });
    await rt2.deploy('A', app);
    const again = await rt2.call({
      app: 'A',
      method: 'put',
      kind: 'transaction',
      args: '"one"',
      caller: ALICE,
      requestId: 'r-3',
    });
    assert.equal(again.repeated, true);
    assert.equal(again.result, '"one"');
  });

  test('concurrent calls with one request id: one runs, the other gets its outcome', async () => {
    const { engine, rt } = await setup();
    const index = engine.index;
    const [a, b] = await Promise.all([
      tx(rt, 'put', '"a"', { requestId: 'r-4' }),
      tx(rt, 'put', '"a"', { requestId: 'r-4' }),
    ]);
    assert.equal(engine.index, index + 1);
    assert.equal([a, b].filter((x) => x.repeated).length, 1);
    assert.equal(a.result, b.result);
    // Two different calls racing for one request id: one commits, the other is refused.
    const [c, d] = await Promise.allSettled([
      tx(rt, 'put', '"c"', { requestId: 'r-6' }),
      tx(rt, 'put', '"d"', { requestId: 'r-6' }),
    ]);
    assert.deepEqual([c.status, d.status].sort(), ['fulfilled', 'rejected']);
    const lost = c.status === 'rejected' ? c.reason : d.status === 'rejected' ? d.reason : null;
    assert.ok(lost instanceof RequestIdReusedError);
    assert.equal(engine.index, index + 2);
  });
});

describe('app runtime: isolation', () => {
  test("another app's ledger is unreachable by construction", async () => {
    const { engine, rt } = await setup();
    await rt.deploy('B', app);
    await tx(rt, 'put', '"secret of A"');
    // B runs the same code: its ledger is its own, whatever table name it passes.
    for (const m of ['get', 'readOther', 'readSlash']) {
      assert.equal((await q(rt, m, {}, 'B')).result, 'null', m);
    }
    await rejects(q(rt, 'readNul', {}, 'B'), AbiError, 'APP_ABI');
    assert.equal(engine.at().get('B', 't', te('k')), undefined);
    assert.equal(td(engine.at().get('A', 't', te('k'))), '"secret of A"');
  });

  test('reserved tables ($keys, $requests) are refused by every ledger call', async () => {
    const { rt } = await setup();
    await tx(rt, 'sign');
    await tx(rt, 'put', '1', { requestId: 'r' });
    await rejects(q(rt, 'readKeys'), CloisterError, 'LEDGER_RESERVED');
    await rejects(tx(rt, 'readRequests'), CloisterError, 'LEDGER_RESERVED');
    await rejects(q(rt, 'listKeys'), CloisterError, 'LEDGER_RESERVED');
    await rejects(tx(rt, 'writeKeys'), CloisterError, 'LEDGER_RESERVED');
    assert.equal((await q(rt, 'get')).result, '1');
  });

  test('named keys and request outcomes live in the reserved $keys and $requests (docs/app-abi.md §4.3)', async () => {
    const { engine, rt } = await setup();
    await tx(rt, 'sign');
    await tx(rt, 'put', '1', { requestId: 'r' });
    const enclave = engine.begin({ reserved: true });
    assert.ok(enclave.get('A', '$keys', te('signer')), 'the key record is in $keys');
    const outcome = new Uint8Array([...callerIdOf('A', ALICE), ...te('r')]);
    assert.ok(enclave.get('A', '$requests', outcome), 'the outcome is in $requests');
    enclave.abort();
  });

  test('out-of-bounds pointers trap; the host never reads outside the module memory', async () => {
    const { rt } = await setup();
    for (const m of ['oobRead', 'oobWrite', 'oobCaller']) {
      const e = (await rejects(q(rt, m), AppTrapError, 'APP_TRAP')) as AppTrapError;
      assert.equal(e.trap, 'out-of-bounds', m);
    }
    assert.equal((await q(rt, 'get')).result, 'null');
  });

  test('named keys: signing works, the private key never reaches the module', async () => {
    const { engine, rt } = await setup();
    await tx(rt, 'sign');
    const pub = engine.at().get('A', 'out', te('pub'));
    const sig = engine.at().get('A', 'out', te('sig'));
    assert.ok(pub && sig);
    assert.equal(pub.length, 65);
    assert.equal(sig.length, 64);
    const spki = concatBytes(
      Uint8Array.from(Buffer.from('3059301306072a8648ce3d020106082a8648ce3d030107034200', 'hex')),
      pub,
    );
    const key = createPublicKey({ key: Buffer.from(spki), format: 'der', type: 'spki' });
    assert.ok(verify('sha256', te('hello'), { key, dsaEncoding: 'ieee-p1363' }, sig));
    // Unrelated key does not verify (sanity).
    const other = generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey;
    assert.ok(!verify('sha256', te('hello'), { key: other, dsaEncoding: 'ieee-p1363' }, sig));
  });
});

describe('app runtime: caps', () => {
  test('an 8 MB result is refused before any byte is read, a 100 MB one on its fuel; the next call works', async () => {
    const { rt } = await setup();
    await rejects(q(rt, 'huge'), CloisterError, 'APP_RESULT_TOO_LARGE');
    const e = await rejects(q(rt, 'absurd'), FuelExhaustedError, 'APP_FUEL_EXHAUSTED');
    // Charged on the declared length at the JSON check's rate, before anything was read.
    assert.ok(
      (e as FuelExhaustedError).fuelUsed > 100_000_000 * JSON_FUEL_PER_BYTE,
      String((e as FuelExhaustedError).fuelUsed),
    );
    assert.equal((await q(rt, 'get')).result, 'null');
  });

  test('a transaction whose result could not reach the client in one SCP frame fails before it commits', async () => {
    const { engine, rt } = await setup();
    const index = engine.index;
    const e = await rejects(tx(rt, 'putHuge', '"x"'), CloisterError, 'APP_RESULT_TOO_LARGE');
    assert.match(e.message, new RegExp(`${MAX_RESULT_BYTES}`));
    assert.equal(engine.index, index, 'nothing committed');
    assert.equal((await q(rt, 'get')).result, 'null');
  });

  test('notifications are capped per call', async () => {
    const { rt } = await setup();
    const e = await rejects(q(rt, 'manyNotes'), AbiError, 'APP_ABI');
    assert.match(e.message, /more than 64 notifications/);
  });

  test('arguments above the cap, or not JSON, are refused before the module runs, each by name', async () => {
    const { engine } = await setup();
    const rt = createAppRuntime({ engine, limits: { maxArgsBytes: 16 } });
    await rt.deploy('A', app);
    const big = await rejects(tx(rt, 'put', `"${'x'.repeat(20)}"`), CloisterError, 'INVALID_INPUT');
    assert.match(big.message, /are 22 bytes; at most 16/);
    const bad = await rejects(tx(rt, 'put', '{'), CloisterError, 'INVALID_INPUT');
    assert.match(bad.message, /not JSON text/);
    assert.doesNotMatch(bad.message, /at most/);
    assert.equal((await tx(rt, 'put', '"short"')).result, '"short"');
  });

  test('arguments of 1 MiB pass and one byte more is refused, by default (docs/app-abi.md §12)', async () => {
    const { rt } = await setup();
    // `get` ignores its arguments (the module's one page could not hold 1 MiB of them).
    const get = (n: number) =>
      rt.call({
        app: 'A',
        method: 'get',
        kind: 'query',
        caller: ALICE,
        args: `"${'x'.repeat(n - 2)}"`,
      });
    const big = await rejects(get(1024 * 1024 + 1), CloisterError, 'INVALID_INPUT');
    assert.match(big.message, /at most 1048576/, 'the default cap');
    assert.equal((await get(1024 * 1024)).result, 'null', '1 MiB exactly is accepted');
  });

  test('arguments nested deeper than maxJsonDepth, or behind a byte-order mark, are refused by name', async () => {
    const { engine } = await setup();
    const rt = createAppRuntime({ engine, limits: { maxJsonDepth: 3 } });
    await rt.deploy('A', app);
    const deep = await rejects(tx(rt, 'put', '[{"a":[[]]}]'), CloisterError, 'INVALID_INPUT');
    assert.equal(
      deep.message,
      'the arguments nest arrays and objects deeper than 3 levels: flatten them (maxJsonDepth)',
    );
    const bom = await rejects(tx(rt, 'put', '\uFEFF{}'), CloisterError, 'INVALID_INPUT');
    assert.match(bom.message, /not JSON text/);
    // Three levels pass, and brackets inside strings (escaped quotes included) are not nesting.
    const ok = '[{"a":[1]}, "\\"[[[[", "]]]]"]';
    assert.equal((await tx(rt, 'put', ok)).result, ok);
    assert.equal(DEFAULT_ABI_LIMITS.maxJsonDepth, 64);
  });
});

describe('app runtime: fuel', () => {
  test('a hashing loop through the ABI runs out of fuel, deterministically; next call works', async () => {
    const { rt } = await setup();
    const used: number[] = [];
    for (let i = 0; i < 3; i++) {
      const e = (await rejects(
        q(rt, 'hashLoop', { fuel: 2_000_000 }),
        FuelExhaustedError,
        'APP_FUEL_EXHAUSTED',
      )) as FuelExhaustedError;
      used.push(e.fuelUsed);
    }
    assert.ok(
      used.every((u) => u === used[0] && u > 2_000_000),
      String(used),
    );
    assert.equal((await q(rt, 'get')).result, 'null');
  });

  test('host bytes are charged: a larger value costs at least one unit per byte', async () => {
    const { rt } = await setup();
    const put1 = (await tx(rt, 'put', '"a"')).fuelUsed;
    const big = `"${'x'.repeat(20_000)}"`;
    const put2 = (await tx(rt, 'put', big)).fuelUsed;
    assert.ok(put2 - put1 >= 20_000, `${put1} ${put2}`);
  });
});

describe('app runtime: claims and request status (secure connections)', () => {
  /** The runtime over an engine whose log captures each transaction's claims digest. */
  async function withClaims() {
    const { createMemoryStore } = await hostStores();
    const claims: (Uint8Array | undefined)[] = [];
    const log = {
      generation: 0,
      checkpoint: () => new Uint8Array(0),
      open: async () => {},
      stage: (items: readonly { kind: string; claims?: Uint8Array }[]) => {
        for (const i of items) if (i.kind === 'transaction') claims.push(i.claims);
        return [];
      },
      settle: () => {},
    };
    const engine = await createLedgerEngine(options(createMemoryStore(), { log }));
    const rt = createAppRuntime({ engine });
    await rt.deploy('A', app);
    return { rt, claims };
  }

  test('a transaction commits claimsDigest(salt, request, response = result, codeId)', async () => {
    const { rt, claims } = await withClaims();
    const salt = new Uint8Array(32).fill(3);
    const request = te('the request');
    const r = await tx(rt, 'put', '"v"', { requestId: 'c-1', claims: { salt, request } });
    const codeId = fromHex(r.codeId);
    assert.deepEqual(codeId, sha256(app));
    assert.deepEqual(claims, [claimsDigest({ salt, request, response: te('"v"'), codeId })]);
    // A repeat commits nothing and answers the first outcome with its code id.
    const again = await tx(rt, 'put', '"v"', { requestId: 'c-1', claims: { salt, request } });
    assert.equal(again.repeated, true);
    assert.equal(again.codeId, r.codeId);
    assert.equal(claims.length, 1);
    // Without claims, none is committed.
    await tx(rt, 'put', '"x"');
    assert.deepEqual(claims[1], undefined);
  });

  test('claims are refused on queries and with a salt that is not 32 bytes', async () => {
    const { rt } = await withClaims();
    const bad = { salt: new Uint8Array(31), request: te('r') };
    const short = await rejects(
      tx(rt, 'put', '"v"', { claims: bad }),
      CloisterError,
      'INVALID_INPUT',
    );
    assert.equal(
      short.message,
      'claims are for transactions: a 32-byte salt and the request bytes',
    );
    const ok = { salt: new Uint8Array(32), request: te('r') };
    await rejects(q(rt, 'get', { claims: ok }), CloisterError, 'INVALID_INPUT');
  });

  test('after a restart a repeat and requestStatus still give the first transaction id', async () => {
    const { createMemoryStore } = await hostStores();
    const store = createMemoryStore();
    const engine = await createLedgerEngine(options(store));
    const before = createAppRuntime({ engine });
    await before.deploy('A', app);
    const first = await tx(before, 'put', '"one"', { requestId: 'r-restart' });
    await tx(before, 'put', '"later"'); // the txid is not simply the latest commit's
    // A new enclave run: the engine reopened from the store, a new runtime, nothing in memory.
    const reopened = await openLedgerEngine(options(store));
    const rt = createAppRuntime({ engine: reopened });
    await rt.deploy('A', app);
    const index = reopened.index;
    const again = await tx(rt, 'put', '"one"', { requestId: 'r-restart' });
    assert.equal(again.repeated, true);
    assert.equal(again.result, '"one"');
    assert.equal(again.txid, first.txid);
    assert.equal(reopened.index, index, 'no second commit');
    assert.deepEqual(rt.requestStatus('A', ALICE, 'r-restart'), {
      state: 'committed',
      txid: first.txid,
    });
  });

  test('requestStatus: unknown, then committed with the txid; per caller; named errors', async () => {
    const { rt } = await withClaims();
    assert.deepEqual(rt.requestStatus('A', ALICE, 's-1'), { state: 'unknown' });
    const r = await tx(rt, 'put', '"v"', { requestId: 's-1' });
    assert.deepEqual(rt.requestStatus('A', ALICE, 's-1'), { state: 'committed', txid: r.txid });
    assert.deepEqual(rt.requestStatus('A', BOB, 's-1'), { state: 'unknown' });
    assert.throws(() => rt.requestStatus('Z', ALICE, 's-1'), AppNotFoundError);
    assert.throws(() => rt.requestStatus('A', ALICE, ''), /request id/);
    assert.throws(() => rt.requestStatus('A', new Uint8Array(64), 's-1'), /65-byte/);
  });
});

describe('app runtime: ABI argument rules, each refused by name', () => {
  // Strings of their own: the shared kit's are what the modules above rely on.
  const k = abiKit({
    t: 't',
    k: 'k',
    empty: '',
    long: 'x'.repeat(256),
    keyname: 'n'.repeat(65),
    code: 'E_LONG',
    longcode: 'E'.repeat(65),
    badcode: 'E NOPE',
    msg: 'm'.repeat(2000),
    notice: '{"n":1}',
  });
  const route = (name: string, kind: 'query' | 'transaction', body: number[]) =>
    k.module({ routes: [{ name, kind, body }] });
  const rules = k.module({
    routes: [
      {
        name: 'emptyTable',
        kind: 'query',
        body: [...k.str('empty'), ...k.str('k'), ...k.call('ledger_get'), I.drop],
      },
      {
        name: 'longTable',
        kind: 'query',
        body: [...k.str('long'), ...k.str('k'), ...k.call('ledger_get'), I.drop],
      },
      {
        name: 'longKeyName',
        kind: 'transaction',
        body: [...i32(1), ...k.str('keyname'), ...k.call('key_create'), I.drop],
      },
      {
        name: 'badKeyKind',
        kind: 'transaction',
        body: [...i32(3), ...k.str('k'), ...k.call('key_create'), I.drop],
      },
      {
        name: 'badCode',
        kind: 'query',
        body: [...k.str('badcode'), ...k.str('msg'), ...k.call('fail')],
      },
      {
        name: 'longCode',
        kind: 'query',
        body: [...k.str('longcode'), ...k.str('msg'), ...k.call('fail')],
      },
      // A message length past the end of memory: only the first 1024 bytes are read.
      {
        name: 'hugeMessage',
        kind: 'query',
        body: [...k.str('code'), ...i32(k.ptr('msg')), ...i32(0x7fff_ffff), ...k.call('fail')],
      },
      {
        name: 'list0',
        kind: 'query',
        body: [...k.str('t'), ...i32(0), ...i32(0), ...i32(0), ...k.call('ledger_list'), I.drop],
      },
      {
        name: 'list1001',
        kind: 'query',
        body: [...k.str('t'), ...i32(0), ...i32(0), ...i32(1001), ...k.call('ledger_list'), I.drop],
      },
      {
        name: 'longCursor',
        kind: 'query',
        body: [
          ...k.str('t'),
          ...i32(SCRATCH),
          ...i32(129),
          ...i32(1),
          ...k.call('ledger_list'),
          I.drop,
        ],
      },
      // At page 0 (the module's one page of 64 KiB): the default cap, and one byte above it.
      {
        name: 'random64k',
        kind: 'query',
        body: [...i32(0), ...i32(65_536), ...k.call('random_bytes')],
      },
      {
        name: 'random64k1',
        kind: 'query',
        body: [...i32(0), ...i32(65_537), ...k.call('random_bytes')],
      },
      {
        name: 'random17',
        kind: 'query',
        body: [...i32(SCRATCH), ...i32(17), ...k.call('random_bytes')],
      },
      { name: 'notify', kind: 'query', body: [...k.str('notice'), ...k.call('notify')] },
    ],
  });

  async function withRules(limits: object = {}): Promise<AppRuntime> {
    const { engine } = await setup();
    const rt = createAppRuntime({ engine, limits });
    await rt.deploy('R', rules);
    return rt;
  }
  const call = (rt: AppRuntime, method: string, kind: 'query' | 'transaction' = 'query') =>
    rt.call({ app: 'R', method, kind, args: 'null', caller: ALICE });

  test('a table name of 0 or above 255 bytes, a key name above 64 bytes, a key kind other than 1 or 2', async () => {
    const rt = await withRules();
    for (const m of ['emptyTable', 'longTable']) {
      const e = await rejects(call(rt, m), AbiError, 'APP_ABI');
      assert.equal(e.message, 'ledger_get: a table name must be 1..255 bytes', m);
    }
    const name = await rejects(call(rt, 'longKeyName', 'transaction'), AbiError, 'APP_ABI');
    assert.equal(name.message, 'key_create: a key name must be 1..64 bytes');
    const kind = await rejects(call(rt, 'badKeyKind', 'transaction'), AbiError, 'APP_ABI');
    assert.equal(
      kind.message,
      'key_create: key kind 3 is neither 1 (ECDSA P-256) nor 2 (AES-256-GCM)',
    );
  });

  test('fail: an error code above 64 bytes or outside [A-Za-z0-9_.-] is refused; a message is read up to 1024 bytes only', async () => {
    const rt = await withRules();
    const code = await rejects(call(rt, 'longCode'), AbiError, 'APP_ABI');
    assert.equal(code.message, 'fail: an error code must be 1..64 bytes');
    const chars = await rejects(call(rt, 'badCode'), AbiError, 'APP_ABI');
    assert.equal(chars.message, 'fail: an error code is [A-Za-z0-9_.-]');
    const e = (await rejects(call(rt, 'hugeMessage'), AppError, 'APP_ERROR')) as AppError;
    assert.equal(e.appCode, 'E_LONG');
    assert.match(e.appMessage, /^m{1000,1024}/);
    assert.ok(new TextEncoder().encode(e.appMessage).length <= 1024);
  });

  test('list limits outside 1..1000 and cursors above 128 bytes, randomness above maxRandomBytes, notifications above maxNotificationBytes', async () => {
    const rt = await withRules({ maxRandomBytes: 16, maxNotificationBytes: 6 });
    for (const m of ['list0', 'list1001']) {
      const e = await rejects(call(rt, m), AbiError, 'APP_ABI');
      assert.equal(e.message, 'ledger_list: limit must be 1..1000', m);
    }
    // A cursor longer than any the ledger issues is refused before it is copied.
    const cursor = await rejects(call(rt, 'longCursor'), AbiError, 'APP_ABI');
    assert.equal(cursor.message, 'ledger_list: a cursor is at most 128 bytes');
    const random = await rejects(call(rt, 'random17'), AbiError, 'APP_ABI');
    assert.equal(random.message, 'random_bytes: at most 16 bytes per call');
    const note = await rejects(call(rt, 'notify'), AbiError, 'APP_ABI');
    assert.equal(note.message, 'notify: a notification above 6 bytes');
    // The same calls within the caps work.
    const wide = await withRules({ maxRandomBytes: 17, maxNotificationBytes: 7 });
    await call(wide, 'random17');
    assert.deepEqual((await call(wide, 'notify')).notifications, ['{"n":1}']);
  });

  test('random_bytes takes at most 64 KiB per call by default (docs/app-abi.md §12)', async () => {
    const rt = await withRules();
    const e = await rejects(call(rt, 'random64k1'), AbiError, 'APP_ABI');
    assert.equal(e.message, 'random_bytes: at most 65536 bytes per call', 'one byte above');
    // Last: it overwrites the module's strings with random bytes.
    assert.equal((await call(rt, 'random64k')).result, 'null', '64 KiB exactly');
  });

  test('route names: [A-Za-z0-9_.-] of at most 128 bytes, and at most maxRoutes routes', async () => {
    const { engine, rt } = await setup();
    for (const name of ['a b', 'a/b', 'é']) {
      const e = await rejects(rt.deploy('X', route(name, 'query', [])), AbiError, 'APP_ABI');
      assert.equal(e.message, 'route: a method name is [A-Za-z0-9_.-]', name);
    }
    const long = await rejects(
      rt.deploy('X', route('a'.repeat(129), 'query', [])),
      AbiError,
      'APP_ABI',
    );
    assert.equal(long.message, 'route: a method name must be 1..128 bytes');
    await rt.deploy('Y', route('a'.repeat(128), 'query', []));
    const few = createAppRuntime({ engine, limits: { maxRoutes: 2 } });
    const three = k.module({
      routes: ['a', 'b', 'c'].map((name) => ({ name, kind: 'query' as const, body: [] })),
    });
    const e = await rejects(few.deploy('X', three), AbiError, 'APP_ABI');
    assert.equal(e.message, 'route: more than 2 routes');
    // The default cap: 256 (docs/app-abi.md §12). The names `r0`.. sit 8 bytes apart (the kit's
    // own layout, 256 bytes a name, would not fit 257 in its one page).
    const routes = (n: number) => {
      const ids = Array.from({ length: n }, (_, i) => i);
      const routesBody = ids.flatMap((i) => {
        const name = [...te(`r${i}`)];
        const ptr = SCRATCH + i * 8;
        const store = name.flatMap((b, j) => [...i32(ptr + j), ...i32(b), 0x3a, 0x00, 0x00]);
        return [
          ...store,
          ...i32(0),
          ...i32(ptr),
          ...i32(name.length),
          ...i32(i),
          ...k.call('route'),
        ];
      });
      return k.module({
        routes: ids.map((i) => ({ name: `r${i}`, kind: 'query' as const, body: [] })),
        routesBody,
      });
    };
    await rt.deploy('Z', routes(256));
    const over = await rejects(rt.deploy('Z2', routes(257)), AbiError, 'APP_ABI');
    assert.equal(over.message, 'route: more than 256 routes', 'the default cap');
  });

  test('a caller that is not a 65-byte identity key is refused before the module runs', async () => {
    const rt = await withRules();
    for (const caller of [new Uint8Array(64), ALICE.subarray(1), 'alice']) {
      const e = await rejects(
        rt.call({ app: 'R', method: 'notify', kind: 'query', args: 'null', caller } as never),
        CloisterError,
        'INVALID_INPUT',
      );
      assert.equal(e.message, 'the caller is a 65-byte identity public key');
    }
  });
});
