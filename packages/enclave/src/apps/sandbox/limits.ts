/**
 * The sandbox's caps and their defaults (docs/sandbox.md "Limits"). Every cap is configurable;
 * these are what a node uses when its settings name none.
 */
import { MAX_RESULT_BYTES } from '@cloister/core';

/** 64 KiB, the WebAssembly page. */
export const PAGE_BYTES = 65_536;

/** Deploy-time caps: what a module may declare. */
export interface SandboxPolicy {
  /** Function imports the module may use, `{ module, field }`; any other import is refused. */
  readonly allowedImports: readonly { readonly module: string; readonly field: string }[];
  /** Largest module accepted, in bytes. */
  readonly maxModuleBytes?: number;
  /** Largest memory, in 64 KiB pages: a declared maximum above it is refused; none gets it. */
  readonly maxMemoryPages?: number;
  /** Largest table, in elements, with the same rule. */
  readonly maxTableElements?: number;
}

/** Run-time caps of one instance. */
export interface SandboxLimits {
  /** Counted wasm call depth; deeper calls stop with StackDepthError. */
  readonly maxCallDepth?: number;
  /** Largest result `readResult` copies out, in bytes. */
  readonly maxResultBytes?: number;
  /** Fuel for the module's start function, run once by `instantiate`. */
  readonly startFuel?: number;
}

export const DEFAULT_MAX_MODULE_BYTES = 8 * 1024 * 1024;
/** 64 MiB: room for an AssemblyScript heap, small enough for many apps per node. */
export const DEFAULT_MAX_MEMORY_PAGES = 1024;
export const DEFAULT_MAX_TABLE_ELEMENTS = 65_536;
/**
 * Counted, so the same recursion stops at the same depth on every run. V8's own stack (4 MiB in
 * the enclave worker) holds far more than this many frames of ordinary size; a module with huge
 * frames can still hit V8's overflow first, which is caught as a `stack-overflow` trap.
 */
export const DEFAULT_MAX_CALL_DEPTH = 4096;
/**
 * SCP's MAX_RESULT_BYTES (1 MiB - 1 KiB): a larger result could not reach the client in one
 * response frame, so a transaction returning it must fail before it commits, not after.
 */
export const DEFAULT_MAX_RESULT_BYTES = MAX_RESULT_BYTES;
export const DEFAULT_START_FUEL = 10_000_000;
/** Fuel is an i64 in the module, but JavaScript numbers must stay exact. */
export const MAX_FUEL = Number.MAX_SAFE_INTEGER;
