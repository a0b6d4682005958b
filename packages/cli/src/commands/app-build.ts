/**
 * `cloister app build [DIR]`: compiles an AssemblyScript app with this installation's pinned `asc`
 * and the SDK's transform into `build/app.wasm`, and writes `build/app.manifest.json`: the code id
 * (SHA-256 of the module, DESIGN.md §11), the ABI version and the methods with their kinds, as the
 * transform found them. Compiler diagnostics are printed as `file:line:col`, with the line.
 * Exit 0 when built, 1 when the app does not compile, 2 when the project cannot be read.
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { basename, join, relative, resolve } from 'node:path';
import { Worker } from 'node:worker_threads';
import { InvalidInputError, isAppId } from '@cloister/core';
import { exitCodeOf, line, printError, step } from '../output.js';
import { installRoot } from '../paths.js';

/** The entry file when asconfig.json names none. */
export const DEFAULT_ENTRY = 'assembly/index.ts';
export const MODULE_FILE = 'build/app.wasm';
export const MANIFEST_FILE = 'build/app.manifest.json';

export interface AppMethod {
  readonly name: string;
  readonly kind: 'query' | 'transaction';
}

/** `build/app.manifest.json`. */
export interface AppManifest {
  readonly abi: number;
  /** SHA-256 of `build/app.wasm`, hex. */
  readonly codeId: string;
  readonly module: string;
  readonly bytes: number;
  readonly methods: readonly AppMethod[];
  readonly compiler: string;
}

export interface AppBuildResult {
  readonly wasmPath: string;
  readonly manifestPath: string;
  readonly manifest: AppManifest;
}

/** One compiler message, placed in its file. */
export interface Diagnostic {
  readonly severity: 'error' | 'warning' | 'info';
  readonly code: number;
  readonly message: string;
  readonly file?: string;
  readonly line?: number;
  readonly column?: number;
  /** The source line the message points at, and a caret under the spot. */
  readonly excerpt?: string;
}

/** The app did not compile; `diagnostics` say where. */
export class AppCompileError extends Error {
  readonly diagnostics: readonly Diagnostic[];
  constructor(diagnostics: readonly Diagnostic[], why: string) {
    const errors = diagnostics.filter((d) => d.severity === 'error');
    const first = errors[0];
    const where = first?.file ? ` (first at ${first.file}:${first.line}:${first.column})` : '';
    super(
      errors.length > 0
        ? `the app did not compile: ${errors.length} error${errors.length === 1 ? '' : 's'}${where}`
        : `the app did not compile: ${why}`,
    );
    this.name = 'AppCompileError';
    this.diagnostics = diagnostics;
  }
}

/** A diagnostic as asc reports it (assemblyscript/dist/asc.d.ts, `DiagnosticMessage`). */
interface AscDiagnostic {
  readonly code: number;
  readonly category: number;
  readonly message: string;
  readonly range: {
    readonly start: number;
    readonly end: number;
    readonly source: { readonly normalizedPath: string } | null;
  } | null;
}

/** What packages/sdk/compiler/worker.js posts back. */
interface CompileReply {
  readonly error: string | null;
  readonly diagnostics: readonly AscDiagnostic[];
  readonly methods: readonly AppMethod[];
  readonly version: string;
  readonly output: string;
}

export function sdkDir(): string {
  return join(installRoot(), 'packages', 'sdk');
}

/** The entry file of the project: asconfig.json's first `entries`, else assembly/index.ts. */
export function findEntry(dir: string): string {
  let entry = DEFAULT_ENTRY;
  const config = join(dir, 'asconfig.json');
  if (existsSync(config)) {
    let parsed: { entries?: unknown };
    try {
      parsed = JSON.parse(readFileSync(config, 'utf8')) as { entries?: unknown };
    } catch (e) {
      throw new InvalidInputError(`${config} is not valid JSON: ${(e as Error).message}`);
    }
    if (Array.isArray(parsed.entries) && typeof parsed.entries[0] === 'string') {
      entry = parsed.entries[0];
    }
  }
  if (!existsSync(join(dir, entry))) {
    throw new InvalidInputError(
      `no entry file ${join(dir, entry)}: an app's methods live in ${DEFAULT_ENTRY} ` +
        '(or the first of "entries" in asconfig.json); `cloister app new NAME` starts a project',
    );
  }
  return entry;
}

const SEVERITY = ['info', 'info', 'warning', 'error'] as const;

/** Places an asc diagnostic in its file (read from `dir`, or the SDK for `~lib/@cloister/sdk`). */
function place(dir: string, d: AscDiagnostic): Diagnostic {
  const severity = SEVERITY[d.category] ?? 'error';
  // AS102 "User-defined" is how the SDK's transform reports: the prefix says nothing to a user.
  const base = { severity, code: d.code, message: d.message.replace(/^User-defined: /, '') };
  const path = d.range?.source?.normalizedPath;
  if (!d.range || !path) return base;
  const sdkPrefix = '~lib/@cloister/sdk/';
  const file = path.startsWith(sdkPrefix)
    ? join(sdkDir(), path.slice(sdkPrefix.length))
    : path.startsWith('~lib/')
      ? undefined
      : join(dir, path);
  if (!file || !existsSync(file)) return { ...base, file: path };
  const text = readFileSync(file, 'utf8');
  const before = text.slice(0, d.range.start);
  const lineNo = before.split('\n').length;
  const column = d.range.start - before.lastIndexOf('\n');
  const source = text.split('\n')[lineNo - 1] ?? '';
  const width = Math.max(1, Math.min(d.range.end - d.range.start, source.length - column + 1));
  const excerpt = `${source}\n${' '.repeat(column - 1)}${'^'.repeat(width)}`;
  const shown = file.startsWith(dir) ? relative(dir, file) : file;
  return { ...base, file: shown, line: lineNo, column, excerpt };
}

export function formatDiagnostic(d: Diagnostic): string {
  const where = d.file ? `${d.file}${d.line ? `:${d.line}:${d.column}` : ''}: ` : '';
  const head = `${where}${d.severity} ${d.code < 1000 ? 'AS' : 'TS'}${d.code}: ${d.message}`;
  if (!d.excerpt) return head;
  return `${head}\n${d.excerpt
    .split('\n')
    .map((l) => `    ${l}`)
    .join('\n')}`;
}

/**
 * Runs the SDK's compiler worker (packages/sdk/compiler/worker.js) with no exec arguments: the
 * compiler is a 14 MB script that a parent's loader hooks (tsx in tests) would slow to seconds.
 */
function compile(data: {
  dir: string;
  entry: string;
  outFile: string;
  paths: string[];
}): Promise<CompileReply> {
  return new Promise((resolveReply, reject) => {
    const worker = new Worker(join(sdkDir(), 'compiler', 'worker.js'), {
      workerData: data,
      execArgv: [],
    });
    let reply: CompileReply | undefined;
    worker.once('message', (m: CompileReply) => {
      reply = m;
    });
    worker.once('error', (e) => reject(new Error(`the compiler could not run: ${e.message}`)));
    worker.once('exit', (code) => {
      if (reply) resolveReply(reply);
      else reject(new Error(`the compiler stopped (exit code ${code}) without an answer`));
    });
  });
}

/**
 * Compiles the project in `dir`. Throws `InvalidInputError` when there is nothing to compile and
 * `AppCompileError` (with the diagnostics) when it does not compile. Warnings go to `onDiagnostic`.
 */
export async function buildApp(
  dirArg: string,
  onDiagnostic: (d: Diagnostic) => void = () => {},
): Promise<AppBuildResult> {
  const dir = resolve(dirArg);
  if (!existsSync(dir)) throw new InvalidInputError(`no project folder ${dir}`);
  const entry = findEntry(dir);
  mkdirSync(join(dir, 'build'), { recursive: true });
  // A failed build must not leave the previous module looking current.
  rmSync(join(dir, MODULE_FILE), { force: true });
  rmSync(join(dir, MANIFEST_FILE), { force: true });
  const reply = await compile({
    dir,
    entry,
    outFile: MODULE_FILE,
    // The SDK resolves from this installation even before the project's `npm install`.
    paths: [join(installRoot(), 'node_modules')],
  });
  const diagnostics = reply.diagnostics.map((raw) => place(dir, raw));
  for (const d of diagnostics) if (d.severity !== 'error') onDiagnostic(d);
  if (reply.error) {
    throw new AppCompileError(diagnostics, `${reply.error}\n${reply.output}`.trim());
  }
  const wasmPath = join(dir, MODULE_FILE);
  const wasm = readFileSync(wasmPath);
  const manifest: AppManifest = {
    abi: 1,
    codeId: createHash('sha256').update(wasm).digest('hex'),
    module: 'app.wasm',
    bytes: wasm.length,
    methods: reply.methods.map((m) => ({ name: m.name, kind: m.kind })),
    compiler: `assemblyscript ${reply.version}`,
  };
  const manifestPath = join(dir, MANIFEST_FILE);
  writeFileSync(manifestPath, `${JSON.stringify(manifest, null, 2)}\n`);
  return { wasmPath, manifestPath, manifest };
}

export interface AppBuildOptions {
  readonly json?: boolean;
}

export async function appBuild(dirArg: string | undefined, o: AppBuildOptions): Promise<number> {
  const dir = resolve(dirArg ?? '.');
  try {
    // Run inside the project, the relative path is empty: name the project's folder instead of `.`.
    const shown = relative(process.cwd(), dir) || basename(dir) || dir;
    const r = await step(`compiling ${shown}`, false, () =>
      buildApp(dir, (d) => process.stderr.write(`${formatDiagnostic(d)}\n`)),
    );
    if (o.json) {
      process.stdout.write(`${JSON.stringify({ ...r.manifest, path: r.wasmPath })}\n`);
      return 0;
    }
    const methods = r.manifest.methods.map((m) => `${m.name} (${m.kind})`).join(', ');
    process.stdout.write(
      `app built: ${r.wasmPath}\n` +
        line('code id', r.manifest.codeId) +
        line('size', `${r.manifest.bytes} bytes`) +
        line('methods', methods) +
        line('manifest', r.manifestPath),
    );
    return 0;
  } catch (e) {
    if (e instanceof AppCompileError) {
      for (const d of e.diagnostics) {
        if (d.severity === 'error') process.stderr.write(`${formatDiagnostic(d)}\n`);
      }
      const hint = `fix the error${e.diagnostics.length === 1 ? '' : 's'} above and run \`cloister app build\` again (\`cloister dev\` rebuilds on every save)`;
      process.stderr.write(`error: ${e.message}\n  next step: ${hint}\n`);
      if (o.json) {
        const diagnostics = e.diagnostics
          .filter((d) => d.severity === 'error')
          .map(formatDiagnostic);
        process.stdout.write(
          `${JSON.stringify({ error: { code: 'INVALID_INPUT', message: e.message, hint, diagnostics } })}\n`,
        );
      }
      return 1;
    }
    printError(e);
    return exitCodeOf(e);
  }
}

/**
 * The app name of project `dir`: its package.json `name` (what `cloister app new` wrote and its
 * `npm run deploy` uses), else the folder's name. So `cloister dev` and `app types` name the app
 * as the project does, wherever the project folder is.
 */
export function projectAppName(dir: string): string {
  try {
    const name = (JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { name?: unknown })
      .name;
    if (isAppId(name)) return name;
  } catch {
    // no package.json, or not one of ours: the folder's name
  }
  return basename(resolve(dir));
}
