/**
 * Deploy-time validation: the module parses, uses no refused feature, imports only what the
 * policy allows, declares memory and tables within the caps, exports no reserved name, and passes
 * V8's own validator (types, stack discipline). Nothing is instantiated.
 */
import { MalformedModuleError, ModuleLimitError, UnknownImportError } from './errors.js';
import {
  DEFAULT_MAX_MEMORY_PAGES,
  DEFAULT_MAX_MODULE_BYTES,
  DEFAULT_MAX_TABLE_ELEMENTS,
  type SandboxPolicy,
} from './limits.js';
import { type ParsedModule, parseModule } from './module.js';
import { Wasm } from './wasm-api.js';

/** Export names the instrumentation adds; a module may not use them itself. */
export const RESERVED_EXPORT_PREFIX = 'cloister:';

/**
 * Checks `bytes` against `policy` and returns the parsed module. Throws, naming the offending
 * section, function, import or limit:
 * - MalformedModuleError — not valid WebAssembly (our parse or V8's validator);
 * - UnsupportedFeatureError — threads/shared memory/atomics, memory64, relaxed SIMD, multi-memory,
 *   exception handling, tail calls, typed references/GC;
 * - UnknownImportError — an import not in `policy.allowedImports` (any non-function import too);
 * - ModuleLimitError — module size, memory or table declarations above the caps, a reserved
 *   export name.
 * Fixed-width SIMD is accepted (see docs/sandbox.md). Does not keep or modify `bytes`.
 */
export function validateModule(bytes: Uint8Array, policy: SandboxPolicy): ParsedModule {
  const maxBytes = policy.maxModuleBytes ?? DEFAULT_MAX_MODULE_BYTES;
  if (bytes.length > maxBytes) {
    throw new ModuleLimitError(`module of ${bytes.length} bytes exceeds the cap of ${maxBytes}`);
  }
  const m = parseModule(bytes);
  checkImports(m, policy);
  checkCaps(m, policy);
  for (const e of m.exports) {
    if (e.name.startsWith(RESERVED_EXPORT_PREFIX)) {
      throw new ModuleLimitError(
        `export "${e.name}" uses the reserved prefix ${RESERVED_EXPORT_PREFIX}`,
      );
    }
  }
  checkWithV8(bytes);
  return m;
}

function checkImports(m: ParsedModule, policy: SandboxPolicy): void {
  const allowed = new Set(policy.allowedImports.map((i) => `${i.module}\u0000${i.field}`));
  for (const i of m.imports) {
    if (i.kind !== 'function' || !allowed.has(`${i.module}\u0000${i.field}`)) {
      throw new UnknownImportError(i.module, i.field, i.kind);
    }
  }
}

/** Caps on declared sizes (the instrumentation later gives an undeclared maximum the cap). */
export function checkCaps(m: ParsedModule, policy: Omit<SandboxPolicy, 'allowedImports'>): void {
  const pages = policy.maxMemoryPages ?? DEFAULT_MAX_MEMORY_PAGES;
  const elements = policy.maxTableElements ?? DEFAULT_MAX_TABLE_ELEMENTS;
  for (const mem of m.memories) {
    const declared = Math.max(mem.min, mem.max ?? 0);
    if (declared > pages) {
      throw new ModuleLimitError(`memory declares ${declared} pages, above the cap of ${pages}`);
    }
  }
  m.tables.forEach((t, i) => {
    const declared = Math.max(t.limits.min, t.limits.max ?? 0);
    if (declared > elements) {
      throw new ModuleLimitError(
        `table ${i} declares ${declared} elements, above the cap of ${elements}`,
      );
    }
  });
}

/** V8's validator: catches type errors our section-level parse does not look for. */
export function checkWithV8(bytes: Uint8Array): void {
  try {
    new Wasm.Module(bytes);
  } catch (e) {
    if (e instanceof Wasm.CompileError) throw new MalformedModuleError(e.message, { cause: e });
    throw e;
  }
}
