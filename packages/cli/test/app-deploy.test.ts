/**
 * Deploy and upgrade on a real node (issue 5 item 5): a module built with `cloister app build` is
 * deployed over HTTP with `cloister app deploy`, signed by the operator key the node recorded at
 * its first start; the deploy is a logged transaction whose receipt verifies (claims included);
 * the public code history shows code ids and indexes; refusals are named 4xx errors after which
 * the node keeps serving (another key, a replay, a module that does not match the signed code id,
 * a stale or missing --upgrade, malformed and hostile modules); an upgrade keeps the app's data
 * and runs `cloister_migrate`; after a restart the app is still deployed; a start with another
 * operator key is refused. Apps are called through the test-only `enclave.ping` hook
 * (fixtures/apps-enclave.ts): there is no plaintext call endpoint.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { appendFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:http';
import { type AddressInfo, connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import {
  computeMeasurement,
  fromHex,
  fromUtf8,
  sha256,
  toHex,
  utf8,
  verifyReceipt,
} from '@cloister/core';
import {
  createLogger,
  encodeDeployBody,
  loadOrCreateOperatorKey,
  type RunningNode,
  signDeployRequest,
  startNode,
} from '@cloister/host';
import { BUNDLE_FILE, MANIFEST_FILE } from '../../host/src/build/build.js';
import { bundleEnclave } from '../../host/src/build/bundle.js';
import { signManifest } from '../../host/src/build/manifest.js';
import { loadOrCreateSignerKey } from '../../host/src/build/signer.js';
import { writeFileAtomic } from '../../host/src/fs/index.js';
import { buildApp } from '../src/commands/app-build.js';
import { deployApp } from '../src/commands/app-deploy.js';
import { createApp } from '../src/commands/app-new.js';

const entry = fileURLToPath(new URL('./fixtures/run.ts', import.meta.url));
const root = fileURLToPath(new URL('../../..', import.meta.url));
const ENCLAVE = 'packages/cli/test/fixtures/apps-enclave.ts';
const tmp = mkdtempSync(join(tmpdir(), 'cloister-deploy-'));
after(() => rmSync(tmp, { recursive: true, force: true }));
const silent = createLogger({ level: 'silent' });

function cli(args: string[]): Promise<{ code: number; out: string; err: string }> {
  return new Promise((resolve) => {
    const p = spawn(process.execPath, ['--import', 'tsx', '--conditions=source', entry, ...args], {
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

/** The hook enclave, bundled through the real shim and signed; its measurement. */
async function hookBuild(): Promise<{ dir: string; measurement: Uint8Array }> {
  const dir = join(tmp, 'enclave');
  const { code } = await bundleEnclave({ enclave: ENCLAVE });
  const key = loadOrCreateSignerKey(join(tmp, 'signer.pem'));
  const manifest = signManifest({ bundleHash: sha256(code), product: 1, svn: 1 }, key.privateKey);
  mkdirSync(dir, { recursive: true });
  writeFileAtomic(join(dir, BUNDLE_FILE), code, { mode: 0o644 });
  writeFileAtomic(join(dir, MANIFEST_FILE), manifest, { mode: 0o644 });
  return { dir, measurement: computeMeasurement(sha256(code), 1, 1) };
}

interface AppInfo {
  app: string;
  codeId: string;
  index: number;
  loaded: boolean;
  history: { codeId: string; index: number; txid: string }[];
}

describe('cloister app deploy on a real node', () => {
  const home = join(tmp, 'home');
  const dataDir = join(tmp, 'data');
  const platformDir = join(tmp, 'platform');
  let enclaveDir: string;
  let constraint: string;
  let wasm: Uint8Array;
  let wasm2: Uint8Array;
  let wasmPath: string;
  let wasm2Path: string;
  let wasm3Path: string;
  let node: RunningNode | undefined;
  let firstBody: Uint8Array;
  let operator: ReturnType<typeof loadOrCreateOperatorKey>;

  /** `cloister --home <home> app deploy <wasmPath> --name <name> …more`. */
  const deployCli = (name: string, ...more: string[]) =>
    cli(['--home', home, 'app', 'deploy', wasmPath, '--name', name, ...more]);

  const start = (operatorPublicKey = operator.publicKey) =>
    startNode({
      dataDir,
      platformDir,
      enclaveDir,
      port: 0,
      logger: silent,
      signIntervalMs: 50,
      operatorPublicKey,
    });

  const url = () => (node as RunningNode).url;

  async function call(method: string, kind: 'query' | 'transaction', args: unknown) {
    const n = node as RunningNode;
    const out = await n.ping(
      utf8(JSON.stringify({ app: 'demo', method, kind, args: JSON.stringify(args) })),
    );
    return JSON.parse(fromUtf8(out)) as { result: string; txid: string | null };
  }

  async function appInfo(name = 'demo'): Promise<AppInfo> {
    const r = await fetch(`${url()}/v1/apps/${name}`);
    assert.equal(r.status, 200, await r.clone().text());
    return (await r.json()) as AppInfo;
  }

  async function post(body: Uint8Array) {
    const r = await fetch(`${url()}/v1/apps`, {
      method: 'POST',
      headers: { 'content-type': 'application/cbor' },
      body,
    });
    const text = await r.text();
    return {
      status: r.status,
      body: JSON.parse(text) as { error?: { code: string; message: string } },
    };
  }

  async function serviceId(): Promise<Uint8Array> {
    const st = (await (await fetch(`${url()}/v1/status`)).json()) as { serviceIdentity: string };
    return fromHex(st.serviceIdentity);
  }

  /** The node still answers and the app still runs. */
  async function stillServing(): Promise<void> {
    const h = await fetch(`${url()}/v1/health`);
    assert.equal(h.status, 200);
    const r = await call('get', 'query', { name: 'a' });
    assert.match(r.result, /^\d+$/);
  }

  before(async () => {
    const project = join(tmp, 'demo');
    createApp('demo', { dir: project });
    const built = await buildApp(project);
    wasmPath = join(tmp, 'v1.wasm');
    wasm = new Uint8Array(readFileSync(built.wasmPath));
    writeFileAtomic(wasmPath, wasm, { mode: 0o644 });
    appendFileSync(
      join(project, 'assembly/index.ts'),
      [
        '',
        "/** Runs once in the upgrade's transaction (the SDK exports it as cloister_migrate). */",
        '@migrate',
        'export function migrate(): void {',
        "  counters.setJson('migrated', Json.int(1));",
        '}',
        '',
        "/** The node's clock as the app sees it (host.time, forced monotonic). */",
        '@query',
        'export function now(): i64 {',
        '  return Context.time();',
        '}',
        '',
      ].join('\n'),
    );
    const built2 = await buildApp(project);
    wasm2 = new Uint8Array(readFileSync(built2.wasmPath));
    wasm2Path = join(tmp, 'v2.wasm');
    writeFileAtomic(wasm2Path, wasm2, { mode: 0o644 });
    // v3: a migration that reads the app's data and fails with it in its message.
    const project3 = join(tmp, 'demo3');
    createApp('demo', { dir: project3 });
    appendFileSync(
      join(project3, 'assembly/index.ts'),
      [
        '',
        '@migrate',
        'export function migrate(): void {',
        "  const v = counters.get('a');",
        "  fail('SECRET_OUT', 'counter a holds ' + (v === null ? 'nothing' : v!) + ' plaintext');",
        '}',
        '',
      ].join('\n'),
    );
    wasm3Path = join(tmp, 'v3.wasm');
    writeFileAtomic(wasm3Path, readFileSync((await buildApp(project3)).wasmPath), { mode: 0o644 });
    const b = await hookBuild();
    enclaveDir = b.dir;
    constraint = `C:${toHex(b.measurement)} SEC:INSECURE`;
    operator = loadOrCreateOperatorKey(join(home, 'operator.pem'));
    node = await start();
  });
  after(async () => {
    await node?.close();
  });

  it('deploys with the CLI; the code history shows the code id and the index', async () => {
    const r = await deployCli('demo', '--node', url(), '--json');
    assert.equal(r.code, 0, r.err);
    assert.match(
      r.err,
      /signing for service [0-9a-f]{64}, as http:\/\/127\.0\.0\.1:\d+ reports it/,
    );
    const out = JSON.parse(r.out) as {
      app: string;
      codeId: string;
      txid: string;
      index: number;
      migrated: boolean;
      salt: string;
      request: string;
    };
    assert.equal(out.app, 'demo');
    assert.equal(out.codeId, toHex(sha256(wasm)));
    assert.equal(out.txid, `1.${out.index}`);
    assert.equal(out.migrated, false);
    firstBody = encodeDeployBody(fromHex(out.request), wasm);

    const info = await appInfo();
    assert.equal(info.codeId, out.codeId);
    assert.equal(info.index, out.index);
    assert.equal(info.loaded, true);
    assert.deepEqual(info.history, [{ codeId: out.codeId, index: out.index, txid: out.txid }]);
    const all = (await (await fetch(`${url()}/v1/apps`)).json()) as { apps: AppInfo[] };
    assert.deepEqual(all.apps, [info]);
    const missing = await fetch(`${url()}/v1/apps/nope`);
    assert.equal(missing.status, 404);
    assert.equal(
      ((await missing.json()) as { error: { code: string } }).error.code,
      'APP_NOT_FOUND',
    );

    // The receipt, after the next signature, verifies; its claims are the operator's request.
    let receipt: Uint8Array | undefined;
    for (let i = 0; i < 100 && receipt === undefined; i++) {
      const rr = await fetch(`${url()}/v1/receipt?txid=${out.txid}`);
      if (rr.status === 200) receipt = new Uint8Array(await rr.arrayBuffer());
      else await new Promise((res) => setTimeout(res, 50));
    }
    assert.ok(receipt, 'the receipt is served after a signature');
    const v = await verifyReceipt(receipt, {
      constraint,
      service: await serviceId(),
      claims: {
        salt: fromHex(out.salt),
        request: fromHex(out.request),
        response: new Uint8Array(0),
        codeId: sha256(wasm),
      },
    });
    assert.equal(v.txid, out.txid);

    // The app runs.
    const inc = await call('increment', 'transaction', { name: 'a', by: 5 });
    assert.equal(JSON.parse(inc.result).value, 5);
    assert.equal((await call('get', 'query', { name: 'a' })).result, '5');
  });

  it('never creates an operator key: a missing one is named, with where the right one is', async () => {
    // A typo in --operator-key made a new key, signed with it, and met a 403 from the node.
    const typo = join(tmp, 'no-such', 'operator.pem');
    const r = await deployCli('demo2', '--node', url(), '--operator-key', typo);
    assert.equal(r.code, 2); // could not run: the same exit code as every command's bad input
    assert.match(r.err, /INVALID_INPUT.*no operator key at .*no-such.*the node was started with/);
    assert.ok(!existsSync(join(tmp, 'no-such')));
    // Nor at the default path of another home.
    const other = join(tmp, 'other-home');
    await assert.rejects(
      deployApp(wasmPath, { name: 'demo2', node: url(), home: other }),
      (e: unknown) =>
        (e as { code?: string }).code === 'INVALID_INPUT' &&
        /a node takes its operator key when it first starts/.test((e as Error).message),
    );
    assert.ok(!existsSync(other));
  });

  it('a --node that answers HTML is named: not a Cloister node (no JSON parse error)', async () => {
    const html = createServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/html' });
      res.end('<html>a web page</html>');
    });
    await new Promise<void>((r) => html.listen(0, '127.0.0.1', r));
    try {
      const port = (html.address() as AddressInfo).port;
      const r = await deployCli('demo', '--node', `http://127.0.0.1:${port}`);
      assert.notEqual(r.code, 0);
      assert.match(r.err, /\[NETWORK\].*did not answer with JSON: is it a Cloister node\?/);
    } finally {
      await new Promise((r) => html.close(r));
    }
  });

  it('a deploy whose answer is lost is OUTCOME_UNKNOWN (it may be applied), not "could not reach"', async () => {
    // A node that answers its status and the app lookup, then drops the connection of the POST.
    const service = 'ab'.repeat(32);
    const dropping = createServer((req, res) => {
      if (req.method === 'POST') {
        req.resume();
        req.on('end', () => req.socket.destroy());
        return;
      }
      res.setHeader('content-type', 'application/json');
      if (req.url === '/v1/status') res.end(JSON.stringify({ serviceIdentity: service }));
      else {
        res.statusCode = 404;
        res.end(JSON.stringify({ error: { code: 'APP_NOT_FOUND', message: 'no such app' } }));
      }
    });
    await new Promise<void>((r) => dropping.listen(0, '127.0.0.1', r));
    try {
      const node = `http://127.0.0.1:${(dropping.address() as AddressInfo).port}`;
      await assert.rejects(
        deployApp(wasmPath, { name: 'lost', node, home, service }),
        (e: unknown) => {
          assert.equal((e as { code?: string }).code, 'OUTCOME_UNKNOWN');
          assert.match((e as Error).message, /the deploy of lost .* was sent, but no answer came/);
          assert.match((e as { hint: string }).hint, /\/v1\/apps\/lost/);
          return true;
        },
      );
    } finally {
      await new Promise((r) => dropping.close(r));
    }
  });

  it('an answer for another app or code id is refused (the node is not trusted)', async () => {
    const service = 'ab'.repeat(32);
    let answer: Record<string, unknown> = {};
    const confused = createServer((req, res) => {
      res.setHeader('content-type', 'application/json');
      if (req.method === 'POST') {
        req.resume();
        req.on('end', () => {
          res.statusCode = 201;
          res.end(JSON.stringify(answer));
        });
      } else if (req.url === '/v1/status') res.end(JSON.stringify({ serviceIdentity: service }));
      else {
        res.statusCode = 404;
        res.end(JSON.stringify({ error: { code: 'APP_NOT_FOUND', message: 'no such app' } }));
      }
    });
    await new Promise<void>((r) => confused.listen(0, '127.0.0.1', r));
    try {
      const node = `http://127.0.0.1:${(confused.address() as AddressInfo).port}`;
      const codeId = createHash('sha256').update(readFileSync(wasmPath)).digest('hex');
      const good = { app: 'mixed', codeId, txid: '1.5', index: 5, migrated: false };
      answer = good;
      const r = await deployApp(wasmPath, { name: 'mixed', node, home, service });
      assert.equal(r.codeId, codeId);
      for (const wrong of [
        { ...good, codeId: '00'.repeat(32) },
        { ...good, app: 'other' },
      ]) {
        answer = wrong;
        await assert.rejects(
          deployApp(wasmPath, { name: 'mixed', node, home, service }),
          (e: unknown) =>
            (e as { code?: string }).code === 'NETWORK' &&
            /another app or code id/.test((e as Error).message),
        );
      }
    } finally {
      await new Promise((r) => confused.close(r));
    }
  });

  it('refuses a request signed by another key (403), and keeps serving', async () => {
    const other = loadOrCreateOperatorKey(join(tmp, 'other.pem'));
    const info = await appInfo();
    const signed = signDeployRequest(other.privateKey, {
      app: 'demo',
      module: wasm2,
      upgrade: true,
      prev: fromHex(info.codeId),
      prevIndex: info.index,
      service: await serviceId(),
    });
    const r = await post(encodeDeployBody(signed.request, wasm2));
    assert.equal(r.status, 403);
    assert.equal(r.body.error?.code, 'APP_DEPLOY_SIGNATURE');
    await stillServing();
  });

  it('refuses a replayed request, a deploy over an existing app and an upgrade of none', async () => {
    const replay = await post(firstBody);
    assert.equal(replay.status, 409);
    assert.equal(replay.body.error?.code, 'APP_DEPLOY_STALE');
    // The CLI says both before signing anything, under the enclave's codes (exit 1, as the
    // enclave's refusal would be) with the next step that fits (the enclave's refusals, below,
    // carry the registry's, about replayed requests).
    await assert.rejects(deployApp(wasm2Path, { name: 'demo', node: url(), home }), {
      code: 'APP_DEPLOY_STALE',
      message: /app 'demo' is deployed already .*pass --upgrade/,
      hint: /with --upgrade/,
    });
    await assert.rejects(
      deployApp(wasm2Path, { name: 'other', node: url(), home, upgrade: true }),
      {
        code: 'APP_NOT_FOUND',
        message: /app 'other' is not deployed .*nothing to upgrade/,
        hint: /without --upgrade/,
      },
    );
    const over2 = await cli([
      '--home',
      home,
      'app',
      'deploy',
      wasm2Path,
      '--name',
      'demo',
      '--node',
      url(),
    ]);
    assert.equal(over2.code, 1, over2.err);
    assert.match(over2.err, /error \[APP_DEPLOY_STALE\]: app 'demo' is deployed already/);
    // The enclave refuses the same requests on its own: a deploy over an app, an upgrade of none.
    const info = await appInfo();
    const operatorKey = loadOrCreateOperatorKey(join(home, 'operator.pem')).privateKey;
    const over = signDeployRequest(operatorKey, {
      app: 'demo',
      module: wasm2,
      upgrade: false,
      prev: new Uint8Array(0),
      prevIndex: 0,
      service: await serviceId(),
    });
    const overR = await post(encodeDeployBody(over.request, wasm2));
    assert.equal(overR.body.error?.code, 'APP_DEPLOY_STALE');
    assert.match(String(overR.body.error?.message), /--upgrade/);
    const none = signDeployRequest(operatorKey, {
      app: 'other',
      module: wasm2,
      upgrade: true,
      prev: fromHex(info.codeId),
      prevIndex: info.index,
      service: await serviceId(),
    });
    assert.equal(
      (await post(encodeDeployBody(none.request, wasm2))).body.error?.code,
      'APP_NOT_FOUND',
    );
    await stillServing();
  });

  it('refuses a module whose bytes do not match the signed code id', async () => {
    const info = await appInfo();
    const signed = signDeployRequest(operator.privateKey, {
      app: 'demo',
      module: wasm2,
      upgrade: true,
      prev: fromHex(info.codeId),
      prevIndex: info.index,
      service: await serviceId(),
    });
    const r = await post(encodeDeployBody(signed.request, wasm));
    assert.equal(r.status, 400);
    assert.equal(r.body.error?.code, 'APP_DEPLOY_CODE_MISMATCH');
    await stillServing();
  });

  it('refuses malformed and hostile modules with named errors, and keeps serving', async () => {
    const header = [0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00];
    const unknownImport = Uint8Array.from([
      ...header,
      ...[0x01, 0x04, 0x01, 0x60, 0x00, 0x00], // type section: () -> ()
      ...[0x02, 0x0b, 0x01, 0x03, 0x65, 0x6e, 0x76, 0x03, 0x66, 0x6f, 0x6f, 0x00, 0x00], // env.foo
    ]);
    const cases: [string, Uint8Array, string][] = [
      ['garbage', utf8('this is not a WebAssembly module'), 'APP_MODULE_MALFORMED'],
      ['truncated', wasm.subarray(0, 100), 'APP_MODULE_MALFORMED'],
      ['unknown import', unknownImport, 'APP_IMPORT_UNKNOWN'],
      ['no ABI exports', Uint8Array.from(header), 'APP_ABI_VERSION'],
    ];
    for (const [what, module, code] of cases) {
      const signed = signDeployRequest(operator.privateKey, {
        app: `hostile-${what.replaceAll(' ', '-')}`,
        module,
        upgrade: false,
        prev: new Uint8Array(0),
        prevIndex: 0,
        service: await serviceId(),
      });
      const r = await post(encodeDeployBody(signed.request, module));
      assert.equal(r.status, 400, what);
      assert.equal(r.body.error?.code, code, `${what}: ${r.body.error?.message}`);
      await stillServing();
    }
    const notCbor = await post(utf8('{"request": 1}'));
    assert.equal(notCbor.status, 400);
    const tooBig = await fetch(`${url()}/v1/apps`, {
      method: 'POST',
      headers: { 'content-type': 'application/cbor' },
      body: new Uint8Array(9 * 1024 * 1024),
    });
    assert.equal(tooBig.status, 413);
    assert.equal(
      ((await tooBig.json()) as { error: { code: string } }).error.code,
      'REQUEST_TOO_LARGE',
    );
    await stillServing();
    const apps = (await (await fetch(`${url()}/v1/apps`)).json()) as { apps: AppInfo[] };
    assert.deepEqual(
      apps.apps.map((a) => a.app),
      ['demo'],
      'no refused module is recorded',
    );
  });

  it('an upgrade keeps the data, runs cloister_migrate and adds a code id to the history', async () => {
    const before = await appInfo();
    const r = await deployApp(wasm2Path, { name: 'demo', node: url(), home, upgrade: true });
    assert.equal(r.migrated, true);
    assert.equal(r.codeId, toHex(sha256(wasm2)));
    assert.equal((await call('get', 'query', { name: 'a' })).result, '5');
    assert.equal((await call('get', 'query', { name: 'migrated' })).result, '1');
    // The app clock is the host's (untrusted, monotonic), not 0.
    const t0 = Date.now();
    const seen = Number((await call('now', 'query', {})).result);
    assert.ok(seen >= t0 - 1000 && seen <= Date.now() + 1000, `app time ${seen} vs ${t0}`);
    const info = await appInfo();
    assert.equal(info.codeId, r.codeId);
    assert.deepEqual(
      info.history.map((h) => [h.codeId, h.index]),
      [
        [r.codeId, r.index],
        [before.codeId, before.index],
      ],
    );
  });

  it("a failed migration's message, which can carry app data, does not reach the host", async () => {
    const before = await appInfo();
    const r = await cli([
      '--home',
      home,
      'app',
      'deploy',
      wasm3Path,
      '--name',
      'demo',
      '--node',
      url(),
      '--upgrade',
    ]);
    assert.equal(r.code, 1, r.out + r.err);
    assert.match(r.err, /APP_ERROR/);
    assert.match(r.err, /its message stays in the enclave/);
    assert.doesNotMatch(r.out + r.err, /SECRET_OUT|counter a holds|plaintext/);
    assert.deepEqual(await appInfo(), before, 'the refused upgrade left nothing');
    await stillServing();
  });

  it('after an upgrade back to older code, the earlier upgrade replayed is still refused', async () => {
    const info = await appInfo();
    const up = signDeployRequest(operator.privateKey, {
      app: 'demo',
      module: wasm,
      upgrade: true,
      prev: fromHex(info.codeId),
      prevIndex: info.index,
      service: await serviceId(),
    });
    const back = await post(encodeDeployBody(up.request, wasm));
    assert.equal(back.status, 201, JSON.stringify(back.body));
    // The v1 -> v2 upgrade named code v1 as prev, which is current again: its index is not.
    const history = (await appInfo()).history;
    assert.equal(history.length, 3);
    const again = signDeployRequest(operator.privateKey, {
      app: 'demo',
      module: wasm2,
      upgrade: true,
      prev: sha256(wasm),
      prevIndex: history[2]!.index,
      service: await serviceId(),
    });
    const replay = await post(encodeDeployBody(again.request, wasm2));
    assert.equal(replay.status, 409);
    assert.equal(replay.body.error?.code, 'APP_DEPLOY_STALE');
    assert.equal((await call('get', 'query', { name: 'a' })).result, '5');
  });

  it('a first deploy never runs cloister_migrate: a module whose migration always fails deploys', async () => {
    // v3's migrate() always fails: run at a first deploy, it would refuse the deploy.
    const r = await deployApp(wasm3Path, { name: 'fresh', node: url(), home });
    assert.equal(r.migrated, false);
    const info = (await (await fetch(`${url()}/v1/apps/fresh`)).json()) as {
      history: unknown[];
    };
    assert.equal(info.history.length, 1);
  });

  it('after a restart the app is still deployed, with its data', async () => {
    const beforeRestart = await appInfo();
    await (node as RunningNode).close();
    node = await start();
    assert.deepEqual(await appInfo(), beforeRestart);
    assert.equal((await call('get', 'query', { name: 'a' })).result, '5');
    const inc = await call('increment', 'transaction', { name: 'a' });
    assert.equal(JSON.parse(inc.result).value, 6);
  });

  it('a node started without an operator key refuses deploys; a later start records the key', async () => {
    const data = join(tmp, 'data-no-key');
    const plain = () =>
      startNode({ dataDir: data, platformDir, enclaveDir, port: 0, logger: silent });
    let n = await plain();
    try {
      await assert.rejects(deployApp(wasmPath, { name: 'demo', node: n.url, home }), {
        code: 'OPERATOR_KEY_MISSING',
      });
    } finally {
      await n.close();
    }
    n = await startNode({
      dataDir: data,
      platformDir,
      enclaveDir,
      port: 0,
      logger: silent,
      operatorPublicKey: operator.publicKey,
    });
    try {
      const r = await deployApp(wasmPath, { name: 'demo', node: n.url, home });
      assert.equal(r.codeId, toHex(sha256(wasm)));
    } finally {
      await n.close();
    }
  });

  it('a start with another operator key is refused; the recorded key still starts', async () => {
    await (node as RunningNode).close();
    node = undefined;
    const other = loadOrCreateOperatorKey(join(tmp, 'other.pem'));
    await assert.rejects(start(other.publicKey), { code: 'OPERATOR_KEY_MISMATCH' });
    node = await start();
    assert.equal((await appInfo()).loaded, true);
  });

  it('signs only for the service it was told: --service refuses a node reporting another', async () => {
    const before = (await (await fetch(`${url()}/v1/apps/svc-check`)).json()) as unknown;
    const r = await deployCli('svc-check', '--node', url(), '--service', 'ab'.repeat(32));
    assert.notEqual(r.code, 0);
    assert.match(
      r.err,
      /CONSTRAINT_MISMATCH.*reports service [0-9a-f]{64}, not (ab){32}: nothing was signed/,
    );
    // Nothing was deployed.
    assert.deepEqual((await (await fetch(`${url()}/v1/apps/svc-check`)).json()) as unknown, before);
    // A --service that is no identity at all: bad input (2), before the node is asked anything.
    const typo = await deployCli('svc-check', '--node', 'http://127.0.0.1:1', '--service', 'abc');
    assert.equal(typo.code, 2);
    assert.match(
      typo.err,
      /INVALID_INPUT.*--service takes the 64 hex digits of a service identity/,
    );
    assert.doesNotMatch(typo.err, /NETWORK|ENCODING/);
    // With the node's own identity as --service: signed, and no note printed.
    const status = (await (await fetch(`${url()}/v1/status`)).json()) as {
      serviceIdentity: string;
    };
    const ok = await deployCli('svc-check', '--node', url(), '--service', status.serviceIdentity);
    assert.equal(ok.code, 0, ok.err);
    assert.doesNotMatch(ok.err, /signing for service/);
    // The same module again, as an upgrade: said so plainly (nothing signed, nothing sent).
    const same = await deployCli('svc-check', '--node', url(), '--upgrade');
    assert.equal(same.code, 1);
    assert.match(same.err, /APP_DEPLOY_STALE/);
    assert.match(same.err, /already runs this module \(code id [0-9a-f]{64}\): nothing to upgrade/);
  });

  it("strangers' trickling uploads do not lock the operator out: a signed request has a slot of its own", async () => {
    const port = Number(new URL(url()).port);
    const head = `POST /v1/apps HTTP/1.1\r\nHost: x\r\nContent-Type: application/cbor\r\nContent-Length: 1000000\r\n\r\nabc`;
    // Two uploads that never finish: they hold both shared slots (each is read whole before the
    // enclave could refuse it).
    const stalled = await Promise.all(
      [0, 1].map(
        () =>
          new Promise<import('node:net').Socket>((resolve) => {
            const s = connect(port, '127.0.0.1', () => {
              s.write(head);
              resolve(s);
            });
            s.on('error', () => {});
          }),
      ),
    );
    try {
      assert.equal((await fetch(`${url()}/v1/health`)).status, 200); // the stalled ones are parsed
      // A stranger's third upload is NODE_BUSY; the operator's deploy (its signed request in the
      // cloister-deploy-request header) goes through.
      const busy = await fetch(`${url()}/v1/apps`, {
        method: 'POST',
        headers: { 'content-type': 'application/cbor' },
        body: new Uint8Array(10),
      });
      assert.equal(busy.status, 503);
      /** A 10-byte upload with `request` in the ticket header: the answer. */
      const upload = (request: Uint8Array) =>
        fetch(`${url()}/v1/apps`, {
          method: 'POST',
          headers: {
            'content-type': 'application/cbor',
            'cloister-deploy-request': Buffer.from(request).toString('base64'),
          },
          body: new Uint8Array(10),
        });
      /** The upload went to the shared slots, held by the stalled ones: no ticket. */
      const noTicket = async (request: Uint8Array) => {
        const res = await upload(request);
        assert.equal(res.status, 503);
        assert.match(await res.text(), /other app uploads are being received/);
      };
      const service = await serviceId();
      const first = (key: import('node:crypto').KeyObject, module: Uint8Array) =>
        signDeployRequest(key, {
          app: 'during-flood',
          module,
          upgrade: false,
          prev: new Uint8Array(0),
          prevIndex: 0,
          service,
        }).request;
      // A request in the header signed by another key is a stranger's too: no operator slot.
      await noTicket(
        first(loadOrCreateOperatorKey(join(tmp, 'stranger.pem')).privateKey, new Uint8Array(10)),
      );
      const r = await deployApp(wasmPath, { name: 'during-flood', node: url(), home });
      assert.equal(r.app, 'during-flood');
      // A request the operator signed that can no longer apply (a first deploy of an app that
      // now exists: a replay read from the wire or a log) is no ticket either.
      const op = loadOrCreateOperatorKey(join(home, 'operator.pem')).privateKey;
      await noTicket(first(op, wasm));
      // An upgrade naming the current code at another index, or another code at the current
      // index, or made for another service: no ticket either.
      const upgrade = (prev: Uint8Array, prevIndex: number, svc = service) =>
        signDeployRequest(op, {
          app: 'during-flood',
          module: wasm2,
          upgrade: true,
          prev,
          prevIndex,
          service: svc,
        }).request;
      await noTicket(upgrade(fromHex(r.codeId), r.index - 1));
      await noTicket(upgrade(sha256(wasm2), r.index));
      await noTicket(upgrade(fromHex(r.codeId), r.index, new Uint8Array(32)));
      // The upgrade as it can apply now is a ticket: the operator's slot reads it (and the
      // enclave then refuses the 10 bytes as no deploy body).
      const fresh = await upload(upgrade(fromHex(r.codeId), r.index));
      assert.equal(fresh.status, 400);
      assert.equal(((await fresh.json()) as { error: { code: string } }).error.code, 'ENCODING');
    } finally {
      for (const s of stalled) s.destroy();
    }
  });
});
