/**
 * The relay's close metrics (packages/host/src/node/scp-relay.ts over a fake enclave), label by
 * label: `cloister_scp_closed_total{reason}` counts each socket the relay closes once, under the
 * reason docs/node-api.md lists for it, and never a session the enclave ended (that is
 * `cloister_scp_ended_total{code}`) nor the sockets a stopping node closes.
 */
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, describe, it } from 'node:test';
import { CloisterError, FRAME, MAX_FRAME } from '@cloister/core';
import type { Counter } from 'prom-client';
import { WebSocket } from 'ws';
import { createLogger } from '../src/node/logger.js';
import { createNodeMetrics, metricsExposition, type NodeMetrics } from '../src/node/metrics.js';
import {
  attachScpRelay,
  type ScpEnclave,
  type ScpRelay,
  type ScpRelayLimits,
} from '../src/node/scp-relay.js';

/** The reasons docs/node-api.md lists for `cloister_scp_closed_total`. */
const DOCUMENTED = [
  'text',
  'idle',
  'handshake',
  'backpressure',
  'busy',
  'protocol',
  'enclave',
  'sessions',
];

function fakeEnclave(over: Partial<ScpEnclave> = {}): ScpEnclave {
  let next = 1;
  return {
    open: async () => next++,
    frame: async () => {},
    close: async () => {},
    ...over,
  };
}

interface Served {
  readonly relay: ScpRelay;
  readonly url: string;
  readonly metrics: NodeMetrics;
  stop(): Promise<void>;
}

async function serve(enclave: ScpEnclave, limits: Partial<ScpRelayLimits> = {}): Promise<Served> {
  const server: Server = createServer((_req, res) => res.end());
  const metrics = createNodeMetrics();
  const log = createLogger({ level: 'silent' });
  const relay = attachScpRelay(server, { enclave, metrics, log, limits });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const url = `ws://127.0.0.1:${(server.address() as AddressInfo).port}/v1/scp`;
  let stopped = false;
  return {
    relay,
    url,
    metrics,
    async stop() {
      if (stopped) return;
      stopped = true;
      relay.close();
      await new Promise((r) => server.close(r));
    },
  };
}

function dial(url: string) {
  const ws = new WebSocket(url);
  const closed = new Promise<{ code: number; reason: string }>((r) =>
    ws.on('close', (code, reason) => r({ code, reason: reason.toString() })),
  );
  ws.on('error', () => {});
  const open = new Promise<void>((r) => ws.once('open', () => r()));
  return { ws, closed, open };
}

/** A counter's values by its one label. */
async function byLabel(c: Counter): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (const v of (await c.get()).values) out[String(Object.values(v.labels)[0])] = v.value;
  return out;
}

const until = async (f: () => boolean | Promise<boolean>): Promise<void> => {
  for (let i = 0; i < 200 && !(await f()); i++) await new Promise((r) => setTimeout(r, 10));
  assert.ok(await f());
};

describe('cloister_scp_closed_total: one count per socket the relay closes, by reason', () => {
  const stops: (() => Promise<void>)[] = [];
  /** Every reason counted by the cases below. */
  const seen = new Set<string>();
  after(async () => {
    for (const s of stops) await s();
  });

  /** Serves, runs `drive`, waits for the socket's close; returns the closed and ended counts. */
  async function closedBy(
    drive: (s: Served) => Promise<{ code: number }>,
    enclave: ScpEnclave = fakeEnclave(),
    limits: Partial<ScpRelayLimits> = {},
  ) {
    const s = await serve(enclave, limits);
    stops.push(s.stop);
    const close = await drive(s);
    await until(() => s.relay.connections === 0);
    const closed = await byLabel(s.metrics.scpClosed);
    for (const reason of Object.keys(closed)) seen.add(reason);
    return { close: close.code, closed, ended: await byLabel(s.metrics.scpEnded) };
  }

  it('text: a text message', async () => {
    const r = await closedBy(async (s) => {
      const c = dial(s.url);
      await c.open;
      c.ws.send('not binary');
      return c.closed;
    });
    assert.deepEqual(r, { close: 1003, closed: { text: 1 }, ended: {} });
  });

  it('idle: no message either way for idleMs', async () => {
    const r = await closedBy(async (s) => dial(s.url).closed, fakeEnclave(), { idleMs: 50 });
    assert.deepEqual(r, { close: 1001, closed: { idle: 1 }, ended: {} });
  });

  it('handshake: no CA frame within handshakeMs', async () => {
    const r = await closedBy(
      async (s) => {
        const c = dial(s.url);
        await c.open;
        c.ws.send(Uint8Array.of(FRAME.CH, 0)); // a frame, but not the one that ends the deadline
        return c.closed;
      },
      fakeEnclave(),
      { handshakeMs: 50 },
    );
    assert.deepEqual(r, { close: 1008, closed: { handshake: 1 }, ended: {} });
  });

  it('backpressure: a client that does not read its frames', async () => {
    const r = await closedBy(
      async (s) => {
        const c = dial(s.url);
        await c.open;
        await until(() => s.relay.connections === 1);
        s.relay.send(1, new Uint8Array(2048));
        return c.closed;
      },
      fakeEnclave(),
      { maxBufferedBytes: 1024 },
    );
    assert.deepEqual(r, { close: 1008, closed: { backpressure: 1 }, ended: {} });
  });

  it('busy: frames over what the host holds (maxHeldBytes)', async () => {
    const r = await closedBy(
      async (s) => {
        const c = dial(s.url);
        await c.open;
        for (let i = 0; i < 10; i++) c.ws.send(new Uint8Array(1000).fill(i));
        return c.closed;
      },
      fakeEnclave({ frame: () => new Promise((r) => setTimeout(r, 50)) }),
      { maxInFlightBytes: 1000, maxHeldBytes: 3000 },
    );
    assert.deepEqual(r, { close: 1013, closed: { busy: 1 }, ended: {} });
  });

  it('protocol: a message over the frame cap (ws closes it)', async () => {
    const r = await closedBy(async (s) => {
      const c = dial(s.url);
      await c.open;
      c.ws.send(new Uint8Array(MAX_FRAME + 1));
      return c.closed;
    });
    assert.deepEqual(r, { close: 1009, closed: { protocol: 1 }, ended: {} });
  });

  it('enclave: a failed scp.frame, and a failed scp.open', async () => {
    const frameFails = await closedBy(
      async (s) => {
        const c = dial(s.url);
        await c.open;
        c.ws.send(Uint8Array.of(1));
        return c.closed;
      },
      fakeEnclave({
        frame: async () => {
          throw new CloisterError('ENCLAVE_FAILED', 'gone');
        },
      }),
    );
    assert.deepEqual(frameFails, { close: 1011, closed: { enclave: 1 }, ended: {} });
    const openFails = await closedBy(
      async (s) => dial(s.url).closed,
      fakeEnclave({
        open: async () => {
          throw new CloisterError('ENCLAVE_FAILED', 'gone');
        },
      }),
    );
    assert.deepEqual(openFails, { close: 1011, closed: { enclave: 1 }, ended: {} });
  });

  it('sessions: the enclave has no room for another session', async () => {
    const r = await closedBy(
      async (s) => dial(s.url).closed,
      fakeEnclave({
        open: async () => {
          throw new CloisterError('SCP_SESSIONS', 'full');
        },
      }),
    );
    assert.deepEqual(r, { close: 1013, closed: { sessions: 1 }, ended: {} });
  });

  it('not counted: a session the enclave ended (cloister_scp_ended_total), a stopping node', async () => {
    for (const code of ['OK', 'SCP_RECORD']) {
      const r = await closedBy(async (s) => {
        const c = dial(s.url);
        await c.open;
        await until(() => s.relay.connections === 1);
        s.relay.end(1, code);
        return c.closed;
      });
      assert.deepEqual(r, {
        close: code === 'OK' ? 1000 : 1008,
        closed: {},
        ended: { [code]: 1 },
      });
    }
    const stopping = await closedBy(async (s) => {
      const c = dial(s.url);
      await c.open;
      await until(() => s.relay.connections === 1);
      void s.stop();
      return c.closed;
    });
    assert.deepEqual(stopping, { close: 1001, closed: {}, ended: {} });
  });

  it('every reason docs/node-api.md lists was counted above, and no other', () => {
    assert.deepEqual([...seen].sort(), [...DOCUMENTED].sort());
  });
});

describe('the relay budget gauges', () => {
  it('each shows its own budget, read at scrape time', async () => {
    const metrics = createNodeMetrics();
    metrics.relayBudget.read = () => ({ atEnclave: 111, waiting: 2222, held: 3 });
    const text = await metricsExposition(metrics.registry);
    assert.match(text, /^cloister_scp_enclave_bytes 111$/m);
    assert.match(text, /^cloister_scp_waiting_bytes 2222$/m);
    assert.match(text, /^cloister_scp_held_sockets 3$/m);
    metrics.relayBudget.read = () => ({ atEnclave: 0, waiting: 5, held: 0 });
    const again = await metricsExposition(metrics.registry);
    assert.match(again, /^cloister_scp_enclave_bytes 0$/m);
    assert.match(again, /^cloister_scp_waiting_bytes 5$/m);
    assert.match(again, /^cloister_scp_held_sockets 0$/m);
  });
});
