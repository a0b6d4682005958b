/**
 * The browser adapter's own checks in Debian's Chromium, without a node: its WebSocket transport
 * hands the client binary frames of at most MAX_FRAME bytes (a bigger frame or a text message
 * closes the socket with 4003), and identities and claims-salt keys created by several calls at
 * once (two tabs on first use) end as one key each, not as an error. Skipped, by name, without
 * /usr/bin/chromium (failed when CI=true).
 */
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { MAX_FRAME } from '@cloister/core';
import { build } from 'esbuild';
import { WebSocketServer } from 'ws';
import { hasChromium, launchChromium } from '../../core/test/chromium.js';

const ENTRY = fileURLToPath(new URL('./fixtures/browser-adapter-entry.ts', import.meta.url));

test('the browser adapter: frame limit of its transport, keys created at once', {
  timeout: 120_000,
}, async (t) => {
  if (!hasChromium(t)) return;
  const bundle = await build({
    entryPoints: [ENTRY],
    bundle: true,
    platform: 'browser',
    format: 'esm',
    conditions: ['source'],
    write: false,
    logLevel: 'silent',
  });
  const js = bundle.outputFiles[0]?.text ?? '';
  const server = createServer((req, res) => {
    if (req.url === '/entry.js') res.writeHead(200, { 'content-type': 'text/javascript' }).end(js);
    else if (req.url === '/')
      res
        .writeHead(200, { 'content-type': 'text/html' })
        .end(
          '<!doctype html><title>adapter</title><script type="module" src="/entry.js"></script>',
        );
    else res.writeHead(404).end();
  });
  // Each path sends one message: a frame of MAX_FRAME bytes is followed by the server's close; a
  // message the adapter must refuse by an end mark (1 byte), on which the page closes the socket
  // itself (a page whose adapter passed the message on would otherwise wait for ever).
  const wss = new WebSocketServer({ server });
  wss.on('connection', (ws, req) => {
    if (req.url === '/max') ws.send(Buffer.alloc(MAX_FRAME, 7), () => ws.close(1000));
    else if (req.url === '/over') ws.send(Buffer.alloc(MAX_FRAME + 1, 7));
    else if (req.url === '/text') ws.send('not a frame');
    else ws.close(1011);
    if (req.url !== '/max') ws.send(Buffer.of(0));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  const browser = await launchChromium();
  try {
    const page = await browser.newPage();
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(String(e)));
    await page.goto(`http://127.0.0.1:${port}/`);
    await page.waitForFunction(() => 'adapterTest' in globalThis);
    const receives = (path: string) =>
      page.evaluate(
        // biome-ignore lint/suspicious/noExplicitAny: the page's API, set by browser-adapter-entry.ts
        (url) => (globalThis as any).adapterTest.transportReceives(url),
        `ws://127.0.0.1:${port}${path}`,
      ) as Promise<{ got: number[]; closed: string }>;

    const max = await receives('/max');
    assert.deepEqual(max.got, [MAX_FRAME], 'a frame of MAX_FRAME bytes is passed on');
    const over = await receives('/over');
    assert.deepEqual(over.got, [], 'a frame of MAX_FRAME + 1 bytes is not passed on');
    assert.match(over.closed, /^4003 /, 'the adapter closes the socket');
    const text = await receives('/text');
    assert.deepEqual(text.got, [], 'a text message is not passed on');
    assert.match(text.closed, /^4003 /);

    const keys = (await page.evaluate(
      // biome-ignore lint/suspicious/noExplicitAny: the page's API, set by browser-adapter-entry.ts
      () => (globalThis as any).adapterTest.identityRace('race', 4),
    )) as string[];
    assert.equal(keys.length, 4);
    assert.equal(new Set(keys).size, 1, `one key for every call: ${keys.join(', ')}`);
    assert.match(keys[0] as string, /^04[0-9a-f]{128}$/);
    const salts = (await page.evaluate(
      // biome-ignore lint/suspicious/noExplicitAny: the page's API, set by browser-adapter-entry.ts
      () => (globalThis as any).adapterTest.claimKeyRace('race', 4),
    )) as string[];
    assert.equal(salts.length, 4);
    assert.equal(new Set(salts).size, 1, `one claims-salt key for every call: ${salts.join(', ')}`);
    assert.match(salts[0] as string, /^[0-9a-f]{64}$/);
    assert.deepEqual(errors, []);
  } finally {
    await browser.close();
    wss.close();
    server.closeAllConnections();
    server.close();
  }
});
