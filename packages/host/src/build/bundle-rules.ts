/**
 * The trust boundary, checked on what is really bundled (DESIGN.md §10, ARCHITECTURE.md): reads
 * esbuild's metafile (every input, dependencies included, and each input's imports) and reports
 * every import a rule forbids, naming the importing file and the import.
 *
 * Paths are as esbuild writes them: relative to the bundle's working directory, with `/`.
 */
import { builtinModules } from 'node:module';
import type { Metafile } from 'esbuild';

/** What the files under one folder may import. */
export interface FolderRule {
  /** Path prefix of the importing files this rule governs, e.g. `packages/enclave/`. */
  readonly files: string;
  /** Path prefixes of the bundled files they may import. */
  readonly mayImport: readonly string[];
  /** Node built-ins (`node:` form) they may import. */
  readonly builtins: readonly string[];
}

/**
 * Rules for one bundle. A file governed by no folder rule (a dependency) may import any bundled
 * file that is not forbidden, and only the built-ins in `builtins`.
 */
export interface BundleRules {
  readonly name: string;
  /** Path prefixes no file of the bundle may come from. */
  readonly forbidden: readonly string[];
  /** Built-ins (`node:` form) files governed by no folder rule may import. */
  readonly builtins: readonly string[];
  /** The first rule whose `files` prefix matches an importing file governs it. */
  readonly folders: readonly FolderRule[];
}

/** One forbidden import: `file` imports `import` (a bundled path or a built-in), against `rule`. */
export interface Violation {
  readonly file: string;
  readonly import: string;
  readonly rule: string;
}

const CORE = 'packages/core/';
const BOUNDARY = 'packages/boundary/';
const NODE_CRYPTO = 'packages/node-crypto/';
const ENCLAVE = 'packages/enclave/';
const SHIM = 'packages/shim/';
const DEPENDENCIES = 'node_modules/';

/** The measured enclave bundle: shim + enclave (+ core, boundary, node-crypto and their
 * dependencies). */
export const ENCLAVE_BUNDLE_RULES: BundleRules = {
  name: 'enclave bundle',
  forbidden: ['packages/host/', 'packages/cli/'],
  builtins: ['node:crypto'],
  folders: [
    {
      files: ENCLAVE,
      mayImport: [CORE, BOUNDARY, NODE_CRYPTO, ENCLAVE],
      builtins: ['node:crypto'],
    },
    {
      files: SHIM,
      mayImport: [CORE, BOUNDARY, ENCLAVE, SHIM],
      builtins: ['node:crypto', 'node:worker_threads'],
    },
    { files: BOUNDARY, mayImport: [CORE, BOUNDARY], builtins: [] },
    { files: NODE_CRYPTO, mayImport: [CORE, NODE_CRYPTO], builtins: ['node:crypto'] },
    { files: CORE, mayImport: [CORE, DEPENDENCIES], builtins: [] },
  ],
};

/** The client core bundle (browsers): no Node built-in at all, nothing from the node's side. */
export const CLIENT_CORE_BUNDLE_RULES: BundleRules = {
  name: 'client core bundle',
  forbidden: [
    'packages/host/',
    'packages/enclave/',
    'packages/shim/',
    'packages/cli/',
    NODE_CRYPTO,
  ],
  builtins: [],
  folders: [{ files: CORE, mayImport: [CORE, DEPENDENCIES], builtins: [] }],
};

const BUILTINS: ReadonlySet<string> = new Set(builtinModules);

/** `node:x` for a Node built-in (either spelling, subpaths included), else undefined. */
function builtin(path: string): string | undefined {
  const bare = path.startsWith('node:') ? path.slice(5) : path;
  if (BUILTINS.has(bare) || BUILTINS.has(bare.split('/')[0] ?? '')) return `node:${bare}`;
  return path.startsWith('node:') ? path : undefined;
}

const under = (path: string, prefixes: readonly string[]): boolean =>
  prefixes.some((p) => path.startsWith(p));

/** Every import of every input of `metafile` that `rules` forbid, in metafile order. */
export function checkBundleRules(metafile: Metafile, rules: BundleRules): Violation[] {
  const out: Violation[] = [];
  const add = (file: string, imp: string, rule: string): void => {
    out.push({ file, import: imp, rule: `${rules.name}: ${rule}` });
  };
  for (const [file, input] of Object.entries(metafile.inputs)) {
    const folder = rules.folders.find((f) => file.startsWith(f.files));
    const scope = folder ? `files under ${folder.files}` : 'dependencies';
    if (under(file, rules.forbidden) && !importedBy(metafile, file)) {
      add(file, file, 'no file may come from this folder (it is an entry point)');
    }
    for (const imp of input.imports) {
      const b = imp.external || imp.path.startsWith('node:') ? builtin(imp.path) : undefined;
      if (b !== undefined) {
        const allowed = folder ? folder.builtins : rules.builtins;
        if (!allowed.includes(b)) add(file, b, `${scope} may not import ${b}`);
      } else if (imp.external) {
        add(file, imp.path, 'every import must be bundled (this one is external)');
      } else if (under(imp.path, rules.forbidden)) {
        add(file, imp.path, 'no file may come from this folder');
      } else if (folder && !under(imp.path, folder.mayImport)) {
        add(file, imp.path, `${scope} may import only ${folder.mayImport.join(', ')}`);
      }
    }
  }
  return out;
}

function importedBy(metafile: Metafile, path: string): boolean {
  return Object.values(metafile.inputs).some((i) => i.imports.some((x) => x.path === path));
}

/** One line per violation, for error messages and test output. */
export function formatViolations(violations: readonly Violation[]): string {
  return violations.map((v) => `${v.file} imports ${v.import} (${v.rule})`).join('\n');
}
