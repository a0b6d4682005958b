/**
 * The host's end of the boundary over a worker: asynchronous frames through the worker's message
 * port, synchronous calls on a dedicated MessageChannel with a SharedArrayBuffer signal
 * (docs/boundary.md, "Synchronous calls").
 */
import type { MessagePort, Worker } from 'node:worker_threads';
import { frameBytes, type HostPort, SYNC_SIGNAL, transferList } from '@cloister/boundary';

export interface WorkerHostPort extends HostPort {
  /**
   * Closes the boundary: stores CLOSED in the signal and wakes the enclave if it is blocked in
   * a sync call (it then throws instead of waiting forever), drops later replies, and closes the
   * sync channel. Idempotent.
   */
  close(): void;
}

/** The host end over `worker`, its sync channel end `syncPort` and the shared `signal`. */
export function createWorkerHostPort(
  worker: Worker,
  syncPort: MessagePort,
  signal: Int32Array,
): WorkerHostPort {
  let closed = false;
  return {
    post(bytes) {
      if (!closed) worker.postMessage(bytes, transferList(bytes));
    },
    onMessage(handler) {
      worker.on('message', (m: unknown) => handler(frameBytes(m)));
      worker.on('messageerror', () => handler(new Uint8Array(0)));
    },
    onSyncCall(handler) {
      const serve = (m: unknown): void => {
        let done = false;
        handler(frameBytes(m), (reply) => {
          if (done || closed) return;
          done = true;
          // Post first, then signal: the enclave reads the reply as soon as it wakes.
          syncPort.postMessage(reply, transferList(reply));
          Atomics.store(signal, 0, SYNC_SIGNAL.REPLIED);
          Atomics.notify(signal, 0);
        });
      };
      syncPort.on('message', serve);
      syncPort.on('messageerror', () => serve(undefined));
    },
    close() {
      if (closed) return;
      closed = true;
      Atomics.store(signal, 0, SYNC_SIGNAL.CLOSED);
      Atomics.notify(signal, 0);
      syncPort.close();
    },
  };
}
