/**
 * `cloister app types`: stubs generated for the token example compile under the project's strict
 * settings with tsc (a wrong result type or a method the app does not have is a compile error),
 * and the generated wrapper calls the app on a real node over SCP, pinned by its APP_CLAUSE.
 * Refusals: no manifest, a manifest that does not describe build/app.wasm, a bad app id.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import {
  appendFileSync,
  cpSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { type Client, connect, generateIdentity, type QueryResult } from '@cloister/client/node';
import { toHex } from '@cloister/core';
import { createLogger, loadOrCreateOperatorKey, type RunningNode, startNode } from '@cloister/host';
import { testBuild } from '../../host/test/helpers.js';
import { type AppManifest, buildApp } from '../src/commands/app-build.js';
import { deployApp } from '../src/commands/app-deploy.js';
import { generateTypes, readManifest } from '../src/commands/app-types.js';

const entry = fileURLToPath(new URL('./fixtures/run.ts', import.meta.url));
const root = fileURLToPath(new URL('../../..', import.meta.url));
const tmp = mkdtempSync(join(tmpdir(), 'cloister-app-types-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

function run(cmd: string, args: string[]): Promise<{ code: number; out: string; err: string }> {
  return new Promise((resolve) => {
    const p = spawn(cmd, args, {
      cwd: root,
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
const cli = (args: string[]) =>
  run(process.execPath, ['--import', 'tsx', '--conditions=source', entry, ...args]);

/**
 * Writes a strict client project in `dir` over `files` (ESM; the client's own lib;
 * `@cloister/client` from source) and returns a function running tsc on it.
 */
function clientProject(dir: string, files: string[]) {
  writeFileSync(join(dir, 'package.json'), '{ "type": "module" }\n');
  writeFileSync(
    join(dir, 'tsconfig.json'),
    JSON.stringify({
      extends: join(root, 'tsconfig.base.json'),
      compilerOptions: {
        composite: false,
        declaration: false,
        noEmit: true,
        // What a web or Node client project has (the client's own lib).
        lib: ['ES2023', 'DOM'],
        paths: { '@cloister/client': [join(root, 'packages', 'client', 'src', 'index.ts')] },
      },
      files,
    }),
  );
  return () =>
    run(process.execPath, [
      join(root, 'node_modules', 'typescript', 'bin', 'tsc'),
      '-p',
      join(dir, 'tsconfig.json'),
    ]);
}

describe('cloister app types', () => {
  const project = join(tmp, 'token');
  const stubs = join(tmp, 'token.client.ts');
  before(async () => {
    const skip = (src: string): boolean => !/[/\\](build|test|node_modules)$/.test(src);
    cpSync(join(root, 'examples', 'common'), join(tmp, 'common'), {
      recursive: true,
      filter: skip,
    });
    cpSync(join(root, 'examples', 'token'), project, { recursive: true, filter: skip });
    await buildApp(project);
  });

  it("names the app as the project's package.json does, not after its folder", async () => {
    const renamed = join(tmp, 'some-folder');
    cpSync(project, renamed, { recursive: true });
    writeFileSync(join(renamed, 'package.json'), JSON.stringify({ name: 'wallet' }));
    const r = await cli(['app', 'types', renamed]);
    assert.equal(r.code, 0, r.err);
    assert.match(r.out, /"wallet"/);
    assert.doesNotMatch(r.out, /some-folder/);
  });

  it('writes stubs with every method of the manifest, by kind, and its code id', async () => {
    const r = await cli(['app', 'types', project, '--out', stubs]);
    assert.equal(r.code, 0, r.err);
    assert.match(r.err, /wrote .*token\.client\.ts: 4 methods/);
    const manifest = JSON.parse(readFileSync(join(project, 'build', 'app.manifest.json'), 'utf8'));
    const src = readFileSync(stubs, 'utf8');
    assert.ok(src.includes(`export const APP_CLAUSE = "APP:token=${manifest.codeId}"`));
    assert.match(src, /whoami: \(args = \{\}, options = \{\}\) => app\.query\("whoami"/);
    assert.match(src, /transfer: \(args = \{\}, options = \{\}\) => app\.transact\("transfer"/);
    // On stdout without --out, the same text.
    const printed = await cli(['app', 'types', project]);
    assert.equal(printed.out, src);
    // Generated again over its own output: replaced. Over a file it did not write: refused.
    assert.equal((await cli(['app', 'types', project, '--out', stubs])).code, 0);
    const mine = join(tmp, 'handwritten.ts');
    writeFileSync(mine, 'export const mine = 1;\n');
    const over = await cli(['app', 'types', project, '--out', mine]);
    assert.equal(over.code, 2);
    assert.match(over.err, /does not hold stubs generated by `cloister app types`/);
    assert.equal(readFileSync(mine, 'utf8'), 'export const mine = 1;\n');
  });

  it('compiles with tsc: results typed by kind, unknown methods refused', async () => {
    writeFileSync(
      join(tmp, 'use.ts'),
      `import type { Client, QueryResult, TransactResult } from '@cloister/client';
import { APP_CLAUSE, tokenApp } from './token.client.js';
declare const client: Client;
const token = tokenApp(client);
export const q: Promise<QueryResult> = token.whoami();
export const t: Promise<TransactResult> = token.transfer({ to: 'ab', amount: 1 });
export const c: string = APP_CLAUSE;
// @ts-expect-error a query has no txid: its result is not a TransactResult
export const wrong: Promise<TransactResult> = token.balance();
// @ts-expect-error the app has no such method
token.steal();
`,
    );
    const tsc = clientProject(tmp, ['token.client.ts', 'use.ts']);
    const r = await tsc();
    assert.equal(r.code, 0, r.out + r.err);

    // A call the manifest does not allow is an error tsc reports (the check is real).
    appendFileSync(join(tmp, 'use.ts'), 'token.mint({}).then((r) => r.txid.toFixed());\n');
    const bad = await tsc();
    assert.notEqual(bad.code, 0);
    assert.match(bad.out, /toFixed/);
  });

  it('the wrapper calls the app on a node, pinned by APP_CLAUSE', async () => {
    const build = await testBuild();
    const home = join(tmp, 'home');
    let node: RunningNode | undefined;
    try {
      node = await startNode({
        dataDir: join(tmp, 'data'),
        platformDir: join(tmp, 'platform'),
        enclaveDir: build.outDir,
        port: 0,
        logger: createLogger({ level: 'silent' }),
        operatorPublicKey: loadOrCreateOperatorKey(join(home, 'operator.pem')).publicKey,
      });
      await deployApp(join(project, 'build', 'app.wasm'), { name: 'token', node: node.url, home });
      const stub = (await import(pathToFileURL(stubs).href)) as {
        APP_CLAUSE: string;
        CODE_ID: string;
        tokenApp(c: Client): Record<'whoami' | 'balance', () => Promise<QueryResult>>;
      };
      const client = await connect(node.url, {
        constraint: `C:${toHex(build.measurement)} SEC:INSECURE ${stub.APP_CLAUSE}`,
        identity: await generateIdentity(),
      });
      try {
        const token = stub.tokenApp(client);
        const me = await token.whoami();
        assert.match(me.json, /"callerId":"[0-9a-f]{64}"/);
        const b = await token.balance();
        assert.deepEqual(b.result, { balance: 0 });
        assert.equal(toHex(b.codeId), stub.CODE_ID);
      } finally {
        await client.close();
      }
    } finally {
      await node?.close();
    }
  });

  it('refuses without a manifest, with a stale one, and for a bad app id, saying what to do', async () => {
    const none = await cli(['app', 'types', join(tmp, 'common')]);
    assert.equal(none.code, 2);
    assert.match(none.err, /no build\/app\.manifest\.json .*run `cloister app build/);
    const badName = await cli(['app', 'types', project, '--name', '-x']);
    assert.equal(badName.code, 2);
    assert.match(badName.err, /not an app id.*give --name/);
    appendFileSync(join(project, 'build', 'app.wasm'), new Uint8Array([0]));
    const stale = await cli(['app', 'types', project]);
    assert.equal(stale.code, 2);
    assert.match(stale.err, /does not describe .*app\.wasm.*run `cloister app build .*again/);
  });
});

describe('app types: the manifest read and the stubs written', () => {
  const manifest = (over: Record<string, unknown>) => ({
    abi: 1,
    codeId: 'ab'.repeat(32),
    module: 'app.wasm',
    bytes: 1,
    methods: [{ name: 'get', kind: 'query' }],
    compiler: 'assemblyscript 0.0.0',
    ...over,
  });
  /** A project folder holding only build/app.manifest.json with `m` (no module beside it). */
  const projectWith = (m: unknown): string => {
    const dir = mkdtempSync(join(tmp, 'manifest-'));
    mkdirSync(join(dir, 'build'));
    writeFileSync(join(dir, 'build', 'app.manifest.json'), JSON.stringify(m));
    return dir;
  };
  /** tsc's verdict on `source` as a module of a strict client project (exit code and output). */
  const compile = async (source: string) => {
    const dir = mkdtempSync(join(tmp, 'odd-'));
    writeFileSync(join(dir, 'odd.client.ts'), source);
    return clientProject(dir, ['odd.client.ts'])();
  };

  it('refuses a method without a name or of another kind, and a code id that is not 64 hex digits', () => {
    assert.equal(readManifest(projectWith(manifest({}))).codeId, 'ab'.repeat(32));
    for (const bad of [
      { methods: [{ name: '', kind: 'query' }] },
      { methods: [{ name: 'get', kind: 'view' }] },
      { codeId: 'AB'.repeat(32) },
      { codeId: 'ab'.repeat(31) },
    ]) {
      assert.throws(
        () => readManifest(projectWith(manifest(bad))),
        /has no valid codeId and methods: run `cloister app build .*` again/,
        JSON.stringify(bad),
      );
    }
  });

  it('an app id or a method name that is no identifier still gives valid TypeScript', async () => {
    const source = generateTypes(
      '2fa-codes',
      manifest({
        methods: [
          { name: 'get-code', kind: 'query' },
          { name: 'set', kind: 'transaction' },
        ],
      }) as AppManifest,
    );
    const tsc = await compile(source);
    assert.equal(tsc.code, 0, tsc.out + tsc.err);
    assert.match(source, /export interface App2faCodesApp \{/);
    assert.match(source, /export function app2faCodesApp\(client: Client/);
    assert.match(
      source,
      /readonly "get-code": \(args\?: Args, options\?: CallOptions\) => Promise<QueryResult>;/,
    );
    assert.match(
      source,
      / {4}"get-code": \(args = \{\}, options = \{\}\) => app\.query\("get-code", args, options\),/,
    );
    assert.match(
      source,
      / {4}set: \(args = \{\}, options = \{\}\) => app\.transact\("set", args, options\),/,
    );
  });
});
