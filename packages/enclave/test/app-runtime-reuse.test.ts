/**
 * Instance reuse (docs/sandbox.md §5.1): an instance reset after a successful call is
 * indistinguishable from a fresh one — same results, same fuel, same errors — in the sandbox and
 * through the app runtime; data one call leaves in memory, in globals or in the host buffer never
 * reaches the next call; modules whose state JavaScript cannot restore are never reused. And the
 * caller id (node:crypto SHA-256) is the construction of docs/app-abi.md §5.1.
 */
import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, test } from 'node:test';
import { CloisterError, callerId, concatBytes, sha256, utf8 } from '@cloister/core';
import fc from 'fast-check';
import {
  type AppCall,
  type AppRuntime,
  callerIdOf,
  createAppRuntime,
} from '../src/apps/runtime/index.js';
import {
  FuelExhaustedError,
  instantiate,
  instrumentModule,
  type SandboxInstance,
} from '../src/apps/sandbox/index.js';
import { analyzeReuse, compileForReuse } from '../src/apps/sandbox/reuse.js';
import { Wasm } from '../src/apps/sandbox/wasm-api.js';
import { createLedgerEngine } from '../src/ledger/ledger/index.js';
import { abiKit, SCRATCH } from './app-runtime-wasm.js';
import { hostStores, options } from './ledger-engine-helpers.js';
import {
  block,
  br,
  brIf,
  code,
  get,
  I,
  i32,
  i64,
  loop,
  set,
  T,
  uleb,
  wasm,
} from './sandbox-wasm.js';

const gget = (g: number): number[] => [0x23, ...uleb(g)];
const gset = (g: number): number[] => [0x24, ...uleb(g)];
const load8 = (addr: number): number[] => [...i32(addr), 0x2d, 0x00, 0x00];
const load32 = (addr: number): number[] => [...i32(addr), ...I.i32Load];
const load64 = (addr: number): number[] => [...i32(addr), 0x29, 0x03, 0x00];
/** mem32[addr] += (value pushed by `v`) */
const add32 = (addr: number, v: readonly number[]): number[] => [
  ...i32(addr),
  ...load32(addr),
  ...v,
  I.i32Add,
  ...I.i32Store,
];
const I64_ADD = 0x7c;
const I64_OR = 0x84;
const I64_EQZ = 0x50;
const I64_EXTEND_I32_U = 0xad;
const I32_WRAP_I64 = 0xa7;

/** Section order (core spec §5.5.2, datacount between element and code). */
const ORDER = [1, 2, 3, 4, 5, 6, 7, 8, 9, 12, 10, 11];

/** `bytes` with section `id` (payload as given) inserted where the section order puts it. */
function withSection(bytes: Uint8Array, id: number, payload: readonly number[]): Uint8Array {
  let at = 8;
  while (at < bytes.length) {
    if (ORDER.indexOf(bytes[at] as number) > ORDER.indexOf(id)) break;
    let p = at + 1;
    let size = 0;
    let shift = 0;
    for (;;) {
      const b = bytes[p++] as number;
      size |= (b & 0x7f) << shift;
      shift += 7;
      if (!(b & 0x80)) break;
    }
    at = p + size;
  }
  const section = [id, ...uleb(payload.length), ...payload];
  return Uint8Array.from([...bytes.subarray(0, at), ...section, ...bytes.subarray(at)]);
}

/** A global section: `[valtype, mutable, ...init]` per global (the `end` is added). */
const globalSection = (globals: readonly (readonly number[])[]): number[] => [
  ...uleb(globals.length),
  ...globals.flatMap((g) => [...g, 0x0b]),
];

/** Counts `new WebAssembly.Instance` while a test runs. */
let instances = 0;
const RealInstance = Wasm.Instance;
beforeEach(() => {
  instances = 0;
  (Wasm as { Instance: unknown }).Instance = class extends (
    (RealInstance as new (
      m: unknown,
      i: unknown,
    ) => object)
  ) {
    constructor(m: unknown, i: unknown) {
      super(m, i);
      instances++;
    }
  };
});
afterEach(() => {
  (Wasm as { Instance: unknown }).Instance = RealInstance;
});

type Outcome =
  | { readonly ok: true; readonly value: unknown; readonly fuelUsed: number }
  | { readonly ok: false; readonly code: string; readonly fuelUsed?: number };

const failed = (e: unknown): Outcome => {
  if (!(e instanceof CloisterError)) throw e;
  return e instanceof FuelExhaustedError
    ? { ok: false, code: e.code, fuelUsed: e.fuelUsed }
    : { ok: false, code: e.code };
};

// ---- the sandbox ----------------------------------------------------------------------------

/**
 * Globals: 0 mut i32 (start sets 7), 1 mut i64 = 5, 2 immutable i32 = 3, 3 mut f64 = 0.5.
 * start: g0 = 7; mem32[200] = 9 (and calls env.f first when `startCallsHost`).
 * step(a): g0 += a; mem32[64] += 3a; g1 += a; g3 += 1.0; spins (g0 + mem32[64]) & 63 times, so
 * its fuel depends on the state; a == 13 traps after the writes, a == 14 grows memory; returns
 * g0 + mem32[64] + g1 + mem32[200] + g2 + trunc(g3).
 * host(): calls env.f, returns g0.
 */
function sandboxModule(opts: { startCallsHost?: boolean; pages?: number } = {}): Uint8Array {
  const start = code(
    opts.startCallsHost ? [0x10, 0] : [],
    i32(7),
    gset(0),
    i32(200),
    i32(9),
    I.i32Store,
  );
  const step = code(
    gget(0),
    get(0),
    I.i32Add,
    gset(0),
    add32(64, [...get(0), ...i32(3), I.i32Mul]),
    gget(1),
    get(0),
    I64_EXTEND_I32_U,
    I64_ADD,
    gset(1),
    gget(3),
    0x44,
    ...new Uint8Array(new Float64Array([1]).buffer),
    0xa0, // f64.add
    gset(3),
    gget(0),
    load32(64),
    I.i32Add,
    i32(63),
    I.i32And,
    set(1),
    block(),
    loop(),
    get(1),
    I.i32Eqz,
    brIf(1),
    get(1),
    i32(1),
    I.i32Sub,
    set(1),
    br(0),
    I.end,
    I.end,
    get(0),
    i32(13),
    I.i32Eq,
    [0x04, 0x40, I.unreachable, I.end],
    get(0),
    i32(14),
    I.i32Eq,
    [0x04, 0x40, ...i32(1), ...I.memoryGrow, I.drop, I.end],
    gget(0),
    load32(64),
    I.i32Add,
    gget(1),
    I32_WRAP_I64,
    I.i32Add,
    load32(200),
    I.i32Add,
    gget(2),
    I.i32Add,
    gget(3),
    0xaa, // i32.trunc_f64_s
    I.i32Add,
  );
  const bytes = wasm({
    imports: [{ module: 'env', field: 'f' }],
    funcs: [
      { body: start },
      { params: [T.i32], results: [T.i32], locals: [T.i32], body: step, export: 'step' },
      { results: [T.i32], body: code([0x10, 0], gget(0)), export: 'host' },
    ],
    memory: [0x00, opts.pages ?? 1],
    start: 1,
  });
  return withSection(
    bytes,
    6,
    globalSection([
      [T.i32, 1, ...i32(0)],
      [T.i64, 1, ...i64(5)],
      [T.i32, 0, ...i32(3)],
      [T.f64, 1, 0x44, ...new Uint8Array(new Float64Array([0.5]).buffer)],
    ]),
  );
}

const hostImports = () => ({ env: { f: () => {} } });

describe('instance reuse in the sandbox', () => {
  const instrumented = instrumentModule(sandboxModule());
  const reusable = compileForReuse(instrumented);
  const plain = new Wasm.Module(instrumented);

  test('a module with only memory and number globals is reusable; all mutable globals listed', () => {
    const a = analyzeReuse(instrumented);
    assert.equal(a.reusable, true);
    // globals 0, 1, 3 of the module, then the sandbox's fuel, depth, status (4, 5, 6).
    if (a.reusable) assert.deepEqual(a.globals, [0, 1, 3, 4, 5, 6]);
  });

  test('fast-check: reset-and-reuse gives the same results, fuel and errors as fresh instances', () => {
    let resets = 0;
    let calls = 0;
    fc.assert(
      fc.property(
        fc.array(
          fc.record({
            a: fc.oneof(
              { arbitrary: fc.integer({ min: 0, max: 20 }), weight: 4 },
              { arbitrary: fc.constantFrom(13, 14), weight: 1 },
            ),
            fuel: fc.oneof(
              { arbitrary: fc.constant(1_000_000), weight: 4 },
              { arbitrary: fc.integer({ min: 0, max: 400 }), weight: 1 },
            ),
          }),
          { minLength: 1, maxLength: 25 },
        ),
        (ops) => {
          const run = (inst: SandboxInstance, a: number, fuel: number): Outcome => {
            try {
              const { result, fuelUsed } = inst.call('step', [a], fuel);
              return { ok: true, value: result, fuelUsed };
            } catch (e) {
              return failed(e);
            }
          };
          const fresh = ops.map(({ a, fuel }) => run(instantiate(plain, hostImports), a, fuel));
          calls += ops.length;
          let inst: SandboxInstance | undefined;
          const reused = ops.map(({ a, fuel }) => {
            inst ??= instantiate(reusable, hostImports);
            const out = run(inst, a, fuel);
            if (inst.reset()) resets++;
            else inst = undefined;
            return out;
          });
          assert.deepEqual(reused, fresh);
        },
      ),
      { numRuns: 200 },
    );
    assert.ok(resets > calls * 0.4, `${resets} resets in ${calls} calls: too little reuse`);
  });

  test('reset restores the post-start state, not zeros: start-written memory and globals', () => {
    const inst = instantiate(reusable, hostImports);
    const first = inst.call('step', [2], 1_000_000);
    for (let i = 0; i < 5; i++) {
      assert.equal(inst.reset(), true);
      assert.deepEqual(inst.call('step', [2], 1_000_000), first);
    }
    // 7+2 + 6 + 5+2 + 9 + 3 + trunc(1.5)
    assert.equal(first.result, 35);
  });

  test('a host call during a call does not stop reuse; one during start does', () => {
    const inst = instantiate(reusable, hostImports);
    assert.equal(inst.call('host', [], 1000).result, 7);
    assert.equal(inst.reset(), true);
    const m = compileForReuse(instrumentModule(sandboxModule({ startCallsHost: true })));
    const other = instantiate(m, hostImports);
    assert.equal(other.call('host', [], 1000).result, 7);
    assert.equal(other.reset(), false);
  });

  test('no reset after a failure, a memory.grow, without compileForReuse, or above the memory cap', () => {
    const a = instantiate(reusable, hostImports);
    assert.throws(() => a.call('step', [13], 1_000_000), { code: 'APP_TRAP' });
    assert.equal(a.reset(), false);
    const b = instantiate(reusable, hostImports);
    assert.throws(() => b.call('step', [20], 10), { code: 'APP_FUEL_EXHAUSTED' });
    assert.equal(b.reset(), false);
    const c = instantiate(reusable, hostImports);
    c.call('step', [14], 1_000_000);
    assert.equal(c.reset(), false);
    assert.equal(c.reset(), false);
    const d = instantiate(plain, hostImports);
    d.call('step', [1], 1_000_000);
    assert.equal(d.reset(), false);
    const e = instantiate(instrumented, hostImports);
    e.call('step', [1], 1_000_000);
    assert.equal(e.reset(), false);
    const big = compileForReuse(instrumentModule(sandboxModule({ pages: 17 })));
    const f = instantiate(big, hostImports);
    f.call('step', [1], 1_000_000);
    assert.equal(f.reset(), false);
    const small = compileForReuse(instrumentModule(sandboxModule({ pages: 16 })));
    const g = instantiate(small, hostImports);
    g.call('step', [1], 1_000_000);
    assert.equal(g.reset(), true);
  });

  test('modules that change tables or segments, or have a mutable v128 global, are not reusable', () => {
    const withTable = (body: readonly number[]): Uint8Array =>
      instrumentModule(wasm({ funcs: [{ body, export: 'f' }], table: [0x00, 1] }));
    const refNull = [0xd0, 0x70];
    const cases: [Uint8Array, RegExp][] = [
      [withTable([...i32(0), ...refNull, 0x26, 0x00]), /table\.set/],
      [withTable([...refNull, ...i32(1), 0xfc, 0x0f, 0x00, I.drop]), /table\.grow/],
      [withTable([...i32(0), ...refNull, ...i32(1), 0xfc, 0x11, 0x00]), /table\.fill/],
      [withTable([...i32(0), ...i32(0), ...i32(0), 0xfc, 0x0e, 0x00, 0x00]), /table\.copy/],
    ];
    // A passive data segment dropped by data.drop (datacount section 12 before the code).
    const dropping = withSection(
      wasm({
        funcs: [{ body: [0xfc, 0x09, 0x00], export: 'f' }],
        memory: [0x00, 1],
        raw: [{ id: 11, payload: [1, 0x01, 2, 0xaa, 0xbb] }],
      }),
      12,
      [1],
    );
    cases.push([instrumentModule(dropping), /data\.drop/]);
    const v128 = withSection(wasm({ funcs: [{ body: [], export: 'f' }] }), 6, [
      1,
      T.v128,
      1,
      0xfd,
      0x0c,
      ...new Array(16).fill(0),
      0x0b,
    ]);
    cases.push([instrumentModule(v128), /mutable v128/]);
    for (const [bytes, why] of cases) {
      const a = analyzeReuse(bytes);
      assert.equal(a.reusable, false);
      if (!a.reusable) assert.match(a.reason, why);
      const inst = instantiate(compileForReuse(bytes), () => ({}));
      inst.call('f', [], 1000);
      assert.equal(inst.reset(), false);
    }
  });
});

// ---- the app runtime ------------------------------------------------------------------------

const kit = abiKit({
  d0: '0',
  d1: '1',
  d2: '2',
  d3: '3',
  d4: '4',
  d5: '5',
  d6: '6',
  d7: '7',
  d8: '8',
  d9: '9',
  t: 't',
  k: 'k',
  ecode: 'E_NOPE',
  emsg: 'no',
});
const c = kit.call;
const CALLER_AT = SCRATCH + 64;
const BUFFER_AT = SCRATCH + 128;

/** Sets the result to the decimal digit (value pushed by `v`) % 10. */
const digit = (v: readonly number[]): number[] => [
  ...i32(kit.ptr('d0')),
  ...v,
  ...i32(10),
  I.i32RemU,
  ...i32(9),
  I.i32Mul,
  I.i32Add,
  ...i32(1),
  ...c('result_set'),
];
/** The state the routes expose: g0 + mem32[SCRATCH] + g1 + mem8[CALLER_AT] + mem8[BUFFER_AT]. */
const state = code(
  gget(0),
  load32(SCRATCH),
  I.i32Add,
  gget(1),
  I32_WRAP_I64,
  I.i32Add,
  load8(CALLER_AT),
  I.i32Add,
  load8(BUFFER_AT),
  I.i32Add,
);
/** Loops state & 31 times (local 2): fuel depends on the state. */
const spin = code(
  state,
  i32(31),
  I.i32And,
  set(2),
  block(),
  loop(),
  get(2),
  I.i32Eqz,
  brIf(1),
  get(2),
  i32(1),
  I.i32Sub,
  set(2),
  br(0),
  I.end,
  I.end,
);
/** 1 when no caller bytes at CALLER_AT and g0 == 0, else 0. */
const clean = code(
  load64(CALLER_AT),
  load64(CALLER_AT + 8),
  I64_OR,
  load64(CALLER_AT + 16),
  I64_OR,
  load64(CALLER_AT + 24),
  I64_OR,
  gget(0),
  I64_EXTEND_I32_U,
  I64_OR,
  I64_EQZ,
);

const ROUTES = [
  {
    name: 'bump',
    kind: 'transaction',
    body: code(
      gget(0),
      get(1),
      I.i32Add,
      gset(0),
      add32(SCRATCH, get(1)),
      gget(1),
      i64(1),
      I64_ADD,
      gset(1),
      kit.str('t'),
      kit.str('k'),
      i32(SCRATCH),
      i32(4),
      c('ledger_set'),
      spin,
      digit(state),
    ),
  },
  { name: 'peek', kind: 'query', body: code(spin, digit(state)) },
  {
    name: 'stash',
    kind: 'transaction',
    body: code(
      i32(CALLER_AT),
      c('context_caller'),
      gget(0),
      load8(CALLER_AT),
      I.i32Add,
      gset(0),
      spin,
      digit(state),
    ),
  },
  { name: 'clean', kind: 'query', body: digit(clean) },
  {
    name: 'grow',
    kind: 'transaction',
    body: code(i32(1), I.memoryGrow, I.drop, gget(0), i32(1), I.i32Add, gset(0), digit(state)),
  },
  {
    name: 'trap',
    kind: 'transaction',
    body: code(gget(0), i32(3), I.i32Add, gset(0), add32(SCRATCH, i32(3)), I.unreachable),
  },
  {
    name: 'fail',
    kind: 'transaction',
    body: code(gget(0), i32(5), I.i32Add, gset(0), kit.str('ecode'), kit.str('emsg'), c('fail')),
  },
  // Fills the host buffer (when t/k exists) and leaves it there.
  { name: 'fill', kind: 'query', body: code(kit.str('t'), kit.str('k'), c('ledger_get'), I.drop) },
  // Copies whatever the host buffer holds (nothing, on a fresh instance).
  {
    name: 'drain',
    kind: 'query',
    body: code(i32(BUFFER_AT), c('buffer_read'), spin, digit(state)),
  },
] as const;

const appBytes = withSection(
  kit.module({ locals: [T.i32], routes: ROUTES }),
  6,
  globalSection([
    [T.i32, 1, ...i32(0)],
    [T.i64, 1, ...i64(5)],
  ]),
);

const CALLERS = [0xa1, 0xb0, 0xc3].map((b) =>
  concatBytes(Uint8Array.of(4), new Uint8Array(64).fill(b)),
);

async function runtime(instancePool?: number): Promise<AppRuntime> {
  const { createMemoryStore } = await hostStores();
  const engine = await createLedgerEngine(options(createMemoryStore()));
  const rt = createAppRuntime({
    engine,
    ...(instancePool === undefined ? {} : { instancePool }),
  });
  await rt.deploy('A', appBytes);
  return rt;
}

async function outcome(rt: AppRuntime, call: AppCall): Promise<Outcome> {
  try {
    const r = await rt.call(call);
    return {
      ok: true,
      value: { result: r.result, txid: r.txid, notifications: r.notifications },
      fuelUsed: r.fuelUsed,
    };
  } catch (e) {
    return failed(e);
  }
}

describe('instance reuse in the app runtime', () => {
  test('the digit strings sit 9 bytes apart', () => {
    for (let d = 0; d < 10; d++) assert.equal(kit.ptr(`d${d}`), kit.ptr('d0') + 9 * d);
  });

  test('fast-check: calls on reused instances equal calls on fresh instances (pool 4 vs 0)', async () => {
    let created = 0;
    let calls = 0;
    await fc.assert(
      fc.asyncProperty(
        fc.array(
          fc.record({
            route: fc.constantFrom(...ROUTES.map((r) => r.name)),
            caller: fc.nat(CALLERS.length - 1),
            argLen: fc.nat(40),
            fuel: fc.oneof(
              { arbitrary: fc.constant(undefined), weight: 4 },
              { arbitrary: fc.integer({ min: 0, max: 3000 }), weight: 1 },
            ),
          }),
          { minLength: 1, maxLength: 20 },
        ),
        async (ops) => {
          const pooled = await runtime();
          const fresh = await runtime(0);
          const calls1 = ops.map((o): AppCall => {
            const route = ROUTES.find((r) => r.name === o.route);
            return {
              app: 'A',
              method: o.route,
              kind: route?.kind ?? 'query',
              args: JSON.stringify('x'.repeat(o.argLen)),
              caller: CALLERS[o.caller] as Uint8Array,
              ...(o.fuel === undefined ? {} : { fuel: o.fuel }),
            };
          });
          const a: Outcome[] = [];
          const before = instances;
          for (const call of calls1) a.push(await outcome(pooled, call));
          created += instances - before;
          calls += calls1.length;
          const b: Outcome[] = [];
          for (const call of calls1) b.push(await outcome(fresh, call));
          assert.deepEqual(a, b);
        },
      ),
      { numRuns: 60 },
    );
    // Three of the nine routes always fail or grow, and some calls run out of fuel.
    assert.ok(created < calls * 0.6, `${created} instances for ${calls} calls: little reuse`);
  });

  test("one caller's data in memory and globals is not visible to the next call", async () => {
    const rt = await runtime();
    const [alice, bob] = CALLERS as [Uint8Array, Uint8Array];
    const call = (method: string, kind: 'query' | 'transaction', caller: Uint8Array) =>
      rt.call({ app: 'A', method, kind, args: '{}', caller });
    assert.equal((await call('clean', 'query', bob)).result, '1');
    const made = instances;
    await call('stash', 'transaction', alice);
    // Alice's caller id was written at CALLER_AT and added into g0; Bob's call sees neither.
    assert.equal((await call('clean', 'query', bob)).result, '1');
    assert.equal((await call('peek', 'query', bob)).result, '5');
    assert.equal(instances, made, 'the calls ran on the one pooled instance');
    // After a failed call (trap, app error) the instance is dropped; the next is clean too.
    await assert.rejects(call('trap', 'transaction', alice), { code: 'APP_TRAP' });
    await assert.rejects(call('fail', 'transaction', alice), { code: 'APP_ERROR' });
    assert.equal((await call('clean', 'query', bob)).result, '1');
    assert.equal(instances, made + 2, 'a new instance after each failure');
  });

  test('the host buffer a call filled is empty for the next call', async () => {
    const rt = await runtime();
    const [alice, bob] = CALLERS as [Uint8Array, Uint8Array];
    const call = (method: string, kind: 'query' | 'transaction', caller: Uint8Array) =>
      rt.call({ app: 'A', method, kind, args: '{}', caller });
    await call('bump', 'transaction', alice);
    const fresh = (await call('drain', 'query', bob)).result;
    const made = instances;
    await call('fill', 'query', alice);
    assert.equal((await call('drain', 'query', bob)).result, fresh);
    assert.equal(instances, made);
  });

  test('a memory.grow drops the instance; the next call starts from the initial memory', async () => {
    const rt = await runtime();
    const [alice] = CALLERS as [Uint8Array];
    const call = (method: string, kind: 'query' | 'transaction') =>
      rt.call({ app: 'A', method, kind, args: '{}', caller: alice });
    await call('peek', 'query');
    const made = instances;
    await call('grow', 'transaction');
    await call('peek', 'query');
    assert.equal(instances, made + 1);
  });
});

describe('caller id', () => {
  test('fast-check: node:crypto SHA-256 gives the bytes of the §5.1 construction', () => {
    fc.assert(
      fc.property(
        fc.stringMatching(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/),
        fc.uint8Array({ minLength: 65, maxLength: 65 }),
        (app, key) => {
          const a = utf8(app);
          const want = sha256(
            utf8('cloister/caller/v1'),
            Uint8Array.of(0, a.length >> 8, a.length & 0xff),
            a,
            key,
          );
          const got = callerIdOf(app, key);
          assert.ok(got instanceof Uint8Array);
          assert.deepEqual(new Uint8Array(got), want);
          // The client's (core's, isomorphic) computes the same: `cloister call` prints it.
          assert.deepEqual(callerId(app, key), want);
        },
      ),
      { numRuns: 300 },
    );
  });
});
