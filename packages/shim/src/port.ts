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

/** Builds the enclave's Port. `onMessage` may be set once. */
export function createWorkerPort(ch: WorkerChannel): Port {
  const { parentPort, syncPort, signal, receiveMessageOnPort, atomics } = ch;
  let handler: ((bytes: Uint8Array) => void) | undefined;
  return {
    post(bytes) {
      parentPort.postMessage(bytes, transferList(bytes));
    },
    onMessage(h) {
      if (handler !== undefined) throw new BoundaryError('the port already has a message handler');
      handler = h;
      parentPort.on('message', (m: unknown) => h(frameBytes(m)));
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
