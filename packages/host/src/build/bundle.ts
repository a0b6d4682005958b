/**
 * Bundles the measured enclave (shim + enclave + dependencies) and the client core with esbuild.
 *
 * The enclave bundle is one CommonJS script: the launcher evaluates it with
 * `new Worker(code, { eval: true })`, where a script (not a module) runs and `require` is the
 * worker's, so `node:crypto` and `node:worker_threads` load through it (the shim restricts it
 * to `node:crypto` before enclave code runs). The output is deterministic: same tree, same bytes;
 * it carries only paths relative to the repository root, which is checked.
 */
import { existsSync } from 'node:fs';
import { builtinModules } from 'node:module';
import { dirname, isAbsolute, join, relative, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { CloisterError } from '@cloister/core';
import { type BuildOptions, build, type Message, type Metafile } from 'esbuild';

export type { Metafile } from 'esbuild';

export interface BundleResult {
  /** The bundle's exact bytes (UTF-8 JavaScript). */
  readonly code: Uint8Array;
  /** esbuild's metafile: every input and each input's imports (read by bundle-rules.ts). */
  readonly metafile: Metafile;
}

export interface BundleOptions {
  /** Repository (working) root; default: the root of this checkout. */
  readonly root?: string;
  /** Entry file, relative to `root`; default: the shim entry (or core index for the client). */
  readonly entry?: string;
}

export interface EnclaveBundleOptions extends BundleOptions {
  /**
   * A module to bundle in place of `@cloister/enclave` (relative to `root`): tests and benchmarks
   * run probe enclaves through the real shim this way. Never used for a shipped build.
   */
  readonly enclave?: string;
}

/** A bundle could not be built, or is not deterministic. */
export class BundleError extends CloisterError {
  constructor(message: string) {
    super('INVALID_INPUT', message);
  }
}

export const ENCLAVE_ENTRY = 'packages/shim/src/entry.ts';
export const CLIENT_CORE_ENTRY = 'packages/core/src/index.ts';

/** The checkout's root: the nearest ancestor of this file holding the shim entry. */
export function repoRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    if (existsSync(join(dir, ENCLAVE_ENTRY))) return dir;
    const up = dirname(dir);
    if (up === dir)
      throw new BundleError(`no ${ENCLAVE_ENTRY} above ${fileURLToPath(import.meta.url)}`);
    dir = up;
  }
}

/** Every Node built-in, in both spellings: marked external so the rules check names them. */
const NODE_BUILTINS = [...new Set(builtinModules.flatMap((m) => [m, `node:${m}`]))];

async function bundle(root: string, options: BuildOptions): Promise<BundleResult> {
  const result = await build({
    ...options,
    absWorkingDir: root,
    bundle: true,
    conditions: ['source'],
    legalComments: 'none',
    sourcemap: false,
    charset: 'utf8',
    write: false,
    metafile: true,
    logLevel: 'silent',
  }).catch((e: unknown) => {
    // Every error, each where it is (esbuild's own message names at most five, and the
    // messages alone say "Could not resolve" without saying which file asked).
    const errors = (e as { errors?: Message[] }).errors ?? [];
    const why = errors.map(where).join('; ') || String(e);
    throw new BundleError(`esbuild failed: ${why}`);
  });
  const out = result.outputFiles?.[0];
  if (out === undefined) throw new BundleError('esbuild produced no output');
  const text = out.text;
  for (const abs of [root, root.split(sep).join('/')]) {
    if (abs.length > 1 && text.includes(abs)) {
      throw new BundleError('the bundle contains an absolute path: it would not be reproducible');
    }
  }
  return { code: new Uint8Array(out.contents), metafile: result.metafile };
}

/** An esbuild error as `file:line:column: text` (esbuild's numbering), the text alone without a place. */
function where(m: Message): string {
  const at = m.location;
  return at ? `${at.file}:${at.line}:${at.column}: ${m.text}` : m.text;
}

function rel(root: string, path: string): string {
  const r = isAbsolute(path) ? relative(root, path) : path;
  const p = r.split(sep).join('/');
  return p.startsWith('.') ? p : `./${p}`;
}

/** Bundles the measured enclave: the shim entry with `@cloister/enclave`, for a Node worker. */
export function bundleEnclave(options: EnclaveBundleOptions = {}): Promise<BundleResult> {
  const root = options.root ?? repoRoot();
  return bundle(root, {
    entryPoints: [options.entry ?? ENCLAVE_ENTRY],
    platform: 'node',
    format: 'cjs',
    target: 'node20',
    ...(options.enclave ? { alias: { '@cloister/enclave': rel(root, options.enclave) } } : {}),
  });
}

/** Bundles the client core (`@cloister/core`) for browsers; Node built-ins are left external. */
export function bundleClientCore(options: BundleOptions = {}): Promise<BundleResult> {
  const root = options.root ?? repoRoot();
  return bundle(root, {
    entryPoints: [options.entry ?? CLIENT_CORE_ENTRY],
    platform: 'browser',
    format: 'esm',
    target: 'es2022',
    external: NODE_BUILTINS,
  });
}
