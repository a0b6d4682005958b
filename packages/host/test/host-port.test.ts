/**
 * The host end of the boundary (launcher/host-port.ts) with a fake worker: frames posted in one
 * turn of the event loop leave as one batch in post order (a lone frame as itself, only large
 * whole buffers transferred), a close still sends what was posted before it and nothing after,
 * and batches arriving from the enclave are handed on frame by frame, each normalised.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { MessagePort, Worker } from 'node:worker_threads';
import { MAX_BATCH_FRAMES, SYNC_SIGNAL, TRANSFER_MIN_BYTES } from '@cloister/boundary';
import { createWorkerHostPort } from '../src/launcher/host-port.js';

function fake() {
  const posted: { message: unknown; transfer: unknown[] }[] = [];
  const listeners = new Map<string, (m: unknown) => void>();
  const worker = {
    postMessage: (message: unknown, transfer: unknown[]) => posted.push({ message, transfer }),
    on: (event: string, f: (m: unknown) => void) => listeners.set(event, f),
  };
  const syncPort = { on: () => {}, postMessage: () => {}, close: () => {} };
  const signal = new Int32Array(new SharedArrayBuffer(4));
  const port = createWorkerHostPort(
    worker as unknown as Worker,
    syncPort as unknown as MessagePort,
    signal,
  );
  return { port, posted, listeners, signal };
}

const turn = () => new Promise((r) => setImmediate(r));

test('frames posted in one turn leave as one batch, in order; a lone frame as itself', async () => {
  const f = fake();
  const big = new Uint8Array(TRANSFER_MIN_BYTES);
  f.port.post(Uint8Array.of(1));
  f.port.post(big);
  f.port.post(Uint8Array.of(3, 3));
  assert.equal(f.posted.length, 0, 'nothing leaves before the turn ends');
  await turn();
  assert.equal(f.posted.length, 1);
  const batch = f.posted[0]?.message as Uint8Array[];
  assert.ok(Array.isArray(batch));
  assert.deepEqual(
    batch.map((b) => b.length),
    [1, TRANSFER_MIN_BYTES, 2],
  );
  assert.deepEqual(f.posted[0]?.transfer, [big.buffer]);
  f.port.post(Uint8Array.of(4));
  await turn();
  assert.deepEqual(f.posted[1]?.message, Uint8Array.of(4));
  assert.deepEqual(f.posted[1]?.transfer, []);
});

test('close sends what was posted before it, then nothing; the signal says CLOSED', async () => {
  const f = fake();
  f.port.post(Uint8Array.of(1));
  f.port.close();
  f.port.post(Uint8Array.of(2));
  await turn();
  assert.deepEqual(
    f.posted.map((p) => p.message),
    [Uint8Array.of(1)],
  );
  assert.equal(Atomics.load(f.signal, 0), SYNC_SIGNAL.CLOSED);
});

test('a batch from the enclave is handed on frame by frame, in order, each normalised', () => {
  const f = fake();
  const got: Uint8Array[] = [];
  f.port.onMessage((b) => got.push(b));
  const on = f.listeners.get('message');
  on?.(Uint8Array.of(9));
  on?.([Uint8Array.of(1), 'text', new Uint8Array(new SharedArrayBuffer(2)), Uint8Array.of(4)]);
  on?.({ not: 'bytes' });
  f.listeners.get('messageerror')?.(undefined);
  assert.deepEqual(
    got.map((b) => [...b]),
    [[9], [1], [], [0, 0], [4], [], []],
  );
  assert.ok(got.every((b) => b.buffer instanceof ArrayBuffer));
});

test('more frames in one turn than MAX_BATCH_FRAMES leave as several batches, in order', async () => {
  const f = fake();
  const n = MAX_BATCH_FRAMES + 5;
  for (let i = 0; i < n; i++) f.port.post(Uint8Array.of(i & 0xff, i >> 8));
  await turn();
  assert.deepEqual(
    f.posted.map((p) => (p.message as Uint8Array[]).length),
    [MAX_BATCH_FRAMES, 5],
  );
  const all = f.posted.flatMap((p) => p.message as Uint8Array[]);
  assert.ok(all.every((b, i) => b[0] === (i & 0xff) && b[1] === i >> 8));
});

test('an array from the enclave over MAX_BATCH_FRAMES is one malformed message', () => {
  const f = fake();
  const got: Uint8Array[] = [];
  f.port.onMessage((b) => got.push(b));
  const sparse: unknown[] = [];
  sparse.length = 2 ** 32 - 1;
  f.listeners.get('message')?.(sparse);
  assert.deepEqual(
    got.map((b) => b.length),
    [0],
  );
});

test('a sync call is answered once: a second reply, or one after close, sends nothing', () => {
  const replies: unknown[] = [];
  const listeners = new Map<string, (m: unknown) => void>();
  const syncPort = {
    on: (event: string, f: (m: unknown) => void) => listeners.set(event, f),
    postMessage: (m: unknown) => replies.push(m),
    close: () => {},
  };
  const worker = { postMessage: () => {}, on: () => {} };
  const signal = new Int32Array(new SharedArrayBuffer(4));
  const port = createWorkerHostPort(
    worker as unknown as Worker,
    syncPort as unknown as MessagePort,
    signal,
  );
  const answer: ((reply: Uint8Array) => void)[] = [];
  port.onSyncCall((_request, reply) => answer.push(reply));
  listeners.get('message')?.(Uint8Array.of(1));
  listeners.get('message')?.(Uint8Array.of(2));
  answer[0]?.(Uint8Array.of(7));
  answer[0]?.(Uint8Array.of(8));
  assert.deepEqual(replies, [Uint8Array.of(7)], 'one reply per call');
  assert.equal(Atomics.load(signal, 0), SYNC_SIGNAL.REPLIED, 'the signal says REPLIED');
  port.close();
  answer[1]?.(Uint8Array.of(9));
  assert.deepEqual(replies, [Uint8Array.of(7)], 'no reply after close');
  assert.equal(Atomics.load(signal, 0), SYNC_SIGNAL.CLOSED, 'the signal stays CLOSED');
});
