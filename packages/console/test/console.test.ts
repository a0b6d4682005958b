/**
 * The console in a real browser (issue 8, "Must show"): a real node (the CLI's `cloister build` and
 * `node start`) with the template counter app deployed, the console server, and Debian's Chromium
 * driven by playwright-core through each flow: the verdict checked in the page and the simulation
 * banner; the constraint's source (flag, typed in, none; one in the address only fills the field);
 * the first connect named as first use; creating and loading an
 * identity; a query and a transaction with results; bad JSON, unknown app and unknown method beside
 * their fields; the receipt downloaded and verified in the page; evidence with one byte altered
 * (red verdict, no connection); another service at the pinned URL (SERVICE_CHANGED alarm), then
 * accepted by the user by name (re-pinned; the acceptance counts for that connect only).
 * Screenshots go to test-artifacts/console/. Skipped, by name, without /usr/bin/chromium (failed
 * when CI=true).
 */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileState } from '@cloister/client/node';
import { fromHex, verifyReceipt } from '@cloister/core';
import type { Browser, Page } from 'playwright-core';
import { hasChromium, launchChromium } from '../../core/test/chromium.js';
import { type ConsoleServer, startConsole } from '../src/index.js';
import { cli, ROOT, type RunningNode, startNode } from './node-helpers.js';

const APP = 'counter';
const ARTIFACTS = join(ROOT, 'test-artifacts', 'console');

async function shot(page: Page, name: string): Promise<void> {
  await page.screenshot({ path: join(ARTIFACTS, `${name}.png`), fullPage: true });
}

async function open(browser: Browser, url: string, errors: string[]): Promise<Page> {
  const context = await browser.newContext({ acceptDownloads: true });
  const page = await context.newPage();
  page.on('pageerror', (e) => errors.push(String(e)));
  await page.goto(url);
  await page.waitForSelector('body[data-ready="true"]');
  return page;
}

const textOf = async (page: Page, id: string) =>
  ((await page.locator(`#${id}`).textContent()) ?? '').trim();

/** Waits until element `id` shows text matching `re` (the page updates after awaits). */
async function see(page: Page, id: string, re: RegExp): Promise<void> {
  await page.locator(`#${id}`, { hasText: re }).waitFor({ timeout: 30_000 });
}

async function createIdentity(page: Page, name: string): Promise<string> {
  const before = await textOf(page, 'identity-key');
  await page.fill('#identity-name', name);
  await page.click('#identity-create');
  await page.waitForFunction((b) => {
    const k = document.getElementById('identity-key')?.textContent ?? '';
    return k !== b && /^[0-9a-f]{130}$/.test(k);
  }, before);
  return textOf(page, 'identity-key');
}

async function call(page: Page, kind: string, app: string, method: string, args: string) {
  await page.fill('#call-app', app);
  await page.fill('#call-method', method);
  await page.selectOption('#call-kind', kind);
  await page.fill('#call-args', args);
  await page.click('#call-run');
}

test('the console in Chromium: verdict, identity, calls, receipts, tampering, service change', {
  timeout: 300_000,
}, async (t) => {
  if (!hasChromium(t)) return;
  mkdirSync(ARTIFACTS, { recursive: true });
  const tmp = mkdtempSync(join(tmpdir(), 'cloister-console-'));
  const enclave = join(tmp, 'enclave');
  const nodes: RunningNode[] = [];
  const consoles: ConsoleServer[] = [];
  const errors: string[] = [];
  const browser = await launchChromium();
  try {
    const measurement = (
      await cli(['--home', join(tmp, 'home1'), 'build', '--out', enclave, '--quiet'])
    ).trim();
    const node1 = await startNode(join(tmp, 'home1'), enclave);
    nodes.push(node1);
    const project = join(tmp, APP);
    await cli(['app', 'new', APP, '--dir', project]);
    await cli(['app', 'build', project]);
    const wasm = join(project, 'build', 'app.wasm');
    const deploy = ['app', 'deploy', wasm, '--name', APP, '--node', node1.url, '--json'];
    const { codeId } = JSON.parse(await cli(['--home', join(tmp, 'home1'), ...deploy])) as {
      codeId: string;
    };
    const constraint = `C:${measurement} SEC:INSECURE APP:${APP}=${codeId}`;

    // Pins and roots kept in a Cloister home (as `cloister console` does): they outlive the
    // browser origin. The consoles below without stateDir keep them in IndexedDB.
    const stateDir = join(tmp, 'home1');
    const main = await startConsole({ nodeUrl: node1.url, constraint, stateDir });
    consoles.push(main);

    // The verdict, checked in the page, and the simulation banner.
    const page = await open(browser, main.url, errors);
    assert.equal(await page.evaluate(() => globalThis.isSecureContext), true);
    assert.match((await page.locator('#verdict').getAttribute('class')) ?? '', /\bok\b/);
    assert.match(await textOf(page, 'verdict'), /^ACCEPTED/);
    // The verdict names the constraint it accepted under (it names C: and APP:, so no gap noted).
    assert.ok((await textOf(page, 'verdict')).includes(constraint));
    assert.doesNotMatch(await textOf(page, 'verdict'), /note:/);
    // The APP: clause is not the evidence's to pass: the verdict says when it is checked.
    assert.match(
      await textOf(page, 'verdict'),
      /the evidence passed the enclave's clauses; its APP: clauses at each call/,
    );
    assert.equal(await page.locator('#sim-banner').isVisible(), true);
    assert.match(await textOf(page, 'sim-banner'), /simulation — not secure/);
    assert.equal(await textOf(page, 'constraint-value'), constraint);
    assert.equal(await textOf(page, 'constraint-source'), '(from the --constraint flag)');
    assert.match(await textOf(page, 'evidence-table'), new RegExp(measurement));
    assert.match(await textOf(page, 'footer'), /secure context/);
    await page.waitForFunction(() =>
      /^\d+$/.test(document.getElementById('status-index')?.textContent ?? ''),
    );
    assert.match(await textOf(page, 'status-state'), /^[0-9a-f]{64}$/);
    assert.match(await textOf(page, 'status-signed'), /^\d+$/);
    await page.waitForFunction(
      (id) => document.getElementById('apps-table')?.textContent?.includes(id),
      codeId,
    );
    assert.match(
      await textOf(page, 'apps-table'),
      new RegExp(`${APP}[\\s\\S]*${codeId} @ \\d+\\.\\d+`),
    );
    await shot(page, '01-verdict');
    // The call form starts on an app and method `npm start` deploys (token's whoami, a query).
    assert.equal(await page.inputValue('#call-app'), 'token');
    assert.equal(await page.inputValue('#call-method'), 'whoami');
    assert.equal(await page.inputValue('#call-kind'), 'query');
    // Every field has a label (what a screen reader names it by).
    for (const [label, id] of [
      ['App', 'call-app'],
      ['Method', 'call-method'],
      ['Kind', 'call-kind'],
      ['Arguments (JSON)', 'call-args'],
      ['Name', 'identity-name'],
      ['New constraint', 'constraint-input'],
      ['Receipt (CBOR)', 'receipt-file'],
    ] as const) {
      assert.equal(await page.getByLabel(label, { exact: true }).getAttribute('id'), id, label);
    }

    // Identity: create, refuse to create it twice, refuse to load one that does not exist.
    const key = await createIdentity(page, 'alice');
    await page.click('#identity-create');
    await see(page, 'identity-error', /exists already: load it/);
    await page.fill('#identity-name', 'nobody');
    await page.click('#identity-load');
    await see(page, 'identity-error', /no identity named "nobody"/);
    await shot(page, '02-identity');

    // Bad input beside its field; unknown app and method: the node's named error beside them.
    await call(page, 'query', APP, 'get', '{"name": ');
    assert.match(await textOf(page, 'call-args-error'), /not valid JSON/);
    await call(page, 'query', '', 'get', '{}');
    assert.match(await textOf(page, 'call-app-error'), /give the app name/);
    await call(page, 'query', 'nope', 'get', '{}');
    await page.waitForFunction(() => document.getElementById('call-app-error')?.textContent !== '');
    assert.match(await textOf(page, 'call-app-error'), /APP_NOT_FOUND/);
    // The first connect of this browser at this console address pinned the service, and says so.
    assert.match(
      await textOf(page, 'connection-state'),
      /connected; service [0-9a-f]{64}: FIRST USE — no service was pinned for this node URL in the client state of your Cloister home/,
    );
    await call(page, 'query', APP, 'nosuch', '{}');
    await page.waitForFunction(
      () => document.getElementById('call-method-error')?.textContent !== '',
    );
    assert.match(await textOf(page, 'call-method-error'), /APP_METHOD_UNKNOWN/);
    // A name no app can have is named beside its field, before anything is sent.
    await call(page, 'query', 'nä.me', 'get', '{}');
    assert.match(await textOf(page, 'call-app-error'), /an app name is 1 to 64 letters/);
    await shot(page, '03-bad-input');

    // A transaction, its receipt downloaded and verified in the page, then a query.
    await call(page, 'transaction', APP, 'increment', '{"name": "web"}');
    await page.waitForFunction(() =>
      /^\d+\.\d+$/.test(document.getElementById('receipt-txid')?.textContent ?? ''),
    );
    const txid = await textOf(page, 'receipt-txid');
    assert.match(await textOf(page, 'call-result'), /"value":1/);
    assert.equal(
      await textOf(page, 'call-code'),
      `${codeId} (signed by the enclave, checked against your APP:${APP} clause)`,
    );
    assert.match(await textOf(page, 'connection-state'), /connected; service [0-9a-f]{64}/);
    const [download] = await Promise.all([
      page.waitForEvent('download'),
      page.click('#receipt-download'),
    ]);
    assert.equal(download.suggestedFilename(), `receipt-${txid}.cbor`);
    const file = join(ARTIFACTS, `receipt-${txid}.cbor`);
    await download.saveAs(file);
    const verified = await verifyReceipt(new Uint8Array(readFileSync(file)), { constraint });
    assert.equal(verified.txid, txid, 'the downloaded file is the receipt, verified in Node too');
    await page.click('#receipt-verify');
    await page.waitForFunction(() => !document.getElementById('receipt-verdict')?.hidden);
    assert.match((await page.locator('#receipt-verdict').getAttribute('class')) ?? '', /\bok\b/);
    assert.match(
      await textOf(page, 'receipt-verdict'),
      new RegExp(`VERIFIED.*${txid.replace('.', '\\.')}`),
    );
    assert.match(await textOf(page, 'mine-table'), new RegExp(txid.replace('.', '\\.')));
    await shot(page, '04-transaction-receipt');
    // The same file given to the page: verified against the constraint and the pinned service.
    await page.setInputFiles('#receipt-file', file);
    await see(page, 'receipt-file-verdict', /VERIFIED/);
    assert.match(
      await textOf(page, 'receipt-file-verdict'),
      new RegExp(`transaction ${txid.replace('.', '\\.')} .*\\(the service pinned for`),
    );
    // One byte changed: refused.
    const bytes = readFileSync(file);
    bytes.writeUInt8(bytes.readUInt8(bytes.length - 40) ^ 1, bytes.length - 40);
    const altered = join(ARTIFACTS, 'receipt-altered.cbor');
    writeFileSync(altered, bytes);
    await page.setInputFiles('#receipt-file', altered);
    await see(page, 'receipt-file-verdict', /^receipt REFUSED — /);
    // Text an app writes (a counter's name, another user's in a shared app) is shown without
    // its bidi controls: U+202E would show "bew" for "web".
    await call(page, 'transaction', APP, 'increment', '{"name": "\u202eweb"}');
    await see(page, 'call-notifications', /web/);
    assert.ok((await textOf(page, 'call-notifications')).includes('\uFFFDweb'));
    assert.ok(!(await textOf(page, 'call-notifications')).includes('\u202e'));
    await call(page, 'query', APP, 'get', '{"name": "web"}');
    await page.waitForFunction(() => document.getElementById('call-result')?.textContent !== '');
    assert.equal(await textOf(page, 'call-result'), '1');
    // The query is not the transaction: the earlier receipt and its verdict are gone.
    assert.equal(await page.locator('#receipt-box').isVisible(), false);
    assert.equal(await page.locator('#receipt-verdict').isVisible(), false);
    // Nor after a transaction refused: nothing of the earlier one's receipt stays on show.
    await call(page, 'transaction', APP, 'increment', '{"name": "web"}');
    await page.waitForFunction(() => document.getElementById('receipt-txid')?.textContent !== '');
    await call(page, 'transaction', APP, 'nosuch', '{}');
    await page.waitForFunction(
      () => document.getElementById('call-method-error')?.textContent !== '',
    );
    assert.equal(await page.locator('#receipt-box').isVisible(), false);
    assert.equal(await textOf(page, 'call-result'), '');

    // Another identity in the same browser sees none of alice's transactions.
    const bob = await createIdentity(page, 'bob');
    assert.notEqual(bob, key);
    assert.doesNotMatch(await textOf(page, 'mine-table'), new RegExp(txid.replace('.', '\\.')));
    await page.fill('#identity-name', 'alice');
    await page.click('#identity-load');
    await page.waitForFunction(
      (k) => document.getElementById('identity-key')?.textContent === k,
      key,
    );
    await page.waitForFunction(
      (x) => document.getElementById('mine-table')?.textContent?.includes(x),
      txid,
    );

    // No constraint: the page says so, accepts nothing, and refuses to connect; then the URL
    // parameter and a typed-in constraint, each named as the source.
    const bare = await startConsole({ nodeUrl: node1.url });
    consoles.push(bare);
    const p2 = await open(browser, bare.url, errors);
    assert.equal(await p2.locator('#constraint-missing').isVisible(), true);
    assert.match((await p2.locator('#verdict').getAttribute('class')) ?? '', /\bbad\b/);
    await createIdentity(p2, 'carol');
    await p2.click('#connect');
    assert.match(await textOf(p2, 'connect-error'), /give a constraint first/);
    await shot(p2, '05-no-constraint');
    await p2.fill('#constraint-input', 'C:nothex');
    await p2.click('#constraint-apply');
    assert.match(await textOf(p2, 'constraint-error'), /CONSTRAINT_SYNTAX/);
    await p2.fill('#constraint-input', constraint);
    await p2.click('#constraint-apply');
    await p2.waitForFunction(() =>
      document.getElementById('verdict')?.textContent?.startsWith('ACCEPTED'),
    );
    assert.equal(await textOf(p2, 'constraint-source'), '(from typed in)');
    // A constraint in the address (a link someone sent) is written into the field, not used:
    // nothing is accepted until the user presses the button.
    const weak = `S:${'ab'.repeat(32)} PROD:1 SEC:INSECURE`;
    await p2.goto(`${bare.url}?constraint=${encodeURIComponent(weak)}`);
    await p2.waitForSelector('body[data-ready="true"]');
    assert.equal(await textOf(p2, 'constraint-value'), 'none');
    assert.equal(await p2.locator('#constraint-input').inputValue(), weak);
    assert.match(await textOf(p2, 'constraint-error'), /not in use; check every clause/);
    assert.match((await p2.locator('#verdict').getAttribute('class')) ?? '', /\bbad\b/);
    assert.match(await textOf(p2, 'verdict'), /^not checked: no constraint given/);
    // A typed constraint without C: or APP: clauses is accepted with what it leaves unchecked.
    await p2.fill('#constraint-input', `C:${measurement} SEC:INSECURE`);
    await p2.click('#constraint-apply');
    await see(p2, 'verdict', /^ACCEPTED/);
    assert.match(await textOf(p2, 'verdict'), /names no app \(no APP: clause\)/);
    // A call under it answers, and the page says the app's code was not checked.
    await p2.fill('#identity-name', 'carol');
    await p2.click('#identity-load');
    await see(p2, 'identity-key', /^[0-9a-f]{130}$/);
    await call(p2, 'query', APP, 'get', '{"name": "web"}');
    await see(p2, 'call-code', /NOT checked: your constraint has no APP:counter clause/);
    assert.ok((await textOf(p2, 'call-code')).startsWith(codeId));
    // The constraint last used comes back in the field after a reload, not in use.
    await p2.goto(bare.url);
    await p2.waitForSelector('body[data-ready="true"]');
    assert.equal(await textOf(p2, 'constraint-value'), 'none');
    assert.equal(
      await p2.locator('#constraint-input').inputValue(),
      `C:${measurement} SEC:INSECURE`,
    );
    assert.match(
      await textOf(p2, 'constraint-error'),
      /you last used here is in the field, not in use/,
    );
    await p2.press('#constraint-input', 'Enter');
    await see(p2, 'verdict', /^ACCEPTED/);

    // Evidence with one byte altered on its way to the page: red verdict, no connection.
    const tampering = await startConsole({ nodeUrl: node1.url, constraint, alterEvidence: true });
    consoles.push(tampering);
    const p3 = await open(browser, tampering.url, errors);
    assert.match((await p3.locator('#verdict').getAttribute('class')) ?? '', /\bbad\b/);
    assert.match(await textOf(p3, 'verdict'), /^REFUSED — EVIDENCE_SIGNATURE/);
    assert.match(await textOf(p3, 'verdict'), /will not connect/);
    // Refused, but the node claims a simulation: the warning stays.
    assert.equal(await p3.locator('#sim-banner').isVisible(), true);
    assert.match(await textOf(p3, 'evidence-table'), /simulation \(INSECURE\)/);
    await createIdentity(p3, 'dave');
    await p3.click('#connect');
    assert.match(await textOf(p3, 'connect-error'), /refused: the evidence did not pass/);
    assert.equal(await textOf(p3, 'connection-state'), 'not connected');
    await shot(p3, '06-tampered-evidence');

    // Another service at the pinned URL: a second node (new home, new service) on node1's port,
    // while the page is connected to the first (no reload: the page must notice by itself).
    await call(page, 'query', APP, 'get', '{"name": "web"}');
    await see(page, 'call-result', /^\d+$/);
    assert.match(await textOf(page, 'connection-state'), /^connected; service/);
    await node1.stop();
    await see(page, 'connection-state', /^not connected: the connection ended \(/);
    const node2 = await startNode(join(tmp, 'home2'), enclave, node1.port);
    nodes.push(node2);
    // The public status already shows another service than the pin: the alarm, before connecting.
    await see(
      page,
      'alarm',
      /SERVICE_CHANGED: the node's status \(its claim, not verified\) names service/,
    );
    await shot(page, '07-service-changed-status');
    await page.click('#evidence-check');
    await see(page, 'verdict', /^ACCEPTED/);
    // Connect opens a new connection (the ended one is not reused), which the pin refuses.
    await page.click('#connect');
    await page.waitForFunction(() => !document.getElementById('alarm')?.hidden);
    await see(page, 'alarm', /SERVICE_CHANGED: http:\/\/127\.0\.0\.1:\d+ shows service/);
    assert.match(await textOf(page, 'connect-error'), /SERVICE_CHANGED/);
    assert.equal(await textOf(page, 'connection-state'), 'not connected');
    await shot(page, '08-service-changed-connect');
    // The user checked the new service with the operator and accepts exactly it: re-pinned.
    const shown = await textOf(page, 'status-service');
    assert.match(await textOf(page, 'service-accept'), new RegExp(`service ${shown} with`));
    await page.click('#service-accept');
    await see(page, 'connection-state', /now pinned for this node URL, replacing [0-9a-f]{64}/);
    assert.match(await textOf(page, 'connection-state'), new RegExp(`service ${shown}`));
    assert.equal(await page.locator('#alarm').isHidden(), true);
    assert.equal(await page.locator('#service-accept-row').isHidden(), true);
    await shot(page, '09-service-change-accepted');
    // The acceptance counted for that one connect only: once the home's pin names the first
    // service again (the CLI sharing it, run with --accept-service, say), the next connect of
    // this same page to the accepted service is refused again, not silently re-pinned.
    const previous = /replacing ([0-9a-f]{64})/.exec(await textOf(page, 'connection-state'))?.[1];
    assert.ok(previous !== undefined && previous !== shown);
    const scp = `${node1.url.replace('http', 'ws')}/v1/scp`;
    await fileState(stateDir).pins.put(scp, fromHex(previous), fromHex(shown));
    await page.fill('#identity-name', 'alice');
    await page.click('#identity-load');
    await see(page, 'connection-state', /^not connected$/);
    await page.click('#connect');
    await page.waitForFunction(
      () =>
        document.getElementById('connect-error')?.textContent !== '' ||
        document.getElementById('connection-state')?.textContent?.startsWith('connected'),
    );
    assert.match(await textOf(page, 'connect-error'), /SERVICE_CHANGED/);
    assert.equal(await textOf(page, 'connection-state'), 'not connected');
    assert.equal(
      JSON.parse(readFileSync(join(stateDir, 'client-state.json'), 'utf8')).pins[scp],
      previous,
      'the pin stays the one the home holds',
    );
    // Accepted again by the user, by name: re-pinned.
    await page.click('#service-accept');
    await see(page, 'connection-state', new RegExp(`replacing ${previous}`));
    // The new pin holds: a reload shows no alarm for this service.
    await page.reload();
    await page.waitForSelector('body[data-ready="true"]');
    await see(page, 'status-service', new RegExp(shown));
    assert.equal(await page.locator('#alarm').isHidden(), true);

    // A console on another port is another origin, with empty IndexedDB: the pin is the home's,
    // so it is no first use there (a review swapped the service and a new port passed it).
    const elsewhere = await startConsole({ nodeUrl: node1.url, constraint, stateDir });
    consoles.push(elsewhere);
    assert.notEqual(elsewhere.url, main.url);
    const p4 = await open(browser, elsewhere.url, errors);
    await createIdentity(p4, 'erin');
    await p4.click('#connect');
    await see(
      p4,
      'connection-state',
      new RegExp(`connected; service ${shown} \\(pinned for this node URL\\)`),
    );
    assert.doesNotMatch(await textOf(p4, 'connection-state'), /FIRST USE/);
    // The same pin the CLI reads: one client-state.json in the home.
    const stateFile = JSON.parse(readFileSync(join(stateDir, 'client-state.json'), 'utf8')) as {
      pins: Record<string, string>;
    };
    assert.equal(stateFile.pins[`${node1.url.replace('http', 'ws')}/v1/scp`], shown);
    await shot(p4, '11-shared-pin-other-port');

    assert.deepEqual(errors, []);
  } finally {
    await browser.close();
    for (const c of consoles) await c.close();
    for (const n of nodes) await n.stop();
    rmSync(tmp, { recursive: true, force: true });
  }
});

test("a hostile node's text is shown checked or labelled, never as the page's own words", {
  timeout: 120_000,
}, async (t) => {
  if (!hasChromium(t)) return;
  // A node whose host answers with markup, bidi overrides and claims of verification in every
  // field the page shows, and evidence naming an unknown platform with a long message.
  const RLO = '\u202E';
  const evidence = Buffer.from('not evidence at all').toString('base64');
  const fake = createServer((req, res) => {
    const json = (v: unknown) =>
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(v));
    if (req.url?.startsWith('/v1/evidence')) json({ evidence, identityPublicKey: 'aa' });
    else if (req.url === '/v1/status')
      json({
        index: '<b>9</b>',
        lastSigned: -1,
        stateHash: `${'0'.repeat(64)} ✔ verified against receipt 1.9`,
        serviceIdentity: `UPDATE FROM YOUR CLOISTER INSTALLATION: press Connect${RLO}`,
      });
    else if (req.url === '/v1/apps')
      json({
        apps: [
          {
            app: `${RLO}retnuoc`,
            codeId: '✔ matches APP:counter (checked in this page)',
            loaded: true,
            history: [{ codeId: 'ab'.repeat(32), txid: '1.2 ✔ verified' }],
          },
        ],
      });
    else res.writeHead(404).end();
  });
  await new Promise<void>((r) => fake.listen(0, '127.0.0.1', r));
  const c = await startConsole({
    nodeUrl: `http://127.0.0.1:${(fake.address() as AddressInfo).port}`,
    constraint: `C:${'ab'.repeat(32)} SEC:INSECURE`,
  });
  const browser = await launchChromium();
  const errors: string[] = [];
  try {
    const page = await open(browser, c.url, errors);
    await see(page, 'apps-table', /malformed/);
    const MALFORMED = 'malformed (the node sent something else)';
    for (const id of ['status-index', 'status-signed', 'status-state', 'status-service'])
      assert.equal(await textOf(page, id), MALFORMED, id);
    const apps = await textOf(page, 'apps-table');
    assert.doesNotMatch(apps, /retnuoc|✔/);
    assert.ok(!apps.includes(RLO));
    assert.match(apps, new RegExp(`${'ab'.repeat(32)} @ malformed`));
    // No alarm from an unchecked status, and the evidence is refused.
    assert.equal(await page.locator('#alarm').isHidden(), true);
    assert.match(await textOf(page, 'verdict'), /^REFUSED/);
    assert.equal(await page.evaluate(() => document.querySelectorAll('b').length), 0);
    await shot(page, '10-hostile-node-text');

    // A node answering 502 NETWORK itself is not "unreachable": only the console says that.
    const liar = createServer((_req, res) =>
      res
        .writeHead(502, { 'content-type': 'application/json' })
        .end(JSON.stringify({ error: { code: 'NETWORK', message: 'maintenance, all fine' } })),
    );
    await new Promise<void>((r) => liar.listen(0, '127.0.0.1', r));
    const lying = await startConsole({
      nodeUrl: `http://127.0.0.1:${(liar.address() as AddressInfo).port}`,
      constraint: `C:${'ab'.repeat(32)} SEC:INSECURE`,
    });
    try {
      const p3 = await open(browser, lying.url, errors);
      assert.match(await textOf(p3, 'verdict'), /^REFUSED/);
    } finally {
      await lying.close();
      liar.close();
    }

    // Node text inside the page's own messages: bidi and line-separator characters replaced
    // (a status that is no JSON: the browser's parse error quotes it), long text clipped (a
    // content type of 600 characters, quoted by the console's NETWORK answer).
    const longType = `text/plain; q=${'A'.repeat(600)}END-OF-TYPE`;
    const garbler = createServer((req, res) => {
      if (req.url?.startsWith('/v1/evidence'))
        res.writeHead(200, { 'content-type': longType }).end('{}');
      else if (req.url === '/v1/status')
        res
          .writeHead(200, { 'content-type': 'application/json' })
          .end(`${RLO}\u2028UPDATE FROM YOUR CLOISTER INSTALLATION`);
      else res.writeHead(404).end();
    });
    await new Promise<void>((r) => garbler.listen(0, '127.0.0.1', r));
    const garbled = await startConsole({
      nodeUrl: `http://127.0.0.1:${(garbler.address() as AddressInfo).port}`,
      constraint: `C:${'ab'.repeat(32)} SEC:INSECURE`,
    });
    try {
      const p5 = await open(browser, garbled.url, errors);
      await see(p5, 'status-error', /could not read the status/);
      const statusError = await textOf(p5, 'status-error');
      assert.ok(statusError.includes('\uFFFD\uFFFDUPDATE'), statusError);
      assert.doesNotMatch(statusError, /[\u202E\u2028]/);
      const said = `the node answered /v1/evidence with content of type ${JSON.stringify(longType)}, not the JSON (or CBOR receipt) its API gives`;
      const nodeUrl = `http://127.0.0.1:${(garbler.address() as AddressInfo).port}`;
      assert.equal(
        await textOf(p5, 'verdict'),
        `NOT CHECKED: ${said.slice(0, 400)}…. Is the node running at ${nodeUrl}? Press "Check again" once it is.`,
      );
    } finally {
      await garbled.close();
      garbler.close();
    }

    // A node that is not running: nothing checked, so "not checked", not "refused".
    const free = createServer();
    await new Promise<void>((r) => free.listen(0, '127.0.0.1', r));
    const gone = `http://127.0.0.1:${(free.address() as AddressInfo).port}`;
    await new Promise((r) => free.close(r));
    const down = await startConsole({
      nodeUrl: gone,
      constraint: `C:${'ab'.repeat(32)} SEC:INSECURE`,
    });
    try {
      const p2 = await open(browser, down.url, errors);
      assert.match(
        await textOf(p2, 'verdict'),
        /^NOT CHECKED: could not reach the node at .*nothing listens there \(ECONNREFUSED\)\. Is the node running/,
      );
      assert.match((await p2.locator('#verdict').getAttribute('class')) ?? '', /\bpending\b/);
      await createIdentity(p2, 'erin');
      await p2.click('#connect');
      assert.match(
        await textOf(p2, 'connect-error'),
        /could not be reached, so its evidence is not checked yet/,
      );
    } finally {
      await down.close();
    }
    assert.deepEqual(errors, []);
  } finally {
    await browser.close();
    await c.close();
    fake.close();
  }
});
