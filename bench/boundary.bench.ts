/**
 * The host/enclave boundary against the bare worker mechanism it is built on, in one run:
 *   (a) async round trips: `enclave.ping` (64-byte payload) through launcher + rpc + codec to the
 *       real enclave bundle, vs plain postMessage ping-pong of a 64-byte Uint8Array with a worker;
 *   (b) sync round trips: `host.ping` called with callSync inside an enclave (a bench-only probe
 *       enclave bundled through the same shim and rpc), vs a raw SharedArrayBuffer + Atomics.wait
 *       + receiveMessageOnPort ping-pong with no codec.
 * Sequential round trips (latency-bound). Within a run, baseline and boundary alternate in chunks,
 * so both see the same machine load (round-trip latency between threads swings with scheduling);
 * each figure is the median of three runs. Also prints, for docs/boundary.md, start times and the
 * round trip of the alternative isolation (a child process with IPC).
 */
import { fork } from 'node:child_process';
import { performance } from 'node:perf_hooks';
import { MessageChannel, type MessagePort, Worker } from 'node:worker_threads';
import { fromUtf8, utf8 } from '@cloister/core';
import { bundleEnclave } from '../packages/host/src/build/bundle.js';
import { type EnclaveWorker, launchEnclaveWorker } from '../packages/host/src/launcher/index.js';
import { runEvidenceBench } from './evidence.js';
import { benchOptions, info, median, median3, target, timed } from './lib.js';

const PROBE = 'packages/host/test/fixtures/boundary/probe-enclave.ts';
const opts = benchOptions();
const ASYNC_N = opts.size ?? (opts.smoke ? 200 : 20_000);
const SYNC_N = opts.size ?? (opts.smoke ? 200 : 40_000);
const CHUNKS = opts.smoke ? 2 : 10;
const WARMUP = opts.smoke ? 50 : 2_000;

/** Something that makes `k` sequential round trips and says how long they took (ms). */
interface Runner {
  run(k: number): Promise<number>;
  close(): Promise<void>;
}

const RAW_ASYNC_WORKER = `
const { parentPort } = require('node:worker_threads');
parentPort.on('message', (m) => parentPort.postMessage(m));
`;

const RAW_SYNC_WORKER = `
const { parentPort, workerData, receiveMessageOnPort } = require('node:worker_threads');
const { port, signal } = workerData;
const flag = new Int32Array(signal);
parentPort.on('message', (n) => {
  const payload = new Uint8Array(64).fill(7);
  for (let i = 0; i < n; i++) {
    Atomics.store(flag, 0, 0);
    port.postMessage(payload);
    while (Atomics.load(flag, 0) === 0) Atomics.wait(flag, 0, 0);
    const r = receiveMessageOnPort(port);
    if (!r || r.message.length !== 64) throw new Error('bad reply');
  }
  parentPort.postMessage(n);
});
`;

function once(w: Worker): Promise<unknown> {
  return new Promise((resolve) => w.once('message', resolve));
}

function rawAsync(): Runner {
  const w = new Worker(RAW_ASYNC_WORKER, { eval: true, env: {}, execArgv: [] });
  const payload = new Uint8Array(64).fill(7);
  return {
    run: (k) =>
      timed(async () => {
        for (let i = 0; i < k; i++) {
          const reply = once(w);
          w.postMessage(payload);
          await reply;
        }
      }),
    close: async () => void (await w.terminate()),
  };
}

function rawSync(): Runner {
  const signal = new SharedArrayBuffer(4);
  const flag = new Int32Array(signal);
  const { port1, port2 } = new MessageChannel();
  port1.on('message', (m: Uint8Array) => {
    port1.postMessage(m);
    Atomics.store(flag, 0, 1);
    Atomics.notify(flag, 0);
  });
  const w = new Worker(RAW_SYNC_WORKER, {
    eval: true,
    env: {},
    execArgv: [],
    workerData: { port: port2, signal },
    transferList: [port2 as unknown as MessagePort],
  });
  return {
    run: (k) =>
      timed(async () => {
        const done = once(w);
        w.postMessage(k);
        await done;
      }),
    close: async () => {
      port1.close();
      await w.terminate();
    },
  };
}

async function probeCommand(w: EnclaveWorker, command: string): Promise<unknown> {
  const r = await w.call('enclave.ping', { payload: utf8(command) });
  return JSON.parse(fromUtf8(r.payload));
}

async function boundaryAsync(code: Uint8Array): Promise<Runner> {
  const w = await launchEnclaveWorker({ code, ocalls: {} });
  const payload = new Uint8Array(64).fill(7);
  return {
    run: (k) =>
      timed(async () => {
        for (let i = 0; i < k; i++) await w.call('enclave.ping', { payload });
      }),
    close: () => w.terminate(),
  };
}

async function boundarySync(code: Uint8Array): Promise<Runner> {
  const w = await launchEnclaveWorker({
    code,
    ocalls: { 'host.ping': (req) => ({ payload: req.payload }) },
  });
  return {
    run: (k) =>
      timed(async () => {
        if ((await probeCommand(w, `sync-ping:${k}`)) !== k) throw new Error('probe failed');
      }),
    close: () => w.terminate(),
  };
}

/** One run: baseline and boundary alternate in chunks; returns both rates (round trips/s). */
async function compare(
  makeRaw: () => Runner,
  makeBoundary: () => Promise<Runner>,
  n: number,
): Promise<{ raw: number; boundary: number }> {
  const raw = makeRaw();
  const boundary = await makeBoundary();
  await raw.run(WARMUP);
  await boundary.run(WARMUP);
  const k = Math.max(1, Math.floor(n / CHUNKS));
  let rawMs = 0;
  let boundaryMs = 0;
  for (let c = 0; c < CHUNKS; c++) {
    rawMs += await raw.run(k);
    boundaryMs += await boundary.run(k);
  }
  await raw.close();
  await boundary.close();
  return { raw: (k * CHUNKS * 1000) / rawMs, boundary: (k * CHUNKS * 1000) / boundaryMs };
}

/** Median of three runs of `compare`: the ratio, and the rates, each its own median. */
async function median3Compare(
  makeRaw: () => Runner,
  makeBoundary: () => Promise<Runner>,
  n: number,
): Promise<{ ratio: number; raw: number; boundary: number }> {
  const runs: { raw: number; boundary: number }[] = [];
  const ratio = await median3(async () => {
    const r = await compare(makeRaw, makeBoundary, n);
    runs.push(r);
    return r.boundary / r.raw;
  });
  return {
    ratio,
    raw: median(runs.map((r) => r.raw)),
    boundary: median(runs.map((r) => r.boundary)),
  };
}

async function startTime(code: Uint8Array): Promise<number> {
  const t0 = performance.now();
  const w = await launchEnclaveWorker({ code, ocalls: {} });
  await w.call('enclave.ping', { payload: new Uint8Array(0) });
  const ms = performance.now() - t0;
  await w.terminate();
  return ms;
}

async function bareWorkerStart(): Promise<number> {
  const r = rawAsync();
  const ms = await r.run(1);
  await r.close();
  return ms;
}

/** The alternative isolation, for docs/boundary.md: a child process over IPC (structured clone). */
async function childProcess(n: number): Promise<{ startMs: number; roundTripUs: number }> {
  const code = `process.on('message', (m) => process.send(m)); process.send('ready');`;
  const t0 = performance.now();
  const child = fork('-e', [code], { execArgv: [], env: {}, serialization: 'advanced' });
  await new Promise((resolve) => child.once('message', resolve));
  const startMs = performance.now() - t0;
  const payload = new Uint8Array(64).fill(7);
  const ms = await timed(async () => {
    for (let i = 0; i < n; i++) {
      const reply = new Promise((resolve) => child.once('message', resolve));
      child.send(payload);
      await reply;
    }
  });
  child.kill();
  return { startMs, roundTripUs: (ms * 1000) / n };
}

const real = await bundleEnclave();
const probe = await bundleEnclave({ enclave: PROBE });

const a = await median3Compare(rawAsync, () => boundaryAsync(real.code), ASYNC_N);
const s = await median3Compare(rawSync, () => boundarySync(probe.code), SYNC_N);
const startMs = await median3(() => startTime(real.code));
const bareStartMs = await median3(bareWorkerStart);
const child = await childProcess(opts.smoke ? 100 : 5_000);

target('boundary.async-roundtrip-vs-raw', a.ratio, '>=0.70');
target('boundary.sync-roundtrip-vs-raw', s.ratio, '>=0.70');
info('boundary.async-roundtrips-per-s', a.boundary);
info('boundary.async-raw-roundtrips-per-s', a.raw);
info('boundary.async-roundtrip-us', 1e6 / a.boundary);
info('boundary.sync-roundtrips-per-s', s.boundary);
info('boundary.sync-raw-roundtrips-per-s', s.raw);
info('boundary.sync-roundtrip-us', 1e6 / s.boundary);
info('boundary.start-to-first-ping-ms', startMs);
info('boundary.bare-worker-start-to-first-reply-ms', bareStartMs);
info('boundary.bundle-bytes', real.code.length);
info('boundary.child-process-start-ms', child.startMs);
info('boundary.child-process-raw-roundtrip-us', child.roundTripUs);

// Evidence created and verified per second against raw ECDSA P-256 (bench/evidence.ts).
await runEvidenceBench(opts);
