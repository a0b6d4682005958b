/**
 * A running module: fuel in, result and fuel used out, every failure a named error, and no second
 * call after a failure. The world comes in through `imports` (the ABI layer's host functions); the
 * sandbox itself reads no clock and keeps no state outside the instance. An instance of a module
 * compiled by `compileForReuse` (reuse.ts) can be reset to its exact post-start state after a
 * successful call (docs/sandbox.md §5.1).
 */
import { CloisterError } from '@cloister/core';
import {
  AppTrapError,
  FuelExhaustedError,
  ResultTooLargeError,
  SandboxPoisonedError,
  StackDepthError,
  type TrapKind,
} from './errors.js';
import { BYTES_PER_FUEL, SANDBOX_EXPORTS, STATUS } from './instrument.js';
import {
  DEFAULT_MAX_CALL_DEPTH,
  DEFAULT_MAX_RESULT_BYTES,
  DEFAULT_START_FUEL,
  MAX_FUEL,
  type SandboxLimits,
} from './limits.js';
import { MAX_REUSE_MEMORY_BYTES, type ReusePlan, reusePlanOf } from './reuse.js';
import { RESERVED_EXPORT_PREFIX } from './validate.js';
import {
  Wasm,
  type WasmExports,
  type WasmGlobal,
  type WasmMemory,
  type WasmModule,
} from './wasm-api.js';

/** What a host function may do to the call that is running. */
export interface SandboxHost {
  /**
   * Charges `fuel` units to the running call. Throws FuelExhaustedError (and the instance is
   * poisoned) when the call cannot pay; the host function must let it propagate.
   */
  chargeFuel(fuel: number): void;
  /** Charges for `bytes` touched, at the bulk-memory rate (`BYTES_PER_FUEL`, rounded up). */
  chargeBytes(bytes: number): void;
  /**
   * The module's memory, or undefined if it has none. Its `buffer` is replaced by every
   * `memory.grow`: take a fresh view after anything that may have run module code.
   */
  memory(): WasmMemory | undefined;
}

/** Host functions by import module and field, built once per instance around its `SandboxHost`. */
export type SandboxImports = (
  host: SandboxHost,
) => Readonly<Record<string, Readonly<Record<string, (...args: never[]) => unknown>>>>;

export type WasmValue = number | bigint;

export interface CallOutcome {
  /** The export's return value(s): undefined, one value, or an array for multi-value. */
  readonly result: unknown;
  /** Fuel charged by the call, static and dynamic, host charges included. */
  readonly fuelUsed: number;
}

export interface SandboxInstance {
  /**
   * Calls export `name` with `args` and `fuel` units. Throws FuelExhaustedError, StackDepthError,
   * AppTrapError, or whatever named error a host function threw — after which the instance is
   * poisoned and every later call throws SandboxPoisonedError. A successful call may be followed
   * by another (the module's memory persists), but fuel use then depends on that state, unless
   * `reset()` restored the post-start state in between.
   */
  call(name: string, args: readonly WasmValue[], fuel: number): CallOutcome;
  /**
   * Restores the state the instance had right after instantiation and its start function: the
   * memory's size and every byte, every mutable global (the module's own and the sandbox's fuel,
   * depth and status); tables and segments cannot have changed (reuse.ts). The next call then
   * runs exactly as on a fresh instance: same result, same fuel. Returns false, and the instance
   * must be dropped, when it cannot: the module was not compiled by `compileForReuse` or is not
   * reusable, its start function called a host function (whose answer could differ for another
   * call), its memory is above `MAX_REUSE_MEMORY_BYTES` or grew, or a call failed (poisoned).
   */
  reset(): boolean;
  /**
   * Copies `length` bytes at `ptr` out of the module's memory. Throws ResultTooLargeError above
   * `maxResultBytes`, AppTrapError('out-of-bounds') outside the memory. The copy is the caller's.
   */
  readResult(ptr: number, length: number): Uint8Array;
  /** True once a call failed; the instance must then be dropped. */
  readonly poisoned: boolean;
}

/**
 * Instantiates an instrumented module (bytes from `instrumentModule`, or its compiled Module to
 * save compiling per instance) with the host functions `imports` builds, then runs its start
 * function, if any, with `limits.startFuel`. Throws the start function's named error, or
 * AppTrapError('other') if linking fails (a missing import, a data segment out of bounds).
 */
export function instantiate(
  instrumented: Uint8Array | WasmModule,
  imports: SandboxImports,
  limits: SandboxLimits = {},
): SandboxInstance {
  const maxDepth = limits.maxCallDepth ?? DEFAULT_MAX_CALL_DEPTH;
  // The depth global is an i32 that counts down to zero.
  if (!Number.isInteger(maxDepth) || maxDepth < 1 || maxDepth > 0x7fffffff) {
    throw new CloisterError('INVALID_INPUT', `maxCallDepth must be an integer in 1..${0x7fffffff}`);
  }
  const maxResult = limits.maxResultBytes ?? DEFAULT_MAX_RESULT_BYTES;
  let exportsOf: WasmExports | undefined;
  let fuelLimit = 0;
  let failure: string | undefined;
  const g = (name: string): WasmGlobal => exportsOf?.[name] as WasmGlobal;

  const host: SandboxHost = {
    chargeFuel(fuel) {
      const left = (g(SANDBOX_EXPORTS.fuel).value as bigint) - BigInt(Math.max(0, Math.ceil(fuel)));
      g(SANDBOX_EXPORTS.fuel).value = left;
      if (left < 0n) {
        g(SANDBOX_EXPORTS.status).value = STATUS.outOfFuel;
        throw new FuelExhaustedError(fuelLimit - Number(left), fuelLimit);
      }
    },
    chargeBytes(bytes) {
      host.chargeFuel(Math.ceil(Math.max(0, bytes) / BYTES_PER_FUEL));
    },
    memory: () => exportsOf?.[SANDBOX_EXPORTS.memory] as WasmMemory | undefined,
  };

  let running = false;
  const run = (fn: () => unknown, fuel: number): CallOutcome => {
    if (failure) throw new SandboxPoisonedError(failure);
    // A host function calling back in would reset the running call's fuel and depth.
    if (running) throw new CloisterError('INVALID_INPUT', 'a sandbox call is already running');
    if (!Number.isSafeInteger(fuel) || fuel < 0 || fuel > MAX_FUEL) {
      throw new CloisterError('INVALID_INPUT', `fuel must be an integer in 0..${MAX_FUEL}`);
    }
    fuelLimit = fuel;
    g(SANDBOX_EXPORTS.fuel).value = BigInt(fuel);
    g(SANDBOX_EXPORTS.depth).value = maxDepth;
    g(SANDBOX_EXPORTS.status).value = STATUS.running;
    running = true;
    try {
      const result = fn();
      return { result, fuelUsed: fuel - Number(g(SANDBOX_EXPORTS.fuel).value as bigint) };
    } catch (e) {
      const err = classify(e, g(SANDBOX_EXPORTS.status).value as number, fuel, maxDepth, g);
      failure = err instanceof CloisterError ? err.code : 'an error';
      throw err;
    } finally {
      running = false;
    }
  };

  let inst: { exports: WasmExports };
  const module = instrumented instanceof Uint8Array ? undefined : instrumented;
  const plan = module === undefined ? undefined : reusePlanOf(module);
  // A reusable instance must not let its start function see the world: a host function's answer
  // (the time, the caller, the ledger) could differ for the next call's fresh instance.
  let starting = true;
  let startCalledHost = false;
  try {
    const built = imports(host);
    const linked =
      plan === undefined
        ? built
        : watchCalls(built, () => {
            if (starting) startCalledHost = true;
          });
    inst = new Wasm.Instance(module ?? new Wasm.Module(instrumented as Uint8Array), linked);
  } catch (e) {
    if (e instanceof CloisterError) throw e;
    throw new AppTrapError('other', { cause: e });
  }
  exportsOf = inst.exports;
  if (!(SANDBOX_EXPORTS.fuel in exportsOf)) {
    throw new CloisterError('INVALID_INPUT', 'the module was not instrumented (no fuel global)');
  }
  const start = exportsOf[SANDBOX_EXPORTS.start];
  if (typeof start === 'function') run(() => start(), limits.startFuel ?? DEFAULT_START_FUEL);
  starting = false;
  let snapshot =
    module === undefined || plan === undefined || startCalledHost
      ? undefined
      : takeSnapshot(module, plan, exportsOf);

  return {
    get poisoned() {
      return failure !== undefined;
    },
    reset() {
      if (snapshot === undefined || failure !== undefined || running) return false;
      const mem = host.memory();
      if (mem !== undefined) {
        if (mem.buffer.byteLength !== snapshot.memoryBytes) {
          snapshot = undefined; // grown: never the post-start state again
          return false;
        }
        new Uint8Array(mem.buffer).set(snapshot.image);
      }
      const { globals, values } = snapshot;
      for (let i = 0; i < globals.length; i++) (globals[i] as WasmGlobal).value = values[i];
      return true;
    },
    call(name, args, fuel) {
      const fn = name.startsWith(RESERVED_EXPORT_PREFIX) ? undefined : exportsOf?.[name];
      if (typeof fn !== 'function') {
        throw new CloisterError('INVALID_INPUT', `the module exports no function "${name}"`);
      }
      return run(() => fn(...args), fuel);
    },
    readResult(ptr, length) {
      if (length > maxResult) throw new ResultTooLargeError(length, maxResult);
      const mem = host.memory();
      const p = ptr >>> 0;
      if (!mem || length < 0 || p + length > mem.buffer.byteLength) {
        throw new AppTrapError('out-of-bounds');
      }
      return new Uint8Array(mem.buffer, p, length).slice();
    },
  };
}

/** A module's post-start state: what `reset()` writes back. */
interface PostStart {
  /** The memory's size right after start (0 without a memory). */
  readonly memoryBytes: number;
  /** Its bytes. */
  readonly image: Uint8Array;
  /** The mutable globals' values, in `ReusePlan.globals` order. */
  readonly values: readonly unknown[];
}

interface Snapshot extends PostStart {
  /** This instance's mutable globals, in the same order. */
  readonly globals: readonly WasmGlobal[];
}

/**
 * The post-start state of each reusable module, taken from its first instance and shared by the
 * later ones (copying a 64 KiB image per instance costs 15–25 µs, comparing one 10–15 µs). A start
 * function that called no host function is a pure function of the module, so every instance of it
 * starts in this state; and even if one did not, resetting it to this state would give it the
 * state of a fresh instance of the module (the first one's), which is all that reuse promises.
 */
const postStarts = new WeakMap<WasmModule, PostStart>();

/** The post-start state of a reusable instance, or undefined if its memory is too large. */
function takeSnapshot(
  module: WasmModule,
  plan: ReusePlan,
  exportsOf: WasmExports,
): Snapshot | undefined {
  const mem = exportsOf[SANDBOX_EXPORTS.memory] as WasmMemory | undefined;
  const memoryBytes = mem?.buffer.byteLength ?? 0;
  if (memoryBytes > MAX_REUSE_MEMORY_BYTES) return undefined;
  const globals = plan.globals.map((name) => exportsOf[name] as WasmGlobal);
  let post = postStarts.get(module);
  if (post === undefined || post.memoryBytes !== memoryBytes) {
    const image = mem === undefined ? new Uint8Array(0) : new Uint8Array(mem.buffer).slice();
    post = { memoryBytes, image, values: globals.map((g) => g.value) };
    postStarts.set(module, post);
  }
  return { ...post, globals };
}

type ImportRecord = ReturnType<SandboxImports>;

/** `imports` with every function wrapped to call `seen()` first. */
function watchCalls(imports: ImportRecord, seen: () => void): ImportRecord {
  const out: Record<string, Record<string, unknown>> = {};
  for (const [module, fields] of Object.entries(imports)) {
    const o: Record<string, unknown> = {};
    for (const [field, fn] of Object.entries(fields)) {
      o[field] =
        typeof fn === 'function'
          ? (...args: never[]): unknown => {
              seen();
              return fn(...args);
            }
          : fn;
    }
    out[module] = o;
  }
  return out as ImportRecord;
}

function classify(
  e: unknown,
  status: number,
  fuelLimit: number,
  maxDepth: number,
  g: (name: string) => WasmGlobal,
): Error {
  if (e instanceof CloisterError) return e;
  if (status === STATUS.outOfFuel) {
    return new FuelExhaustedError(
      fuelLimit - Number(g(SANDBOX_EXPORTS.fuel).value as bigint),
      fuelLimit,
    );
  }
  if (status === STATUS.tooDeep) return new StackDepthError(maxDepth);
  if (e instanceof RangeError && /call stack/i.test(e.message)) {
    return new AppTrapError('stack-overflow', { cause: e });
  }
  if (e instanceof Wasm.RuntimeError) return new AppTrapError(trapKind(e.message), { cause: e });
  return new AppTrapError('other', { cause: e });
}

/** V8's trap messages (its kTrap* message templates) mapped to trap kinds. */
function trapKind(message: string): TrapKind {
  const m = message.toLowerCase();
  if (m.includes('unreachable')) return 'unreachable';
  if (m.includes('out of bounds')) return 'out-of-bounds';
  if (m.includes('by zero')) return 'divide-by-zero';
  if (m.includes('divide result unrepresentable') || m.includes('integer overflow')) {
    return 'integer-overflow';
  }
  if (m.includes('float unrepresentable')) return 'invalid-conversion';
  if (m.includes('null function') || m.includes('signature mismatch')) return 'indirect-call';
  return 'other';
}
