/**
 * The host's end of the boundary over a worker: asynchronous frames through the worker's message
 * port, synchronous calls on a dedicated MessageChannel with a SharedArrayBuffer signal
 * (docs/boundary.md, "Synchronous calls").
 *
 * Batching (docs/boundary.md, "Batches"): frames posted during one turn of the event loop leave
 * together, as one message holding an array of frames, in the order they were posted; a single
 * frame leaves as itself. Each postMessage costs both threads far more than the bytes it carries
 * (serialization, the wake-up, the event dispatch), and under load many sockets' `scp.frame`
 * calls are made in the same turn. Received messages may be batches too; their frames are handed
 * on one by one, in order, each normalised like a single message.
 */
import type { MessagePort, Worker } from 'node:worker_threads';
import {
  frameBytes,
  type HostPort,
  postFrames,
  receivedFrames,
  SYNC_SIGNAL,
  transferList,
} from '@cloister/boundary';

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
  /** Frames posted since the last flush, in post order. Invariant: empty once closed. */
  let pending: Uint8Array[] = [];
  const flush = (): void => {
    const all = pending;
    pending = [];
    if (closed || all.length === 0) return;
    postFrames((m, t) => worker.postMessage(m, t), all);
  };
  return {
    post(bytes) {
      if (closed) return;
      pending.push(bytes);
      // After the I/O callbacks of this turn: every frame they post leaves in one message.
      if (pending.length === 1) setImmediate(flush);
    },
    onMessage(handler) {
      worker.on('message', (m: unknown) => {
        for (const f of receivedFrames(m)) handler(f);
      });
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
      flush(); // frames posted before the close still leave, as they did unbatched
      closed = true;
      Atomics.store(signal, 0, SYNC_SIGNAL.CLOSED);
      Atomics.notify(signal, 0);
      syncPort.close();
    },
  };
}
