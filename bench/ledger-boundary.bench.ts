/**
 * What reading the record store from inside the enclave costs (the shipping configuration:
 * ledger in the enclave, store in the host), in one run:
 *   (a) sync `store.get` round trips from inside the enclave worker (the store client of
 *       packages/enclave/src/store, bundled through the real shim with a test entry), against
 *       classic-level `getSync` called directly on the host;
 *   (b) `store.getMany` with 16 keys per crossing, against 16 direct `getSync`s.
 * Store: LevelDB prefilled with 100,000 entries (`--size N` for another count, `--smoke` tiny),
 * 32-byte random-looking keys (SHA-256 of the index), 100-byte random values; each read picks a
 * key uniformly at random. Baseline and boundary run on two identical databases and alternate
 * in chunks, so both see the same machine load; each figure is the median of three runs. The
 * ledger's own targets come with the ledger; these are `info` lines: what the boundary costs it.
 */
import { randomBytes, randomInt } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fromUtf8, utf8 } from '@cloister/core';
import { ClassicLevel } from 'classic-level';
import { bundleEnclave } from '../packages/host/src/build/bundle.js';
import {
  ENCLAVE_CPU_PROF_ENV,
  type EnclaveWorker,
  launchEnclaveWorker,
} from '../packages/host/src/launcher/index.js';
import { LEVEL_DB_OPTIONS, openLevelStore } from '../packages/host/src/store/level.js';
import { storeOcalls } from '../packages/host/src/store/service.js';
import { benchKey } from '../packages/host/test/fixtures/store/store-enclave.js';
import { benchOptions, info, median, median3, timed } from './lib.js';

const ENTRY = 'packages/host/test/fixtures/store/store-enclave.ts';
const opts = benchOptions();
const ENTRIES = opts.size ?? (opts.smoke ? 1_000 : 100_000);
const GETS = opts.smoke ? 400 : 40_000;
const MANY = opts.smoke ? 50 : 4_000;
const CHUNKS = opts.smoke ? 2 : 8;
const VALUE_BYTES = 100;

type Db = ClassicLevel<Uint8Array, Uint8Array>;

const keys = Array.from({ length: ENTRIES }, (_, j) => benchKey(j));

async function prefill(put: (batch: { key: Uint8Array; value: Uint8Array }[]) => Promise<void>) {
  for (let at = 0; at < ENTRIES; at += 10_000) {
    const batch = keys
      .slice(at, at + 10_000)
      .map((key) => ({ key, value: randomBytes(VALUE_BYTES) }));
    await put(batch);
  }
}

async function command(w: EnclaveWorker, text: string): Promise<number> {
  const r = await w.call('enclave.ping', { payload: utf8(text) });
  return JSON.parse(fromUtf8(r.payload)) as number;
}

function rawGets(db: Db, n: number, perOp: number): number {
  let hits = 0;
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < perOp; j++) {
      if (db.getSync(keys[randomInt(ENTRIES)] as Uint8Array) !== undefined) hits++;
    }
  }
  return hits;
}

/** One run: direct getSync and the boundary alternate in chunks; rates in reads per second. */
async function compare(
  db: Db,
  w: EnclaveWorker,
  mode: 'get' | 'getMany',
): Promise<{ raw: number; boundary: number }> {
  const perOp = mode === 'get' ? 1 : 16;
  const n = mode === 'get' ? GETS : MANY;
  const k = Math.max(1, Math.floor(n / CHUNKS));
  let rawMs = 0;
  let boundaryMs = 0;
  for (let c = 0; c < CHUNKS; c++) {
    rawMs += await timed(() => {
      if (rawGets(db, k, perOp) !== k * perOp) throw new Error('a prefilled key is missing');
    });
    boundaryMs += await timed(async () => {
      if ((await command(w, `${mode}:${k}:${ENTRIES}`)) !== k * perOp) {
        throw new Error('a prefilled key is missing in the enclave');
      }
    });
  }
  const reads = k * CHUNKS * perOp * 1000;
  return { raw: reads / rawMs, boundary: reads / boundaryMs };
}

async function median3Compare(
  db: Db,
  w: EnclaveWorker,
  mode: 'get' | 'getMany',
): Promise<{ ratio: number; raw: number; boundary: number }> {
  const runs: { raw: number; boundary: number }[] = [];
  const ratio = await median3(async () => {
    const r = await compare(db, w, mode);
    runs.push(r);
    return r.boundary / r.raw;
  });
  return {
    ratio,
    raw: median(runs.map((r) => r.raw)),
    boundary: median(runs.map((r) => r.boundary)),
  };
}

const dir = mkdtempSync(join(tmpdir(), 'cloister-bench-ledger-boundary-'));
try {
  const db: Db = new ClassicLevel<Uint8Array, Uint8Array>(join(dir, 'raw'), {
    keyEncoding: 'view',
    valueEncoding: 'view',
    ...LEVEL_DB_OPTIONS,
  });
  await db.open();
  await prefill((batch) => db.batch(batch.map((e) => ({ type: 'put' as const, ...e }))));
  const store = await openLevelStore(join(dir, 'store'));
  await prefill((batch) =>
    store.write(
      batch.map((e) => ({ type: 'put' as const, ...e })),
      { sync: false },
    ),
  );
  const { code } = await bundleEnclave({ enclave: ENTRY });
  const w = await launchEnclaveWorker({
    code,
    ocalls: storeOcalls(store),
    // `CLOISTER_ENCLAVE_CPU_PROF=DIR`: a CPU profile of the enclave worker (docs/performance.md).
    cpuProfileDir: process.env[ENCLAVE_CPU_PROF_ENV] || undefined,
  });
  try {
    // Warm-up: the enclave derives its key list once; both sides warm their caches and JIT.
    await command(w, `get:${Math.min(GETS, 2_000)}:${ENTRIES}`);
    await command(w, `getMany:${Math.min(MANY, 200)}:${ENTRIES}`);
    rawGets(db, Math.min(GETS, 2_000), 1);

    const get = await median3Compare(db, w, 'get');
    const many = await median3Compare(db, w, 'getMany');
    info('ledger-boundary.entries', ENTRIES);
    info('ledger-boundary.store-get-sync-vs-getsync', get.ratio);
    info('ledger-boundary.store-get-sync-per-s', get.boundary);
    info('ledger-boundary.store-get-sync-us', 1e6 / get.boundary);
    info('ledger-boundary.leveldb-getsync-per-s', get.raw);
    info('ledger-boundary.leveldb-getsync-us', 1e6 / get.raw);
    info('ledger-boundary.store-getmany16-keys-vs-getsync', many.ratio);
    info('ledger-boundary.store-getmany16-keys-per-s', many.boundary);
    info('ledger-boundary.store-getmany16-crossings-per-s', many.boundary / 16);
    info('ledger-boundary.store-getmany16-crossing-us', 16e6 / many.boundary);
  } finally {
    await w.terminate();
    await store.close();
    await db.close();
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}
