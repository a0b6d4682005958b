/**
 * The HTTP status of each error code the enclave answers with (docs/node-api.md "Errors"),
 * through the node's real HTTP server (createHttpServer) over stub dependencies: the enclave's
 * answers arrive as the boundary delivers them (RemoteError with the code it sent). No real
 * enclave answers an HTTP request with LEDGER_INDEX today (a tree size beyond the signed one is
 * INVALID_INPUT), so the stub is how its row of the table is reached at all.
 */
import assert from 'node:assert/strict';
import { Agent, get, type Server } from 'node:http';
import { type AddressInfo, createConnection } from 'node:net';
import { PassThrough } from 'node:stream';
import { after, before, test } from 'node:test';
import { RemoteError } from '@cloister/boundary';
import { ERROR_CODES, type ErrorCode } from '@cloister/core';
import { createHttpServer } from '../src/node/http.js';
import { createLogger } from '../src/node/logger.js';
import { createNodeMetrics, ROUTES } from '../src/node/metrics.js';

/** The code the stub enclave answers the next receipt or consistency call with. */
let answer: ErrorCode = 'LEDGER_INDEX';

const refuse = (call: string) => async (): Promise<never> => {
  throw new RemoteError(call, answer, `the stub enclave answers ${answer}`);
};

/** What the stub's health says (the node says 'stopping' once its stop began). */
let health: 'ok' | 'stopping' = 'ok';

/** The node's HTTP server over the stub enclave: every call refused with `answer`. */
function stubServer(
  m: ReturnType<typeof createNodeMetrics>,
  log: ReturnType<typeof createLogger>,
): Server {
  return createHttpServer({
    metrics: m,
    log,
    health: () => ({ status: health, platform: 'simulation' }),
    evidence: refuse('enclave.evidence'),
    status: refuse('service.status'),
    receipt: refuse('service.receipt'),
    consistency: refuse('service.consistency'),
    deploy: refuse('apps.deploy'),
    apps: refuse('apps.info'),
  });
}

let server: Server;
let base: string;
const metrics = createNodeMetrics();

before(async () => {
  server = stubServer(metrics, createLogger({ level: 'silent' }));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
after(() => new Promise<void>((r) => server.close(() => r())));

async function errorOf(
  path: string,
): Promise<{ status: number; retryAfter: string | null; error: Record<string, string> }> {
  const res = await fetch(`${base}${path}`);
  const body = (await res.json()) as { error: Record<string, string> };
  return { status: res.status, retryAfter: res.headers.get('retry-after'), error: body.error };
}

test('LEDGER_INDEX (no such committed state) is 404 with its code and hint, on every route', async () => {
  answer = 'LEDGER_INDEX';
  for (const path of ['/v1/receipt?txid=1.5', '/v1/log/consistency?from=1&to=2']) {
    const { status, retryAfter, error } = await errorOf(path);
    assert.equal(status, 404, path);
    assert.equal(retryAfter, null, path);
    assert.deepEqual(error, {
      code: 'LEDGER_INDEX',
      message: 'the stub enclave answers LEDGER_INDEX',
      hint: ERROR_CODES.LEDGER_INDEX,
    });
  }
});

test('the status of each code docs/node-api.md lists, and 503 for any other', async () => {
  // docs/node-api.md "Errors", row by row (a sample of the deploy rows), and two unlisted codes.
  const table: [ErrorCode, number, retryAfter: string | null][] = [
    ['INVALID_INPUT', 400, null],
    ['ENCODING', 400, null],
    ['LOG_FORMAT', 400, null],
    ['NOT_FOUND', 404, null],
    ['UNKNOWN_TRANSACTION', 404, null],
    ['LEDGER_INDEX', 404, null],
    ['RECEIPT_NOT_READY', 409, '1'],
    ['REQUEST_TOO_LARGE', 413, null],
    ['APP_NOT_FOUND', 404, null],
    ['APP_DEPLOY_STALE', 409, null],
    ['ENCLAVE_FAILED', 503, null],
    ['LEDGER_INTEGRITY', 503, null],
  ];
  for (const [code, want, wantRetry] of table) {
    answer = code;
    const { status, retryAfter, error } = await errorOf('/v1/receipt?txid=1.5');
    assert.equal(status, want, code);
    assert.equal(retryAfter, wantRetry, code);
    assert.equal(error.code, code);
  }
});

test('the route label is one of the fixed routes: an unknown path or an app name never becomes one', async () => {
  // A path is the client's: it may carry an app's name, a key or data (DESIGN.md §2).
  const secret = 'c0ffee'.repeat(8);
  for (const path of [`/v1/apps/app-${secret}`, `/v1/${secret}`, `/${secret}?x=${secret}`]) {
    await (await fetch(`${base}${path}`)).arrayBuffer();
  }
  const text = await metrics.registry.metrics();
  assert.ok(!text.includes(secret), 'a path in /metrics');
  assert.match(text, /cloister_http_requests_total\{route="\/v1\/apps\/\{name\}",status="\d+"\} 1/);
  assert.match(text, /cloister_http_requests_total\{route="other",status="404"\} 2/);
  for (const m of text.matchAll(/route="([^"]*)"/g)) {
    assert.ok((ROUTES as readonly string[]).includes(m[1] as string), m[1]);
  }
});

test('a stopping node answers with Connection: close and ends the connection (no kept-alive socket holds its stop)', async () => {
  const agent = new Agent({ keepAlive: true, maxSockets: 1 });
  const ask = () =>
    new Promise<{ connection: string | undefined; body: string; closed: Promise<void> }>(
      (resolve, reject) => {
        get(`${base}/v1/health`, { agent }, (res) => {
          const socket = res.socket;
          const closed = new Promise<void>((r) => socket.once('close', () => r()));
          let body = '';
          res.on('data', (d) => {
            body += d;
          });
          res.on('end', () => resolve({ connection: res.headers.connection, body, closed }));
        }).on('error', reject);
      },
    );
  try {
    const running = await ask();
    assert.equal(running.connection, 'keep-alive');
    assert.equal(JSON.parse(running.body).status, 'ok');
    health = 'stopping';
    const stopping = await ask();
    assert.equal(stopping.connection, 'close');
    assert.equal(JSON.parse(stopping.body).status, 'stopping');
    await stopping.closed; // the server ended it: nothing is left open for its close to wait on
  } finally {
    health = 'ok';
    agent.destroy();
  }
});

test('an upload the client aborts is logged at debug, never as the node error it is not', async () => {
  const lines: { level: number; msg: string; event?: string }[] = [];
  const out = new PassThrough();
  let text = '';
  out.on('data', (c: Buffer) => {
    text += c.toString('utf8');
    for (let i = text.indexOf('\n'); i >= 0; i = text.indexOf('\n')) {
      lines.push(JSON.parse(text.slice(0, i)));
      text = text.slice(i + 1);
    }
  });
  const s = stubServer(createNodeMetrics(), createLogger({ level: 'debug', destination: out }));

  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  try {
    const { port } = s.address() as AddressInfo;
    // A body announced at 1000 bytes, 3 sent, then the socket closed: the read fails.
    await new Promise<void>((resolve) => {
      const c = createConnection(port, '127.0.0.1', () => {
        c.write(
          'POST /v1/apps HTTP/1.1\r\nHost: x\r\nContent-Type: application/cbor\r\nContent-Length: 1000\r\n\r\nabc',
        );
        setTimeout(() => c.destroy(), 100);
      });
      c.on('close', () => resolve());
      c.on('error', () => {});
    });
    for (let i = 0; i < 50 && !lines.some((l) => l.event === 'http.request-aborted'); i++) {
      await new Promise((r) => setTimeout(r, 20));
    }
    assert.deepEqual(
      lines.filter((l) => l.level >= 40),
      [],
      'no warning or error for a client that went away',
    );
    assert.ok(
      lines.some((l) => l.level === 20 && l.event === 'http.request-aborted'),
      JSON.stringify(lines),
    );
  } finally {
    await new Promise<void>((r) => s.close(() => r()));
  }
});
