/**
 * The enclave Port's sync-call state machine, driven step by step with a fake worker channel (no
 * threads): `wait` runs a scripted host, so every interleaving a malicious host could choose is a
 * plain test.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { MessagePort } from 'node:worker_threads';
import { BoundaryError, SYNC_SIGNAL, TRANSFER_MIN_BYTES } from '@cloister/boundary';
import { createWorkerPort } from '../src/port.js';

type Host = (signal: Int32Array, inbox: unknown[], request: Uint8Array | undefined) => void;

/** A channel whose sync replies come from `host`, called each time the enclave waits. */
function fake(host: Host) {
  const signal = new Int32Array(new SharedArrayBuffer(4));
  const inbox: unknown[] = []; // sync channel, host -> enclave
  const posted: { bytes: Uint8Array; transfer: unknown[] }[] = []; // parent port, enclave -> host
  const requests: Uint8Array[] = []; // sync channel, enclave -> host
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
    receiveMessageOnPort: () => (inbox.length > 0 ? { message: inbox.shift() } : undefined),
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
  return { port, signal, inbox, posted, requests, listeners, waits: () => waits };
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

test('post transfers only large whole buffers; onMessage normalises what arrives, once', () => {
  const f = fake(() => {});
  f.port.post(new Uint8Array(10));
  const big = new Uint8Array(TRANSFER_MIN_BYTES);
  f.port.post(big);
  f.port.post(new Uint8Array(TRANSFER_MIN_BYTES * 2).subarray(1));
  assert.deepEqual(
    f.posted.map((p) => p.transfer.length),
    [0, 1, 0],
  );
  const got: Uint8Array[] = [];
  f.port.onMessage((b) => got.push(b));
  assert.throws(() => f.port.onMessage(() => {}), /already has a message handler/);
  const onMessage = f.listeners.get('message');
  onMessage?.(new Uint8Array([1]));
  onMessage?.('text');
  onMessage?.(new Uint8Array(new SharedArrayBuffer(1)));
  f.listeners.get('messageerror')?.(undefined);
  assert.deepEqual(
    got.map((b) => [...b]),
    [[1], [], [0], []],
  );
  assert.ok(got.every((b) => b.buffer instanceof ArrayBuffer));
});
