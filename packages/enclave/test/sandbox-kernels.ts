/**
 * The three pinned kernels of the fuel-overhead benchmark (issue 5, `npm run bench -- apps`):
 * an ALU loop, recursive fib and a load/store loop. Each is `run(n) -> i32`; tests check that
 * instrumentation keeps their results, the benchmark times plain against instrumented.
 */
import {
  block,
  brIf,
  call,
  code,
  get,
  I,
  i32,
  if_,
  loop,
  set,
  T,
  tee,
  wasm,
} from './sandbox-wasm.js';

/** acc = rotl(acc * 31 ^ i, 5) + i, for i in 0..n. */
export const aluLoop: Uint8Array = wasm({
  funcs: [
    {
      params: [T.i32],
      results: [T.i32],
      locals: [T.i32, T.i32],
      export: 'run',
      body: code(
        loop(),
        get(2),
        i32(31),
        I.i32Mul,
        get(1),
        I.i32Xor,
        i32(5),
        I.i32Rotl,
        get(1),
        I.i32Add,
        set(2),
        get(1),
        i32(1),
        I.i32Add,
        tee(1),
        get(0),
        I.i32LtU,
        brIf(0),
        I.end,
        get(2),
      ),
    },
  ],
});

/** fib(n) = n < 2 ? n : fib(n - 1) + fib(n - 2). */
export const fib: Uint8Array = wasm({
  funcs: [
    {
      params: [T.i32],
      results: [T.i32],
      export: 'run',
      body: code(
        get(0),
        i32(2),
        I.i32LtU,
        if_(T.i32),
        get(0),
        I.else,
        get(0),
        i32(1),
        I.i32Sub,
        call(0),
        get(0),
        i32(2),
        I.i32Sub,
        call(0),
        I.i32Add,
        I.end,
      ),
    },
  ],
});

/** n times: a[i & 1023] += a[(i + 1) & 1023] + i over a 4 KiB array; returns a[0]. */
export const loadStore: Uint8Array = wasm({
  memory: [0x00, 1],
  funcs: [
    {
      params: [T.i32],
      results: [T.i32],
      locals: [T.i32, T.i32],
      export: 'run',
      body: code(
        block(),
        get(0),
        I.i32Eqz,
        brIf(0),
        loop(),
        get(1),
        i32(1023),
        I.i32And,
        i32(2),
        0x74,
        tee(2),
        get(2),
        I.i32Load,
        get(1),
        i32(1),
        I.i32Add,
        i32(1023),
        I.i32And,
        i32(2),
        0x74,
        I.i32Load,
        I.i32Add,
        get(1),
        I.i32Add,
        I.i32Store,
        get(1),
        i32(1),
        I.i32Add,
        tee(1),
        get(0),
        I.i32LtU,
        brIf(0),
        I.end,
        I.end,
        i32(0),
        I.i32Load,
      ),
    },
  ],
});

export const KERNELS = { aluLoop, fib, loadStore } as const;
