/**
 * The apps benchmark (issue 5, "Must show"), in the configuration that ships: the app runtime
 * (sandbox, ABI v1, docs/sandbox.md, docs/app-abi.md) and the ledger engine run in the enclave
 * worker (packages/host/test/fixtures/apps/apps-enclave.ts, bundled through the real shim),
 * over the host's LevelDB store through the boundary (sync `store.get`, `store.write` + sync per
 * group commit); the host serves `storeOcalls(openLevelStore(dir))` and times each enclave
 * command around its `enclave.ping` (the enclave has no clock). Every figure is the median of
 * three runs (bench/lib.ts); each ratio's two sides are measured interleaved in the same worker.
 *
 *   (a) fuel overhead: the three pinned kernels of packages/enclave/test/sandbox-kernels.ts (an
 *       ALU loop, recursive fib, a load/store loop), the same module run plain (WebAssembly
 *       directly) and instrumented through the sandbox (`instantiate` + `call`), a fresh
 *       instance per call either way, alternating; instrumented ÷ plain time (the fastest of
 *       PAIRS calls per side in each run), goal <= 1.5x for the worst kernel; each kernel's
 *       ratio as info;
 *   (b) 1-write app transactions per second: an app built with the SDK by the CLI's build path
 *       (`buildApp` of `cloister app build`: pinned asc, the SDK's transform; source in
 *       packages/host/test/fixtures/apps/bench-app.ts) whose transaction `put` writes one 32-byte
 *       key and one 100-byte value (bench/ledger's pairs, sent as hex JSON arguments), called
 *       through the runtime with 32 calls in flight (group commit), against the ledger's raw
 *       commit rate with the same writes (engine.begin(); set; commit), same engine, same
 *       durability, same 32 in flight: goal >= 0.7x;
 *   (c) empty queries per second (a query method that does nothing, called one after another
 *       in the enclave) and the instance start time (a fresh instance of the deployed app, as
 *       every call makes one): info.
 * `--smoke`: tiny sizes (CI). Progress lines go to stderr.
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { toHex } from '@cloister/core';
import { buildApp } from '../packages/cli/src/commands/app-build.js';
import { KERNELS } from '../packages/enclave/test/sandbox-kernels.js';
import { bundleEnclave } from '../packages/host/src/build/bundle.js';
import { type EnclaveWorker, launchEnclaveWorker } from '../packages/host/src/launcher/index.js';
import { openLevelStore } from '../packages/host/src/store/level.js';
import { storeOcalls } from '../packages/host/src/store/service.js';
import {
  BENCH_APP_ASCONFIG,
  BENCH_APP_SOURCE,
} from '../packages/host/test/fixtures/apps/bench-app.js';
import { benchPairs, type Pairs } from '../packages/host/test/fixtures/ledger/ledger-enclave.js';
import {
  benchOptions,
  concurrentOpsPerSecond,
  info,
  median,
  median3,
  pingJson,
  target,
  timed,
} from './lib.js';

const ENTRY = 'packages/host/test/fixtures/apps/apps-enclave.ts';
const SMOKE = benchOptions().smoke;
/** The app id; the app's ledger has the same name, and the raw baseline writes there too. */
const APP = 'bench';
const SEED = 1;
/** Keys in the app's table before measuring (both sides then write into the same table). */
const PREFILL = SMOKE ? 1_000 : 20_000;
const PREFILL_COMMIT = 5_000;
const WRITERS = 32;
/** 1-write transactions per side per run, in SLICES interleaved slices. */
const TX_OPS = SMOKE ? 64 : 1_800;
const SLICES = SMOKE ? 2 : 6;
const TX_WARMUP = SMOKE ? 32 : 300;
/** Kernel arguments: ALU and load/store iterations, fib's n. */
const KERNEL_N: Record<keyof typeof KERNELS, number> = SMOKE
  ? { aluLoop: 1_000_000, fib: 20, loadStore: 1_000_000 }
  : { aluLoop: 20_000_000, fib: 30, loadStore: 20_000_000 };
/** Alternating plain/instrumented pairs per run (three runs). */
const PAIRS = SMOKE ? 2 : 7;
const QUERIES = SMOKE ? 300 : 20_000;
const STARTS = SMOKE ? 300 : 10_000;

const root = mkdtempSync(join(tmpdir(), 'cloister-bench-apps-'));
const t0 = performance.now();
const elapsed = (): string => `${((performance.now() - t0) / 1000).toFixed(1)}`;
function progress(what: string): void {
  console.error(`# ${elapsed()} s: ${what}`);
}

/** Builds the benchmark app with the CLI's build path, in a temporary project. */
async function buildBenchApp(): Promise<Uint8Array> {
  const dir = join(root, 'app');
  mkdirSync(join(dir, 'assembly'), { recursive: true });
  writeFileSync(join(dir, 'assembly', 'index.ts'), BENCH_APP_SOURCE);
  writeFileSync(join(dir, 'asconfig.json'), BENCH_APP_ASCONFIG);
  const built = await buildApp(dir);
  const methods = built.manifest.methods.map((m) => `${m.name}:${m.kind}`).join(',');
  if (methods !== 'put:transaction,empty:query') throw new Error(`unexpected methods ${methods}`);
  return new Uint8Array(readFileSync(built.wasmPath));
}

// ---- (a) fuel overhead on the three pinned kernels -----------------------------------------

async function fuelOverhead(w: EnclaveWorker): Promise<void> {
  const ratios: Record<string, number> = {};
  for (const [name, bytes] of Object.entries(KERNELS)) {
    await pingJson(w, `kernel:${name}:${toHex(bytes)}`);
    const n = KERNEL_N[name as keyof typeof KERNELS];
    const time = async (mode: 'plain' | 'fuel'): Promise<{ ms: number; result: number }> => {
      let got = { result: 0 };
      const ms = await timed(async () => {
        got = await pingJson<{ result: number }>(w, `run:${name}:${mode}:${n}:1`);
      });
      return { ms, result: got.result };
    };
    // Warm-up: V8 compiles with Liftoff first and tiers hot functions up to TurboFan.
    for (let i = 0; i < 3; i++) {
      const a = await time('plain');
      const b = await time('fuel');
      if (a.result !== b.result) throw new Error(`${name}: ${a.result} plain, ${b.result} metered`);
    }
    // Each run: PAIRS calls per side, alternating (which side goes first alternates too), and
    // the fastest call of each side: other work on the machine only ever adds time.
    const runs: { plain: number; fuel: number }[] = [];
    for (let r = 0; r < 3; r++) {
      let plain = Number.POSITIVE_INFINITY;
      let fuel = Number.POSITIVE_INFINITY;
      for (let p = 0; p < PAIRS; p++) {
        const first = p % 2 === 0 ? 'plain' : 'fuel';
        const x = (await time(first)).ms;
        const y = (await time(first === 'plain' ? 'fuel' : 'plain')).ms;
        plain = Math.min(plain, first === 'plain' ? x : y);
        fuel = Math.min(fuel, first === 'plain' ? y : x);
      }
      runs.push({ plain, fuel });
    }
    ratios[name] = median(runs.map((r) => r.fuel / r.plain));
    progress(
      `kernel ${name}: plain ${median(runs.map((r) => r.plain)).toFixed(1)} ms, ` +
        `instrumented ${median(runs.map((r) => r.fuel)).toFixed(1)} ms per call`,
    );
  }
  info('apps.fuel-overhead-alu-loop', ratios.aluLoop!);
  info('apps.fuel-overhead-fib', ratios.fib!);
  info('apps.fuel-overhead-load-store', ratios.loadStore!);
  target('apps.fuel-overhead-worst', Math.max(...Object.values(ratios)), '<=1.5');
}

// ---- (b) 1-write transactions vs raw commits -----------------------------------------------

const hexOf = (p: Pairs, i: number): { k: string; v: string } => ({
  k: toHex(p.keys[i] as Uint8Array),
  v: toHex(p.values[i] as Uint8Array),
});

async function transactions(w: EnclaveWorker): Promise<void> {
  let next = 0;
  for (let at = 0; at < PREFILL; at += PREFILL_COMMIT) {
    const n = Math.min(PREFILL_COMMIT, PREFILL - at);
    const p = benchPairs(SEED, next, n);
    next += n;
    const flat = new Uint8Array(n * 132);
    p.keys.forEach((k, i) => {
      flat.set(k, i * 132);
      flat.set(p.values[i] as Uint8Array, i * 132 + 32);
    });
    await pingJson(w, `prefill:${APP}:${n}:${toHex(flat)}`);
  }
  progress(`prefilled ${PREFILL} keys`);

  // Requests are made before timing: the JSON arguments a client sends, the raw side's hex.
  const appRequests = (n: number): string[] => {
    const p = benchPairs(SEED, next, n);
    next += n;
    return p.keys.map((_, i) => `tx:${APP}:put:${JSON.stringify(hexOf(p, i))}`);
  };
  const rawRequests = (n: number): string[] => {
    const p = benchPairs(SEED, next, n);
    next += n;
    return p.keys.map((_, i) => {
      const { k, v } = hexOf(p, i);
      return `raw:${APP}:${k}:${v}`;
    });
  };
  const drive = (reqs: string[]): Promise<number> =>
    concurrentOpsPerSecond(reqs.length, WRITERS, (i) => pingJson(w, reqs[i] as string));

  await drive(appRequests(TX_WARMUP));
  const [sample = ''] = appRequests(1);
  const { fuelUsed } = await pingJson<{ fuelUsed: number }>(w, sample);
  await drive(rawRequests(TX_WARMUP));

  const per = Math.ceil(TX_OPS / SLICES);
  const before = await pingJson<{ writes: number; commits: number }>(w, 'stats');
  const runs: { app: number; raw: number }[] = [];
  for (let r = 0; r < 3; r++) {
    let appMs = 0;
    let rawMs = 0;
    for (let s = 0; s < SLICES; s++) {
      const app = appRequests(per);
      const raw = rawRequests(per);
      // Alternate which side goes first in each slice.
      const appFirst = (r + s) % 2 === 0;
      if (appFirst) appMs += (per * 1000) / (await drive(app));
      rawMs += (per * 1000) / (await drive(raw));
      if (!appFirst) appMs += (per * 1000) / (await drive(app));
    }
    runs.push({ app: (SLICES * per * 1000) / appMs, raw: (SLICES * per * 1000) / rawMs });
  }
  const after = await pingJson<{ writes: number; commits: number }>(w, 'stats');
  progress('transactions');
  info('apps.tx-1write.fuel-used', fuelUsed);
  info('apps.tx-1write-per-s', median(runs.map((r) => r.app)));
  info('apps.ledger-raw-1write-per-s', median(runs.map((r) => r.raw)));
  info(
    'apps.tx-1write.commits-per-store-write',
    (after.commits - before.commits) / (after.writes - before.writes),
  );
  info('apps.tx-1write-vs-ledger-raw.runs', runs.map((r) => (r.app / r.raw).toFixed(2)).join(','));
  target('apps.tx-1write-vs-ledger-raw', median(runs.map((r) => r.app / r.raw)), '>=0.7');
}

// ---- (c) empty queries, instance start -----------------------------------------------------

async function queriesAndStarts(w: EnclaveWorker): Promise<void> {
  await pingJson(w, `queries:${APP}:empty:${Math.min(QUERIES, 2_000)}`);
  const queries = await median3(
    async () =>
      (QUERIES * 1000) / (await timed(() => pingJson(w, `queries:${APP}:empty:${QUERIES}`))),
  );
  await pingJson(w, `start:${APP}:${Math.min(STARTS, 2_000)}`);
  const startUs = await median3(
    async () => ((await timed(() => pingJson(w, `start:${APP}:${STARTS}`))) * 1000) / STARTS,
  );
  progress('queries, instance starts');
  info('apps.empty-queries-per-s', queries);
  info('apps.instance-start-us', startUs);
}

try {
  info('apps.load-average-start', loadavg()[0]!);
  const [wasm, { code }] = await Promise.all([buildBenchApp(), bundleEnclave({ enclave: ENTRY })]);
  progress(`app built with the SDK (${wasm.length} bytes), enclave bundled`);
  info('apps.app-built-by', 'cloister-app-build');
  info('apps.app-module-bytes', wasm.length);
  const store = await openLevelStore(join(root, 'db'));
  const w = await launchEnclaveWorker({ code, ocalls: storeOcalls(store) });
  try {
    await pingJson(w, 'init');
    await pingJson(w, `deploy:${APP}:${toHex(wasm)}`);
    await fuelOverhead(w);
    await transactions(w);
    await queriesAndStarts(w);
  } finally {
    await w.terminate();
    await store.close();
  }
  info('apps.load-average-end', loadavg()[0]!);
  info('apps.bench-seconds', Number(elapsed()));
} finally {
  rmSync(root, { recursive: true, force: true });
}
