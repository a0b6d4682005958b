/**
 * The console's local server without a browser: the page bundle reaches no Node built-in, the
 * server answers only at its own 127.0.0.1 origin and only GET, proxies exactly the node's public
 * endpoints the page reads, and its test hook alters exactly one byte of the evidence.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, request } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { bundlePage, MAX_PROXIED_BYTES, startConsole } from '../src/index.js';
import { ROOT } from './node-helpers.js';

test('the page bundle reaches no Node built-in and includes the browser SDK', async () => {
  const { script, inputs } = await bundlePage();
  assert.ok(
    inputs.some((i) => i.endsWith('client/src/browser.ts')),
    'the SDK is bundled',
  );
  assert.ok(inputs.some((i) => i.endsWith('console/src/page/main.ts') || i === 'src/page/main.ts'));
  assert.deepEqual(
    inputs.filter((i) => i.startsWith('node:') || /(^|\/)node_modules\/(@types|ws)\//.test(i)),
    [],
  );
  assert.doesNotMatch(script, /from\s*["']node:/);
});

/** A fake node answering its public endpoints with fixed bodies, recording what was asked. */
async function fakeNode() {
  const asked: string[] = [];
  const evidence = Buffer.from([1, 2, 3, 4, 5]).toString('base64');
  const s = createServer((req, res) => {
    asked.push(req.url ?? '');
    if (req.url?.startsWith('/v1/evidence'))
      res
        .writeHead(200, { 'content-type': 'application/json' })
        .end(JSON.stringify({ format: 'cloister-evidence-v1', evidence, identityPublicKey: 'aa' }));
    else if (req.url === '/v1/receipt?txid=1.3')
      res.writeHead(200, { 'content-type': 'application/cbor' }).end(Buffer.from([0xa0]));
    else res.writeHead(200, { 'content-type': 'application/json' }).end('{"index":7}');
  });
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  return { url: `http://127.0.0.1:${(s.address() as AddressInfo).port}`, asked, s };
}

function get(url: string, headers: Record<string, string> = {}, method = 'GET') {
  return new Promise<{ status: number; type: string; csp: string; body: Buffer }>(
    (resolve, reject) => {
      const r = request(url, { method, headers }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () =>
          resolve({
            status: res.statusCode ?? 0,
            type: String(res.headers['content-type']),
            csp: String(res.headers['content-security-policy']),
            body: Buffer.concat(chunks),
          }),
        );
      });
      r.on('error', reject);
      r.end();
    },
  );
}

test('the server: page, config, proxy of public endpoints only, origin and method checks', async () => {
  const node = await fakeNode();
  const constraint = `C:${'ab'.repeat(32)} SEC:INSECURE`;
  const c = await startConsole({ nodeUrl: `${node.url}/ignored/path`, constraint });
  try {
    assert.match(c.url, /^http:\/\/127\.0\.0\.1:\d+\/$/);
    // Bound to 127.0.0.1 itself: another address of this machine (127.0.0.2 is one on Linux)
    // reaches nothing, whatever Host it names.
    const elsewhere = await get(c.url.replace('127.0.0.1', '127.0.0.2'), {
      host: new URL(c.url).host,
    }).catch((e: NodeJS.ErrnoException) => e.code);
    assert.ok(typeof elsewhere === 'string', `answered ${JSON.stringify(elsewhere)}`);
    const page = await get(c.url);
    assert.equal(page.status, 200);
    assert.match(page.body.toString(), /secure context/);
    assert.match(page.body.toString(), /adversary ship the verifier/);
    assert.match(page.csp, /script-src 'self'/);
    const config = JSON.parse((await get(`${c.url}config.json`)).body.toString());
    assert.deepEqual(config, { nodeUrl: node.url, constraint });
    assert.equal((await get(`${c.url}console.js`)).body.toString(), c.script);

    assert.equal((await get(`${c.url}v1/status`)).body.toString(), '{"index":7}');
    const r = await get(`${c.url}v1/receipt?txid=1.3`);
    assert.equal(r.type, 'application/cbor');
    assert.deepEqual([...r.body], [0xa0]);
    await get(`${c.url}v1/apps/counter`);
    await get(`${c.url}v1/log/consistency?from=1&to=2`);
    const ev = JSON.parse((await get(`${c.url}v1/evidence?nonce=00`)).body.toString());
    assert.equal(ev.evidence, Buffer.from([1, 2, 3, 4, 5]).toString('base64'), 'unaltered');

    // Not a public endpoint the page needs: not proxied.
    assert.equal((await get(`${c.url}metrics`)).status, 404);
    assert.equal((await get(`${c.url}v1/scp`)).status, 404);
    assert.equal((await get(c.url, {}, 'POST')).status, 405);
    // DNS rebinding: another Host is refused.
    const rebound = await get(c.url, { host: 'evil.example:80' });
    assert.equal(rebound.status, 421);
    // localhost is another name too: refused, naming the address that works.
    const named = await get(c.url, { host: `localhost:${new URL(c.url).port}` });
    assert.equal(named.status, 421);
    assert.ok(
      (JSON.parse(named.body.toString()) as { error: { message: string } }).error.message.includes(
        `open ${c.url}`,
      ),
      named.body.toString(),
    );
    assert.deepEqual(node.asked, [
      '/v1/status',
      '/v1/receipt?txid=1.3',
      '/v1/apps/counter',
      '/v1/log/consistency?from=1&to=2',
      '/v1/evidence?nonce=00',
    ]);
  } finally {
    await c.close();
  }

  const tampering = await startConsole({ nodeUrl: node.url, alterEvidence: true });
  try {
    assert.equal(
      JSON.parse((await get(`${tampering.url}config.json`)).body.toString()).constraint,
      undefined,
    );
    const ev = JSON.parse((await get(`${tampering.url}v1/evidence?nonce=00`)).body.toString());
    assert.deepEqual([...Buffer.from(ev.evidence, 'base64')], [1, 2, 3, 4, 4], 'one byte altered');
  } finally {
    await tampering.close();
    node.s.close();
  }
});

test('a hostile node cannot serve a page, a script or a redirect through the console', async () => {
  // What the node sends back is data for the page's fetch(): it answers /v1/apps/pwn with HTML
  // that loads its own script, /v1/status with a redirect to another local service.
  const other = createServer((_req, res) => res.end('PRIVATE local service'));
  await new Promise<void>((r) => other.listen(0, '127.0.0.1', r));
  const otherUrl = `http://127.0.0.1:${(other.address() as AddressInfo).port}/admin`;
  const node = createServer((req, res) => {
    if (req.url === '/v1/apps/pwn')
      res.writeHead(200, { 'content-type': 'text/html' }).end('<script src="/v1/apps/x.js">');
    else if (req.url === '/v1/apps/x.js')
      res.writeHead(200, { 'content-type': 'text/javascript' }).end('alert(1)');
    else if (req.url === '/v1/status') res.writeHead(302, { location: otherUrl }).end();
    // A redirect that calls itself JSON, and CBOR where only a receipt is CBOR.
    else if (req.url === '/v1/apps/redir')
      res.writeHead(307, { location: otherUrl, 'content-type': 'application/json' }).end('{}');
    else if (req.url === '/v1/apps/cbor')
      res.writeHead(200, { 'content-type': 'application/cbor' }).end(Buffer.from([0xa0]));
    else res.writeHead(200, { 'content-type': 'application/json' }).end('{"ok":true}');
  });
  await new Promise<void>((r) => node.listen(0, '127.0.0.1', r));
  const nodeUrl = `http://127.0.0.1:${(node.address() as AddressInfo).port}`;
  const c = await startConsole({ nodeUrl });
  try {
    const html = await get(`${c.url}v1/apps/pwn`);
    assert.equal(html.status, 502);
    assert.match(html.body.toString(), /content of type .*text\/html/);
    assert.equal(html.type, 'application/json');
    // Its script is refused the same way; a path that is no app id is not even asked for.
    assert.equal((await get(`${c.url}v1/apps/x.js`)).status, 502);
    assert.equal((await get(`${c.url}v1/apps/a/b`)).status, 404);
    const redirect = await get(`${c.url}v1/status`);
    assert.equal(redirect.status, 502);
    assert.doesNotMatch(redirect.body.toString(), /PRIVATE/);
    const jsonRedirect = await get(`${c.url}v1/apps/redir`);
    assert.equal(jsonRedirect.status, 502);
    assert.match(
      jsonRedirect.body.toString(),
      /answered \/v1\/apps\/redir with a redirect, which is not followed/,
    );
    const cbor = await get(`${c.url}v1/apps/cbor`);
    assert.equal(cbor.status, 502);
    assert.match(
      cbor.body.toString(),
      /answered \/v1\/apps\/cbor with content of type \\"application\/cbor\\"/,
    );
    // A proper answer is passed on as data, with the console's own type and a sandbox policy.
    const ok = await get(`${c.url}v1/apps/counter`);
    assert.equal(ok.status, 200);
    assert.equal(ok.type, 'application/json');
    assert.match(ok.csp, /sandbox/);
    // The page may open WebSockets to the node's origin only.
    const page = await get(c.url);
    assert.match(
      page.csp,
      new RegExp(`connect-src 'self' ws://127\\.0\\.0\\.1:${new URL(nodeUrl).port};`),
    );
  } finally {
    await c.close();
    node.close();
    other.close();
  }
});

test('another site can neither fetch, embed nor link into the console (Fetch Metadata), and the answers say so', async () => {
  const node = await fakeNode();
  const c = await startConsole({ nodeUrl: node.url });
  try {
    // The browser marks a request made by (or a navigation from) another site's page.
    for (const site of ['cross-site', 'same-site']) {
      for (const path of ['', 'console.js', 'config.json', 'v1/status', 'v1/evidence?nonce=00']) {
        const r = await get(`${c.url}${path}`, { 'sec-fetch-site': site });
        assert.equal(r.status, 403, `${site} ${path}`);
        assert.match(r.body.toString(), new RegExp(`came from a ${site} page`));
      }
    }
    assert.deepEqual(node.asked, [], 'the node was asked nothing on their behalf');
    // The page's own requests, an address typed in, and non-browser clients are served.
    assert.equal((await get(c.url, { 'sec-fetch-site': 'none' })).status, 200);
    assert.equal((await get(`${c.url}v1/status`, { 'sec-fetch-site': 'same-origin' })).status, 200);
    assert.equal((await get(`${c.url}v1/status`)).status, 200);
    // Nothing the console serves may be loaded by another origin or share its window.
    const r = await new Promise<Record<string, unknown>>((resolve, reject) =>
      request(c.url, (res) => {
        res.resume();
        resolve(res.headers);
      })
        .on('error', reject)
        .end(),
    );
    assert.equal(r['cross-origin-resource-policy'], 'same-origin');
    assert.equal(r['cross-origin-opener-policy'], 'same-origin');
  } finally {
    await c.close();
    node.s.close();
  }
});

test("a node's answer over MAX_PROXIED_BYTES is cut, declared or streamed, and the console serves on", async () => {
  const big = Buffer.alloc(MAX_PROXIED_BYTES + 1, 0x20);
  const node = createServer((req, res) => {
    if (req.url === '/v1/apps') {
      // Declared: refused from its content-length, without reading it.
      res.writeHead(200, { 'content-type': 'application/json' }).end(big);
    } else if (req.url === '/v1/status') {
      // Streamed (chunked, no length): cut once the bytes pass the cap.
      res.writeHead(200, { 'content-type': 'application/json' });
      const chunk = Buffer.alloc(64 * 1024, 0x20);
      let sent = 0;
      const more = () => {
        while (sent <= MAX_PROXIED_BYTES * 2) {
          sent += chunk.length;
          if (!res.write(chunk)) return void res.once('drain', more);
        }
        res.end();
      };
      res.on('close', () => {
        sent = Number.POSITIVE_INFINITY;
      });
      more();
    } else res.writeHead(200, { 'content-type': 'application/json' }).end('{"index":7}');
  });
  await new Promise<void>((r) => node.listen(0, '127.0.0.1', r));
  const c = await startConsole({
    nodeUrl: `http://127.0.0.1:${(node.address() as AddressInfo).port}`,
  });
  try {
    for (const path of ['v1/apps', 'v1/status']) {
      const r = await get(`${c.url}${path}`);
      assert.equal(r.status, 502, path);
      assert.match(r.body.toString(), new RegExp(`larger than ${MAX_PROXIED_BYTES} bytes`));
    }
    assert.equal((await get(`${c.url}v1/evidence?nonce=00`)).body.toString(), '{"index":7}');
  } finally {
    await c.close();
    node.closeAllConnections();
    node.close();
  }
});

test("the node's answers go out as attachments; one declared over the cap is refused from its header", async () => {
  const node = createServer((req, res) => {
    if (req.url === '/v1/apps') {
      // Declares more than the cap, sends one byte, and never the rest.
      res.writeHead(200, {
        'content-type': 'application/json',
        'content-length': String(MAX_PROXIED_BYTES + 1),
      });
      res.write('{');
    } else res.writeHead(200, { 'content-type': 'application/json' }).end('{"index":7}');
  });
  await new Promise<void>((r) => node.listen(0, '127.0.0.1', r));
  const c = await startConsole({
    nodeUrl: `http://127.0.0.1:${(node.address() as AddressInfo).port}`,
  });
  try {
    // Opened in a browser tab, the node's answer is a download, not a page of the console.
    const ok = await fetch(`${c.url}v1/status`);
    assert.equal(ok.status, 200);
    assert.equal(ok.headers.get('content-disposition'), 'attachment');
    assert.equal(await ok.text(), '{"index":7}');
    // Refused at once from its content-length: not waited on until the node sends the rest.
    const big = await get(`${c.url}v1/apps`);
    assert.equal(big.status, 502);
    assert.match(big.body.toString(), new RegExp(`larger than ${MAX_PROXIED_BYTES} bytes`));
  } finally {
    await c.close();
    node.closeAllConnections();
    node.close();
  }
});

test('a state change typed text/plain with JSON named only in a parameter is refused', async () => {
  const node = await fakeNode();
  const stateDir = mkdtempSync(join(tmpdir(), 'cloister-console-state-'));
  const c = await startConsole({ nodeUrl: node.url, stateDir });
  const url = 'ws://127.0.0.1:7410/v1/scp';
  try {
    // A form, or a fetch without a preflight, may send text/plain with any parameter: that
    // parameter must not pass for the JSON type a cross-site request cannot send.
    const r = await fetch(`${c.url}state/pin`, {
      method: 'POST',
      headers: { 'content-type': 'text/plain; x=application/json' },
      body: JSON.stringify({ url, pin: 'aa'.repeat(32) }),
    });
    assert.equal(r.status, 400);
    assert.match(await r.text(), /a state change is JSON \(content-type: application\/json\)/);
    const pin = await fetch(`${c.url}state/pin?url=${encodeURIComponent(url)}`);
    assert.deepEqual(await pin.json(), { pin: null }, 'nothing was written');
  } finally {
    await c.close();
    node.s.close();
    rmSync(stateDir, { recursive: true, force: true });
  }
});

test('a node URL that is not http(s) is refused by name', async () => {
  await assert.rejects(startConsole({ nodeUrl: 'ftp://x' }), { code: 'INVALID_INPUT' });
  await assert.rejects(startConsole({ nodeUrl: 'not a url' }), { code: 'INVALID_INPUT' });
});

test('a malformed constraint or a port in use is refused by name before the console serves', async () => {
  const node = await fakeNode();
  await assert.rejects(startConsole({ nodeUrl: node.url, constraint: 'FOO' }), {
    code: 'CONSTRAINT_SYNTAX',
  });
  const first = await startConsole({ nodeUrl: node.url });
  try {
    const port = Number(new URL(first.url).port);
    await assert.rejects(startConsole({ nodeUrl: node.url, port }), {
      code: 'PORT_IN_USE',
      message: new RegExp(
        `^port ${port} on 127\\.0\\.0\\.1 is in use .*give another port .*another port starts without them$`,
      ),
    });
  } finally {
    await first.close();
    node.s.close();
  }
});

test('`cloister console` prints the console URL, says when no constraint was given, stops on SIGTERM', async () => {
  const home = mkdtempSync(join(tmpdir(), 'cloister-console-home-'));
  const p = spawn(
    process.execPath,
    [
      '--import',
      'tsx',
      '--conditions=source',
      join(ROOT, 'packages/cli/test/fixtures/run.ts'),
      '--home',
      home,
      'console',
      'http://127.0.0.1:9',
      '--port',
      '0',
    ],
    {
      cwd: ROOT,
      env: { ...process.env, NODE_OPTIONS: '', NODE_TEST_CONTEXT: undefined },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  let out = '';
  const url = await new Promise<string>((resolve, reject) => {
    p.stdout?.on('data', (d) => {
      out += d;
      const m = /console for http:\/\/127\.0\.0\.1:9: (http:\/\/127\.0\.0\.1:\d+\/)/.exec(out);
      if (m && /Ctrl-C/.test(out)) resolve(m[1] as string);
    });
    p.on('close', (code) => reject(new Error(`cloister console exited ${code}: ${out}`)));
  });
  assert.match(out, /no --constraint given: the page will ask for one/);
  const config = JSON.parse((await get(`${url}config.json`)).body.toString());
  // The CLI keeps the page's pins and roots in the home, with its own.
  assert.deepEqual(config, { nodeUrl: 'http://127.0.0.1:9', sharedState: true });
  // The node is down: the proxy says so by name, marked as the console's own answer.
  const down = await new Promise<{ status: number; header: unknown; body: string }>(
    (resolve, reject) =>
      request(`${url}v1/status`, (res) => {
        let b = '';
        res.on('data', (d) => {
          b += d;
        });
        res.on('end', () =>
          resolve({
            status: res.statusCode ?? 0,
            header: res.headers['cloister-console-error'],
            body: b,
          }),
        );
      })
        .on('error', reject)
        .end(),
  );
  assert.equal(down.status, 502);
  assert.match(down.body, /NETWORK/);
  assert.equal(down.header, 'NETWORK');
  const code = await new Promise((resolve) => {
    p.removeAllListeners('close');
    p.once('close', resolve);
    p.kill('SIGTERM');
  });
  assert.equal(code, 0);
});

test('with stateDir, pins and roots are kept in the home: compare-and-set, same origin only', async () => {
  const node = await fakeNode();
  const stateDir = mkdtempSync(join(tmpdir(), 'cloister-console-state-'));
  const c = await startConsole({ nodeUrl: node.url, stateDir });
  const call = async (method: string, path: string, body?: unknown, headers = {}) => {
    const r = await fetch(`${c.url}${path}`, {
      method,
      headers: {
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
        ...headers,
      },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    return { status: r.status, body: (await r.json()) as Record<string, unknown> };
  };
  try {
    assert.deepEqual(JSON.parse((await get(`${c.url}config.json`)).body.toString()), {
      nodeUrl: node.url,
      sharedState: true,
    });
    const url = 'ws://127.0.0.1:7410/v1/scp';
    const q = `state/pin?url=${encodeURIComponent(url)}`;
    assert.deepEqual((await call('GET', q)).body, { pin: null });
    const a = 'aa'.repeat(32);
    const b = 'bb'.repeat(32);
    assert.equal((await call('POST', 'state/pin', { url, pin: a, previous: null })).status, 200);
    assert.deepEqual((await call('GET', q)).body, { pin: a });
    // First use again (previous: none) when a pin exists: refused, nothing written.
    const again = await call('POST', 'state/pin', { url, pin: b, previous: null });
    assert.equal(again.status, 409);
    assert.equal((again.body.error as { code: string }).code, 'CLIENT_STATE_LOCKED');
    assert.deepEqual((await call('GET', q)).body, { pin: a });
    // The same file the CLI keeps its pins in.
    const file = JSON.parse(readFileSync(join(stateDir, 'client-state.json'), 'utf8'));
    assert.equal(file.pins[url], a);
    const service = 'cc'.repeat(32);
    assert.equal(
      (
        await call('POST', 'state/root', {
          service,
          size: 3,
          root: 'dd'.repeat(32),
          previous: null,
        })
      ).status,
      200,
    );
    assert.deepEqual((await call('GET', `state/root?service=${service}`)).body, {
      size: 3,
      root: 'dd'.repeat(32),
    });
    // Bad input is named; another site's request is refused before anything is read.
    assert.equal((await call('POST', 'state/pin', { url, pin: 'xyz' })).status, 400);
    // Hex of another length or case would be written and leave a file no reader accepts.
    for (const pin of ['aa'.repeat(31), 'AA'.repeat(32), 'aa'.repeat(33)]) {
      const bad = await call('POST', 'state/pin', { url, pin });
      assert.equal(bad.status, 400, pin);
      assert.equal(
        (bad.body.error as { message: string }).message,
        'pin is 64 lowercase hex digits',
      );
    }
    for (const size of [-1, 1.5, '3']) {
      const bad = await call('POST', 'state/root', { service, size, root: 'ee'.repeat(32) });
      assert.equal(bad.status, 400, String(size));
      assert.equal((bad.body.error as { message: string }).message, 'size is a whole number');
    }
    // A change is JSON (a form cannot send it without a preflight) of at most 4 KiB.
    const form = await fetch(`${c.url}state/pin`, {
      method: 'POST',
      headers: { 'content-type': 'text/plain' },
      body: JSON.stringify({ url, pin: b }),
    });
    assert.equal(form.status, 400);
    assert.match(await form.text(), /a state change is JSON \(content-type: application\/json\)/);
    const huge = await call('POST', 'state/pin', {
      url: 'x'.repeat(2000),
      pin: b,
      pad: 'y'.repeat(3000),
    });
    assert.equal(huge.status, 400);
    assert.equal(
      (huge.body.error as { message: string }).message,
      'a state change is at most 4 KiB',
    );
    assert.deepEqual((await call('GET', `state/root?service=${service}`)).body, {
      size: 3,
      root: 'dd'.repeat(32),
    });
    // A URL longer than 2 KiB is refused (the body's own cap, 4 KiB, would let it through).
    const longUrl = `${url}/${'x'.repeat(2048)}`;
    const long = await call('POST', 'state/pin', { url: longUrl, pin: b });
    assert.equal(long.status, 400);
    assert.equal(
      (long.body.error as { message: string }).message,
      'url is text of at most 2048 characters',
    );
    // Not JSON, or not UTF-8: a named 400, not a failure of the console.
    for (const body of ['{"url":', Buffer.from([0x7b, 0x22, 0xff, 0x22, 0x7d])]) {
      const r = await fetch(`${c.url}state/pin`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body,
      });
      assert.equal(r.status, 400);
      assert.match(await r.text(), /a state change is a JSON object in UTF-8/);
    }
    // The cap counts bytes: 1,400 three-byte characters are 4,200 bytes.
    const wide = await call('POST', 'state/pin', { url, pin: b, pad: '\u20ac'.repeat(1400) });
    assert.equal(wide.status, 400);
    assert.equal(
      (wide.body.error as { message: string }).message,
      'a state change is at most 4 KiB',
    );
    const longQ = `state/pin?url=${encodeURIComponent(longUrl)}`;
    assert.deepEqual((await call('GET', longQ)).body, { pin: null });
    // A root's compare-and-set is against the previous root given, not the new one.
    const root = (size: number, hex: string, previous: unknown) =>
      call('POST', 'state/root', { service, size, root: hex.repeat(32), previous });
    for (const previous of [
      { size: 3, root: 'ff'.repeat(32) },
      { size: 4, root: 'dd'.repeat(32) },
    ]) {
      const stale = await root(5, 'ee', previous);
      assert.equal(stale.status, 409, JSON.stringify(previous));
      assert.equal((stale.body.error as { code: string }).code, 'CLIENT_STATE_LOCKED');
    }
    assert.equal((await root(5, 'ee', { size: 3, root: 'dd'.repeat(32) })).status, 200);
    assert.deepEqual((await call('GET', `state/root?service=${service}`)).body, {
      size: 5,
      root: 'ee'.repeat(32),
    });
    const cross = await call(
      'POST',
      'state/pin',
      { url, pin: b },
      { 'sec-fetch-site': 'cross-site' },
    );
    assert.equal(cross.status, 403);
    assert.deepEqual((await call('GET', q)).body, { pin: a });
  } finally {
    await c.close();
    node.s.close();
    rmSync(stateDir, { recursive: true, force: true });
  }
});
