/**
 * The first module of the enclave bundle. Importing it, once:
 *   1. captures what the shim itself needs: the worker's parent port, the sync channel and
 *      signal from `workerData`, `receiveMessageOnPort`, `Atomics`, and `node:crypto`;
 *   2. locks down the globals (lockdown.ts).
 * Its only imports are `node:worker_threads` and lockdown.ts (which imports nothing), so every
 * other module of the bundle (core, boundary, the enclave, their dependencies) is evaluated
 * after step 2: ES module evaluation order, which esbuild keeps in the bundle.
 */
import { MessagePort, parentPort, receiveMessageOnPort, workerData } from 'node:worker_threads';
import { lockdown } from './lockdown.js';
import type { WorkerChannel } from './port.js';

function capture(): WorkerChannel {
  const data = workerData as { syncPort?: unknown; signal?: unknown } | null;
  if (
    parentPort === null ||
    !(data?.syncPort instanceof MessagePort) ||
    !(data.signal instanceof SharedArrayBuffer) ||
    data.signal.byteLength < 4
  ) {
    throw new Error('the enclave bundle must be started by the Cloister launcher');
  }
  return {
    parentPort,
    syncPort: data.syncPort,
    signal: new Int32Array(data.signal, 0, 1),
    receiveMessageOnPort,
    atomics: { wait: Atomics.wait, load: Atomics.load, compareExchange: Atomics.compareExchange },
  };
}

let channel: WorkerChannel | undefined = capture();
// The bundle is a CommonJS script evaluated by the worker, where `require` is a global.
lockdown(globalThis as unknown as Record<string, unknown>, {
  'node:crypto': require('node:crypto'),
});

/** Hands out the captured worker channel, once. */
export function takeChannel(): WorkerChannel {
  const c = channel;
  if (c === undefined) throw new Error('the enclave channel was already taken');
  channel = undefined;
  return c;
}
