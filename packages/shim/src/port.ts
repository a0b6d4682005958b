/**
 * The enclave's Port over the worker: asynchronous frames on the worker's parent port,
 * synchronous calls on a dedicated channel with a SharedArrayBuffer signal (docs/boundary.md,
 * "Synchronous calls"). Everything it uses is captured before lockdown, so removing the globals
 * afterwards (Atomics.wait among them) does not affect it.
 */
import type { MessagePort } from 'node:worker_threads';
import {
  BoundaryError,
  frameBytes,
  type Port,
  postFrames,
  receivedFrames,
  SYNC_SIGNAL,
  transferList,
} from '@cloister/boundary';

/** What the port needs from the worker, captured before lockdown. */
export interface WorkerChannel {
  /** The worker's parentPort: asynchronous frames both ways. */
  readonly parentPort: MessagePort;
  /** The enclave end of the sync channel: requests out, replies in. */
  readonly syncPort: MessagePort;
  /** One Int32 over the shared signal buffer (SYNC_SIGNAL states). */
  readonly signal: Int32Array;
  readonly receiveMessageOnPort: (port: MessagePort) => { message: unknown } | undefined;
  readonly atomics: Pick<typeof Atomics, 'wait' | 'load' | 'compareExchange'>;
}

/** Queued host messages taken at once after one arrives (createWorkerPort's `onMessage`). */
const DRAIN_MAX = 64;

/**
 * Builds the enclave's Port. `onMessage` may be set once.
 *
 * Batching (docs/boundary.md, "Batches"): posted frames leave together, as one message holding
 * an array of frames in post order (a single frame as itself), once a full round of the microtask
 * queue passed with no new post: the enclave has no timers, and the work one host message starts
 * (a batch of `scp.frame` calls, their records opened and sealed) runs as chains of settled
 * promises, so that is when it is done. The flush check always sits in the microtask queue while
 * frames wait, so they leave before the thread goes idle. A sync call does not flush: its channel
 * was never ordered with the asynchronous one. Received messages may be batches too; their frames
 * are handed on one by one, in order, each normalised like a single message; host messages that
 * queued while the thread was busy are taken together (at most DRAIN_MAX more per arrival).
 */
export function createWorkerPort(ch: WorkerChannel): Port {
  const { parentPort, syncPort, signal, receiveMessageOnPort, atomics } = ch;
  let handler: ((bytes: Uint8Array) => void) | undefined;
  /** Frames posted and not yet sent, in post order. */
  let pending: Uint8Array[] = [];
  /** pending.length when the flush check last ran (a larger length: posts since). */
  let seen = 0;
  let scheduled = false;
  const check = (): void => {
    if (pending.length !== seen) {
      seen = pending.length;
      void Promise.resolve().then(check); // posts in this round: wait one more round
      return;
    }
    const all = pending;
    pending = [];
    seen = 0;
    scheduled = false;
    postFrames((m, t) => parentPort.postMessage(m, t), all);
  };
  return {
    post(bytes) {
      pending.push(bytes);
      if (!scheduled) {
        scheduled = true;
        seen = 0;
        void Promise.resolve().then(check);
      }
    },
    onMessage(h) {
      if (handler !== undefined) throw new BoundaryError('the port already has a message handler');
      handler = h;
      const deliver = (m: unknown): void => {
        for (const f of receivedFrames(m)) h(f);
      };
      parentPort.on('message', (m: unknown) => {
        deliver(m);
        // Messages that queued while this thread was busy are taken now, in order, before the
        // work they start runs: that work then ends in one flush, one batch back to the host.
        // Bounded, so a host that never stops posting cannot keep this loop going forever.
        for (let i = 0; i < DRAIN_MAX; i++) {
          const next = receiveMessageOnPort(parentPort);
          if (next === undefined) break;
          deliver(next.message);
        }
      });
      parentPort.on('messageerror', () => h(new Uint8Array(0)));
    },
    callSync(bytes) {
      // State machine of the signal: IDLE -(host)-> REPLIED -(here, CAS)-> IDLE; CLOSED is final
      // and only the host writes it, so a CAS here can never undo it.
      if (atomics.load(signal, 0) === SYNC_SIGNAL.CLOSED) {
        throw new BoundaryError('the host closed the boundary');
      }
      while (receiveMessageOnPort(syncPort) !== undefined) {
        // Drop stale replies (a host may answer late or twice); each call gets a fresh read.
      }
      syncPort.postMessage(bytes, transferList(bytes));
      let state = atomics.load(signal, 0);
      while (state === SYNC_SIGNAL.IDLE) {
        atomics.wait(signal, 0, SYNC_SIGNAL.IDLE);
        state = atomics.load(signal, 0);
      }
      if (state === SYNC_SIGNAL.CLOSED) throw new BoundaryError('the host closed the boundary');
      if (state !== SYNC_SIGNAL.REPLIED) throw new BoundaryError('the sync signal is corrupt');
      const reply = receiveMessageOnPort(syncPort);
      atomics.compareExchange(signal, 0, SYNC_SIGNAL.REPLIED, SYNC_SIGNAL.IDLE);
      if (reply === undefined) throw new BoundaryError('the host woke a sync call with no reply');
      return frameBytes(reply.message);
    },
  };
}
