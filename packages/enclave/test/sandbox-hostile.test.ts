/**
 * Hostile modules against the sandbox (issue 5, "Must show"): each ends in its named error, the
 * instance that failed refuses further calls, and a normal call on a fresh instance of a normal
 * module succeeds right after. Exhaustion is deterministic: the same call on three fresh
 * instances stops at the same fuel count.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  AppTrapError,
  FuelExhaustedError,
  instantiate,
  instrumentModule,
  ResultTooLargeError,
  type SandboxImports,
  type SandboxLimits,
  SandboxPoisonedError,
  StackDepthError,
  validateModule,
} from '../src/apps/sandbox/index.js';
import { fib } from './sandbox-kernels.js';
import {
  block,
  br,
  brIf,
  call,
  code,
  get,
  I,
  i32,
  if_,
  loop,
  T,
  tee,
  wasm,
} from './sandbox-wasm.js';

const HOST = [{ module: 'env', field: 'hash' }];
const deploy = (bytes: Uint8Array): Uint8Array => {
  validateModule(bytes, { allowedImports: HOST });
  return instrumentModule(bytes);
};
const noImports: SandboxImports = () => ({});

/** The normal call that must succeed after every hostile one: fib(15) on a fresh instance. */
function normalCallWorks(): void {
  const out = instantiate(deploy(fib), noImports).call('run', [15], 1_000_000);
  assert.equal(out.result, 610);
}

/** Runs `name` on a fresh instance and returns the error it throws. */
function failure(
  bytes: Uint8Array,
  name: string,
  fuel: number,
  imports: SandboxImports = noImports,
  limits?: SandboxLimits,
): Error {
  const inst = instantiate(bytes, imports, limits);
  let err: unknown;
  try {
    inst.call(name, [], fuel);
  } catch (e) {
    err = e;
  }
  assert.ok(err instanceof Error, 'the call should fail');
  assert.ok(inst.poisoned);
  assert.throws(() => inst.call(name, [], fuel), SandboxPoisonedError);
  return err;
}

/** Three fresh runs stop at the same fuel count; returns it. */
function sameFuelThrice(
  bytes: Uint8Array,
  name: string,
  fuel: number,
  imports?: SandboxImports,
): number {
  const used = [0, 1, 2].map(() => {
    const e = failure(bytes, name, fuel, imports);
    assert.ok(e instanceof FuelExhaustedError, String(e));
    assert.equal(e.fuelLimit, fuel);
    assert.ok(e.fuelUsed > fuel);
    return e.fuelUsed;
  });
  assert.deepEqual(new Set(used).size, 1, `fuel used differs: ${used.join(', ')}`);
  return used[0] as number;
}

const endless = deploy(wasm({ funcs: [{ body: code(loop(), br(0), I.end), export: 'spin' }] }));

describe('sandbox: hostile modules', () => {
  test('endless loop: out of fuel, same count on three runs', () => {
    sameFuelThrice(endless, 'spin', 1_000_003);
    normalCallWorks();
  });

  test('an endless start function stops at the default start fuel (docs/sandbox.md §4)', () => {
    const spinner = deploy(wasm({ funcs: [{ body: code(loop(), br(0), I.end) }], start: 0 }));
    assert.throws(
      () => instantiate(spinner, noImports),
      (e: unknown) => {
        assert.ok(e instanceof FuelExhaustedError, `expected FuelExhaustedError, got ${e}`);
        assert.equal(e.fuelLimit, 10_000_000, 'the default start fuel');
        return true;
      },
    );
    assert.throws(
      () => instantiate(spinner, noImports, { startFuel: 1000 }),
      (e: unknown) => e instanceof FuelExhaustedError && e.fuelLimit === 1000,
      'a start fuel of its own',
    );
    normalCallWorks();
  });

  test('memory bomb: memory.grow in a loop stops at the cap, then out of fuel', () => {
    const bomb = deploy(
      wasm({
        memory: [0x00, 1],
        funcs: [
          { body: code(loop(), i32(64), ...I.memoryGrow, I.drop, br(0), I.end), export: 'bomb' },
          {
            params: [T.i32],
            results: [T.i32],
            body: code(get(0), ...I.memoryGrow),
            export: 'grow',
          },
        ],
      }),
    );
    const inst = instantiate(bomb, noImports);
    // Beyond the default cap (1024 pages) grow fails as the spec says: -1, memory unchanged.
    assert.equal(inst.call('grow', [1024], 10_000_000).result, -1);
    assert.equal(inst.call('grow', [3], 10_000_000).result, 1);
    // Growing is charged by pages: 3 pages cost more than 3 * 4096.
    assert.ok(inst.call('grow', [3], 10_000_000).fuelUsed >= 3 * 4096);
    const used = sameFuelThrice(bomb, 'bomb', 100_000_000);
    assert.ok(used > 100_000_000);
    const e = failure(bomb, 'bomb', 100_000_000);
    assert.ok(e instanceof FuelExhaustedError);
    normalCallWorks();
  });

  test('deep recursion: counted depth, a named error at the stated limit', () => {
    // depth(n) = n == 0 ? 0 : 1 + depth(n - 1)
    const rec = deploy(
      wasm({
        funcs: [
          {
            params: [T.i32],
            results: [T.i32],
            body: code(
              get(0),
              I.i32Eqz,
              if_(T.i32),
              i32(0),
              I.else,
              get(0),
              i32(1),
              I.i32Sub,
              call(0),
              i32(1),
              I.i32Add,
              I.end,
            ),
            export: 'depth',
          },
          { body: code(call(1)), export: 'forever' },
        ],
      }),
    );
    const limits = { maxCallDepth: 100 };
    assert.equal(instantiate(rec, noImports, limits).call('depth', [99], 1e6).result, 99);
    const inst = instantiate(rec, noImports, limits);
    assert.throws(() => inst.call('depth', [100], 1e6), StackDepthError);
    const e = failure(rec, 'forever', 1e9);
    assert.ok(e instanceof StackDepthError && e.maxDepth === 4096, String(e));
    // With the count set beyond what V8's stack holds, V8's overflow is still a named trap.
    const deep = failure(rec, 'forever', 1e12, noImports, { maxCallDepth: 100_000_000 });
    assert.ok(deep instanceof AppTrapError && deep.trap === 'stack-overflow', String(deep));
    normalCallWorks();
  });

  test('traps mid-call are named, and the instance is dropped', () => {
    const traps = deploy(
      wasm({
        memory: [0x00, 1],
        funcs: [
          {
            results: [T.i32],
            body: code(i32(0), i32(5), I.i32Store, I.unreachable),
            export: 'unreachable',
          },
          {
            params: [T.i32],
            results: [T.i32],
            body: code(i32(10), get(0), I.i32DivU),
            export: 'div',
          },
          { results: [T.i32], body: code(i32(70_000), I.i32Load), export: 'oob' },
          {
            results: [T.i32],
            body: code(i32(-2147483648), i32(-1), I.i32DivS),
            export: 'overflow',
          },
        ],
      }),
    );
    const kinds = {
      unreachable: 'unreachable',
      div: 'divide-by-zero',
      oob: 'out-of-bounds',
      overflow: 'integer-overflow',
    };
    for (const [name, kind] of Object.entries(kinds)) {
      const e = name === 'div' ? divByZero(traps) : failure(traps, name, 1000);
      assert.ok(e instanceof AppTrapError && e.trap === kind, `${name}: ${String(e)}`);
    }
    assert.equal(instantiate(traps, noImports).call('div', [2], 100).result, 5);
    normalCallWorks();
  });

  test('a memory.fill loop runs out of fuel, charged by bytes', () => {
    const fill = deploy(
      wasm({
        memory: [0x00, 1],
        funcs: [
          {
            body: code(loop(), i32(0), i32(0), i32(65536), ...I.memoryFill, br(0), I.end),
            export: 'fill',
          },
          { params: [T.i32], body: code(i32(0), i32(1), get(0), ...I.memoryFill), export: 'once' },
        ],
      }),
    );
    const small = instantiate(fill, noImports).call('once', [16], 1000).fuelUsed;
    const big = instantiate(fill, noImports).call('once', [65536], 1_000_000).fuelUsed;
    assert.equal(big - small, (65536 - 16) / 16);
    const used = sameFuelThrice(fill, 'fill', 50_000_000);
    // Each iteration pays 4096 for its 64 KiB plus a few units of static cost.
    assert.ok(used - 50_000_000 <= 4096 + 64);
    normalCallWorks();
  });

  test('host calls charge by bytes through the hook; a hashing loop runs out', () => {
    const hashing = deploy(
      wasm({
        imports: [{ module: 'env', field: 'hash', params: [T.i32] }],
        funcs: [{ body: code(loop(), i32(1 << 20), call(0), br(0), I.end), export: 'hash' }],
      }),
    );
    let calls = 0;
    const imports: SandboxImports = (host) => ({
      env: {
        hash: (len: number) => {
          calls++;
          host.chargeBytes(len);
        },
      },
    });
    sameFuelThrice(hashing, 'hash', 10_000_000, imports);
    // 1 MiB per call = 65,536 fuel: 10M fuel pays for 152 calls, the 153rd is refused.
    assert.equal(calls, 3 * 153);
    normalCallWorks();
  });

  test('results above the cap are refused by name', () => {
    const big = deploy(
      wasm({ memory: [0x00, 2], funcs: [{ results: [T.i32], body: code(i32(0)), export: 'r' }] }),
    );
    const inst = instantiate(big, noImports, { maxResultBytes: 65_536 });
    inst.call('r', [], 10);
    assert.equal(inst.readResult(0, 65_536).length, 65_536);
    assert.throws(() => inst.readResult(0, 65_537), ResultTooLargeError);
    assert.throws(() => inst.readResult(131_000, 1_000), AppTrapError);
    normalCallWorks();
  });

  test('early returns and branches out of a calling function restore the depth', () => {
    // f(x): block { if x&1 { g(); return } ; br_if 1 (x&2) ; g() } ; called in a long loop.
    const bytes = deploy(
      wasm({
        funcs: [
          { body: [] },
          {
            params: [T.i32],
            body: code(
              block(),
              get(0),
              i32(1),
              I.i32And,
              if_(),
              call(0),
              I.return,
              I.end,
              get(0),
              i32(2),
              I.i32And,
              brIf(1),
              call(0),
              I.end,
            ),
          },
          {
            params: [T.i32],
            locals: [T.i32],
            body: code(
              loop(),
              get(1),
              call(1),
              get(1),
              i32(1),
              I.i32Add,
              tee(1),
              get(0),
              I.i32LtU,
              brIf(0),
              I.end,
            ),
            export: 'many',
          },
          {
            params: [T.i32, T.i32],
            results: [T.i32, T.i32],
            body: code(get(1), get(0), call(0)),
            export: 'swap',
          },
        ],
      }),
    );
    const inst = instantiate(bytes, noImports, { maxCallDepth: 3 });
    inst.call('many', [10_000], 10_000_000);
    assert.deepEqual(inst.call('swap', [1, 2], 100).result, [2, 1]);
  });
});

function divByZero(bytes: Uint8Array): Error {
  const inst = instantiate(bytes, noImports);
  try {
    inst.call('div', [0], 100);
  } catch (e) {
    return e as Error;
  }
  throw new Error('no trap');
}
