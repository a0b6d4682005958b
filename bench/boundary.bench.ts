/**
 * The host/enclave boundary against the bare worker mechanism it is built on, in one run:
 *   (a) async round trips: `enclave.ping` (64-byte payload) through launcher + rpc + codec to the
 *       real enclave bundle, vs plain postMessage ping-pong of a 64-byte Uint8Array with a worker;
 *   (b) sync round trips: `host.ping` called with callSync inside an enclave (a bench-only probe
 *       enclave bundled through the same shim and rpc), vs a raw SharedArrayBuffer + Atomics.wait
 *       + receiveMessageOnPort ping-pong with no codec.
 * Sequential round trips (latency-bound); each figure is the median of three runs.
 */
import { performance } from 'node:perf_hooks';
import { MessageChannel, type MessagePort, Worker } from 'node:worker_threads';
import { fromUtf8, utf8 } from '@cloister/core';
import { bundleEnclave } from '../packages/host/src/build/bundle.js';
import { type EnclaveWorker, launchEnclaveWorker } from '../packages/host/src/launcher/index.js';
import { benchOptions, info, median3, target } from './lib.js';

const PROBE = 'packages/host/test/fixtures/boundary/probe-enclave.ts';
const opts = benchOptions();
const ASYNC_N = opts.size ?? (opts.smoke ? 200 : 20_000);
const SYNC_N = opts.size ?? (opts.smoke ? 200 : 50_000);
const WARMUP = opts.smoke ? 50 : 2_000;

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

async function rawAsync(n: number): Promise<number> {
  const w = new Worker(RAW_ASYNC_WORKER, { eval: true, env: {}, execArgv: [] });
  const payload = new Uint8Array(64).fill(7);
  const run = async (k: number): Promise<number> => {
    const t0 = performance.now();
    for (let i = 0; i < k; i++) {
      const reply = once(w);
      w.postMessage(payload);
      await reply;
    }
    return (k * 1000) / (performance.now() - t0);
  };
  await run(WARMUP);
  const rate = await run(n);
  await w.terminate();
  return rate;
}

async function rawSync(n: number): Promise<number> {
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
  const run = async (k: number): Promise<number> => {
    const t0 = performance.now();
    const done = once(w);
    w.postMessage(k);
    await done;
    return (k * 1000) / (performance.now() - t0);
  };
  await run(WARMUP);
  const rate = await run(n);
  port1.close();
  await w.terminate();
  return rate;
}

async function boundaryAsync(code: Uint8Array, n: number): Promise<number> {
  const w = await launchEnclaveWorker({ code, ocalls: {} });
  const payload = new Uint8Array(64).fill(7);
  const run = async (k: number): Promise<number> => {
    const t0 = performance.now();
    for (let i = 0; i < k; i++) await w.call('enclave.ping', { payload });
    return (k * 1000) / (performance.now() - t0);
  };
  await run(WARMUP);
  const rate = await run(n);
  await w.terminate();
  return rate;
}

async function probeCommand(w: EnclaveWorker, command: string): Promise<unknown> {
  const r = await w.call('enclave.ping', { payload: utf8(command) });
  return JSON.parse(fromUtf8(r.payload));
}

async function boundarySync(code: Uint8Array, n: number): Promise<number> {
  const w = await launchEnclaveWorker({
    code,
    ocalls: { 'host.ping': (req) => ({ payload: req.payload }) },
  });
  const run = async (k: number): Promise<number> => {
    const t0 = performance.now();
    const done = await probeCommand(w, `sync-ping:${k}`);
    if (done !== k) throw new Error('the probe enclave did not make the sync calls');
    return (k * 1000) / (performance.now() - t0);
  };
  await run(WARMUP);
  const rate = await run(n);
  await w.terminate();
  return rate;
}

async function startTime(code: Uint8Array): Promise<number> {
  const t0 = performance.now();
  const w = await launchEnclaveWorker({ code, ocalls: {} });
  await w.call('enclave.ping', { payload: new Uint8Array(0) });
  const ms = performance.now() - t0;
  await w.terminate();
  return ms;
}

const real = await bundleEnclave();
const probe = await bundleEnclave({ enclave: PROBE });

const rawAsyncRate = await median3(() => rawAsync(ASYNC_N));
const asyncRate = await median3(() => boundaryAsync(real.code, ASYNC_N));
const rawSyncRate = await median3(() => rawSync(SYNC_N));
const syncRate = await median3(() => boundarySync(probe.code, SYNC_N));
const startMs = await median3(() => startTime(real.code));

target('boundary.async-roundtrip-vs-raw', asyncRate / rawAsyncRate, '>=0.70');
target('boundary.sync-roundtrip-vs-raw', syncRate / rawSyncRate, '>=0.70');
info('boundary.async-roundtrips-per-s', asyncRate);
info('boundary.async-raw-roundtrips-per-s', rawAsyncRate);
info('boundary.async-roundtrip-us', 1e6 / asyncRate);
info('boundary.sync-roundtrips-per-s', syncRate);
info('boundary.sync-raw-roundtrips-per-s', rawSyncRate);
info('boundary.sync-roundtrip-us', 1e6 / syncRate);
info('boundary.start-to-first-ping-ms', startMs);
info('boundary.bundle-bytes', real.code.length);
