/**
 * The enclave Port's sync-call state machine, driven step by step with a fake worker channel (no
 * threads): `wait` runs a scripted host, so every interleaving a malicious host could choose is a
 * plain test.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { MessagePort } from 'node:worker_threads';
import {
  BoundaryError,
  MAX_BATCH_FRAMES,
  SYNC_SIGNAL,
  TRANSFER_MIN_BYTES,
} from '@cloister/boundary';
import { createWorkerPort } from '../src/port.js';

type Host = (signal: Int32Array, inbox: unknown[], request: Uint8Array | undefined) => void;

/** A channel whose sync replies come from `host`, called each time the enclave waits. */
function fake(host: Host) {
  const signal = new Int32Array(new SharedArrayBuffer(4));
  const inbox: unknown[] = []; // sync channel, host -> enclave
  const posted: { bytes: Uint8Array; transfer: unknown[] }[] = []; // parent port, enclave -> host
  const requests: Uint8Array[] = []; // sync channel, enclave -> host
  const queued: unknown[] = []; // parent port, host -> enclave, not yet delivered as events
  const listeners = new Map<string, (m: unknown) => void>();
  let waits = 0;
  const parentPort = {
    postMessage: (bytes: Uint8Array, transfer: unknown[]) => posted.push({ bytes, transfer }),
    on: (event: string, f: (m: unknown) => void) => listeners.set(event, f),
  };
  const syncPort = { postMessage: (bytes: Uint8Array) => requests.push(bytes) };
  const port = createWorkerPort({
    parentPort: parentPort as unknown as MessagePort,
    syncPort: syncPort as unknown as MessagePort,
    signal,
    receiveMessageOnPort: (p: MessagePort) => {
      const q = p === (syncPort as unknown) ? inbox : queued;
      return q.length > 0 ? { message: q.shift() } : undefined;
    },
    atomics: {
      load: Atomics.load,
      compareExchange: Atomics.compareExchange,
      wait: (_s, _i, value) => {
        if (++waits > 100) throw new Error('the enclave would wait forever');
        assert.equal(value, SYNC_SIGNAL.IDLE);
        host(signal, inbox, requests.at(-1));
        return 'ok';
      },
    },
  });
  return { port, signal, inbox, posted, requests, queued, listeners, waits: () => waits };
}

const reply =
  (bytes: Uint8Array): Host =>
  (signal, inbox) => {
    inbox.push(bytes);
    Atomics.store(signal, 0, SYNC_SIGNAL.REPLIED);
  };

test('a sync call posts its request, waits, returns the reply and resets the signal', () => {
  const f = fake(reply(new Uint8Array([1, 2, 3])));
  assert.deepEqual(f.port.callSync(new Uint8Array([9])), new Uint8Array([1, 2, 3]));
  assert.deepEqual(f.requests, [new Uint8Array([9])]);
  assert.equal(Atomics.load(f.signal, 0), SYNC_SIGNAL.IDLE);
  assert.deepEqual(f.port.callSync(new Uint8Array([8])), new Uint8Array([1, 2, 3]));
});

test('spurious wake-ups are waited through', () => {
  let n = 0;
  const f = fake((signal, inbox) => {
    if (++n < 3) return; // woken with the signal still IDLE
    inbox.push(new Uint8Array([7]));
    Atomics.store(signal, 0, SYNC_SIGNAL.REPLIED);
  });
  assert.deepEqual(f.port.callSync(new Uint8Array([1])), new Uint8Array([7]));
  assert.equal(f.waits(), 3);
});

test('stale replies queued before a call are dropped', () => {
  const f = fake(reply(new Uint8Array([5])));
  f.inbox.push(new Uint8Array([0xde]), 'junk');
  assert.deepEqual(f.port.callSync(new Uint8Array([1])), new Uint8Array([5]));
});

test('CLOSED fails the waiting call and every later one without waiting', () => {
  const f = fake((signal) => Atomics.store(signal, 0, SYNC_SIGNAL.CLOSED));
  assert.throws(() => f.port.callSync(new Uint8Array([1])), /closed the boundary/);
  assert.throws(() => f.port.callSync(new Uint8Array([1])), /closed the boundary/);
  assert.equal(f.waits(), 1);
  assert.equal(f.requests.length, 1);
});

test('a wake-up with no reply, or a corrupt signal, fails that call with BoundaryError', () => {
  const none = fake((signal) => Atomics.store(signal, 0, SYNC_SIGNAL.REPLIED));
  assert.throws(() => none.port.callSync(new Uint8Array([1])), BoundaryError);
  assert.equal(Atomics.load(none.signal, 0), SYNC_SIGNAL.IDLE);
  const corrupt = fake((signal) => Atomics.store(signal, 0, 77));
  assert.throws(() => corrupt.port.callSync(new Uint8Array([1])), /signal is corrupt/);
});

test('a reply that is not plain bytes is handed on as zero bytes or a private copy', () => {
  const f = fake(reply({ not: 'bytes' } as never));
  assert.deepEqual(f.port.callSync(new Uint8Array([1])), new Uint8Array(0));
  const shared = new Uint8Array(new SharedArrayBuffer(2));
  shared.set([4, 2]);
  const g = fake(reply(shared));
  const got = g.port.callSync(new Uint8Array([1]));
  assert.deepEqual(got, new Uint8Array([4, 2]));
  assert.ok(got.buffer instanceof ArrayBuffer, 'copied out of shared memory');
});

const turn = () => new Promise((r) => setImmediate(r));

test('posts of one turn leave as one batch in order; only large whole buffers transfer', async () => {
  const f = fake(() => {});
  f.port.post(new Uint8Array(10));
  const big = new Uint8Array(TRANSFER_MIN_BYTES);
  f.port.post(big);
  f.port.post(new Uint8Array(TRANSFER_MIN_BYTES * 2).subarray(1));
  assert.equal(f.posted.length, 0, 'nothing leaves before the microtasks ran');
  // A post from a later microtask of the same work joins the batch.
  await Promise.resolve();
  f.port.post(Uint8Array.of(7));
  await turn();
  assert.equal(f.posted.length, 1);
  const batch = f.posted[0]?.bytes as unknown as Uint8Array[];
  assert.ok(Array.isArray(batch));
  assert.deepEqual(
    batch.map((b) => b.length),
    [10, TRANSFER_MIN_BYTES, TRANSFER_MIN_BYTES * 2 - 1, 1],
  );
  assert.deepEqual(f.posted[0]?.transfer, [big.buffer]);
  // A lone frame leaves as itself.
  f.port.post(Uint8Array.of(9));
  await turn();
  assert.deepEqual(f.posted[1]?.bytes, Uint8Array.of(9));
  assert.deepEqual(f.posted[1]?.transfer, []);
});

test('onMessage normalises what arrives, batches frame by frame in order, once', () => {
  const f = fake(() => {});
  const got: Uint8Array[] = [];
  f.port.onMessage((b) => got.push(b));
  assert.throws(() => f.port.onMessage(() => {}), /already has a message handler/);
  const onMessage = f.listeners.get('message');
  onMessage?.(new Uint8Array([1]));
  onMessage?.('text');
  onMessage?.(new Uint8Array(new SharedArrayBuffer(1)));
  f.listeners.get('messageerror')?.(undefined);
  // A batch from the host: each element is one frame, normalised like a single message.
  onMessage?.([Uint8Array.of(2), 'junk', new Uint8Array(new SharedArrayBuffer(2)), [3]]);
  assert.deepEqual(
    got.map((b) => [...b]),
    [[1], [], [0], [], [2], [], [0, 0], []],
  );
  assert.ok(got.every((b) => b.buffer instanceof ArrayBuffer));
});

test('an array over MAX_BATCH_FRAMES is one malformed message (a 15-byte sparse array of 2^32-1)', () => {
  const f = fake(() => {});
  const got: Uint8Array[] = [];
  f.port.onMessage((b) => got.push(b));
  const on = f.listeners.get('message');
  const sparse: unknown[] = [];
  sparse.length = 2 ** 32 - 1;
  on?.(sparse);
  on?.(Array.from({ length: MAX_BATCH_FRAMES + 1 }, () => Uint8Array.of(1)));
  assert.deepEqual(
    got.map((b) => b.length),
    [0, 0],
  );
  // At the cap, every frame is handed on.
  on?.(Array.from({ length: MAX_BATCH_FRAMES }, () => Uint8Array.of(1)));
  assert.equal(got.length, 2 + MAX_BATCH_FRAMES);
});

test('more frames than MAX_BATCH_FRAMES leave in several batches, in order', async () => {
  const f = fake(() => {});
  const n = MAX_BATCH_FRAMES * 2 + 3;
  for (let i = 0; i < n; i++) f.port.post(Uint8Array.of(i & 0xff, i >> 8));
  await turn();
  const sizes = f.posted.map((p) => (p.bytes as unknown as Uint8Array[]).length);
  assert.deepEqual(sizes, [MAX_BATCH_FRAMES, MAX_BATCH_FRAMES, 3]);
  const all = f.posted.flatMap((p) => p.bytes as unknown as Uint8Array[]);
  assert.ok(all.every((b, i) => b[0] === (i & 0xff) && b[1] === i >> 8));
});

test('host messages queued behind one are taken with it, in order, at most 64 more', () => {
  const f = fake(() => {});
  const got: number[] = [];
  f.port.onMessage((b) => got.push(b[0] as number));
  f.queued.push([Uint8Array.of(2), Uint8Array.of(3)]); // a batch: two frames
  for (let i = 4; i <= 120; i++) f.queued.push(Uint8Array.of(i));
  f.listeners.get('message')?.(Uint8Array.of(1));
  // The event's message, then 64 queued messages (the batch and 4..66), in order.
  assert.deepEqual(
    got,
    Array.from({ length: 66 }, (_, i) => i + 1),
  );
  assert.equal(f.queued.length, 118 - 64, 'the rest waits for its own event');
});
