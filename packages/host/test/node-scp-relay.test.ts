/**
 * The `/v1/scp` relay alone (packages/host/src/node/scp-relay.ts) over a fake enclave: frames go
 * to the enclave in arrival order with one `scp.open` first and `scp.close` last; `scp.send` and
 * `scp.end` reach the right socket; the limits close only the socket concerned, by name: idle
 * (1001), a client that does not read (1008), an enclave refusing a session (1013 SCP_SESSIONS),
 * a failed enclave call (1011); and a stopping relay closes its sockets.
 */
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, describe, it } from 'node:test';
import { CloisterError } from '@cloister/core';
import { WebSocket } from 'ws';
import { createLogger } from '../src/node/logger.js';
import { createNodeMetrics } from '../src/node/metrics.js';
import {
  attachScpRelay,
  RELAY_QUANTUM,
  type ScpEnclave,
  type ScpRelay,
  type ScpRelayLimits,
} from '../src/node/scp-relay.js';

const silent = createLogger({ level: 'silent' });

interface Fake extends ScpEnclave {
  readonly calls: string[];
}

function fakeEnclave(over: Partial<ScpEnclave> = {}): Fake {
  const calls: string[] = [];
  let next = 1;
  return {
    calls,
    open: async () => {
      calls.push('open');
      return next++;
    },
    frame: async (s, f) => {
      // Recorded when issued (the boundary call goes out then); the enclave keeps that order.
      calls.push(`frame ${s} ${f[0]}`);
      await new Promise((r) => setTimeout(r, f[0] === 1 ? 20 : 0));
    },
    close: async (s) => {
      calls.push(`close ${s}`);
    },
    ...over,
  };
}

/**
 * A fake enclave that answers a frame only when the test calls its gate (`gates`, oldest first),
 * recording each frame as `session:firstByte` when it is issued.
 */
function gatedEnclave(): { issued: string[]; gates: (() => void)[]; enclave: Fake } {
  const issued: string[] = [];
  const gates: (() => void)[] = [];
  const enclave = fakeEnclave({
    frame: async (session, f) => {
      issued.push(`${session}:${f[0]}`);
      await new Promise<void>((r) => gates.push(r));
    },
  });
  return { issued, gates, enclave };
}

async function serve(
  enclave: ScpEnclave,
  limits: Partial<ScpRelayLimits> = {},
  metrics = createNodeMetrics(),
) {
  const server: Server = createServer((_req, res) => res.end());
  const relay: ScpRelay = attachScpRelay(server, {
    enclave,
    metrics,
    log: silent,
    limits,
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const url = `ws://127.0.0.1:${(server.address() as AddressInfo).port}/v1/scp`;
  return {
    relay,
    url,
    async stop() {
      relay.close();
      await new Promise((r) => server.close(r));
    },
  };
}

function dial(url: string) {
  const ws = new WebSocket(url);
  const got: Uint8Array[] = [];
  ws.on('message', (d: Buffer) => got.push(new Uint8Array(d)));
  const closed = new Promise<{ code: number; reason: string }>((r) =>
    ws.on('close', (code, reason) => r({ code, reason: reason.toString() })),
  );
  ws.on('error', () => {});
  const open = new Promise<void>((r) => ws.once('open', () => r()));
  return { ws, got, closed, open };
}

const until = async (f: () => boolean) => {
  for (let i = 0; i < 200 && !f(); i++) await new Promise((r) => setTimeout(r, 10));
  assert.ok(f());
};

describe('scp relay', () => {
  const stops: (() => Promise<void>)[] = [];
  after(async () => {
    for (const s of stops) await s();
  });

  it('relays frames in order, both ways, and closes the session after the socket', async () => {
    const enclave = fakeEnclave();
    const s = await serve(enclave);
    stops.push(s.stop);
    const c = dial(s.url);
    await c.open;
    for (const b of [1, 2, 3]) c.ws.send(Uint8Array.of(b));
    await until(() => enclave.calls.length === 4);
    assert.deepEqual(enclave.calls, ['open', 'frame 1 1', 'frame 1 2', 'frame 1 3']);
    s.relay.send(1, Uint8Array.of(9, 9));
    s.relay.send(2, Uint8Array.of(7)); // another session: not this socket
    await until(() => c.got.length === 1);
    assert.deepEqual(c.got, [Uint8Array.of(9, 9)]);
    s.relay.end(1, 'SCP_RECORD');
    assert.deepEqual(await c.closed, { code: 1008, reason: 'SCP_RECORD' });
    await until(() => enclave.calls.includes('close 1'));
    s.relay.end(1, 'OK'); // a late event for a gone session is dropped
    assert.equal(s.relay.connections, 0);
  });

  it('never has more than maxInFlight frames of a socket at the enclave, even from one burst', async () => {
    // Hundreds of small frames arrive in one TCP read: pausing the socket does not stop ws from
    // delivering them, so they wait in the relay, in order, until earlier ones settle.
    let atEnclave = 0;
    let most = 0;
    const order: number[] = [];
    const enclave = fakeEnclave({
      frame: async (_s, f) => {
        order.push((f[0] as number) * 256 + (f[1] as number));
        atEnclave++;
        most = Math.max(most, atEnclave);
        await new Promise((r) => setTimeout(r, 1));
        atEnclave--;
      },
    });
    const s = await serve(enclave, { maxInFlight: 8 });
    stops.push(s.stop);
    const c = dial(s.url);
    await c.open;
    const n = 600;
    // One write of n frames: a masked binary frame each, as a client sends them.
    const parts: Buffer[] = [];
    for (let i = 0; i < n; i++) {
      parts.push(Buffer.from([0x82, 0x82, 0, 0, 0, 0, i >> 8, i & 255]));
    }
    (c.ws as unknown as { _socket: { write(b: Buffer): void } })._socket.write(
      Buffer.concat(parts),
    );
    await until(() => order.length === n);
    assert.deepEqual(
      order,
      Array.from({ length: n }, (_, i) => i),
    );
    assert.ok(most <= 8, `at most 8 frames at the enclave at once, saw ${most}`);
    c.ws.close();
    // A cap that would never send a frame, or let an honest relay meet the enclave's own cap
    // (MAX_QUEUED_FRAMES), is refused when the relay is attached.
    for (const bad of [0, 33, 1.5]) {
      await assert.rejects(
        serve(fakeEnclave(), { maxInFlight: bad }),
        /maxInFlight must be a whole number from 1 to 32/,
      );
    }
  });

  it('never has more than maxInFlightBytes of all sockets at the enclave; every held socket goes on, its frames in order', async () => {
    // Eight sockets each send ten 1000-byte frames at once; the enclave answers slowly. Per
    // socket up to 32 could be in flight (80,000 bytes); the node-wide budget is 5,000.
    let bytes = 0;
    let most = 0;
    const seen = new Map<number, number[]>();
    const enclave = fakeEnclave({
      frame: async (session, f) => {
        const list = seen.get(session) ?? [];
        list.push(f[0] as number);
        seen.set(session, list);
        bytes += f.length;
        most = Math.max(most, bytes);
        await new Promise((r) => setTimeout(r, 2));
        bytes -= f.length;
      },
    });
    const metrics = createNodeMetrics();
    const s = await serve(enclave, { maxInFlightBytes: 5_000 }, metrics);
    stops.push(s.stop);
    const clients = await Promise.all(
      Array.from({ length: 8 }, async () => {
        const c = dial(s.url);
        await c.open;
        return c;
      }),
    );
    for (const c of clients) {
      for (let i = 0; i < 10; i++) c.ws.send(new Uint8Array(1000).fill(i));
    }
    // Meanwhile the budget shows in /metrics: bytes at the enclave, waiting, sockets held.
    await until(() => metrics.relayBudget.read().held > 0);
    const text = await metrics.registry.metrics();
    assert.match(text, /cloister_scp_held_sockets [1-9]/);
    assert.match(text, /cloister_scp_waiting_bytes [1-9]/);
    assert.match(text, /cloister_scp_enclave_bytes [1-9]/);
    await until(() => [...seen.values()].reduce((n, l) => n + l.length, 0) === 80);
    assert.ok(most <= 5_000, `at most 5,000 bytes at the enclave at once, saw ${most}`);
    // The last frames seen settle a moment later (the fake enclave answers after 2 ms).
    await until(() => metrics.relayBudget.read().atEnclave === 0);
    assert.deepEqual(metrics.relayBudget.read(), { atEnclave: 0, waiting: 0, held: 0 });
    // Every socket's frames arrived whole and in order.
    assert.equal(seen.size, 8);
    for (const list of seen.values()) assert.deepEqual(list, [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    // A frame larger than the whole budget still goes, alone, rather than never.
    const big = dial(s.url);
    await big.open;
    big.ws.send(new Uint8Array(6_000).fill(42));
    await until(() => [...seen.values()].some((l) => l.includes(42)));
    for (const c of [...clients, big]) c.ws.close();
  });

  it('waiting sockets take turns: a lone frame is issued after one turn of each flooding socket, and a settling flooder lines up behind it', async () => {
    // The enclave answers a frame only when the test says so (oldest first): the relay's budget
    // of two flood frames stays full, and every issue is recorded in order. A flood frame is one
    // turn's credit, so a flooder sends one frame a turn.
    const { issued, gates, enclave } = gatedEnclave();
    const metrics = createNodeMetrics();
    const big = RELAY_QUANTUM;
    const s = await serve(enclave, { maxInFlight: 2, maxInFlightBytes: 2 * big }, metrics);
    stops.push(s.stop);
    const [f1, f2, h] = [dial(s.url), dial(s.url), dial(s.url)];
    await Promise.all([f1.open, f2.open, h.open]);
    await until(() => enclave.calls.filter((c) => c === 'open').length === 3);
    // Flooder 1: two frames go (its own cap and the budget); four wait in the relay, off the line.
    for (let i = 0; i < 6; i++) f1.ws.send(new Uint8Array(big).fill(i));
    await until(() => issued.length === 2);
    const f1s = Number(issued[0]?.split(':')[0]);
    // Flooder 2 and then a lone honest frame: both wait in the line for the budget.
    for (let i = 0; i < 6; i++) f2.ws.send(new Uint8Array(big).fill(10 + i));
    await until(() => metrics.relayBudget.read().held === 1);
    h.ws.send(Uint8Array.of(99));
    await until(() => metrics.relayBudget.read().held === 2);
    // Frames settle one by one. Flooder 1's own answers must not let it skip the line: it lines
    // up behind the honest socket, which goes after one turn of flooder 2.
    for (let i = 0; i < 20 && !issued.some((x) => x.endsWith(':99')); i++) {
      gates.shift()?.();
      await new Promise((r) => setTimeout(r, 10));
    }
    const tail = issued.map((x) => {
      const [session, first] = x.split(':');
      return Number(session) === f1s ? `f1:${first}` : Number(first) === 99 ? 'h' : `f2:${first}`;
    });
    assert.deepEqual(tail, ['f1:0', 'f1:1', 'f2:10', 'h']);
    // Everything else still goes, each socket's frames in order.
    for (let i = 0; i < 500 && issued.length < 13; i++) {
      gates.shift()?.();
      await new Promise((r) => setTimeout(r, 5));
    }
    const of = (pred: (n: number) => boolean) =>
      issued.map((x) => Number(x.split(':')[1])).filter(pred);
    assert.deepEqual(
      of((n) => n < 10),
      [0, 1, 2, 3, 4, 5],
    );
    assert.deepEqual(
      of((n) => n >= 10 && n < 20),
      [10, 11, 12, 13, 14, 15],
    );
    while (gates.length > 0) gates.shift()?.();
    await until(() => metrics.relayBudget.read().atEnclave === 0);
    for (const c of [f1, f2, h]) c.ws.close();
  });

  it("a flooding socket's own answers do not let it skip the line: it goes behind the sockets waiting", async () => {
    const { issued, gates, enclave } = gatedEnclave();
    const metrics = createNodeMetrics();
    // Room at the enclave for two of the flooder's 2-byte frames; two in flight per socket.
    const s = await serve(enclave, { maxInFlight: 2, maxInFlightBytes: 4 }, metrics);
    stops.push(s.stop);
    const [f, h] = [dial(s.url), dial(s.url)];
    await Promise.all([f.open, h.open]);
    await until(() => enclave.calls.filter((c) => c === 'open').length === 2);
    // 100 frames in one TCP write: two go to the enclave, 98 wait in the relay (its own cap).
    const parts: Buffer[] = [];
    for (let i = 0; i < 100; i++) parts.push(Buffer.from([0x82, 0x82, 0, 0, 0, 0, i, 0]));
    (f.ws as unknown as { _socket: { write(b: Buffer): void } })._socket.write(
      Buffer.concat(parts),
    );
    await until(() => issued.length === 2);
    const fs = issued[0]?.split(':')[0];
    h.ws.send(Uint8Array.of(200)); // the budget is spent: it waits in line
    await until(() => metrics.relayBudget.read().held === 1);
    for (let i = 0; i < 50 && !issued.some((x) => x.endsWith(':200')); i++) {
      gates.shift()?.();
      await new Promise((r) => setTimeout(r, 5));
    }
    // One flooder frame settled and it went to the back: the waiting frame went next.
    assert.deepEqual(issued, [`${fs}:0`, `${fs}:1`, issued[2]]);
    assert.ok(issued[2]?.endsWith(':200'));
    for (let i = 0; i < 500 && issued.length < 101; i++) {
      gates.shift()?.();
      await new Promise((r) => setTimeout(r, 1));
    }
    assert.deepEqual(
      issued.filter((x) => x.startsWith(`${fs}:`)),
      Array.from({ length: 100 }, (_, i) => `${fs}:${i}`),
    );
    while (gates.length > 0) gates.shift()?.();
    await until(() => metrics.relayBudget.read().atEnclave === 0);
    for (const c of [f, h]) c.ws.close();
  });

  it('a socket whose frames would make the host hold more than maxHeldBytes is closed 1013 NODE_BUSY', async () => {
    const seen: number[] = [];
    const enclave = fakeEnclave({
      frame: async (_s, f) => {
        seen.push(f[0] as number);
        await new Promise((r) => setTimeout(r, 50));
      },
    });
    const s = await serve(enclave, { maxInFlightBytes: 1000, maxHeldBytes: 3000 });
    stops.push(s.stop);
    const c = dial(s.url);
    await c.open;
    // One goes to the enclave; three wait in the host (3,000 bytes); the fifth would pass it.
    for (let i = 0; i < 10; i++) c.ws.send(new Uint8Array(1000).fill(i));
    // The close handshake completes: the relay had paused the socket (its frames waiting), and a
    // socket that never reads again sees no close frame and held its slot until ws's 30 s close
    // timer ended it. (5 s: the bound of this check, far from either.)
    const late = new Promise((r) => setTimeout(r, 5000, 'not closed within 5 s').unref());
    assert.deepEqual(await Promise.race([c.closed, late]), { code: 1013, reason: 'NODE_BUSY' });
    await until(() => s.relay.connections === 0);
    // The node serves on: a new socket's frames go through.
    const d = dial(s.url);
    await d.open;
    d.ws.send(Uint8Array.of(77));
    await until(() => seen.includes(77));
    d.ws.close();
  });

  it('one address gets at most maxConnectionsPerAddress sockets; a handshake has handshakeMs to finish', async () => {
    const s = await serve(fakeEnclave(), { maxConnectionsPerAddress: 2, handshakeMs: 150 });
    stops.push(s.stop);
    const a = dial(s.url);
    const b = dial(s.url);
    await Promise.all([a.open, b.open]);
    // A third from the same address is refused by name (an HTTP answer before any upgrade).
    const refused = await new Promise<{ status: number; body: string }>((resolve) => {
      const ws = new WebSocket(s.url);
      ws.on('unexpected-response', (_req, res) => {
        let body = '';
        res.on('data', (d: Buffer) => {
          body += d;
        });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      });
      ws.on('error', () => {});
    });
    assert.equal(refused.status, 503);
    assert.match(refused.body, /SCP_SESSIONS.*at most 2 secure connections from one address/);
    // b finishes its handshake (its CA frame passes); a does not, and is closed at the deadline:
    // its client hello (any frame but CA) does not end the deadline.
    a.ws.send(Uint8Array.of(1, 0));
    b.ws.send(Uint8Array.of(4, 0));
    assert.deepEqual(await a.closed, {
      code: 1008,
      reason: 'the handshake did not finish in time',
    });
    await new Promise((r) => setTimeout(r, 250));
    assert.equal(b.ws.readyState, WebSocket.OPEN, 'a finished handshake has no deadline');
    // a's slot is free again.
    const c = dial(s.url);
    await c.open;
    b.ws.close();
    c.ws.close();
  });

  it('closes an idle socket (1001) and one whose client does not read (1008)', async () => {
    const s = await serve(fakeEnclave(), { idleMs: 100, maxBufferedBytes: 1024 });
    stops.push(s.stop);
    const idle = dial(s.url);
    assert.equal((await idle.closed).code, 1001);
    const slow = dial(s.url);
    await slow.open;
    await until(() => s.relay.connections === 1);
    s.relay.send(2, new Uint8Array(2048));
    assert.equal((await slow.closed).code, 1008);
  });

  it('closes with 1013 SCP_SESSIONS when the enclave is full, 1011 when its call fails', async () => {
    const full = await serve(
      fakeEnclave({
        open: async () => {
          throw new CloisterError('SCP_SESSIONS', 'full');
        },
      }),
    );
    stops.push(full.stop);
    assert.deepEqual(await dial(full.url).closed, { code: 1013, reason: 'SCP_SESSIONS' });
    const broken = await serve(
      fakeEnclave({
        frame: async () => {
          throw new CloisterError('ENCLAVE_FAILED', 'gone');
        },
      }),
    );
    stops.push(broken.stop);
    const c = dial(broken.url);
    await c.open;
    c.ws.send(Uint8Array.of(1));
    assert.equal((await c.closed).code, 1011);
  });

  it('a stopping relay closes its sockets and refuses new ones', async () => {
    const s = await serve(fakeEnclave());
    const c = dial(s.url);
    await c.open;
    const stopped = s.stop();
    assert.equal((await c.closed).code, 1001);
    await stopped;
  });
});
