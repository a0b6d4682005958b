/**
 * The named errors of the app sandbox (docs/sandbox.md). Deploy-time refusals (malformed module,
 * refused feature, unknown import, a limit exceeded) and run-time outcomes (fuel exhausted, stack
 * depth, trap, result too large, instance poisoned) each have their own class and code, so the
 * ABI layer and tests tell them apart without reading messages. Messages name section, function
 * index, byte offset, import or limit — never app data.
 */
import { CloisterError } from '@cloister/core';

/** Bytes that are not a well-formed WebAssembly module (ours or V8's validator said so). */
export class MalformedModuleError extends CloisterError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('APP_MODULE_MALFORMED', `malformed module: ${message}`, options);
  }
}

/** A well-formed module that uses a feature the sandbox refuses (threads, memory64, …). */
export class UnsupportedFeatureError extends CloisterError {
  readonly feature: string;
  constructor(feature: string, where: string) {
    super('APP_MODULE_FEATURE', `module uses ${feature} (${where}), which the sandbox refuses`);
    this.feature = feature;
  }
}

/** What to change when a module imports something other than a function (asc's options). */
const NON_FUNCTION_IMPORT_FIX: Readonly<Record<string, string>> = {
  memory: " (a memory is the module's own: build without --importMemory)",
  table: ' (build without --importTable)',
};

/** An import the deploy policy does not allow; names its module and field. */
export class UnknownImportError extends CloisterError {
  readonly module: string;
  readonly field: string;
  constructor(module: string, field: string, kind: string) {
    super(
      'APP_IMPORT_UNKNOWN',
      kind === 'function'
        ? `unknown import function "${module}"."${field}"`
        : `import of a ${kind} "${module}"."${field}" refused: apps import only the ABI's functions${NON_FUNCTION_IMPORT_FIX[kind] ?? ''}`,
    );
    this.module = module;
    this.field = field;
  }
}

/** A module above a deploy-time cap (size, memory or table maximum, locals, reserved names). */
export class ModuleLimitError extends CloisterError {
  constructor(message: string) {
    super('APP_MODULE_LIMIT', message);
  }
}

/** The call ran out of fuel. `fuelUsed` includes the charge that could not be paid. */
export class FuelExhaustedError extends CloisterError {
  readonly fuelUsed: number;
  readonly fuelLimit: number;
  constructor(fuelUsed: number, fuelLimit: number) {
    super('APP_FUEL_EXHAUSTED', `out of fuel: ${fuelUsed} charged, limit ${fuelLimit}`);
    this.fuelUsed = fuelUsed;
    this.fuelLimit = fuelLimit;
  }
}

/** The counted call depth reached its limit (deterministic, unlike V8's own stack overflow). */
export class StackDepthError extends CloisterError {
  readonly maxDepth: number;
  constructor(maxDepth: number) {
    super('APP_STACK_DEPTH', `call depth exceeded ${maxDepth}`);
    this.maxDepth = maxDepth;
  }
}

/** What kind of WebAssembly trap stopped a call. */
export type TrapKind =
  | 'unreachable'
  | 'out-of-bounds'
  | 'divide-by-zero'
  | 'integer-overflow'
  | 'invalid-conversion'
  | 'indirect-call'
  | 'stack-overflow'
  | 'other';

/** The module trapped; `trap` says which kind. The instance is poisoned. */
export class AppTrapError extends CloisterError {
  readonly trap: TrapKind;
  constructor(trap: TrapKind, options?: { cause?: unknown }) {
    super('APP_TRAP', `the app trapped: ${trap}`, options);
    this.trap = trap;
  }
}

/** A result (or other bytes read out of the module's memory) above the cap. */
export class ResultTooLargeError extends CloisterError {
  constructor(size: number, cap: number) {
    super('APP_RESULT_TOO_LARGE', `result of ${size} bytes exceeds the cap of ${cap} bytes`);
  }
}

/** A call on an instance that already failed (trap, fuel, depth or host error). */
export class SandboxPoisonedError extends CloisterError {
  constructor(reason: string) {
    super('APP_INSTANCE_POISONED', `this sandbox instance stopped after ${reason}`);
  }
}
