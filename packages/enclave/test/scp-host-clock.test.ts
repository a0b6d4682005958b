/**
 * The enclave's view of the host clock (createHostClock, src/index.ts): asynchronous reads keep
 * it fresh under load, and a value is never used after a host message that arrived with no read
 * on its way (the node may have been idle for any time): then the read is synchronous again.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createHostClock, type HostClock } from '../src/index.js';

interface FakeHost {
  now: number;
  syncReads: number;
  readonly waiting: { resolve: (ms: number) => void; reject: (e: unknown) => void }[];
  readonly clock: HostClock;
  answer(ms: number): Promise<void>;
}

/** A fake host: counts synchronous reads, holds asynchronous ones until answered. */
function fakeHost(): FakeHost {
  const waiting: FakeHost['waiting'] = [];
  const h: FakeHost = {
    now: 100,
    syncReads: 0,
    waiting,
    clock: createHostClock(
      () => new Promise<number>((resolve, reject) => waiting.push({ resolve, reject })),
      () => {
        h.syncReads += 1;
        return h.now;
      },
    ),
    /** Answers the oldest asynchronous read, as a host message (it counts as an arrival). */
    async answer(ms: number): Promise<void> {
      const w = waiting.shift();
      assert.ok(w, 'an asynchronous read is on its way');
      h.clock.arrived();
      w.resolve(ms);
      await new Promise((r) => setImmediate(r));
    },
  };
  return h;
}

test('the first read is synchronous and starts one asynchronous read', () => {
  const h = fakeHost();
  h.clock.arrived();
  assert.equal(h.clock.read(), 100);
  assert.equal(h.clock.read(), 100);
  assert.equal(h.syncReads, 1);
  assert.equal(h.waiting.length, 1, 'one read on its way, not one per read');
});

test('while a read is on its way, host messages keep the value; its answer replaces it', async () => {
  const h = fakeHost();
  h.clock.arrived();
  h.clock.read();
  h.now = 999; // a synchronous read now would show it
  h.clock.arrived(); // work arrives while the read is on its way
  assert.equal(h.clock.read(), 100);
  await h.answer(150);
  assert.equal(h.clock.read(), 150);
  assert.equal(h.syncReads, 1);
  // Busy (read and other messages meanwhile): the answer asked again at once.
  assert.equal(h.waiting.length, 1);
  h.clock.arrived();
  assert.equal(h.clock.read(), 150, 'still on its way: no synchronous read');
  assert.equal(h.syncReads, 1);
});

test('after an idle stretch the value is dropped: the next read is synchronous', async () => {
  const h = fakeHost();
  h.clock.arrived();
  h.clock.read();
  await h.answer(150); // no reads and no other messages meanwhile: no new ask
  assert.equal(h.waiting.length, 0);
  h.now = 5000; // much later
  h.clock.arrived();
  assert.equal(h.clock.read(), 5000);
  assert.equal(h.syncReads, 2);
});

test('an answer that comes alone does not ask again (no ping-pong with an idle host)', async () => {
  const h = fakeHost();
  h.clock.arrived();
  h.clock.read();
  h.clock.read(); // read again, but no other host message arrives meanwhile
  await h.answer(150);
  assert.equal(h.waiting.length, 0);
  assert.equal(h.clock.read(), 150, 'usable until the next host message');
});

test('a failed asynchronous read: the next read is synchronous', async () => {
  const h = fakeHost();
  h.clock.arrived();
  h.clock.read();
  const w = h.waiting.shift();
  w?.reject(new Error('boundary closed'));
  await new Promise((r) => setImmediate(r));
  h.now = 300;
  assert.equal(h.clock.read(), 300);
  assert.equal(h.syncReads, 2);
});

test('a message that carries the host time (scp.frame) needs no synchronous read', () => {
  const h = fakeHost();
  h.clock.arrived();
  h.clock.told(500);
  assert.equal(h.clock.read(), 500, 'the time the message carried');
  assert.equal(h.syncReads, 0);
  // The next message carries a later time: that one is used.
  h.clock.arrived();
  h.clock.told(520);
  assert.equal(h.clock.read(), 520);
  assert.equal(h.syncReads, 0);
});

test('a time a message carried is not used for a later message that carries none', () => {
  const h = fakeHost();
  h.clock.arrived();
  h.clock.told(500);
  h.clock.read(); // starts an asynchronous read
  const w = h.waiting.shift();
  w?.reject(new Error('lost')); // it fails: no read on its way any more
  return new Promise<void>((done) => setImmediate(done)).then(() => {
    h.now = 900;
    h.clock.arrived(); // another message, without a time, after an idle spell
    assert.equal(h.clock.read(), 900, 'a synchronous read, not the old carried time');
    assert.equal(h.syncReads, 1);
  });
});
