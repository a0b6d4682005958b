/**
 * The part of the JavaScript WebAssembly API the sandbox uses, typed here because the enclave
 * compiles against ES2023 and Node's types, neither of which declares `WebAssembly`. The shim
 * keeps the global on purpose (docs/boundary.md §6); this module only names it.
 */

export interface WasmModule {
  readonly __brand?: 'WebAssembly.Module';
}

export interface WasmGlobal {
  value: unknown;
}

export interface WasmMemory {
  readonly buffer: ArrayBuffer;
}

export type WasmExports = Readonly<Record<string, unknown>>;

export interface WasmInstance {
  readonly exports: WasmExports;
}

interface WasmApi {
  readonly Module: new (bytes: Uint8Array) => WasmModule;
  readonly Instance: new (module: WasmModule, imports: object) => WasmInstance;
  readonly CompileError: new (...args: never[]) => Error;
  readonly LinkError: new (...args: never[]) => Error;
  readonly RuntimeError: new (...args: never[]) => Error;
}

export const Wasm: WasmApi = (globalThis as unknown as { WebAssembly: WasmApi }).WebAssembly;
