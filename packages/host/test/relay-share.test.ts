/**
 * The relay's fair share as a state machine (relay-share.ts), without sockets: each lane's world
 * is a fake LaneIo that records the frames sent to the "enclave" (by their first byte) and settles
 * them when the test says, and the clock is the test's. The relay's own tests
 * (node-scp-relay*.test.ts) drive the same scheduler through real WebSockets.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  createRelayShare,
  type Lane,
  RELAY_QUANTUM,
  type RelayShare,
} from '../src/node/relay-share.js';

const Q = RELAY_QUANTUM;
const flush = () => new Promise((r) => setImmediate(r));

/** A scheduler and the world of its lanes: one ordered "enclave" for all of them. */
function world(limits: {
  maxInFlight?: number;
  maxInFlightBytes?: number;
  maxHeldBytes?: number;
  maxHeldBytesPerShare?: number;
}) {
  let now = 0;
  const share: RelayShare = createRelayShare(
    { maxInFlight: 32, maxInFlightBytes: Q, maxHeldBytes: 1 << 30, ...limits },
    () => now,
  );
  const sent: number[] = [];
  const gates: { settle: () => void; fail: (e: unknown) => void }[] = [];
  const events: string[] = [];
  const lane = (key: string, name: string) => {
    let paused = false;
    let l: Lane | undefined;
    l = share.lane(key, {
      send: (frame) => {
        sent.push(frame[0] as number);
        return new Promise((settle, fail) => gates.push({ settle: () => settle(undefined), fail }));
      },
      failed: () => {
        events.push(`${name} failed`);
        l?.close();
      },
      overflow: () => {
        events.push(`${name} overflow`);
        l?.close();
      },
      pause: () => {
        paused = true;
      },
      resume: () => {
        paused = false;
        events.push(`${name} resumed`);
      },
      isPaused: () => paused,
    });
    return {
      lane: l,
      get paused() {
        return paused;
      },
      /** `n` frames of `size` bytes tagged `tag`, `tag + 1`, … */
      receive(tag: number, n = 1, size = Q) {
        for (let i = 0; i < n; i++) l?.receive(new Uint8Array(size).fill(tag + i));
      },
    };
  };
  return {
    share,
    sent,
    events,
    lane,
    advance(ms: number) {
      now += ms;
    },
    /** Settles the oldest frame at the enclave (or fails it), then lets the scheduler run. */
    async settle(ok = true) {
      const g = gates.shift();
      assert.ok(g, 'a frame is at the enclave');
      if (ok) g.settle();
      else g.fail(new Error('the call failed'));
      await flush();
    },
    /** Settles the `n` oldest frames at the enclave at once (one group), then lets it run. */
    async settleGroup(n: number) {
      const gs = gates.splice(0, n);
      assert.equal(gs.length, n, 'frames at the enclave');
      for (const g of gs) g.settle();
      await flush();
    },
    get atEnclave() {
      return gates.length;
    },
  };
}

describe('relay share (the scheduler alone)', () => {
  it('a frame with nothing ahead of it goes at once', async () => {
    const w = world({});
    const a = w.lane('a', 'a');
    a.receive(1, 1, 100);
    assert.deepEqual(w.sent, [1]);
    assert.deepEqual(w.share.budget(), { atEnclave: 100, waiting: 0, held: 0 });
    await w.settle();
    assert.deepEqual(w.share.budget(), { atEnclave: 0, waiting: 0, held: 0 });
  });

  it('at its own cap a socket stops reading; what it read waits, goes in order, then it reads again', async () => {
    const w = world({ maxInFlight: 2, maxInFlightBytes: 1 << 20 });
    const a = w.lane('a', 'a');
    a.receive(1, 5, 10);
    assert.deepEqual(w.sent, [1, 2]);
    assert.equal(a.paused, true);
    assert.deepEqual(w.share.budget(), { atEnclave: 20, waiting: 30, held: 0 });
    await w.settle();
    assert.deepEqual(w.sent, [1, 2, 3]);
    await w.settle();
    await w.settle();
    assert.deepEqual(w.sent, [1, 2, 3, 4, 5]);
    assert.equal(a.paused, true, 'still at its cap');
    await w.settle();
    assert.equal(a.paused, false, 'nothing waits and room: reading again');
    assert.deepEqual(w.events, ['a resumed']);
    await w.settle();
    assert.deepEqual(w.share.budget(), { atEnclave: 0, waiting: 0, held: 0 });
  });

  it('turns go round the shares first, then round the sockets of a share', async () => {
    // Share A has two sockets, share B one; room at the enclave for one frame of a turn's size.
    const w = world({});
    const a1 = w.lane('A', 'a1');
    const a2 = w.lane('A', 'a2');
    const b = w.lane('B', 'b');
    a1.receive(10, 2);
    a2.receive(20, 2);
    b.receive(30, 2);
    assert.deepEqual(w.sent, [10]);
    assert.deepEqual(w.share.budget(), { atEnclave: Q, waiting: 5 * Q, held: 3 });
    while (w.atEnclave > 0) await w.settle();
    // B's one socket gets every other turn; A's two share theirs.
    assert.deepEqual(w.sent, [10, 11, 30, 20, 31, 21]);
    assert.deepEqual(w.share.budget(), { atEnclave: 0, waiting: 0, held: 0 });
  });

  it('a frame that took the enclave longer than its size leaves a debt its socket pays in turns', async () => {
    // Frames of 1 KiB, one at a time at the enclave: size alone never decides. x's first frame
    // takes `ms` while y waits (y's take no time).
    const order = async (ms: number) => {
      const w = world({ maxInFlightBytes: 1024 });
      const x = w.lane('x', 'x');
      const y = w.lane('y', 'y');
      x.receive(10, 4, 1024);
      y.receive(20, 4, 1024);
      w.advance(ms);
      while (w.atEnclave > 0) await w.settle();
      return w.sent;
    };
    // Free, x's turn (begun when its first frame settled) covers all its frames: a turn is
    // RELAY_QUANTUM, 64 of these.
    assert.deepEqual(await order(0), [10, 11, 12, 13, 20, 21, 22, 23]);
    // 3 ms is about three turns beyond its size, charged once its turn had issued its second
    // frame: y's four go while x pays.
    assert.deepEqual(await order(3), [10, 11, 20, 21, 22, 23, 12, 13]);
  });

  it('a debt from before the line last emptied is void, also when a frame charges it anew', async () => {
    // Frames of a turn's size, one at a time at the enclave.
    const w = world({});
    const x = w.lane('x', 'x');
    const y = w.lane('y', 'y');
    // x's frame takes 4 ms (three turns beyond its size) while y waits: x owes three turns.
    x.receive(10);
    y.receive(20, 2);
    w.advance(4);
    while (w.atEnclave > 0) await w.settle(); // y's two go; then nobody waits: the debt is void
    // x, out of line, has a frame that takes 2 ms (one turn beyond its size) while y waits:
    // charged one turn, not the void three as well.
    x.receive(11);
    y.receive(30, 6);
    w.advance(2);
    await w.settle();
    x.receive(12, 2);
    while (w.atEnclave > 0) await w.settle();
    // One turn paid (y's 31 and 32 go), then they alternate; charged the void debt too, x's 12
    // went after all six of y's frames.
    assert.deepEqual(w.sent, [10, 20, 21, 11, 30, 31, 32, 12, 33, 13, 34, 35]);
  });

  it('a frame beyond what the host may hold overflows its socket, and its waiting frames are dropped', async () => {
    const w = world({ maxHeldBytes: 3 * Q });
    const a = w.lane('a', 'a');
    const b = w.lane('b', 'b');
    a.receive(1); // at the enclave
    a.receive(2, 2); // waiting: 2 turns
    assert.deepEqual(w.share.budget(), { atEnclave: Q, waiting: 2 * Q, held: 1 });
    b.receive(10, 2); // the second would pass 3 turns held: b overflows
    assert.deepEqual(w.events, ['b overflow']);
    assert.deepEqual(w.share.budget(), { atEnclave: Q, waiting: 2 * Q, held: 2 });
    while (w.atEnclave > 0) await w.settle();
    assert.deepEqual(w.sent, [1, 2, 3], 'nothing of the overflowed socket went');
    assert.deepEqual(w.share.budget(), { atEnclave: 0, waiting: 0, held: 0 });
  });

  it("one share's sockets hold at most maxHeldBytesPerShare: its next frame overflows its socket, other shares' frames still wait", async () => {
    // One address's 256 sockets each holding a 1 MiB frame filled the node-wide budget, and every
    // other client's next held frame then closed its socket.
    const w = world({ maxHeldBytesPerShare: 2 * Q });
    const a = ['a1', 'a2', 'a3', 'a4'].map((name) => w.lane('A', name));
    const b = w.lane('B', 'b');
    a[0]?.receive(1); // at the enclave
    a[1]?.receive(10); // waiting: A holds 1 turn
    a[2]?.receive(20); // A holds 2
    a[3]?.receive(30); // A would hold 3: its socket overflows
    b.receive(40); // B's first: waits
    assert.deepEqual(w.events, ['a4 overflow']);
    assert.deepEqual(w.share.budget(), { atEnclave: Q, waiting: 3 * Q, held: 3 });
    while (w.atEnclave > 0) await w.settle();
    assert.deepEqual(
      [...w.sent].sort((x, y) => x - y),
      [1, 10, 20, 40],
    );
    assert.deepEqual(w.share.budget(), { atEnclave: 0, waiting: 0, held: 0 });
    // Issued frames leave the share's count: it may hold two turns again.
    a[0]?.receive(2); // at the enclave
    a[1]?.receive(11);
    a[2]?.receive(21);
    assert.deepEqual(
      w.events.filter((e) => e.endsWith('overflow')),
      ['a4 overflow'],
    );
    assert.deepEqual(w.share.budget(), { atEnclave: Q, waiting: 2 * Q, held: 2 });
  });

  it('a failed send closes its socket before the frame counts as settled; what it had waiting is dropped', async () => {
    const w = world({ maxInFlight: 1, maxInFlightBytes: 1 << 20 });
    const a = w.lane('a', 'a');
    a.receive(1, 3, 10);
    assert.deepEqual(w.share.budget(), { atEnclave: 10, waiting: 20, held: 0 });
    await w.settle(false);
    assert.deepEqual(w.events, ['a failed']);
    assert.deepEqual(w.sent, [1]);
    assert.deepEqual(w.share.budget(), { atEnclave: 0, waiting: 0, held: 0 });
  });

  it('a socket gone is forgotten: its waiting frames leave the count, the others go on', async () => {
    const w = world({});
    const a = w.lane('a', 'a');
    const b = w.lane('b', 'b');
    a.receive(1, 3);
    b.receive(10, 1);
    assert.deepEqual(w.share.budget(), { atEnclave: Q, waiting: 3 * Q, held: 2 });
    a.lane.release();
    assert.equal(w.share.budget().waiting, Q);
    while (w.atEnclave > 0) await w.settle();
    assert.deepEqual(w.sent, [1, 10]);
    assert.deepEqual(w.share.budget(), { atEnclave: 0, waiting: 0, held: 0 });
  });
  it('a frame sent to an idle enclave is timed from when it was sent, not from the last settle before', async () => {
    // Frames of a turn's size, one at a time at the enclave; every frame takes no time.
    const w = world({});
    const x = w.lane('x', 'x');
    const y = w.lane('y', 'y');
    x.receive(1);
    await w.settle();
    w.advance(100); // the enclave idle for 100 ms: that time was taken from no one
    x.receive(10);
    y.receive(20, 2);
    x.receive(11, 2);
    while (w.atEnclave > 0) await w.settle();
    // No debt: x and y alternate. Charged the idle 100 ms, x's 11 would wait behind all of y's.
    assert.deepEqual(w.sent, [1, 10, 20, 11, 21, 12]);
  });

  it('a group settling while the enclave stayed busy took the time since the group before it', async () => {
    // Two frames of a turn's size at the enclave at once, so it never goes idle; each settles
    // 1 ms after the one before: exactly its size at RELAY_BYTES_PER_MS, so nobody owes anything.
    const w = world({ maxInFlightBytes: 2 * Q });
    const x = w.lane('x', 'x');
    const y = w.lane('y', 'y');
    x.receive(10, 2);
    y.receive(20, 4);
    x.receive(12, 2);
    while (w.atEnclave > 0) {
      w.advance(1);
      await w.settle();
    }
    // Round robin with no debt. Timed from when the enclave last went busy instead, each group
    // took longer than the last and x's 13 went after all of y's.
    assert.deepEqual(w.sent, [10, 11, 20, 12, 21, 13, 22, 23]);
  });

  it('a socket gone from the line leaves its share its turn: the next socket of that share goes first', async () => {
    const w = world({});
    const x = w.lane('X', 'x');
    const a1 = w.lane('A', 'a1');
    const a2 = w.lane('A', 'a2');
    const b = w.lane('B', 'b');
    x.receive(1); // at the enclave: the others wait in line, A's two sockets, then B's
    a1.receive(10);
    a2.receive(20);
    b.receive(30);
    a1.lane.close(); // its visit issues nothing: A's turn is not used up
    while (w.atEnclave > 0) await w.settle();
    assert.deepEqual(w.sent, [1, 20, 30]);
  });

  it('the first frame waiting in the host may wait even when larger than maxHeldBytes', async () => {
    // Else a socket could never send a frame larger than maxHeldBytes once the enclave has one.
    const w = world({ maxHeldBytes: Q / 2 });
    const a = w.lane('a', 'a');
    a.receive(1);
    a.receive(2);
    assert.deepEqual(w.events, []);
    assert.deepEqual(w.share.budget(), { atEnclave: Q, waiting: Q, held: 1 });
    while (w.atEnclave > 0) await w.settle();
    assert.deepEqual(w.sent, [1, 2]);
  });

  it('a socket in line is not read; it is read again once its frames went', async () => {
    const w = world({});
    const a = w.lane('a', 'a');
    const b = w.lane('b', 'b');
    a.receive(1);
    assert.equal(a.paused, false);
    b.receive(10);
    assert.equal(b.paused, true, 'b waits in line: its socket is paused');
    await w.settle();
    assert.deepEqual(w.sent, [1, 10]);
    assert.equal(b.paused, false, 'its frame went: read again');
    await w.settle();
  });

  it('a new socket whose small frame would fit goes behind the sockets already in line', async () => {
    const w = world({});
    const a = w.lane('a', 'a');
    const b = w.lane('b', 'b');
    const c = w.lane('c', 'c');
    a.receive(1, 1, Q / 2); // at the enclave
    b.receive(10); // a turn's size: does not fit beside a's, waits in line
    c.receive(20, 1, 100); // would fit beside a's, but b was first
    assert.deepEqual(w.sent, [1]);
    assert.equal(w.share.budget().held, 2);
    while (w.atEnclave > 0) await w.settle();
    assert.deepEqual(w.sent, [1, 10, 20]);
  });

  it('frames settling in one group share its time by their size', async () => {
    // Two frames of a turn's size at the enclave at once settle together after 2 ms: a
    // millisecond each, exactly their size at RELAY_BYTES_PER_MS, so nobody owes anything.
    const w = world({ maxInFlightBytes: 2 * Q });
    const x = w.lane('x', 'x');
    const y = w.lane('y', 'y');
    const z = w.lane('z', 'z');
    x.receive(10);
    y.receive(20);
    z.receive(30, 3);
    x.receive(11, 3);
    y.receive(21, 3);
    w.advance(2);
    await w.settleGroup(2);
    while (w.atEnclave > 0) await w.settle();
    // Round robin. Charged the whole 2 ms each, x and y would pay a turn: z's 32 before x's 12.
    assert.deepEqual(w.sent, [10, 20, 30, 11, 21, 31, 12, 22, 32, 13, 23]);
  });

  it("one slow group stays in the node's time per byte for a while, not just until the next", async () => {
    const w = world({ maxInFlightBytes: 4 * Q });
    const a = w.lane('a', 'a');
    const b = w.lane('b', 'b');
    a.receive(1);
    w.advance(8); // 8 ms for a turn's size: 8 times RELAY_BYTES_PER_MS (nobody waits: no debt)
    await w.settle();
    a.receive(2);
    await w.settle(); // a frame that took no time: the average is still well above 1 ms a turn
    a.receive(3);
    b.receive(10); // two turns' size at over 3 ms a turn is beyond the budget of 4: b waits
    assert.deepEqual(w.sent, [1, 2, 3]);
    assert.equal(w.share.budget().held, 1);
    while (w.atEnclave > 0) await w.settle();
    assert.deepEqual(w.sent, [1, 2, 3, 10]);
  });
});
