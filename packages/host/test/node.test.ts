/**
 * The node end to end, in process: HTTP endpoints and their limits, evidence verified with the
 * isomorphic verifier, metrics free of identities, and the actionable start-up errors.
 */
import assert from 'node:assert/strict';
import type { KeyObject } from 'node:crypto';
import {
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { request } from 'node:http';
import { connect, createServer, type Socket } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { encodeCbor, fromBase64, fromHex, toHex, verifyEvidence } from '@cloister/core';
import { createLogger } from '../src/node/logger.js';
import { type NodeOptions, type RunningNode, startNode } from '../src/node/node.js';
import { generateP256, publicKeyBytes } from '../src/platform/p256.js';
import { openLevelStore } from '../src/store/index.js';
import { tempDir, testBuild } from './helpers.js';

const silent = createLogger({ level: 'silent' });

/** A logger at `level` whose lines are kept in `lines`, to assert on what a start logged. */
function capturingLogger(level: string) {
  const lines: string[] = [];
  const destination = { write: (line: string) => lines.push(line) > 0 };
  return {
    lines,
    logger: createLogger({ level, destination: destination as unknown as NodeJS.WritableStream }),
  };
}

function get(url: string, opts: { method?: string; body?: string } = {}) {
  return new Promise<{ status: number; body: string; type: string }>((resolve, reject) => {
    const headers =
      opts.body === undefined ? {} : { 'content-length': Buffer.byteLength(opts.body) };
    const req = request(url, { method: opts.method ?? 'GET', headers, agent: false }, (res) => {
      let body = '';
      res.on('data', (c) => {
        body += c;
      });
      res.on('end', () =>
        resolve({ status: res.statusCode ?? 0, body, type: String(res.headers['content-type']) }),
      );
    });
    req.on('error', reject);
    req.end(opts.body);
  });
}

function openSocket(port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = connect(port, '127.0.0.1', () => resolve(s));
    s.once('error', reject);
  });
}

/** Sends `text` on a new connection and returns all the server wrote before closing (or 2 s). */
async function raw(port: number, text: string): Promise<string> {
  const s = await openSocket(port);
  return new Promise((resolve) => {
    let got = '';
    const done = () => {
      s.destroy();
      resolve(got);
    };
    s.on('data', (d) => {
      got += d.toString('latin1');
      if (/\r\n\r\n[\s\S]*\}\s*$/.test(got)) done();
    });
    s.on('close', done);
    setTimeout(done, 2000);
    s.write(text);
  });
}

describe('node', () => {
  let node: RunningNode;
  let measurement: string;
  let platformDir: string;
  let enclaveDir: string;

  before(async () => {
    const build = await testBuild();
    measurement = toHex(build.measurement);
    enclaveDir = build.outDir;
    platformDir = join(tempDir(), 'platform');
    node = await startNode({
      dataDir: join(tempDir(), 'data'),
      platformDir,
      enclaveDir,
      port: 0,
      logger: silent,
    });
  });
  after(() => node?.close());

  it('answers health', async () => {
    const r = await get(`${node.url}/v1/health`);
    assert.equal(r.status, 200);
    assert.deepEqual(JSON.parse(r.body), { status: 'ok', platform: 'simulation' });
  });

  it('serves evidence that verifies for the nonce asked', async () => {
    const nonce = crypto.getRandomValues(new Uint8Array(64));
    const r = await get(`${node.url}/v1/evidence?nonce=${toHex(nonce)}`);
    assert.equal(r.status, 200);
    const body = JSON.parse(r.body) as { evidence: string; identityPublicKey: string };
    const identityPublicKey = fromHex(body.identityPublicKey);
    assert.deepEqual(identityPublicKey, node.identityPublicKey);
    const v = await verifyEvidence(fromBase64(body.evidence), {
      nonce,
      identityPublicKey,
      constraint: `C:${measurement} SEC:INSECURE`,
    });
    assert.equal(v.platform, 'simulation');
    assert.equal(v.secure, false);
    await assert.rejects(
      verifyEvidence(fromBase64(body.evidence), {
        nonce: new Uint8Array(64),
        identityPublicKey,
        constraint: `C:${measurement} SEC:INSECURE`,
      }),
      { code: 'NONCE_MISMATCH' },
    );
  });

  it('refuses bad requests with a named error and keeps serving', async () => {
    const cases: [string, { method?: string; body?: string }, number, string][] = [
      [`/v1/evidence?nonce=${'ab'.repeat(65)}`, {}, 400, 'INVALID_INPUT'],
      ['/v1/evidence?nonce=xyz', {}, 400, 'ENCODING'],
      ['/v1/evidence', {}, 400, 'INVALID_INPUT'],
      ['/v1/evidence?nonce=00&nonce=01', {}, 400, 'INVALID_INPUT'],
      ['/v1/health', { method: 'POST' }, 405, 'INVALID_INPUT'],
      // A deploy body that is not CBOR by its type is refused before it is read.
      ['/v1/apps', { method: 'POST', body: '{}' }, 400, 'INVALID_INPUT'],
      ['/v1/health', { method: 'GET', body: 'x'.repeat(10) }, 413, 'REQUEST_TOO_LARGE'],
      [`/v1/health?${'a'.repeat(3000)}`, {}, 414, 'REQUEST_TOO_LARGE'],
      ['/v1/apps/-x', {}, 400, 'INVALID_INPUT'],
      [`/v1/apps/${'a'.repeat(65)}`, {}, 400, 'INVALID_INPUT'],
      ['/v1/nothing', {}, 404, 'NOT_FOUND'],
      ['/', {}, 404, 'NOT_FOUND'],
    ];
    for (const [path, opts, status, code] of cases) {
      const r = await get(`${node.url}${path}`, opts);
      assert.equal(r.status, status, path);
      const err = (JSON.parse(r.body) as { error: { code: string; hint: string } }).error;
      assert.equal(err.code, code, path);
      assert.ok(err.hint.length > 10, 'every error carries a next step');
    }
    // A body sent in chunks (no Content-Length) is a body too.
    const chunked = await raw(
      Number(new URL(node.url).port),
      'GET /v1/health HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n',
    );
    assert.match(chunked, /^HTTP\/1\.1 413/);
    assert.match(
      chunked,
      /"code":"REQUEST_TOO_LARGE","message":"requests to this node carry no body"/,
    );
    // Someone opening the node's URL in a browser is told where to look instead.
    assert.match((await get(`${node.url}/`)).body, /this is a Cloister node: .*cloister console/);
    assert.equal((await get(`${node.url}/v1/health`)).status, 200);
  });

  it("answers what Node's HTTP parser refuses with the same JSON error, not an empty 400", async () => {
    const port = Number(new URL(node.url).port);
    const cases: [string, RegExp, string][] = [
      ['GARBAGE\r\n\r\n', /^HTTP\/1\.1 400/, 'INVALID_INPUT'],
      [
        'GET /v1/health HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n',
        /^HTTP\/1\.1 400/,
        'INVALID_INPUT',
      ],
      [
        `GET /v1/health HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`,
        /^HTTP\/1\.1 431/,
        'REQUEST_TOO_LARGE',
      ],
    ];
    for (const [request, status, code] of cases) {
      const reply = await raw(port, request);
      assert.match(reply, status, request.slice(0, 40));
      assert.match(reply, /content-type: application\/json/i);
      const body = JSON.parse(reply.slice(reply.indexOf('\r\n\r\n') + 4)) as {
        error: { code: string; hint: string };
      };
      assert.equal(body.error.code, code);
      assert.ok(body.error.hint.length > 10);
    }
    assert.equal((await get(`${node.url}/v1/health`)).status, 200);
  });

  it('answers an absolute-form request target it cannot parse with 400, not 500', async () => {
    const port = Number(new URL(node.url).port);
    const reply = await raw(port, 'GET http://[::1/v1/health HTTP/1.1\r\nHost: x\r\n\r\n');
    assert.match(reply, /^HTTP\/1\.1 400/);
    assert.match(reply, /"code":"INVALID_INPUT"/);
    assert.equal((await get(`${node.url}/v1/health`)).status, 200);
  });

  it('reads at most two deploy bodies at once; a third is 503 NODE_BUSY before its body', async () => {
    const port = Number(new URL(node.url).port);
    const head = (n: number) =>
      `POST /v1/apps HTTP/1.1\r\nHost: x\r\nContent-Type: application/cbor\r\nContent-Length: ${n}\r\n\r\n`;
    // Two uploads that stall after a few bytes of a 1 MB body: each holds a reading slot.
    const stalled = await Promise.all([0, 1].map(() => openSocket(port)));
    for (const s of stalled) s.write(`${head(1_000_000)}abc`);
    // Once a request on a newer connection is answered, the server has parsed the older ones.
    assert.equal((await get(`${node.url}/v1/health`)).status, 200);
    const third = await raw(port, `${head(1_000_000)}abc`);
    assert.match(third, /^HTTP\/1\.1 503/);
    assert.match(third, /retry-after: 1/i);
    assert.match(third, /"code":"NODE_BUSY"/);
    for (const s of stalled) s.destroy();
    await new Promise((r) => setTimeout(r, 100));
    // The slots are free again: a (bad) upload is read and refused for what it is.
    const next = await raw(port, `${head(3)}abc`);
    assert.match(next, /^HTTP\/1\.1 400/);
  });

  it('refuses a deploy body that is not exactly CBOR {request, module}', async () => {
    const body = (entries: [string, unknown][]) =>
      fetch(`${node.url}/v1/apps`, {
        method: 'POST',
        headers: { 'content-type': 'application/cbor' },
        body: encodeCbor(new Map(entries)),
      });
    const two: [string, unknown][] = [
      ['request', new Uint8Array(4)],
      ['module', new Uint8Array(4)],
    ];
    for (const entries of [[...two, ['extra', 1]], two.slice(0, 1), [two[0], ['module', 'x']]]) {
      const r = await body(entries as [string, unknown][]);
      assert.equal(r.status, 400);
      const err = ((await r.json()) as { error: { code: string; message: string } }).error;
      assert.equal(err.code, 'ENCODING');
      assert.match(
        err.message,
        /^the body of POST \/v1\/apps is CBOR \{"request": bstr, "module": bstr\}/,
      );
    }
  });

  it('refuses a deploy body sent in chunks once it passes maxDeployBytes', async () => {
    // No Content-Length to refuse up front: the count of bytes read is the cap.
    const s = await openSocket(Number(new URL(node.url).port));
    s.on('error', () => {}); // the node may close before the last chunk is written
    const reply = new Promise<string>((resolve) => {
      let got = '';
      s.on('data', (d) => {
        got += d.toString('latin1');
      });
      s.on('close', () => resolve(got));
    });
    s.write(
      'POST /v1/apps HTTP/1.1\r\nHost: x\r\nContent-Type: application/cbor\r\nTransfer-Encoding: chunked\r\n\r\n',
    );
    const chunk = Buffer.alloc(1 << 20);
    for (let i = 0; i < 9 && !s.destroyed; i++)
      s.write(`100000\r\n${chunk.toString('latin1')}\r\n`, 'latin1');
    if (!s.destroyed) s.end('0\r\n\r\n');
    const got = await reply;
    assert.match(got, /^HTTP\/1\.1 413/);
    assert.match(
      got,
      /"code":"REQUEST_TOO_LARGE","message":"a deploy body is at most 8454144 bytes/,
    );
    assert.equal((await get(`${node.url}/v1/health`)).status, 200);
  });

  it('refuses a deploy body whose declared length passes maxDeployBytes before any of it arrives', async () => {
    // Nothing after the headers: a node that waited for the body would hold the upload slot for
    // as long as the client likes. The answer must come from the Content-Length alone.
    const s = await openSocket(Number(new URL(node.url).port));
    s.on('error', () => {});
    const reply = new Promise<string>((resolve) => {
      let got = '';
      s.on('data', (d) => {
        got += d.toString('latin1');
        if (/\r\n\r\n[\s\S]*\}\n/.test(got)) resolve(got);
      });
      s.on('close', () => resolve(got));
    });
    s.write(
      'POST /v1/apps HTTP/1.1\r\nHost: x\r\nContent-Type: application/cbor\r\nContent-Length: 10000000000\r\n\r\n',
    );
    const got = await reply;
    s.destroy();
    assert.match(got, /^HTTP\/1\.1 413/);
    assert.match(
      got,
      /"code":"REQUEST_TOO_LARGE","message":"a deploy body is at most 8454144 bytes/,
    );
    assert.equal((await get(`${node.url}/v1/health`)).status, 200);
  });

  it('serves a GET asking to upgrade to another protocol (h2c) as plain HTTP/1.1', async () => {
    const port = Number(new URL(node.url).port);
    const req = (method: string, path: string) =>
      `${method} ${path} HTTP/1.1\r\nhost: x\r\nconnection: Upgrade, HTTP2-Settings\r\nupgrade: h2c\r\nhttp2-settings: AAMAAABkAARAAAAAAAIAAAAA\r\n\r\n`;
    // What `curl --http2 http://…/v1/evidence` sends: answered as if it had no Upgrade header.
    const got = await raw(port, req('GET', '/v1/evidence?nonce=00'));
    assert.match(got, /^HTTP\/1\.1 200 /);
    assert.match(got, /"evidence"/);
    const missing = await raw(port, req('GET', '/v1/nothing'));
    assert.match(missing, /^HTTP\/1\.1 404 /);
    assert.match(missing, /NOT_FOUND/);
    // A body would not reach the handler after an upgrade: refused by name.
    const post = await raw(port, req('POST', '/v1/apps'));
    assert.match(post, /^HTTP\/1\.1 400 /);
    assert.match(post, /upgrades only to WebSocket/);
    // The node still serves.
    assert.equal((await get(`${node.url}/v1/evidence?nonce=00`)).status, 200);
  });

  it('answers in JSON what Node or ws would refuse their own way: CONNECT, no Host, bad upgrades; routes what the URL parser normalises', async () => {
    const port = Number(new URL(node.url).port);
    const json = (text: string, status: number, code: string, message: RegExp) => {
      assert.match(text, new RegExp(`^HTTP/1\\.1 ${status} `), text);
      assert.match(text, /content-type: application\/json/i, text);
      const body = JSON.parse(text.slice(text.indexOf('\r\n\r\n') + 4)) as {
        error: { code: string; message: string };
      };
      assert.equal(body.error.code, code, text);
      assert.match(body.error.message, message);
    };
    // CONNECT: closed with no answer before.
    json(
      await raw(port, 'CONNECT 127.0.0.1:443 HTTP/1.1\r\nhost: x\r\n\r\n'),
      405,
      'INVALID_INPUT',
      /method CONNECT is not allowed/,
    );
    // HTTP/1.1 without Host: Node's empty 400 before; nothing here needs the header.
    assert.match(
      await raw(port, 'GET /v1/health HTTP/1.1\r\n\r\n'),
      /^HTTP\/1\.1 200 [\s\S]*"status":"ok"/,
    );
    // An absolute-form target is routed by its path (it was 404), and dot segments are resolved
    // before routing, so the route and the app name come from the same path.
    assert.match(
      await raw(port, `GET http://127.0.0.1:${port}/v1/health HTTP/1.1\r\nhost: x\r\n\r\n`),
      /^HTTP\/1\.1 200 /,
    );
    json(
      await raw(port, 'GET /v1/apps/../../abcdefghtoken HTTP/1.1\r\nhost: x\r\n\r\n'),
      404,
      'NOT_FOUND',
      /no such endpoint/,
    );
    // WebSocket upgrades ws would refuse with an HTML page, or accept past the URL cap.
    const ws = (method: string, target: string, key = 'dGhlIHNhbXBsZSBub25jZQ==', version = '13') =>
      `${method} ${target} HTTP/1.1\r\nhost: x\r\nconnection: Upgrade\r\nupgrade: websocket\r\nsec-websocket-version: ${version}\r\nsec-websocket-key: ${key}\r\n\r\n`;
    json(
      await raw(port, ws('POST', '/v1/scp')),
      405,
      'INVALID_INPUT',
      /upgrade is a GET, not POST/,
    );
    json(await raw(port, ws('GET', '/v1/scp', 'abc')), 400, 'INVALID_INPUT', /Sec-WebSocket-Key/);
    const version = await raw(port, ws('GET', '/v1/scp', undefined, '8'));
    json(version, 426, 'INVALID_INPUT', /version 13/);
    assert.match(
      version,
      /\r\nsec-websocket-version: 13\r\n/i,
      'RFC 6455 §4.4: the versions spoken',
    );
    json(
      await raw(port, ws('GET', `/v1/scp?pad=${'a'.repeat(3000)}`)),
      414,
      'REQUEST_TOO_LARGE',
      /longer than 2048 bytes/,
    );
    // A good upgrade is still accepted, and the node still serves.
    assert.match(await raw(port, ws('GET', '/v1/scp')), /^HTTP\/1\.1 101 /);
    assert.equal((await get(`${node.url}/v1/health`)).status, 200);
  });

  it('closes the sockets it answered outside WebSocket, whatever the peer does', async () => {
    // Nothing reads an upgraded socket, so a peer's FIN or reset goes unseen: the node must
    // close each such socket itself once its answer is out, or they pile up (file descriptors).
    const port = Number(new URL(node.url).port);
    // Open socket descriptors of this process (Linux), where the node runs.
    const sockets = () =>
      readdirSync('/proc/self/fd').filter((fd) => {
        try {
          return readlinkSync(`/proc/self/fd/${fd}`).startsWith('socket:');
        } catch {
          return false;
        }
      });
    const before = sockets().length;
    const upgrade = (method: string, path: string, to: string) =>
      `${method} ${path} HTTP/1.1\r\nhost: x\r\nconnection: Upgrade\r\nupgrade: ${to}\r\n\r\n`;
    // Peers that read their answer and keep their own side open (half-open), as a client
    // exhausting the node's descriptors would.
    const peers: Socket[] = [];
    for (const text of [
      upgrade('GET', '/v1/health', 'h2c'), // served as HTTP/1.1
      upgrade('POST', '/v1/apps', 'h2c'), // 400
      `${upgrade('GET', '/v1/other', 'websocket').replace('\r\n\r\n', '')}\r\nsec-websocket-version: 13\r\nsec-websocket-key: ${'a'.repeat(22)}==\r\n\r\n`, // 404
    ]) {
      for (let i = 0; i < 5; i++) {
        const s = connect({ port, host: '127.0.0.1', allowHalfOpen: true });
        peers.push(s);
        await new Promise<void>((resolve) => {
          s.on('data', () => {});
          s.once('end', () => resolve()); // the node's FIN, after its answer
          s.write(text);
        });
      }
    }
    // Only the peers' sides stay open: every node side is closed (polled, not timed).
    const want = before + peers.length;
    for (let i = 0; i < 200 && sockets().length > want; i++) {
      await new Promise((r) => setTimeout(r, 10));
    }
    const left = sockets().length;
    for (const s of peers) s.destroy();
    // At most: a socket of an earlier test (keep-alive) may have closed meanwhile too.
    assert.ok(left <= want, `${left - before - peers.length} node sides still open`);
  });

  it('exposes metrics without keys, nonces or identities', async () => {
    const nonce = 'c0ffee'.repeat(10);
    await get(`${node.url}/v1/evidence?nonce=${nonce}`);
    const r = await get(`${node.url}/metrics`);
    assert.equal(r.status, 200);
    assert.match(r.body, /cloister_http_requests_total\{route="\/v1\/evidence",status="200"\}/);
    assert.match(r.body, /cloister_enclave_calls_total/);
    // The process defaults carry the project's prefix once (not cloister_process_process_*).
    assert.match(r.body, /^cloister_process_cpu_user_seconds_total /m);
    assert.match(r.body, /^cloister_nodejs_eventloop_lag_seconds /m);
    assert.ok(!r.body.includes('process_process_'));
    assert.ok(!r.body.includes(nonce));
    assert.ok(!r.body.includes(toHex(node.identityPublicKey)));
    assert.ok(!r.body.includes(node.nodeId));
    // Clean text: no blank line between families (prom-client put one after each, dozens in
    // all), every line a HELP, a TYPE or a sample, and one newline at the end.
    assert.ok(!r.body.includes('\n\n'), 'a blank line in /metrics');
    assert.ok(r.body.endsWith('\n'));
    for (const l of r.body.slice(0, -1).split('\n')) {
      assert.match(l, /^(# (HELP|TYPE) cloister_\w+ .*|cloister_\w+(\{.*\})? \S+)$/, l);
    }
    // Rendered at most once a second: a scrape right after gets the same text, though the first
    // scrape's own request was counted meanwhile (a flood of scrapes cannot take the event loop).
    const again = await get(`${node.url}/metrics`);
    assert.equal(again.body, r.body);
  });

  it('names a port in use, before it creates a service or starts an enclave', async () => {
    const port = Number(new URL(node.url).port);
    const dataDir = join(tempDir(), 'd');
    const { logger, lines } = capturingLogger('trace');
    await assert.rejects(startNode({ dataDir, platformDir, enclaveDir, port, logger }), {
      code: 'PORT_IN_USE',
    });
    // A start that created its service and then failed to listen left a service no one was told
    // about (the next start opened it silently): nothing is written, nothing started.
    assert.throws(() => readdirSync(dataDir), { code: 'ENOENT' });
    assert.deepEqual(lines, []);
    // The address is free again for a node that can have it.
    const again = await startNode({ dataDir, platformDir, enclaveDir, port: 0, logger: silent });
    await again.close();
  });

  it('a connection held open while it starts does not hold up the start', async () => {
    // The reservation accepted connections and kept them; its close() waited for each, so any
    // peer (a health probe with no timeout) could stop a start after boot had written a service.
    const probe = createServer();
    await new Promise<void>((r) => probe.listen(0, '127.0.0.1', r));
    const port = (probe.address() as { port: number }).port;
    await new Promise((r) => probe.close(r));
    const dataDir = join(tempDir(), 'held');
    const starting = startNode({ dataDir, platformDir, enclaveDir, port, logger: silent });
    const held: Socket[] = [];
    let up = false;
    const connector = (async () => {
      while (!up && held.length < 50) {
        const s = connect(port, '127.0.0.1');
        s.on('error', () => {});
        held.push(s);
        await new Promise((r) => setTimeout(r, 20));
      }
    })();
    let timer: NodeJS.Timeout | undefined;
    try {
      const n = await Promise.race([
        starting,
        new Promise<never>((_, reject) => {
          timer = setTimeout(
            () => reject(new Error('the start hung on a held connection')),
            30_000,
          );
        }),
      ]);
      up = true;
      await n.close();
    } finally {
      up = true;
      clearTimeout(timer);
      await connector;
      for (const s of held) s.destroy();
    }
    assert.ok(held.length > 0);
  });

  it('a start that fails after its enclave started logs no fatal line for its exit', async () => {
    const dataDir = join(tempDir(), 'key-mismatch');
    const key = (k: KeyObject) => publicKeyBytes(k);
    const first = await startNode({
      dataDir,
      platformDir,
      enclaveDir,
      port: 0,
      logger: silent,
      operatorPublicKey: key(generateP256()),
    });
    await first.close();
    const { logger, lines } = capturingLogger('info');
    await assert.rejects(
      startNode({
        dataDir,
        platformDir,
        enclaveDir,
        port: 0,
        logger,
        operatorPublicKey: key(generateP256()),
      }),
      { code: 'OPERATOR_KEY_MISMATCH' },
    );
    assert.ok(lines.length > 0, 'the start logged its progress');
    assert.deepEqual(
      lines.filter((l) => /"level":60/.test(l)),
      [],
      'the stop of the failed start is not reported as the enclave failing',
    );
    // The enclave's events are said in words, the fixed name kept in `event`.
    const events = lines.map((l) => JSON.parse(l) as { event?: string; msg: string });
    assert.ok(
      events.some(
        (l) =>
          l.event === 'enclave.started.existing-identity' &&
          l.msg === 'the enclave started with its sealed node identity',
      ),
      lines.join('\n'),
    );
  });

  it('names a host that is not an address of this machine, before it creates anything', async () => {
    const dataDir = join(tempDir(), 'bad-host');
    await assert.rejects(
      startNode({ dataDir, platformDir, enclaveDir, port: 0, host: '192.0.2.1', logger: silent }),
      (e: unknown) =>
        (e as { code?: string }).code === 'INVALID_INPUT' &&
        /no such address on this machine/.test((e as Error).message),
    );
    assert.throws(() => readdirSync(dataDir), { code: 'ENOENT' });
  });

  it('refuses a second node on the same data directory', async () => {
    const dataDir = join(tempDir(), 'shared');
    const a = await startNode({ dataDir, platformDir, enclaveDir, port: 0, logger: silent });
    try {
      await assert.rejects(
        startNode({ dataDir, platformDir, enclaveDir, port: 0, logger: silent }),
        {
          code: 'DATA_DIR_LOCKED',
        },
      );
    } finally {
      await a.close();
    }
  });

  it('names an unusable data directory', async () => {
    const file = join(tempDir(), 'a-file');
    writeFileSync(file, 'not a directory');
    await assert.rejects(
      startNode({ dataDir: join(file, 'data'), platformDir, enclaveDir, port: 0, logger: silent }),
      { code: 'DATA_DIR' },
    );
  });

  it('refuses a platform directory inside the data directory', async () => {
    const dataDir = join(tempDir(), 'data');
    await assert.rejects(
      startNode({
        dataDir,
        platformDir: join(dataDir, 'platform'),
        enclaveDir,
        port: 0,
        logger: silent,
      }),
      { code: 'PLATFORM_DIR' },
    );
  });

  it('refuses a platform directory that is a symlink into the data directory', async () => {
    const dataDir = join(tempDir(), 'data-link');
    mkdirSync(join(dataDir, 'platform'), { recursive: true });
    const link = join(tempDir(), 'platform-link');
    symlinkSync(join(dataDir, 'platform'), link);
    await assert.rejects(
      startNode({ dataDir, platformDir: link, enclaveDir, port: 0, logger: silent }),
      { code: 'PLATFORM_DIR' },
    );
  });

  it('names a node.json that is not a JSON object (null, an array)', async () => {
    for (const text of ['null', '[]', '"x"']) {
      const dataDir = join(tempDir(), 'bad-node-json');
      mkdirSync(dataDir, { recursive: true });
      writeFileSync(join(dataDir, 'node.json'), text);
      await assert.rejects(
        startNode({ dataDir, platformDir, enclaveDir, port: 0, logger: silent }),
        (e: unknown) =>
          (e as { code?: string }).code === 'DATA_DIR' &&
          /not a JSON object|format/.test((e as Error).message),
        text,
      );
    }
  });

  it('refuses a data directory whose node.json is gone but whose sealed state is not, writing nothing', async () => {
    const dataDir = join(tempDir(), 'lost-node-json');
    const n = await startNode({ dataDir, platformDir, enclaveDir, port: 0, logger: silent });
    await n.close();
    const original = readFileSync(join(dataDir, 'node.json'));
    rmSync(join(dataDir, 'node.json'));
    await assert.rejects(
      startNode({ dataDir, platformDir, enclaveDir, port: 0, logger: silent }),
      (e: unknown) =>
        (e as { code?: string }).code === 'DATA_DIR' &&
        /node\.json is missing, but .* holds a node's sealed state .*restore node\.json from backup \(nothing was written\)/.test(
          (e as Error).message,
        ),
    );
    assert.equal(existsSync(join(dataDir, 'node.json')), false, 'no new node id was written');
    // Restored, the node starts as itself.
    writeFileSync(join(dataDir, 'node.json'), original);
    const again = await startNode({ dataDir, platformDir, enclaveDir, port: 0, logger: silent });
    await again.close();
  });

  it('sets aside the store of a first start killed before service.sealed was written, and starts anew', async () => {
    const dataDir = join(tempDir(), 'interrupted');
    const n = await startNode({ dataDir, platformDir, enclaveDir, port: 0, logger: silent });
    const first = n.serviceIdentity;
    await n.close();
    // What a kill between the store's genesis and service.sealed leaves: a log of the genesis
    // entry and its signature, no sealed service state (the node never served).
    rmSync(join(dataDir, 'sealed', 'service.sealed'));
    const again = await startNode({ dataDir, platformDir, enclaveDir, port: 0, logger: silent });
    try {
      assert.notDeepEqual(again.serviceIdentity, first, 'a new service');
      const aside = readdirSync(dataDir).filter((f) => f.startsWith('store.interrupted-'));
      assert.equal(aside.length, 1, 'the old store is kept, renamed');
    } finally {
      await again.close();
    }
  });

  it('refuses a missing store beside service.sealed by name, creating nothing', async () => {
    const dataDir = join(tempDir(), 'no-store');
    const n = await startNode({ dataDir, platformDir, enclaveDir, port: 0, logger: silent });
    await n.close();
    rmSync(join(dataDir, 'store'), { recursive: true });
    await assert.rejects(
      startNode({ dataDir, platformDir, enclaveDir, port: 0, logger: silent }),
      (e: unknown) =>
        (e as { code?: string }).code === 'DATA_DIR' &&
        /store is missing but .*service\.sealed is there: restore the store directory/.test(
          (e as Error).message,
        ),
    );
    assert.equal(existsSync(join(dataDir, 'store')), false, 'no empty store was made');
  });

  /** The error a start with `opts` fails with, or 'started' (the node then closed at once). */
  async function startFailure(opts: Partial<NodeOptions>): Promise<unknown> {
    let n: RunningNode;
    try {
      n = await startNode({
        dataDir: '',
        platformDir,
        enclaveDir,
        port: 0,
        logger: silent,
        ...opts,
      });
    } catch (e) {
      return e;
    }
    await n.close();
    return 'started';
  }

  /** The code of the error a start on these directories fails with, or 'started'. */
  async function startOutcome(dataDir: string, platform: string): Promise<string | undefined> {
    const e = await startFailure({ dataDir, platformDir: platform });
    return e === 'started' ? e : (e as { code?: string }).code;
  }

  it('refuses a data directory that is, or is inside, the platform directory, also through a symlink', async () => {
    const outer = join(tempDir(), 'platform-outer');
    mkdirSync(outer, { recursive: true });
    const link = join(tempDir(), 'link-to-platform');
    symlinkSync(outer, link);
    assert.equal(await startOutcome(join(outer, 'data'), outer), 'PLATFORM_DIR', 'inside');
    assert.equal(await startOutcome(outer, outer), 'PLATFORM_DIR', 'the same directory');
    assert.equal(await startOutcome(join(link, 'data'), outer), 'PLATFORM_DIR', 'via a symlink');
    assert.deepEqual(readdirSync(outer), [], 'nothing was created in the platform directory');
  });

  it('starts with a platform directory beside the data directory whose name only shares a prefix', async () => {
    const parent = tempDir();
    assert.equal(
      await startOutcome(join(parent, 'data'), join(parent, 'data-platform')),
      'started',
    );
  });

  it('refuses an empty store beside service.sealed by name', async () => {
    const dataDir = join(tempDir(), 'emptied-store');
    const n = await startNode({ dataDir, platformDir, enclaveDir, port: 0, logger: silent });
    await n.close();
    rmSync(join(dataDir, 'store'), { recursive: true });
    await (await openLevelStore(join(dataDir, 'store'))).close(); // a new, empty LevelDB
    await assert.rejects(
      startNode({ dataDir, platformDir, enclaveDir, port: 0, logger: silent }),
      (e: unknown) =>
        (e as { code?: string }).code === 'DATA_DIR' &&
        /store is empty but .*service\.sealed is there: restore the store directory/.test(
          (e as Error).message,
        ),
    );
    // The refused start closed the store it opened: the directory opens again in this process.
    await (await openLevelStore(join(dataDir, 'store'))).close();
  });

  it('refuses a store that lost service.sealed once the log holds entry 3 (the first after genesis), setting nothing aside', async () => {
    const dataDir = join(tempDir(), 'entry-3');
    const operator = publicKeyBytes(generateP256());
    // Genesis (1), its signature (2), the operator key recorded (3); no timer signs it.
    const n = await startNode({
      dataDir,
      platformDir,
      enclaveDir,
      port: 0,
      logger: silent,
      signIntervalMs: 0,
      operatorPublicKey: operator,
    });
    await n.close();
    rmSync(join(dataDir, 'sealed', 'service.sealed'));
    const e = await startFailure({ dataDir });
    assert.equal((e as { code?: string }).code, 'DATA_DIR', String(e));
    assert.match(
      (e as Error).message,
      /holds a service's log: restore service\.sealed from backup/,
    );
    assert.deepEqual(
      readdirSync(dataDir).filter((f) => f.startsWith('store.interrupted-')),
      [],
      'the store was not set aside',
    );
  });

  it('refuses a sign interval that is not a whole number of milliseconds >= 0', async () => {
    for (const signIntervalMs of [-1, 1.5]) {
      const dataDir = join(tempDir(), 'bad-interval');
      const e = await startFailure({ dataDir, signIntervalMs });
      assert.equal((e as { code?: string }).code, 'INVALID_INPUT', String(signIntervalMs));
      assert.match((e as Error).message, /sign interval must be a whole number/);
      assert.equal(existsSync(dataDir), false, 'nothing was created');
    }
  });

  it('names a missing enclave build', async () => {
    await assert.rejects(
      startNode({
        dataDir: join(tempDir(), 'd'),
        platformDir,
        enclaveDir: join(tempDir(), 'none'),
        port: 0,
        logger: silent,
      }),
      /run `cloister build`/,
    );
  });

  it('stops cleanly when its data directory lock is taken from it (no crash)', async () => {
    const dataDir = join(tempDir(), 'lost');
    const n = await startNode({ dataDir, platformDir, enclaveDir, port: 0, logger: silent });
    // As after a pause: another start took the lock over as stale, failed, and removed it.
    rmSync(join(dataDir, 'lock'), { recursive: true });
    // The node notices at its next lock refresh (every 5 s), logs and closes itself.
    assert.equal(await n.stopped, 'data-dir-lock-lost');
    await assert.rejects(fetch(`${n.url}/v1/health`));
    // Its store was closed properly: the next start opens it.
    const again = await startNode({ dataDir, platformDir, enclaveDir, port: 0, logger: silent });
    await again.close();
  });

  it('does not start serving when its lock is lost while it starts', async () => {
    const dataDir = join(tempDir(), 'lost-at-start');
    // A pause during the start (here: in the log line of the genesis) while another start took
    // the lock over as stale and removed it: the lock's refresh finds it gone meanwhile.
    const hooked = createLogger({
      level: 'info',
      destination: {
        write(line: string) {
          if (line.includes('"service.genesis"')) {
            rmSync(join(dataDir, 'lock'), { recursive: true });
            Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 6000);
          }
          return true;
        },
      } as unknown as NodeJS.WritableStream,
    });
    await assert.rejects(
      startNode({ dataDir, platformDir, enclaveDir, port: 0, logger: hooked }),
      (e: unknown) =>
        (e as { code?: string }).code === 'DATA_DIR_LOCKED' &&
        /lost while the node started/.test((e as Error).message),
    );
    // Everything it opened was closed: the next start works.
    const again = await startNode({ dataDir, platformDir, enclaveDir, port: 0, logger: silent });
    await again.close();
  });

  it('frees its port and directories on close', async () => {
    const dataDir = join(tempDir(), 'closing');
    const n = await startNode({ dataDir, platformDir, enclaveDir, port: 0, logger: silent });
    const port = Number(new URL(n.url).port);
    await n.close();
    await n.close();
    await new Promise<void>((resolve, reject) => {
      const s = createServer().once('error', reject);
      s.listen(port, '127.0.0.1', () => s.close(() => resolve()));
    });
    const again = await startNode({ dataDir, platformDir, enclaveDir, port: 0, logger: silent });
    await again.close();
  });
});
