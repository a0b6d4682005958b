/**
 * `cloister app new` and `cloister app build` (issue 5 item 4): the scaffold, a module that the
 * sandbox accepts with the ABI's import allow-list, the manifest, the scaffold's own `npm test`
 * (offline install, methods run on the real runtime) and readable compile errors. The project is
 * compiled once (in process) and reused.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { isCloisterError } from '@cloister/core';
import {
  AppCompileError,
  type AppManifest,
  buildApp,
  type Diagnostic,
  findEntry,
  formatDiagnostic,
  projectAppName,
} from '../src/commands/app-build.js';
import { createApp } from '../src/commands/app-new.js';

const entry = fileURLToPath(new URL('./fixtures/run.ts', import.meta.url));
const root = fileURLToPath(new URL('../../..', import.meta.url));
const sdk = join(root, 'packages', 'sdk');
const tmp = mkdtempSync(join(tmpdir(), 'cloister-app-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

// The sandbox and the runtime's allow-list, loaded at run time: the CLI may not import the enclave
// (ARCHITECTURE.md) and its type check does not include it.
const SANDBOX = '../../enclave/src/apps/sandbox/index.js';
const RUNTIME = '../../enclave/src/apps/runtime/index.js';
interface Sandbox {
  validateModule(
    bytes: Uint8Array,
    policy: { allowedImports: readonly { module: string; field: string }[] },
  ): {
    exports: readonly { name: string }[];
    imports: readonly { module: string; field: string }[];
  };
  instrumentModule(bytes: Uint8Array): Uint8Array;
}

function run(
  command: string,
  args: string[],
  cwd: string,
): Promise<{ code: number; out: string; err: string }> {
  return new Promise((resolve) => {
    const p = spawn(command, args, {
      cwd,
      // Without NODE_TEST_CONTEXT a nested `node --test` reports as a top-level run.
      env: { ...process.env, NODE_OPTIONS: '', NODE_TEST_CONTEXT: undefined },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    p.stdout.on('data', (d) => {
      out += d;
    });
    p.stderr.on('data', (d) => {
      err += d;
    });
    p.on('close', (code) => resolve({ code: code ?? -1, out, err }));
  });
}

const cli = (args: string[], cwd = root) =>
  run(process.execPath, ['--import', 'tsx', '--conditions=source', entry, ...args], cwd);

describe('cloister app new and app build', () => {
  const project = join(tmp, 'demo');
  let manifest: AppManifest;
  let wasm: Uint8Array;

  before(async () => {
    const r = await cli(['app', 'new', 'demo', '--dir', project]);
    assert.equal(r.code, 0, r.err);
    assert.match(r.out, /created app demo/);
    const built = await buildApp(project);
    manifest = built.manifest;
    wasm = new Uint8Array(readFileSync(built.wasmPath));
  });

  it('app new creates a project that depends on this installation only', () => {
    for (const f of [
      'package.json',
      'asconfig.json',
      'README.md',
      '.gitignore',
      'assembly/index.ts',
      'test/app.test.mjs',
    ]) {
      assert.ok(existsSync(join(project, f)), f);
    }
    const pkg = JSON.parse(readFileSync(join(project, 'package.json'), 'utf8')) as {
      name: string;
      scripts: Record<string, string>;
      dependencies?: unknown;
      devDependencies: Record<string, string>;
    };
    assert.equal(pkg.name, 'demo');
    assert.deepEqual(pkg.devDependencies, { '@cloister/sdk': `file:${sdk}` });
    assert.equal(pkg.dependencies, undefined);
    assert.match(pkg.scripts.build!, /packages\/cli\/bin\/cloister\.js" app build$/);
    assert.match(pkg.scripts.test!, /npm run build && node --test/);
    assert.match(readFileSync(join(project, 'README.md'), 'utf8'), /^# demo\n/);
  });

  it('app new refuses a bad name and a folder that is not empty', () => {
    assert.throws(() => createApp('Bad Name', { dir: join(tmp, 'x') }), /app name 'Bad Name'/);
    assert.throws(
      () => createApp('Hello', { dir: join(tmp, 'x') }),
      /app name 'Hello': .*npm package name; try 'hello'/,
    );
    assert.throws(() => createApp('demo', { dir: project }), /already exists/);
  });

  it('app build writes a module the sandbox accepts under the ABI allow-list', async () => {
    const sandbox = (await import(SANDBOX)) as Sandbox;
    const { ALLOWED_IMPORTS } = (await import(RUNTIME)) as {
      ALLOWED_IMPORTS: readonly { module: string; field: string }[];
    };
    const parsed = sandbox.validateModule(wasm, { allowedImports: ALLOWED_IMPORTS });
    assert.ok(sandbox.instrumentModule(wasm).length > wasm.length);
    assert.ok(parsed.imports.some((i) => i.module === 'cloister' && i.field === 'ledger_set'));
    const exports = parsed.exports.map((e) => e.name);
    for (const e of ['cloister_abi_version', 'cloister_routes', 'cloister_call']) {
      assert.ok(exports.includes(e), e);
    }
  });

  it('app build writes a manifest with the methods and the code id', () => {
    const onDisk = JSON.parse(readFileSync(join(project, 'build/app.manifest.json'), 'utf8'));
    assert.deepEqual(onDisk, manifest);
    assert.deepEqual(manifest.methods, [
      { name: 'increment', kind: 'transaction' },
      { name: 'get', kind: 'query' },
    ]);
    assert.equal(manifest.codeId, createHash('sha256').update(wasm).digest('hex'));
    assert.equal(manifest.abi, 1);
    assert.equal(manifest.bytes, wasm.length);
    assert.match(manifest.compiler, /^assemblyscript 0\.28\.\d+$/);
  });

  it("the project's own tests pass: offline install, methods on the real runtime", async () => {
    const install = await run(
      'npm',
      ['install', '--offline', '--no-audit', '--no-fund', '--ignore-scripts'],
      project,
    );
    assert.equal(install.code, 0, install.err);
    // `npm test` would build again (the bin runs the compiled CLI); the module is built above.
    const t = await run(process.execPath, ['--test'], project);
    assert.equal(t.code, 0, t.out + t.err);
    assert.match(t.out, /# pass 4/);
  });

  it('a syntax error is reported with its file, line and column, and the line', async () => {
    const broken = join(tmp, 'broken');
    cpSync(project, broken, {
      recursive: true,
      filter: (src) => !src.includes('node_modules'),
    });
    const file = join(broken, 'assembly/index.ts');
    const lines = readFileSync(file, 'utf8').split('\n');
    const at = lines.findIndex((l) => l.includes("args.getString('name')"));
    lines[at] = '  const name = args.getString("name") +;';
    writeFileSync(file, lines.join('\n'));
    assert.ok(existsSync(join(broken, 'build', 'app.wasm')), 'the copy holds the last good build');
    const r = await cli(['app', 'build', broken]);
    assert.equal(r.code, 1, r.out + r.err);
    // The last good module and manifest are gone: nothing looks current after a failed build.
    assert.equal(existsSync(join(broken, 'build', 'app.wasm')), false);
    assert.equal(existsSync(join(broken, 'build', 'app.manifest.json')), false);
    assert.match(r.err, new RegExp(`assembly/index\\.ts:${at + 1}:\\d+: error TS1109: `));
    assert.match(r.err, /const name = args\.getString\("name"\) \+;\n\s+\^/);
    assert.match(r.err, /the app did not compile: 1 error \(first at assembly\/index\.ts:/);
    assert.match(r.err, /compiling .*broken…/);
    // Run inside the project (no DIR), it names the project's folder, not `.`.
    const inside = await run(
      process.execPath,
      ['--import', import.meta.resolve('tsx'), '--conditions=source', entry, 'app', 'build'],
      broken,
    );
    assert.equal(inside.code, 1, inside.out + inside.err);
    assert.match(inside.err, /^compiling broken…/m);
    // With --json, stdout carries the error and the compiler's diagnostics too.
    const j = await cli(['app', 'build', broken, '--json']);
    assert.equal(j.code, 1);
    const e = (
      JSON.parse(j.out) as { error: { code: string; message: string; diagnostics: string[] } }
    ).error;
    assert.match(e.message, /the app did not compile: 1 error/);
    assert.equal(e.diagnostics.length, 1);
    assert.match(e.diagnostics[0] ?? '', /error TS1109/);
  });

  it('marking mistakes are compile errors at the function', async () => {
    const bad = join(tmp, 'bad-marks');
    mkdirSync(join(bad, 'assembly'), { recursive: true });
    writeFileSync(
      join(bad, 'assembly/index.ts'),
      [
        "import { Json } from '@cloister/sdk';",
        '@query',
        'function hidden(args: Json): Json { return args; }',
        '@transaction',
        'export function wrongArgs(n: i32): void {}',
        '@query',
        'export function wrongResult(): Uint8Array { return new Uint8Array(0); }',
        '@migrate',
        'export function migrateWithArg(n: i32): void {}',
        '',
      ].join('\n'),
    );
    const e = await buildApp(bad).then(
      () => assert.fail('compiled'),
      (e: unknown) => e,
    );
    assert.ok(e instanceof AppCompileError);
    const text = e.diagnostics.map(formatDiagnostic).join('\n');
    assert.match(
      text,
      /assembly\/index\.ts:3:10: error AS102: method 'hidden' is marked @query but not exported/,
    );
    assert.match(
      text,
      /assembly\/index\.ts:5:26: error AS102: method 'wrongArgs' takes no parameter or one of type Json/,
    );
    assert.match(
      text,
      /assembly\/index\.ts:7:32: error AS102: method 'wrongResult' returns Uint8Array: a method returns void, Json/,
    );
    assert.match(
      text,
      /assembly\/index\.ts:9:17: error AS102: migration 'migrateWithArg' takes no parameter and returns void/,
    );
  });

  it('a folder without an entry file is named', async () => {
    const empty = join(tmp, 'empty');
    mkdirSync(empty);
    await assert.rejects(buildApp(empty), (e: unknown) => {
      assert.ok(isCloisterError(e, 'INVALID_INPUT'));
      assert.match(e.message, /no entry file .*empty\/assembly\/index\.ts/);
      return true;
    });
  });

  it('a warning is passed on, placed in its file, and the app still builds', async () => {
    const warned = join(tmp, 'warned');
    mkdirSync(join(warned, 'assembly'), { recursive: true });
    writeFileSync(
      join(warned, 'assembly/index.ts'),
      [
        "import { Json } from '@cloister/sdk';",
        'export class Unused { x: i32 = 0; }',
        '@query',
        'export function get(args: Json): Json { return args; }',
        '',
      ].join('\n'),
    );
    const seen: Diagnostic[] = [];
    const r = await buildApp(warned, (d) => seen.push(d));
    assert.deepEqual(r.manifest.methods, [{ name: 'get', kind: 'query' }]);
    assert.equal(seen.length, 1);
    assert.match(
      formatDiagnostic(seen[0] as Diagnostic),
      /^assembly\/index\.ts:2:14: warning AS235: Only variables, functions and enums become WebAssembly module exports\.\n {4}export class Unused/,
    );
  });

  it('the entry is the first of "entries" in asconfig.json; the app name the package.json name when it is an app id', () => {
    const p = join(tmp, 'entries');
    mkdirSync(join(p, 'src'), { recursive: true });
    writeFileSync(join(p, 'src', 'main.ts'), '');
    writeFileSync(join(p, 'asconfig.json'), JSON.stringify({ entries: ['src/main.ts'] }));
    assert.equal(findEntry(p), 'src/main.ts');
    writeFileSync(join(p, 'package.json'), JSON.stringify({ name: 'wallet' }));
    assert.equal(projectAppName(p), 'wallet');
    // Names that are no app id (an npm scope, a space, none) fall back to the folder's name.
    for (const name of ['@acme/wallet', 'my wallet', '']) {
      writeFileSync(join(p, 'package.json'), JSON.stringify({ name }));
      assert.equal(projectAppName(p), 'entries', name);
    }
  });
});
