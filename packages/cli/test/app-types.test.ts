/**
 * `cloister app types`: stubs generated for the token example compile under the project's strict
 * settings with tsc (a wrong result type or a method the app does not have is a compile error),
 * and the generated wrapper calls the app on a real node over SCP, pinned by its APP_CLAUSE.
 * Refusals: no manifest, a manifest that does not describe build/app.wasm, a bad app id.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { appendFileSync, cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { type Client, connect, generateIdentity, type QueryResult } from '@cloister/client/node';
import { toHex } from '@cloister/core';
import { createLogger, loadOrCreateOperatorKey, type RunningNode, startNode } from '@cloister/host';
import { testBuild } from '../../host/test/helpers.js';
import { buildApp } from '../src/commands/app-build.js';
import { deployApp } from '../src/commands/app-deploy.js';

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
  });

  it('compiles with tsc: results typed by kind, unknown methods refused', async () => {
    const client = join(root, 'packages', 'client', 'src', 'index.ts');
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
    writeFileSync(join(tmp, 'package.json'), '{ "type": "module" }\n');
    writeFileSync(
      join(tmp, 'tsconfig.json'),
      JSON.stringify({
        extends: join(root, 'tsconfig.base.json'),
        compilerOptions: {
          composite: false,
          declaration: false,
          noEmit: true,
          // What a web or Node client project has (the client's own lib).
          lib: ['ES2023', 'DOM'],
          paths: { '@cloister/client': [client] },
        },
        files: ['token.client.ts', 'use.ts'],
      }),
    );
    const r = await run(process.execPath, [
      join(root, 'node_modules', 'typescript', 'bin', 'tsc'),
      '-p',
      join(tmp, 'tsconfig.json'),
    ]);
    assert.equal(r.code, 0, r.out + r.err);

    // A call the manifest does not allow is an error tsc reports (the check is real).
    appendFileSync(join(tmp, 'use.ts'), 'token.mint({}).then((r) => r.txid.toFixed());\n');
    const bad = await run(process.execPath, [
      join(root, 'node_modules', 'typescript', 'bin', 'tsc'),
      '-p',
      join(tmp, 'tsconfig.json'),
    ]);
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
