/**
 * The per-address socket caps count a client as the fair share does (shareKeyOf): an IPv6
 * client's whole /64 is one client, for the HTTP server's cap and for the relay's. Loopback has
 * one IPv6 address, so each test makes the server see its sockets from the addresses it names
 * (a listener ahead of the cap's gives the accepted socket that remote address).
 */
import assert from 'node:assert/strict';
import type { IncomingMessage, Server } from 'node:http';
import { createServer } from 'node:http';
import { type AddressInfo, connect as netConnect, type Socket } from 'node:net';
import { after, describe, it } from 'node:test';
import { WebSocket } from 'ws';
import { createHttpServer, DEFAULT_HTTP_LIMITS } from '../src/node/http.js';
import { createLogger } from '../src/node/logger.js';
import { createNodeMetrics } from '../src/node/metrics.js';
import { attachScpRelay } from '../src/node/scp-relay.js';

const silent = createLogger({ level: 'silent' });

/** Makes `server` see its next sockets (event `event`) from `from`, in order. */
function seenFrom(server: Server, event: 'connection' | 'upgrade', from: string[]): void {
  const next = (socket: Socket) =>
    Object.defineProperty(socket, 'remoteAddress', { value: from.shift(), configurable: true });
  if (event === 'connection') server.prependListener('connection', next);
  else server.prependListener('upgrade', (req: IncomingMessage) => next(req.socket as Socket));
}

async function listen(server: Server): Promise<number> {
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return (server.address() as AddressInfo).port;
}

const close = (server: Server) => new Promise<void>((r) => server.close(() => r()));

describe('per-address caps count a client by shareKeyOf', () => {
  const servers: Server[] = [];
  after(() => Promise.all(servers.map(close)));

  it('HTTP: the sockets of one /64 share the cap; another /64 is served', async () => {
    const refuse = async (): Promise<never> => {
      throw new Error('not called');
    };
    const server = createHttpServer({
      metrics: createNodeMetrics(),
      log: silent,
      health: () => ({ status: 'ok', platform: 'simulation' }),
      evidence: refuse,
      status: refuse,
      receipt: refuse,
      consistency: refuse,
      deploy: refuse,
      apps: refuse,
      limits: { ...DEFAULT_HTTP_LIMITS, maxConnectionsPerAddress: 2 },
    });
    servers.push(server);
    seenFrom(server, 'connection', [
      '2001:db8:0:1::a',
      '2001:db8:0:1::b',
      '2001:db8:0:1:ffff::1', // the same /64: the third of its client
      '2001:db8:0:2::a', // another /64
    ]);
    const port = await listen(server);
    const held: Socket[] = [];
    /** Opens a socket, asks for /v1/health unless told to hold it, returns what came back. */
    const ask = (hold = false) =>
      new Promise<string>((resolve, reject) => {
        const s = netConnect(port, '127.0.0.1');
        s.once('error', reject);
        let got = '';
        s.on('data', (d) => {
          got += d;
        });
        s.once('connect', () => {
          if (hold) {
            held.push(s);
            resolve('');
          } else s.write('GET /v1/health HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n');
        });
        s.once('close', () => resolve(got));
      });
    try {
      await ask(true);
      await ask(true);
      assert.match(await ask(), /^HTTP\/1\.1 503[\s\S]*at most 2 connections from one address/);
      assert.match(await ask(), /^HTTP\/1\.1 200/);
    } finally {
      for (const s of held) s.destroy();
    }
  });

  it('the relay: the sockets of one /64 share the cap; another /64 is served', async () => {
    const server = createServer((_req, res) => res.end());
    servers.push(server);
    const relay = attachScpRelay(server, {
      enclave: { open: async () => 1, frame: async () => {}, close: async () => {} },
      metrics: createNodeMetrics(),
      log: silent,
      limits: { maxConnectionsPerAddress: 2 },
    });
    seenFrom(server, 'upgrade', [
      '2001:db8:0:1::a',
      '2001:db8:0:1::b',
      '2001:db8:0:1:ffff::1',
      '2001:db8:0:2::a',
    ]);
    const url = `ws://127.0.0.1:${await listen(server)}/v1/scp`;
    /** Opens a socket: 'open', or the status and body of the refusal. */
    const dial = () =>
      new Promise<{ ws: WebSocket; answer: string }>((resolve) => {
        const ws = new WebSocket(url);
        ws.on('error', () => {});
        ws.once('open', () => resolve({ ws, answer: 'open' }));
        ws.on('unexpected-response', (_req, res) => {
          let body = '';
          res.on('data', (d: Buffer) => {
            body += d;
          });
          res.on('end', () => resolve({ ws, answer: `${res.statusCode} ${body}` }));
        });
      });
    const a = await dial();
    const b = await dial();
    assert.equal(a.answer, 'open');
    assert.equal(b.answer, 'open');
    assert.match((await dial()).answer, /^503 .*SCP_SESSIONS.*at most 2 secure connections/);
    const d = await dial();
    assert.equal(d.answer, 'open');
    relay.close();
    for (const c of [a, b, d]) c.ws.terminate();
  });
});
