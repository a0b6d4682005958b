/**
 * The deterministic WebAssembly sandbox (docs/sandbox.md): validate at deploy, instrument at
 * deploy, instantiate per call or per run. The ABI (docs/app-abi.md) is built on top of it.
 */
export {
  AppTrapError,
  FuelExhaustedError,
  MalformedModuleError,
  ModuleLimitError,
  ResultTooLargeError,
  SandboxPoisonedError,
  StackDepthError,
  type TrapKind,
  UnknownImportError,
  UnsupportedFeatureError,
} from './errors.js';
export {
  type CallOutcome,
  instantiate,
  type SandboxHost,
  type SandboxImports,
  type SandboxInstance,
  type WasmValue,
} from './instance.js';
export {
  BYTES_PER_FUEL,
  FUEL_PER_PAGE,
  FUEL_PER_TABLE_ELEMENT,
  type InstrumentOptions,
  instrumentModule,
  SANDBOX_EXPORTS,
} from './instrument.js';
export * from './limits.js';
export { COST } from './opcodes.js';
export { ARM_CHARGE_MIN } from './plan.js';
export { RESERVED_EXPORT_PREFIX, validateModule } from './validate.js';
