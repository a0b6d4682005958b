/**
 * The instrumentation is deterministic and transparent: the same module instruments to the same
 * bytes; terminating programs return what they returned before (property over random arithmetic
 * kernels with loops, branches and calls), trap where they trapped before, and use the same fuel
 * on every fresh instance.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import {
  AppTrapError,
  FuelExhaustedError,
  instantiate,
  instrumentModule,
  MalformedModuleError,
  validateModule,
} from '../src/apps/sandbox/index.js';
import { Wasm } from '../src/apps/sandbox/wasm-api.js';
import { KERNELS } from './sandbox-kernels.js';
import {
  block,
  brIf,
  call,
  code,
  get,
  I,
  i32,
  i64,
  if_,
  loop,
  T,
  tee,
  wasm,
} from './sandbox-wasm.js';

const BINARY = [
  I.i32Add,
  I.i32Sub,
  I.i32Mul,
  I.i32And,
  I.i32Or,
  I.i32Xor,
  I.i32Shl,
  I.i32ShrU,
  I.i32Rotl,
  I.i32DivU,
  I.i32RemU,
  I.i32LtU,
  I.i32Eq,
];

/** An i32 expression over locals 0 and 1, as instruction bytes; may call function 0. */
const exprArb = (calls: boolean): fc.Memo<number[]> => {
  const self: fc.Memo<number[]> = fc.memo((depth) =>
    depth <= 1
      ? fc.oneof(
          fc.constantFrom(get(0), get(1)),
          fc.integer().map((n) => i32(n)),
        )
      : fc.oneof(
          { weight: 1, arbitrary: fc.constantFrom(get(0), get(1)) },
          {
            weight: 3,
            arbitrary: fc
              .tuple(self(depth - 1), self(depth - 1), fc.constantFrom(...BINARY))
              .map(([a, b, op]) => code(a, b, op)),
          },
          {
            weight: 1,
            arbitrary: fc
              .tuple(self(depth - 1), self(depth - 1), self(depth - 1))
              .map(([c, a, b]) => code(c, if_(T.i32), a, I.else, b, I.end)),
          },
          {
            weight: calls ? 1 : 0,
            arbitrary: fc.tuple(self(depth - 1)).map(([a]) => code(a, call(0))),
          },
        ),
  );
  return self;
};

/**
 * run(x, n): i = 0; loop { x = expr(x, n); i++; br_if (i < n) } ; return x — with an early exit
 * when `x` hits a chosen value (a forward branch out of the loop), and a helper function (index
 * 0) that the expression may call.
 */
const programArb = fc
  .record({
    body: exprArb(true)(4),
    helper: exprArb(false)(3),
    stop: fc.integer(),
    n: fc.nat(40),
    x: fc.integer(),
  })
  .map(({ body, helper, stop, n, x }) => ({
    args: [x, n],
    bytes: wasm({
      funcs: [
        { params: [T.i32], results: [T.i32], locals: [T.i32], body: code(helper) },
        {
          params: [T.i32, T.i32],
          results: [T.i32],
          locals: [T.i32],
          export: 'run',
          body: code(
            block(),
            loop(),
            body,
            tee(0),
            i32(stop),
            I.i32Eq,
            brIf(1),
            get(2),
            i32(1),
            I.i32Add,
            tee(2),
            get(1),
            I.i32LtU,
            brIf(0),
            I.end,
            I.end,
            get(0),
          ),
        },
      ],
    }),
  }));

type Outcome = { ok: unknown } | { trap: string };

function plainRun(bytes: Uint8Array, args: number[]): Outcome {
  const run = new Wasm.Instance(new Wasm.Module(bytes), {}).exports.run as (
    ...a: number[]
  ) => number;
  try {
    return { ok: run(...args) };
  } catch (e) {
    return { trap: (e as Error).message };
  }
}

describe('sandbox instrumentation', () => {
  test('kernels keep their results; output bytes are deterministic', () => {
    const cases: [keyof typeof KERNELS, number][] = [
      ['aluLoop', 10_000],
      ['fib', 20],
      ['loadStore', 5000],
    ];
    for (const [name, n] of cases) {
      const bytes = KERNELS[name];
      const a = instrumentModule(bytes);
      assert.deepEqual(instrumentModule(bytes.slice()), a, `${name} instruments twice alike`);
      const out = instantiate(a, () => ({})).call('run', [n], 1e9);
      assert.deepEqual({ ok: out.result }, plainRun(bytes, [n]));
      assert.equal(instantiate(a, () => ({})).call('run', [n], 1e9).fuelUsed, out.fuelUsed);
    }
  });

  test('a host import can carry a static cost per call', () => {
    const bytes = wasm({
      imports: [{ module: 'env', field: 'ping' }],
      funcs: [{ body: code(call(0), call(0)), export: 'run' }],
    });
    const fuelWith = (extra: number): number => {
      const a = instrumentModule(bytes, { importCost: () => extra });
      return instantiate(a, () => ({ env: { ping: () => {} } })).call('run', [], 1000).fuelUsed;
    };
    assert.equal(fuelWith(100) - fuelWith(0), 200);
  });

  test('instructions cost what the cost table says (docs/sandbox.md)', () => {
    const fuelOf = (...body: (number | readonly number[])[]): number => {
      const bytes = wasm({
        memory: [0x00, 1],
        table: [0x00, 1],
        elements: [1],
        funcs: [{ body: code(...body), export: 'run' }, { body: [] }],
      });
      return instantiate(instrumentModule(bytes), () => ({})).call('run', [], 1e6).fuelUsed;
    };
    const base = fuelOf();
    const cost = (...body: (number | readonly number[])[]): number => fuelOf(...body) - base;
    assert.equal(cost(call(1)), 5, 'call (of an empty function)');
    assert.equal(cost(i32(0), I.drop), 2, 'a constant and a drop');
    assert.equal(cost(i32(0), I.memoryGrow, I.drop), 1 + 300 + 1, 'memory.grow of 0 pages');
    // table.set (0x26, table 0) of a null funcref at slot 0; table.get (0x25) of it.
    assert.equal(cost(i32(0), [0xd0, 0x70], 0x26, 0), 1 + 1 + 25, 'table.set');
    assert.equal(cost(i32(0), 0x25, 0, I.drop), 1 + 2 + 1, 'table.get');
    // i32.wrap_i64 (0xa7) and i64.extend_i32_u (0xad) are conversions: 3 (the docs said 1).
    assert.equal(cost([0x42, 0], 0xa7, I.drop), 1 + 3 + 1, 'i32.wrap_i64');
    assert.equal(cost(i32(0), 0xad, I.drop), 1 + 3 + 1, 'i64.extend_i32_u');
    assert.equal(cost(i32(0), I.i32Load, I.drop), 1 + 2 + 1, 'a load');
    assert.equal(cost(i32(6), i32(3), I.i32Mul, I.drop), 1 + 1 + 3 + 1, 'a multiply');
    assert.equal(cost(i32(6), i32(3), I.i32DivU, I.drop), 1 + 1 + 10 + 1, 'a divide');
    // call_indirect (type 0, table 0) of the empty function at slot 0.
    assert.equal(cost(i32(0), 0x11, 0, 0), 1 + 10, 'call_indirect');
    // block; br_table with one target and a default, both the block; end.
    assert.equal(cost(block(), i32(0), 0x0e, 1, 0, 0, I.end), 1 + 3, 'br_table');
  });

  test('an untaken if arm that reaches ARM_CHARGE_MIN with its nested arms costs nothing', () => {
    const pairs = (n: number): number[] =>
      code(...Array.from({ length: n }, () => [...i32(1), I.drop]));
    // The outer arm: 10 units of its own and a nested arm of 100; 112 in all, above 64.
    const fuelOf = (arm: number[]): number => {
      const body = code(get(0), if_(), arm, I.end);
      const bytes = wasm({ funcs: [{ params: [T.i32], body, export: 'run' }] });
      return instantiate(instrumentModule(bytes), () => ({})).call('run', [0], 1e6).fuelUsed;
    };
    const big = code(pairs(5), i32(0), if_(), pairs(50), I.end);
    assert.equal(fuelOf(big), fuelOf([]), 'the untaken arm was charged');
  });

  test('table.grow and table.fill are charged per element; the table cap holds', () => {
    const nullRef = [0xd0, 0x70];
    const bytes = wasm({
      table: [0x00, 0],
      funcs: [
        {
          params: [T.i32],
          results: [T.i32],
          body: code(nullRef, get(0), 0xfc, 15, 0),
          export: 'grow',
        },
      ],
    });
    validateModule(bytes, { allowedImports: [] });
    const a = instrumentModule(bytes, { maxTableElements: 5000 });
    const fuel = (n: number): number => instantiate(a, () => ({})).call('grow', [n], 1e6).fuelUsed;
    assert.equal(fuel(1000) - fuel(0), 1000);
    assert.equal(instantiate(a, () => ({})).call('grow', [5001], 1e6).result, -1);
  });

  test('a host function cannot call back into the running instance', () => {
    const bytes = wasm({
      imports: [{ module: 'env', field: 'again' }],
      funcs: [{ body: code(call(0)), export: 'run' }],
    });
    let inst: ReturnType<typeof instantiate> | undefined;
    inst = instantiate(instrumentModule(bytes), () => ({
      env: { again: () => inst?.call('run', [], 100) },
    }));
    assert.throws(() => inst?.call('run', [], 100), /already running/);
    assert.ok(inst.poisoned);
  });

  test("the caller's fuel and depth must be in range, and the sandbox's own exports are not callable", () => {
    const invalid = (text: RegExp) => (e: unknown) =>
      (e as { code?: string }).code === 'INVALID_INPUT' && text.test((e as Error).message);
    // The start function stores 42 at 0; the module's own function reads it.
    const bytes = instrumentModule(
      wasm({
        memory: [0x00, 1],
        funcs: [
          { body: code(i32(0), i32(0), I.i32Load, i32(42), I.i32Add, I.i32Store) },
          { results: [T.i32], body: code(i32(0), I.i32Load), export: 'read' },
        ],
        start: 0,
      }),
    );
    const inst = instantiate(bytes, () => ({}));
    for (const fuel of [-1, 1.5, Number.NaN, 2 ** 53]) {
      assert.throws(() => inst.call('read', [], fuel), invalid(/fuel must be an integer in 0\.\./));
    }
    // The instrumented start function stays the sandbox's: calling it by name would run it again.
    assert.throws(
      () => inst.call('cloister:start', [], 1000),
      invalid(/the module exports no function "cloister:start"/),
    );
    assert.equal(inst.call('read', [], 100).result, 42);
    for (const maxCallDepth of [0, 1.5, 2 ** 31]) {
      assert.throws(
        () => instantiate(bytes, () => ({}), { maxCallDepth }),
        invalid(/maxCallDepth must be an integer in 1\.\.2147483647/),
      );
    }
  });

  test('immediates that hold opcode bytes are skipped whole: float constants, typed select, SIMD lanes (coverage gap)', () => {
    // Immediates made of bytes that are opcodes themselves (0x0b end, 0x03 loop, 0x02 block): a
    // parser that skipped them short would meter, or cut, the body elsewhere.
    const f64 = [0x0b, 0x03, 0x0b, 0x03, 0x0b, 0x03, 0x08, 0x40]; // about 3.0
    const f32 = [0x0b, 0x03, 0x40, 0x40]; // about 3.0
    const body = (select: number[]) =>
      code(
        0x44,
        f64,
        0xaa, // i32.trunc_f64_s
        0x43,
        f32,
        0xa8, // i32.trunc_f32_s
        I.i32Add,
        // select with its type vector: (1, 2, 0) -> 2
        i32(1),
        i32(2),
        i32(0),
        select,
        I.i32Add,
        // v128.load32_lane (memarg, lane 3) then i32x4.extract_lane 2: 5 (splat) from a lane kept
        i32(0),
        i32(5),
        [0xfd, 17], // i32x4.splat
        [0xfd, 86, 0x02, 0x00, 0x03], // v128.load32_lane align 2 offset 0 lane 3
        [0xfd, 27, 0x02], // i32x4.extract_lane 2
        I.i32Add,
      );
    const module = (select: number[]) =>
      wasm({ memory: [0x00, 1], funcs: [{ results: [T.i32], body: body(select), export: 'run' }] });
    const bytes = module([0x1c, 0x01, T.i32]);
    validateModule(bytes, { allowedImports: [] });
    const plain = plainRun(bytes, []);
    assert.deepEqual(plain, { ok: 3 + 3 + 2 + 5 });
    const a = instrumentModule(bytes);
    const runs = [0, 1].map(() => instantiate(a, () => ({})).call('run', [], 1e9));
    assert.equal(runs[0]?.result, 13);
    assert.equal(runs[0]?.fuelUsed, runs[1]?.fuelUsed);
    assert.ok((runs[0]?.fuelUsed ?? 0) >= 10, 'every instruction was metered');
    // The typed select's type byte (0x7f, also i64.div_s) is an immediate, never charged.
    const untyped = instantiate(instrumentModule(module([0x1b])), () => ({})).call('run', [], 1e9);
    assert.deepEqual(untyped, runs[0]);
  });

  test('property: same result or same trap, same bytes, same fuel', () => {
    fc.assert(
      fc.property(programArb, ({ bytes, args }) => {
        validateModule(bytes, { allowedImports: [] });
        const a = instrumentModule(bytes);
        assert.deepEqual(instrumentModule(bytes), a);
        const plain = plainRun(bytes, args);
        const runs = [0, 1].map((): Outcome & { fuel?: number } => {
          try {
            const out = instantiate(a, () => ({})).call('run', args, 1e9);
            return { ok: out.result, fuel: out.fuelUsed };
          } catch (e) {
            assert.ok(e instanceof AppTrapError, String(e));
            return { trap: e.trap };
          }
        });
        assert.deepEqual(runs[0], runs[1]);
        if ('ok' in plain) assert.equal((runs[0] as { ok: unknown }).ok, plain.ok);
        else
          assert.ok(
            'trap' in (runs[0] as object),
            `plain trapped (${plain.trap}), instrumented did not`,
          );
        // With half the fuel it needs, the call stops — at the same count on two fresh instances.
        const full = runs[0]?.fuel;
        if (full === undefined || full < 2) return;
        const stops = [0, 1].map(() => {
          try {
            instantiate(a, () => ({})).call('run', args, Math.floor(full / 2));
          } catch (e) {
            assert.ok(e instanceof FuelExhaustedError, String(e));
            return e.fuelUsed;
          }
          return assert.fail('half the fuel was enough');
        });
        assert.equal(stops[0], stops[1]);
      }),
      { numRuns: 300, seed: 0x5a4d },
    );
  });
});

test('a module that names the fuel global before it exists is refused, not made valid', () => {
  // global.set 0 on a module with no globals: index 0 is where instrumentation puts the fuel.
  const refuel = wasm({
    funcs: [
      { results: [T.i32], body: code(i64(1_000_000_000), [0x24, 0x00], i32(1)), export: 'run' },
    ],
  });
  assert.throws(() => instrumentModule(refuel), MalformedModuleError);
  assert.throws(() => validateModule(refuel, { allowedImports: [] }), MalformedModuleError);
});
