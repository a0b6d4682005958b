/**
 * The client SDK in a real browser (issue 6, "Must show"): a real node (the CLI's `cloister
 * build` and `cloister node start`: the enclave behind its boundary) with the template counter app
 * built and deployed by the CLI; the page entry (fixtures/browser-entry.ts, the SDK's "./browser"
 * entry) bundled for the browser with esbuild — its metafile must reach no Node built-in — served
 * from 127.0.0.1 and run in Debian's Chromium. In the page: the node's evidence is verified in
 * the handshake, the client connects with an identity kept non-extractable in IndexedDB, runs a
 * transaction, waits for its receipt and verifies it; a constraint with another measurement is
 * refused with only the client hello sent; a transaction retried after a page reload with the salt
 * `claimsSaltFor` keeps for it applies once and its receipt checks. Skipped, by name, without /usr/bin/chromium (failed
 * when CI=true).
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import { hasChromium, launchChromium } from '../../core/test/chromium.js';

const ENTRY = fileURLToPath(new URL('./fixtures/browser-entry.ts', import.meta.url));
const ROOT = fileURLToPath(new URL('../../..', import.meta.url));
const SDK = fileURLToPath(new URL('../src/browser.ts', import.meta.url));
const CLI = join(ROOT, 'packages/cli/test/fixtures/run.ts');
const APP = 'counter';

function cliProcess(args: string[]): ChildProcess {
  return spawn(process.execPath, ['--import', 'tsx', '--conditions=source', CLI, ...args], {
    cwd: ROOT,
    env: { ...process.env, NODE_OPTIONS: '', NODE_TEST_CONTEXT: undefined },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
}

/** Runs the CLI from source; its stdout, or a failure naming the command and its stderr. */
function cli(args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const p = cliProcess(args);
    let out = '';
    let err = '';
    p.stdout?.on('data', (d) => {
      out += d;
    });
    p.stderr?.on('data', (d) => {
      err += d;
    });
    p.on('close', (code) =>
      code === 0 ? resolve(out) : reject(new Error(`cloister ${args.join(' ')}: ${code} ${err}`)),
    );
  });
}

/** `cloister node start` on a free port; resolves its URL once it listens. */
function startNode(home: string, enclave: string): Promise<{ url: string; p: ChildProcess }> {
  const p = cliProcess([
    '--home',
    home,
    'node',
    'start',
    '--enclave',
    enclave,
    '--port',
    '0',
    '--sign-interval',
    '50',
    '--log-level',
    'silent',
  ]);
  return new Promise((resolve, reject) => {
    let err = '';
    p.stderr?.on('data', (d) => {
      err += d;
      const m = /listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(err);
      if (m) resolve({ url: m[1] as string, p });
    });
    p.on('close', (code) => reject(new Error(`cloister node start exited ${code}: ${err}`)));
  });
}

interface Happy {
  evidence: { platform: string; secure: boolean; measurement: string };
  service: string;
  sameIdentity: boolean;
  privateKeyExtractable: boolean;
  privateKeyType: string;
  result: { value: number; by: string };
  txid: string;
  repeated: boolean;
  receiptTxid: string;
  receiptService: string;
  query: number;
  firstFrames: number[];
}

test('the client SDK in Chromium: evidence, connect, transaction, receipt', {
  timeout: 240_000,
}, async (t) => {
  if (!hasChromium(t)) return;
  const tmp = mkdtempSync(join(tmpdir(), 'cloister-browser-'));
  const home = join(tmp, 'home');
  const enclave = join(tmp, 'enclave');
  let node: ChildProcess | undefined;
  const server = createServer();
  const browser = await launchChromium();
  try {
    const [bundle, measurement] = await Promise.all([
      build({
        entryPoints: [ENTRY],
        bundle: true,
        platform: 'browser',
        format: 'esm',
        conditions: ['source'],
        write: false,
        metafile: true,
        logLevel: 'silent',
        absWorkingDir: ROOT, // the metafile's paths are relative to it, not to the process's cwd
      }),
      cli(['--home', home, 'build', '--out', enclave, '--quiet']).then((o) => o.trim()),
    ]);
    // DESIGN §10: the check is on what is really bundled, dependencies included.
    const inputs = Object.keys(bundle.metafile.inputs);
    assert.ok(
      inputs.some((i) => join(ROOT, i) === SDK),
      'the SDK is bundled',
    );
    assert.deepEqual(
      inputs.filter((i) => i.startsWith('node:') || /(^|\/)node_modules\/(@types|ws)\//.test(i)),
      [],
    );
    assert.match(measurement, /^[0-9a-f]{64}$/);
    const js = bundle.outputFiles[0]?.text ?? '';

    const started = await startNode(home, enclave);
    node = started.p;
    const project = join(tmp, APP);
    await cli(['app', 'new', APP, '--dir', project]);
    await cli(['app', 'build', project]);
    const deployed = JSON.parse(
      await cli([
        '--home',
        home,
        'app',
        'deploy',
        join(project, 'build', 'app.wasm'),
        '--name',
        APP,
        '--node',
        started.url,
        '--json',
      ]),
    ) as { codeId: string };
    const constraint = `C:${measurement} SEC:INSECURE APP:${APP}=${deployed.codeId}`;

    server.on('request', (req, res) => {
      if (req.url === '/entry.js')
        res.writeHead(200, { 'content-type': 'text/javascript' }).end(js);
      else if (req.url === '/')
        res
          .writeHead(200, { 'content-type': 'text/html' })
          .end('<!doctype html><title>scp</title><script type="module" src="/entry.js"></script>');
      else res.writeHead(404).end();
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    // One context (one profile: its IndexedDB and Web Locks), so a second tab shares them.
    const context = await browser.newContext();
    const page = await context.newPage();
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(String(e)));
    await page.goto(`http://127.0.0.1:${(server.address() as AddressInfo).port}/`);
    await page.waitForFunction(() => 'scpTest' in globalThis);
    assert.equal(await page.evaluate(() => globalThis.isSecureContext), true);

    const h = (await page.evaluate(
      // biome-ignore lint/suspicious/noExplicitAny: the page's API, set by browser-entry.ts
      ([url, c, app]) => (globalThis as any).scpTest.happy(url, c, app),
      [started.url, constraint, APP],
    )) as Happy;
    assert.deepEqual(h.evidence, { platform: 'simulation', secure: false, measurement });
    assert.equal(h.sameIdentity, true, 'the identity persists in IndexedDB');
    assert.equal(h.privateKeyExtractable, false, 'the private key is not extractable');
    assert.equal(h.privateKeyType, 'private');
    assert.equal(h.result.value, 1);
    assert.match(h.result.by, /^[0-9a-f]{64}$/, 'the app saw a caller id');
    assert.equal(h.repeated, false);
    assert.match(h.txid, /^\d+\.\d+$/);
    assert.equal(h.receiptTxid, h.txid, 'the receipt verified in the page');
    assert.equal(h.receiptService, h.service);
    assert.equal(h.query, 1);
    assert.deepEqual(h.firstFrames, [1, 4], 'CH, then CA');

    const wrong = `C:${'ab'.repeat(32)} SEC:INSECURE APP:${APP}=${deployed.codeId}`;
    const bad = (await page.evaluate(
      // biome-ignore lint/suspicious/noExplicitAny: the page's API, set by browser-entry.ts
      ([url, c]) => (globalThis as any).scpTest.wrongMeasurement(url, c),
      [started.url, wrong],
    )) as { ok: boolean; code?: string; message?: string; sent: number[] };
    assert.equal(bad.ok, false);
    assert.equal(bad.code, 'CONSTRAINT_MISMATCH', bad.message);
    assert.deepEqual(bad.sent, [1], 'only the client hello left the page');

    // A retry after a reload: the salt comes back from the key kept in IndexedDB, so the
    // repeated answer's receipt checks against the first attempt's claims.
    type Retry = {
      salt: string;
      txid: string;
      repeated: boolean;
      value: number;
      receiptTxid: string;
      otherRequest: string;
      otherApp: string;
      otherIdentity: string;
      keyExtractable: boolean;
      keyAlgorithm: string;
      refused?: string;
    };
    const retry = () =>
      page.evaluate(
        // biome-ignore lint/suspicious/noExplicitAny: the page's API, set by browser-entry.ts
        ([url, c, app]) => (globalThis as any).scpTest.retry(url, c, app, 'order-1'),
        [started.url, constraint, APP],
      ) as Promise<Retry>;
    const first = await retry();
    assert.equal(first.repeated, false);
    assert.equal(first.value, 1);
    assert.equal(first.receiptTxid, first.txid);
    assert.match(first.salt, /^[0-9a-f]{64}$/);
    assert.equal(
      new Set([first.salt, first.otherRequest, first.otherApp, first.otherIdentity]).size,
      4,
    );
    assert.equal(first.keyExtractable, false, 'the claims-salt key is not extractable');
    assert.equal(first.keyAlgorithm, 'HMAC');
    assert.equal(first.refused, 'INVALID_INPUT', 'an empty request id is refused by name');
    await page.reload();
    await page.waitForFunction(() => 'scpTest' in globalThis);
    const again = await retry();
    assert.equal(again.salt, first.salt, 'the same salt after a reload');
    assert.equal(again.repeated, true, 'applied once');
    assert.equal(again.value, 1, 'the stored result');
    assert.equal(again.txid, first.txid);
    assert.equal(again.receiptTxid, first.txid, "the repeat's receipt verified with its claims");

    const upgraded = (await page.evaluate(
      // biome-ignore lint/suspicious/noExplicitAny: the page's API, set by browser-entry.ts
      () => (globalThis as any).scpTest.upgradeV1(),
    )) as { pin?: string; salt: string };
    assert.equal(upgraded.pin, 'ab'.repeat(32), 'a version-1 database keeps its pins');
    assert.match(upgraded.salt, /^[0-9a-f]{64}$/);

    const cas = await page.evaluate(
      // biome-ignore lint/suspicious/noExplicitAny: the page's API, set by browser-entry.ts
      () => (globalThis as any).scpTest.compareAndSet(),
    );
    assert.deepEqual(cas, [
      'ok',
      'CLIENT_STATE_LOCKED',
      'ok',
      'ok',
      'CLIENT_STATE_LOCKED',
      'ok',
      '02'.repeat(32),
      '7',
    ]);

    // Two tabs of the origin: their state lock sections (pin and root checks) never overlap.
    const tab = await context.newPage();
    await tab.goto(page.url());
    await tab.waitForFunction(() => 'scpTest' in globalThis);
    const hold = (p: typeof page) =>
      p.evaluate(
        // biome-ignore lint/suspicious/noExplicitAny: the page's API, set by browser-entry.ts
        () => (globalThis as any).scpTest.holdStateLock('cloister-locks', 150),
      ) as Promise<{ enter: number; exit: number } | undefined>;
    const [s1, s2] = await Promise.all([hold(page), hold(tab)]);
    assert.ok(s1 !== undefined && s2 !== undefined, 'the state has a lock (navigator.locks)');
    const [early, late] = s1.enter <= s2.enter ? [s1, s2] : [s2, s1];
    assert.ok(late.enter >= early.exit, `sections overlap: ${JSON.stringify([s1, s2])}`);
    await tab.close();
    assert.deepEqual(errors, []);
  } finally {
    await browser.close();
    server.close();
    if (node !== undefined && node.exitCode === null) {
      const exited = new Promise((r) => node?.once('close', r));
      node.kill('SIGTERM');
      await exited;
    }
    rmSync(tmp, { recursive: true, force: true });
  }
});
