/**
 * Builds one example app with `cloister app build` (the pinned compiler and the SDK's transform)
 * and deploys it on the real runtime through the SDK harness (@cloister/sdk/harness), in memory.
 * The build runs in a temporary copy of examples/ (the app and common/), so the repository gets no
 * build/ folder. Its module is cached in the OS temporary folder under the SHA-256 of everything
 * the build reads (the app's and common/'s sources, the SDK's AssemblyScript, transform and
 * compiler worker, `cloister app build`, the compiler's version), so one `npm test` compiles each
 * app once even though the in-sandbox tests and the end-to-end test both use it; a changed source
 * is a new key.
 */
import { createHash } from 'node:crypto';
import {
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type LoadOptions, type LocalApp, loadApp } from '@cloister/sdk/harness';
import { buildApp } from '../../packages/cli/src/commands/app-build.js';

const examples = fileURLToPath(new URL('..', import.meta.url));
const root = join(examples, '..');
const sdk = join(root, 'packages', 'sdk');

/** The example apps, in the order the READMEs present them. */
export const EXAMPLES = ['token', 'auction', 'poll', 'salary-benchmark', 'age-check'] as const;
export type ExampleName = (typeof EXAMPLES)[number];

function files(dir: string, out: string[] = []): string[] {
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    if (['build', 'test', 'node_modules'].includes(e.name)) continue;
    const p = join(dir, e.name);
    if (e.isDirectory()) files(p, out);
    else out.push(p);
  }
  return out.sort();
}

/** SHA-256 over every input of the build of examples/`name`. */
function buildKey(name: string): string {
  const h = createHash('sha256');
  const compiler = JSON.parse(
    readFileSync(join(root, 'node_modules', 'assemblyscript', 'package.json'), 'utf8'),
  ) as { version: string };
  h.update(`assemblyscript ${compiler.version}\0`);
  const inputs = [
    ...files(join(examples, name)),
    ...files(join(examples, 'common')),
    ...files(join(sdk, 'assembly')),
    join(sdk, 'index.ts'),
    ...files(join(sdk, 'transform')),
    join(sdk, 'compiler', 'worker.js'),
    join(root, 'packages', 'cli', 'src', 'commands', 'app-build.ts'),
  ];
  for (const f of inputs) {
    h.update(`${relative(root, f)}\0`);
    h.update(readFileSync(f));
    h.update('\0');
  }
  return h.digest('hex');
}

export interface BuiltExample {
  /** The module (build/app.wasm), in the cache folder. */
  readonly wasmPath: string;
  /** SHA-256 of the module, hex: what an `APP:<name>=<code id>` clause pins. */
  readonly codeId: string;
}

/** Compiles examples/`name` (or takes the cached module of the same inputs). */
export async function buildExample(name: ExampleName): Promise<BuiltExample> {
  // Per user and private: a module planted by someone else would be what the tests run.
  const cache = join(tmpdir(), `cloister-examples-cache-${process.getuid?.() ?? 'user'}`);
  mkdirSync(cache, { recursive: true, mode: 0o700 });
  const cached = join(cache, `${name}-${buildKey(name)}.wasm`);
  if (!existsSync(cached)) {
    const tmp = mkdtempSync(join(tmpdir(), `cloister-example-${name}-`));
    try {
      const skip = (src: string): boolean => !/[/\\](build|test|node_modules)$/.test(src);
      cpSync(join(examples, 'common'), join(tmp, 'common'), { recursive: true, filter: skip });
      cpSync(join(examples, name), join(tmp, name), { recursive: true, filter: skip });
      const built = await buildApp(join(tmp, name));
      // Written beside, then renamed: a concurrent test process never reads half a module.
      const part = `${cached}.${process.pid}.part`;
      writeFileSync(part, readFileSync(built.wasmPath));
      renameSync(part, cached);
    } finally {
      rmSync(tmp, { recursive: true, force: true });
    }
  }
  const wasm = readFileSync(cached);
  return { wasmPath: cached, codeId: createHash('sha256').update(wasm).digest('hex') };
}

/** Builds examples/`name` and deploys it on an in-memory runtime (the SDK harness). */
export async function loadExample(name: ExampleName, options: LoadOptions = {}): Promise<LocalApp> {
  const built = await buildExample(name);
  return loadApp(built.wasmPath, { name, ...options });
}

/** The app error code of a refused call (fails the test when the call succeeded). */
export async function refusal(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (e) {
    const err = e as { code?: string; appCode?: string };
    return err.code === 'APP_ERROR' ? `app:${err.appCode}` : (err.code ?? String(e));
  }
  throw new Error('the call succeeded where a refusal was expected');
}
