/**
 * Launches the enclave: a worker thread evaluating the exact bundle bytes the platform measured
 * (docs/boundary.md, "Isolation"). The bytes are decoded once, strictly, and never re-read from a
 * path. The worker gets an empty environment, no inherited Node flags (only `cpuProfileDir`, an
 * explicit simulation-only option, adds any), and captured stdout and stderr: enclave output is
 * not a log channel, so it is counted and dropped, never forwarded.
 */
import { MessageChannel, type ResourceLimits, Worker } from 'node:worker_threads';
import {
  type BoundaryError,
  type CallRequest,
  type CallResponse,
  createHostRpc,
  type EnclaveWorkerData,
  type HostCallHandlers,
  type HostEventHandlers,
  type HostToEnclaveCall,
  SYNC_SIGNAL_BYTES,
} from '@cloister/boundary';
import { EnclaveFailedError } from './errors.js';
import { createWorkerHostPort } from './host-port.js';

/**
 * Worker heap limits unless overridden: 1 GiB old generation, 32 MiB young generation, 64 MiB
 * code range, 4 MiB stack. (WebAssembly memories are outside these limits.) A worker that
 * exceeds them stops with ENCLAVE_FAILED. The young generation was 64 MiB until 2026-11-23:
 * smaller ones measured shorter scavenge pauses under SCP load (query p99/p50 4.3–4.4 at 32 MiB,
 * 3.7–4.5 at 16, 4.7–5.3 at 64) and no loss in the ledger's phases, but 16 MiB cost the logchain's
 * commits (0.71–0.92 of the no-log rate over eleven runs, against 0.83–0.88 at 64 and 0.84–0.88 at
 * 32; goal 0.8). docs/performance.md, "Latest runs".
 */
export const DEFAULT_RESOURCE_LIMITS: Readonly<ResourceLimits> = {
  maxOldGenerationSizeMb: 1024,
  maxYoungGenerationSizeMb: 32,
  codeRangeSizeMb: 64,
  stackSizeMb: 4,
};

export interface LaunchOptions {
  /** The measured bundle bytes (UTF-8 JavaScript); evaluated as is. */
  readonly code: Uint8Array;
  /** Handlers for the enclave's calls (`platform.*`, `host.ping`); each may be async. */
  readonly ocalls: HostCallHandlers;
  /** Overrides of DEFAULT_RESOURCE_LIMITS. */
  readonly resourceLimits?: ResourceLimits;
  /** Each `log` event: a pino level and a fixed event name (checked on receipt). */
  readonly onLog?: (level: number, event: string) => void;
  /**
   * The enclave's other events (`scp.send`, `scp.end`: frames for the secure connection relay),
   * delivered in the order the enclave emitted them, interleaved in order with call replies.
   */
  readonly events?: Omit<HostEventHandlers, 'log'>;
  /** Fires once when the worker is gone, whatever the cause (`requested`: by terminate()). */
  readonly onExit?: (info: { readonly exitCode: number; readonly requested: boolean }) => void;
  /** Bytes of enclave stdout/stderr dropped. */
  readonly onOutputDropped?: (bytes: number) => void;
  /** Each malformed or unexpected frame from the enclave (dropped; the host keeps serving). */
  readonly onProtocolError?: (error: BoundaryError) => void;
  /** Largest frame either way (default 64 MiB). */
  readonly maxMessageBytes?: number;
  /**
   * Benchmarks only: the worker runs with `--cpu-prof --cpu-prof-dir=DIR` and writes a V8 CPU
   * profile of the enclave thread there when it stops. A profile shows where the enclave's time
   * goes, which the host must not learn on a real TEE; it exists because the simulation platform
   * runs the enclave as a worker of the host's own process, where the host can read it anyway.
   * The caller passes it on the simulation platform only; a real platform's launcher has no such
   * option.
   */
  readonly cpuProfileDir?: string;
}

/** A running enclave worker. */
export interface EnclaveWorker {
  /**
   * Calls the enclave. Rejects with RemoteError (the enclave's error reply), BoundaryError (a
   * malformed reply), or EnclaveFailedError if the worker stops first.
   */
  call<N extends HostToEnclaveCall>(name: N, req: CallRequest<N>): Promise<CallResponse<N>>;
  /** Stops the worker; pending calls reject with ENCLAVE_FAILED. Resolves once it is gone. */
  terminate(): Promise<void>;
  /** Bytes of enclave stdout/stderr dropped so far. */
  readonly outputDropped: number;
}

const decoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

function source(code: Uint8Array): string {
  if (!(code instanceof Uint8Array)) throw new EnclaveFailedError('the enclave code must be bytes');
  try {
    return decoder.decode(code);
  } catch {
    throw new EnclaveFailedError('the enclave code is not valid UTF-8');
  }
}

/**
 * The environment variable naming a directory for enclave CPU profiles (`LaunchOptions.cpuProfileDir`),
 * read by the node on the simulation platform only; unset by default.
 */
export const ENCLAVE_CPU_PROF_ENV = 'CLOISTER_ENCLAVE_CPU_PROF';

/** Starts the enclave worker; resolves once its thread runs (calls made earlier are queued). */
export function launchEnclaveWorker(opts: LaunchOptions): Promise<EnclaveWorker> {
  let text: string;
  try {
    text = source(opts.code);
  } catch (e) {
    return Promise.reject(e);
  }
  const signalBuffer = new SharedArrayBuffer(SYNC_SIGNAL_BYTES);
  const sync = new MessageChannel();
  const workerData: EnclaveWorkerData = { syncPort: sync.port2, signal: signalBuffer };
  const worker = new Worker(text, {
    eval: true,
    name: 'cloister-enclave',
    env: {},
    argv: [],
    execArgv: opts.cpuProfileDir ? ['--cpu-prof', `--cpu-prof-dir=${opts.cpuProfileDir}`] : [],
    stdin: false,
    stdout: true,
    stderr: true,
    resourceLimits: { ...DEFAULT_RESOURCE_LIMITS, ...opts.resourceLimits },
    workerData,
    transferList: [sync.port2],
  });
  const port = createWorkerHostPort(worker, sync.port1, new Int32Array(signalBuffer, 0, 1));
  const onLog = opts.onLog;
  const rpc = createHostRpc(
    port,
    {
      ...opts.ocalls,
      ...opts.events,
      log: onLog ? (ev) => onLog(ev.level, ev.event) : undefined,
    },
    {
      ...(opts.maxMessageBytes !== undefined ? { maxLength: opts.maxMessageBytes } : {}),
      ...(opts.onProtocolError ? { onProtocolError: opts.onProtocolError } : {}),
    },
  );
  let dropped = 0;
  const drop = (chunk: Buffer): void => {
    dropped += chunk.length;
    opts.onOutputDropped?.(chunk.length);
  };
  worker.stdout.on('data', drop);
  worker.stderr.on('data', drop);

  let requested = false;
  let online = false;
  let crashed = false;
  const exited = new Promise<number>((resolve) => worker.once('exit', resolve));
  worker.on('error', () => {
    // The enclave's own error text stays here: it is not forwarded anywhere.
    crashed = true;
  });
  const gone = exited.then((exitCode) => {
    port.close();
    const why = requested ? 'was stopped' : crashed ? 'crashed' : `exited with code ${exitCode}`;
    rpc.close(new EnclaveFailedError(`the enclave worker ${why}`));
    opts.onExit?.({ exitCode, requested });
  });

  const enclave: EnclaveWorker = {
    call: (name, req) => rpc.call(name, req),
    terminate: async () => {
      requested = true;
      port.close();
      rpc.close(new EnclaveFailedError('the enclave worker was stopped'));
      await worker.terminate();
      await gone;
    },
    get outputDropped() {
      return dropped;
    },
  };
  return new Promise((resolve, reject) => {
    worker.once('online', () => {
      online = true;
      resolve(enclave);
    });
    void gone.then(() => {
      if (!online) reject(new EnclaveFailedError('the enclave worker stopped before it started'));
    });
  });
}
