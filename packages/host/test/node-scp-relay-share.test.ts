/**
 * The relay's fair share (docs/node-api.md "Fair share"): its round robin goes over client
 * addresses first, then over the sockets of one address, and a frame costs its size or the
 * enclave's time it took (RELAY_BYTES_PER_MS), whichever is more, in the turns and in the budget.
 * The enclave here is a fake that answers a frame only when the test says so, and the relay's
 * clock is the test's: a frame "takes" the milliseconds the test adds before letting it settle,
 * so every order below is exact, whatever the machine's load.
 */
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, describe, it } from 'node:test';
import { WebSocket } from 'ws';
import { shareKeyOf } from '../src/node/client-key.js';
import { createLogger } from '../src/node/logger.js';
import { createNodeMetrics, type NodeMetrics } from '../src/node/metrics.js';
import {
  attachScpRelay,
  RELAY_BYTES_PER_MS,
  RELAY_QUANTUM,
  type ScpEnclave,
  type ScpRelayLimits,
} from '../src/node/scp-relay.js';

/** A gated enclave: frames are recorded by their first byte when issued and settle on `next`. */
function gatedEnclave() {
  const issued: number[] = [];
  const gates: { tag: number; go: () => void }[] = [];
  let open = 0;
  let session = 1;
  const enclave: ScpEnclave = {
    open: async () => {
      open++;
      return session++;
    },
    frame: (_s, f) => {
      issued.push(f[0] as number);
      return new Promise<void>((go) => gates.push({ tag: f[0] as number, go }));
    },
    close: async () => {},
  };
  return {
    enclave,
    issued,
    /** At the enclave now. */
    get pending() {
      return gates.length;
    },
    get opened() {
      return open;
    },
    /** Settles the oldest frame at the enclave; returns its tag. */
    next(): number | undefined {
      const g = gates.shift();
      g?.go();
      return g?.tag;
    },
  };
}

async function serve(
  enclave: ScpEnclave,
  limits: Partial<ScpRelayLimits>,
  clock: () => number,
  metrics: NodeMetrics = createNodeMetrics(),
) {
  const server: Server = createServer((_req, res) => res.end());
  const relay = attachScpRelay(server, {
    enclave,
    metrics,
    log: createLogger({ level: 'silent' }),
    limits,
    clock,
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `ws://127.0.0.1:${(server.address() as AddressInfo).port}/v1/scp`,
    metrics,
    async stop() {
      relay.close();
      await new Promise((r) => server.close(r));
    },
  };
}

/** A socket from `from` (any 127/8 address reaches the server's 127.0.0.1 on Linux). */
async function dial(url: string, from: string): Promise<WebSocket> {
  const ws = new WebSocket(url, { localAddress: from });
  ws.on('error', () => {});
  await new Promise<void>((r) => ws.once('open', () => r()));
  return ws;
}

const tick = () => new Promise((r) => setTimeout(r, 5));
const until = async (f: () => boolean) => {
  for (let i = 0; i < 400 && !f(); i++) await tick();
  assert.ok(f());
};

/** The tags `from`, `from + 1`, … (`n` of them). */
const tags = (from: number, n: number): number[] => Array.from({ length: n }, (_, i) => from + i);

/** `n` frames of `size` bytes tagged `tag`, `tag + 1`, … (their first byte). */
function send(ws: WebSocket, tag: number, n: number, size = RELAY_QUANTUM): void {
  for (let i = 0; i < n; i++) ws.send(new Uint8Array(size).fill(tag + i));
}

/**
 * A relay over a gated enclave with room for one turn's bytes at the enclave, the relay's clock
 * `clock`, and one open socket from each of two addresses: x (127.0.0.1) and y (127.0.0.2).
 */
async function twoAddresses(clock: () => number) {
  const e = gatedEnclave();
  const s = await serve(e.enclave, { maxInFlightBytes: RELAY_QUANTUM }, clock);
  const x = await dial(s.url, '127.0.0.1');
  const y = await dial(s.url, '127.0.0.2');
  await until(() => e.opened === 2);
  return { e, s, x, y };
}

/** How `settleInTurn` drives the relay; `issued` is the tags issued so far. */
interface Turns {
  /** How many sockets are in line before each settle, once every frame sent has arrived. */
  readonly lined: (issued: readonly number[]) => number;
  /** The milliseconds the frame tagged `tag` took of the enclave (0 when not given). */
  readonly ms?: (tag: number) => number;
  /** Runs before each settle, before the wait for the line (a socket sends its next frame). */
  readonly before?: (issued: readonly number[]) => void;
}

/**
 * Settles the frames at the enclave one at a time, oldest first, until `n` more were issued,
 * each once the line is as `turns.lined` says (a socket whose read frames ran out is read again
 * and lines up anew) and the relay's clock has moved on by the time the frame took. Returns the
 * `n` tags issued from the call on.
 */
async function settleInTurn(
  relay: { e: ReturnType<typeof gatedEnclave>; s: { metrics: NodeMetrics } },
  clock: { now: number },
  n: number,
  turns: Turns,
): Promise<number[]> {
  const { e, s } = relay;
  const start = e.issued.length;
  while (e.issued.length < start + n) {
    turns.before?.(e.issued);
    await until(() => e.pending > 0 && s.metrics.relayBudget.read().held === turns.lined(e.issued));
    clock.now += turns.ms?.(e.issued[e.issued.length - e.pending] as number) ?? 0;
    e.next();
    await tick();
  }
  return e.issued.slice(start, start + n);
}

/**
 * Two sockets of one address (tags 10.., 20..) and one of another (30..) each send four frames
 * of one turn's credit, in that order, with room at the enclave for one frame: returns the order
 * the relay issued them in, settling them one at a time.
 */
async function threeSockets(
  limits: Partial<ScpRelayLimits>,
  addresses: readonly [string, string, string],
): Promise<number[]> {
  const e = gatedEnclave();
  const s = await serve(e.enclave, { maxInFlightBytes: RELAY_QUANTUM, ...limits }, () => 0);
  const sockets: WebSocket[] = [];
  try {
    for (const a of addresses) sockets.push(await dial(s.url, a));
    await until(() => e.opened === 3);
    for (const [i, ws] of sockets.entries()) {
      send(ws, 10 * (i + 1), 4);
      // The first frame goes at once; every socket after it waits in line, in this order.
      await until(() => s.metrics.relayBudget.read().held === i + 1);
    }
    while (e.issued.length < 12) {
      await until(() => e.pending > 0);
      e.next();
      await tick();
    }
    while (e.pending > 0) e.next();
    await until(() => s.metrics.relayBudget.read().atEnclave === 0);
    return e.issued;
  } finally {
    for (const ws of sockets) ws.close();
    await s.stop();
  }
}

describe('scp relay: fair share', () => {
  const stops: (() => Promise<void>)[] = [];
  after(async () => {
    for (const stop of stops) await stop();
  });

  it('takes turns by address first: a lone address is not behind both sockets of another', async () => {
    const byAddress = await threeSockets({}, ['127.0.0.1', '127.0.0.1', '127.0.0.2']);
    // a1 a1 | b | a2 | b | a1 | b | a2 | b | a1 a2 a2: address 127.0.0.2 (30..) gets every
    // other turn while it waits, the two sockets of 127.0.0.1 share theirs.
    assert.deepEqual(byAddress, [10, 11, 30, 20, 31, 12, 32, 21, 33, 13, 22, 23]);
    // shareBy 'socket' (clients behind one NAT): each socket has a turn, as before.
    const bySocket = await threeSockets({ shareBy: 'socket' }, [
      '127.0.0.1',
      '127.0.0.1',
      '127.0.0.2',
    ]);
    assert.deepEqual(bySocket, [10, 11, 20, 30, 12, 21, 31, 13, 22, 32, 23, 33]);
  });

  it('every socket from one address (a reverse proxy) takes turns as sockets did before', async () => {
    const one = ['127.0.0.1', '127.0.0.1', '127.0.0.1'] as const;
    const byAddress = await threeSockets({}, one);
    assert.deepEqual(byAddress, [10, 11, 20, 30, 12, 21, 31, 13, 22, 32, 23, 33]);
    assert.deepEqual(await threeSockets({ shareBy: 'socket' }, one), byAddress);
  });

  it("a socket whose frames take the enclave's time loses turns for it", async () => {
    // Sockets x (tags 0..) and y (100..) of two addresses each keep frames of one turn's credit
    // waiting; one frame at the enclave at a time. x's frames take 10 ms of the enclave each
    // (ten turns' worth at RELAY_BYTES_PER_MS), y's none.
    assert.equal(RELAY_QUANTUM, RELAY_BYTES_PER_MS); // a turn buys a millisecond
    const run = async (xMs: number): Promise<string> => {
      let now = 0;
      const { e, s, x, y } = await twoAddresses(() => now);
      stops.push(s.stop);
      send(x, 0, 30);
      await until(() => s.metrics.relayBudget.read().held === 1);
      send(y, 100, 30);
      await until(() => s.metrics.relayBudget.read().held === 2);
      while (e.issued.length < 24) {
        // Both wait before each settle (a socket whose read frames ran out is read again and
        // lines up anew: with nobody else waiting, a socket pays its debt at once).
        await until(() => e.pending > 0 && s.metrics.relayBudget.read().held === 2);
        const tag = e.issued[e.issued.length - e.pending] as number;
        if (tag < 100) now += xMs;
        e.next();
        await tick();
      }
      x.close();
      y.close();
      while (e.pending > 0) e.next();
      return e.issued
        .slice(0, 24)
        .map((t) => (t < 100 ? 'x' : 'y'))
        .join('');
    };
    // Costs no time beyond their size: a turn each.
    assert.equal(await run(0), 'xxyxyxyxyxyxyxyxyxyxyxyx');
    // Each x frame's 10 ms (nine turns beyond its size) are paid out of x's next visits, a
    // quantum a visit: y goes many times in between (here xxyyyyyyyyyyxyyyyyxyyyyy: y is read
    // again after each of its frames, and x visited twice for each).
    const costly = await run(10);
    assert.equal(costly.slice(0, 2), 'xx'); // the first two went before anything was measured
    const between = costly.slice(2).split('x').slice(0, -1);
    assert.ok(between.length >= 1 && between.length <= 3, costly);
    for (const ys of between) assert.ok(ys.length >= 4, costly);
  });

  it("a socket pays for the enclave's time only while others wait: alone, it runs up no debt", async () => {
    // x first sends costly frames one at a time with nobody else waiting (each goes at once and
    // takes 10 ms: nine turns beyond its size); then x and y both keep cheap frames waiting. x's
    // earlier frames took time from no one, so the two then take turns from the start.
    let now = 0;
    const { e, s, x, y } = await twoAddresses(() => now);
    stops.push(s.stop);
    for (let i = 0; i < 8; i++) {
      send(x, i, 1);
      await until(() => e.pending === 1);
      assert.equal(s.metrics.relayBudget.read().held, 0, 'x alone never waits');
      now += 10;
      e.next();
      await until(() => s.metrics.relayBudget.read().atEnclave === 0);
    }
    send(x, 50, 12);
    await until(() => s.metrics.relayBudget.read().held === 1);
    send(y, 100, 12);
    await until(() => s.metrics.relayBudget.read().held === 2);
    const start = e.issued.length;
    while (e.issued.length < start + 12) {
      await until(() => e.pending > 0);
      e.next();
      await tick();
    }
    const order = e.issued
      .slice(start, start + 12)
      .map((t) => (t < 100 ? 'x' : 'y'))
      .join('');
    x.close();
    y.close();
    while (e.pending > 0) e.next();
    // Turns from the start (x's waiting frame went first); a debt from x's lone frames would
    // have given y a long run of turns first.
    assert.ok(!order.includes('yyy'), order);
    assert.ok((order.match(/x/g) ?? []).length >= 5, order);
  });

  it("caps a socket's debt at 64 turns' worth: a frame that hit a stall of the node keeps its socket out for 64 visits, not for the stall", async () => {
    // x (tags 0..2) keeps frames of one turn's credit waiting; y (100..) sends one at a time, the
    // next once the last was issued, and waits behind x. One frame at the enclave at a time. x's
    // first frame takes 1 s of the enclave (999 turns beyond its size) while y waits; every other
    // frame takes no time.
    const clock = { now: 0 };
    const relay = await twoAddresses(() => clock.now);
    const { e, s, x, y } = relay;
    stops.push(s.stop);
    send(x, 0, 3);
    await until(() => s.metrics.relayBudget.read().held === 1);
    let yLast = 99; // the tag of y's last frame sent (none yet)
    const xLeft = (issued: readonly number[]) => issued.filter((t) => t < 100).length < 3;
    await settleInTurn(relay, clock, 40, {
      lined: (issued) => Number(xLeft(issued)) + Number(!issued.includes(yLast)),
      ms: (tag) => (tag === 0 ? 1000 : 0),
      before: (issued) => {
        if (yLast === 99 || issued.includes(yLast)) send(y, ++yLast, 1);
      },
    });
    x.close();
    y.close();
    while (e.pending > 0) e.next();
    // x's debt is capped at 64 turns (MAX_DEBT): it pays a quantum a visit, two visits for each
    // of y's frames (y leaves the line after each, x's visit alone pays and waits for the
    // settle), so its next frame goes after 33 of y's; its whole debt would have kept it out for
    // about 500 of them.
    assert.deepEqual(e.issued.slice(0, 41), [0, 1, ...tags(100, 33), 2, ...tags(133, 5)]);
  });

  it('voids the debts once the line empties: a socket does not pay, when it next waits, for time it took from sockets long gone', async () => {
    // x's first frame (tag 0) takes 10 ms of the enclave (nine turns beyond its size) while y's
    // frame (100) waits: x owes it. Then x's second frame (1) and y's go, and the line empties
    // with x's debt unpaid. Later x (10..21) and y (110..121) both keep frames of one turn's
    // credit waiting, costing no time: they take turns from the start.
    const clock = { now: 0 };
    const relay = await twoAddresses(() => clock.now);
    const { e, s, x, y } = relay;
    stops.push(s.stop);
    send(x, 0, 2);
    await until(() => s.metrics.relayBudget.read().held === 1);
    send(y, 100, 1);
    await until(() => s.metrics.relayBudget.read().held === 2);
    clock.now += 10;
    e.next(); // x's 1 goes; x leaves the line (nothing left) owing y nine turns
    await until(() => e.issued.length === 2);
    e.next(); // y's 100 goes; y leaves the line, now empty
    await until(() => e.issued.length === 3);
    assert.deepEqual(e.issued, [0, 1, 100]);
    assert.equal(s.metrics.relayBudget.read().held, 0);
    e.next();
    await until(() => s.metrics.relayBudget.read().atEnclave === 0);
    const start = e.issued.length;
    send(x, 10, 12);
    await until(() => s.metrics.relayBudget.read().held === 1);
    send(y, 110, 12);
    await until(() => s.metrics.relayBudget.read().held === 2);
    const left = (issued: readonly number[], from: number) =>
      issued.filter((t) => t >= from && t < from + 12).length < 12;
    await settleInTurn(relay, clock, 15, {
      lined: (issued) => Number(left(issued, 10)) + Number(left(issued, 110)),
    });
    x.close();
    y.close();
    while (e.pending > 0) e.next();
    // x's first frame went at once; then a turn each. Paying its old debt (nine turns), x would
    // have let y go five times first.
    assert.deepEqual(
      e.issued.slice(start, start + 16),
      [10, 11, 110, 12, 111, 13, 112, 14, 113, 15, 114, 16, 115, 17, 116, 18],
    );
  });

  it("counts the frames at the enclave at the enclave's measured time per byte", async () => {
    // One socket keeps 32 KiB frames waiting; the budget is eight of them. When the enclave takes
    // 32 ms a frame (1 ms a KiB, 64 times RELAY_BYTES_PER_MS), those eight would be 256 ms of work
    // in front of anyone's next frame: the budget then holds what is never held back, one turn's
    // bytes (RELAY_QUANTUM: two frames).
    const size = 32 * 1024;
    const run = async (msPerFrame: number): Promise<number> => {
      let now = 0;
      const e = gatedEnclave();
      const s = await serve(e.enclave, { maxInFlightBytes: 8 * size }, () => now);
      stops.push(s.stop);
      const x = await dial(s.url, '127.0.0.1');
      await until(() => e.opened === 1);
      send(x, 0, 40, size);
      await until(() => e.issued.length === 8);
      let most = 0;
      for (let settled = 0; settled < 30; settled++) {
        await until(() => e.pending > 0);
        now += msPerFrame;
        e.next();
        await tick();
        if (settled >= 20) most = Math.max(most, e.pending);
      }
      x.close();
      while (e.pending > 0) e.next();
      return most;
    };
    assert.equal(await run(0), 8);
    assert.equal(await run(32), RELAY_QUANTUM / size);
  });

  it('shares an address by client: IPv4-mapped IPv6 as its IPv4, IPv6 by its /64', () => {
    assert.equal(shareKeyOf('192.0.2.7'), '192.0.2.7');
    assert.equal(shareKeyOf('::ffff:192.0.2.7'), '192.0.2.7');
    assert.equal(shareKeyOf('::FFFF:c000:0207'), '192.0.2.7');
    assert.equal(shareKeyOf('2001:db8:1:2:aaaa::1'), '2001:db8:1:2::/64');
    assert.equal(shareKeyOf('2001:db8:1:2:bbbb:cccc:dddd:eeee'), '2001:db8:1:2::/64');
    assert.equal(shareKeyOf('2001:0db8:0001:0003::1'), '2001:db8:1:3::/64');
    assert.equal(shareKeyOf('fe80::1%eth0'), 'fe80:0:0:0::/64');
    assert.equal(shareKeyOf('::1'), '0:0:0:0::/64');
    assert.equal(shareKeyOf(''), '');
  });
});
