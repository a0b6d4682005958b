/**
 * The ledger benchmark (issue 3), in the configuration that ships: the ledger engine runs in the
 * enclave worker (packages/host/test/fixtures/ledger/ledger-enclave.ts, bundled through the real
 * shim), reading the host's LevelDB store through the boundary (sync `store.get`), committing
 * with `store.write` + sync; the host serves `storeOcalls(openLevelStore(dir))`. The host times
 * each enclave command around its `enclave.ping` (the enclave has no clock). Baselines run on the
 * host in the same run; every figure is the median of three runs (bench/lib.ts).
 *
 * Same random 32-byte keys and 100-byte values everywhere (benchPairs: deterministic from a
 * seed, so the ledger and every baseline get exactly the same pairs):
 *   (a) inserts in commits of 1000 into a table prefilled with 100,000 keys, vs a confidential
 *       LevelDB (HMAC'd keys, AES-256-GCM values, batches of 1000, sync): goal >= 0.5x;
 *   (b) the same vs @ethereumjs/mpt with SHA-256, checkpoint + commit per 1000 puts, on
 *       classic-level with sync, same prefill: goal >= 5x;
 *   (c) single-write commits from 32 concurrent writers (32 pings in flight, group commit) vs 32
 *       concurrent single synced puts into the confidential baseline: goal >= 0.5x;
 *   (d) verified gets on 1,000,000 keys (`--size N`; see DEFAULT_GET_KEYS) with a warm cache
 *       inside the default bound (DEFAULT_NODE_CACHE_BYTES, 1 GiB for all levels), vs classic-level getSync on the same pairs:
 *       goal >= 0.3x; cold-cache gets, proof sizes, proofs created and verified (core
 *       verifyStateProof) per second, store reads per commit and per get: info.
 * The prefills take the bulk path: the same engine, in commits of up to 25,000 keys (bulkPrefill).
 * `--smoke`: tiny sizes. Progress lines go to stderr.
 */
import {
  createCipheriv,
  createHmac,
  createSecretKey,
  hash as nodeHash,
  randomBytes,
} from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import type { HostCallHandlers } from '@cloister/boundary';
import { fromHex, verifyStateProof } from '@cloister/core';
import { createMPT, type MerklePatriciaTrie } from '@ethereumjs/mpt';
import { ValueEncoding } from '@ethereumjs/util';
import { ClassicLevel } from 'classic-level';
import { bundleEnclave } from '../packages/host/src/build/bundle.js';
import {
  ENCLAVE_CPU_PROF_ENV,
  type EnclaveWorker,
  launchEnclaveWorker,
} from '../packages/host/src/launcher/index.js';
import { LEVEL_DB_OPTIONS, openLevelStore } from '../packages/host/src/store/level.js';
import { storeOcalls } from '../packages/host/src/store/service.js';
import {
  BENCH_LEDGER,
  BENCH_TABLE,
  benchPairs,
  MAX_COMMIT_KEYS,
  type Pairs,
} from '../packages/host/test/fixtures/ledger/ledger-enclave.js';
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
import { mptDb } from './mpt-db.js';

const ENTRY = 'packages/host/test/fixtures/ledger/ledger-enclave.ts';
const opts = benchOptions();
const SMOKE = opts.smoke;
/** Prefill of the insert and single-write tables. */
const PREFILL = SMOKE ? 2_000 : 100_000;
/**
 * Keys of the verified-get table: the 1,000,000 (`--size N` for another count). The
 * prefill goes through the engine in bulk commits; the whole benchmark takes 170-230 s at this
 * size on the 2-core development machine (docs/performance.md), inside its five minutes.
 */
const DEFAULT_GET_KEYS = 1_000_000;
const GET_KEYS = opts.size ?? (SMOKE ? 5_000 : DEFAULT_GET_KEYS);
const BATCH = 1000;
const COMMITS = SMOKE ? 2 : 10;
const SINGLES = SMOKE ? 64 : 3000;
const WRITERS = 32;
const GETS = SMOKE ? 500 : 30_000;
const WARM_GETS = SMOKE ? 500 : Math.min(100_000, GET_KEYS);
const COLD_GETS = SMOKE ? 100 : 2_000;
const PROOFS = SMOKE ? 50 : 2_000;
const SEED = 1;
/** Pairs per baseline commit during the prefill. */
const PREFILL_COMMIT = 10_000;

const root = mkdtempSync(join(tmpdir(), 'cloister-bench-ledger-'));
let dirs = 0;
const freshDir = (): string => join(root, `db${dirs++}`);
const t0 = performance.now();
const elapsed = (): string => `${((performance.now() - t0) / 1000).toFixed(1)}`;

type Bytes = ClassicLevel<Uint8Array, Uint8Array>;

/** A ledger enclave worker over a fresh LevelDB store, created with pairs of SEED. */
async function ledgerWorker(code: Uint8Array): Promise<{
  w: EnclaveWorker;
  /** Sync store reads (`store.get`, `store.getMany`) the enclave made so far. */
  readonly reads: number;
  close(): Promise<void>;
}> {
  const store = await openLevelStore(freshDir());
  const ocalls = storeOcalls(store);
  let reads = 0;
  const counted = (name: 'store.get' | 'store.getMany') => {
    const serve = ocalls[name] as (req: never) => unknown;
    return (req: never): unknown => {
      reads++;
      return serve(req);
    };
  };
  const w = await launchEnclaveWorker({
    code,
    ocalls: {
      ...ocalls,
      'store.get': counted('store.get'),
      'store.getMany': counted('store.getMany'),
    } as HostCallHandlers,
    // `CLOISTER_ENCLAVE_CPU_PROF=DIR`: a CPU profile of the enclave worker (docs/performance.md).
    cpuProfileDir: process.env[ENCLAVE_CPU_PROF_ENV] || undefined,
  });
  await pingJson(w, `init:${SEED}`);
  return {
    w,
    get reads() {
      return reads;
    },
    async close() {
      await w.terminate();
      await store.close();
    },
  };
}

/**
 * Prefills pairs 0 .. n-1 through the engine in bulk commits: MAX_COMMIT_KEYS per commit up to
 * 300,000 keys, 10,000 beyond (a commit's new records must stay under the store's cap of 48 MiB
 * per write, and bottom branches grow with the table).
 */
async function bulkPrefill(w: EnclaveWorker, n: number): Promise<void> {
  for (let at = 0; at < n; at += 100_000) {
    const per = at < 300_000 ? MAX_COMMIT_KEYS : 10_000;
    await pingJson(w, `prefill:${at}:${Math.min(100_000, n - at)}:${per}`);
  }
}

// ---- Baseline: confidential LevelDB (as bench/trie.bench.ts) ---------------------------------

interface Confidential {
  commit(p: Pairs, sync: boolean): Promise<void>;
  putOne(key: Uint8Array, value: Uint8Array): Promise<void>;
  close(): Promise<void>;
}

async function confidentialLevel(): Promise<Confidential> {
  const db: Bytes = new ClassicLevel<Uint8Array, Uint8Array>(freshDir(), {
    keyEncoding: 'view',
    valueEncoding: 'view',
    ...LEVEL_DB_OPTIONS,
  });
  await db.open();
  const mac = createSecretKey(randomBytes(32));
  const aes = createSecretKey(randomBytes(32));
  const seal = (k: Uint8Array, v: Uint8Array): { key: Uint8Array; value: Uint8Array } => {
    const key = createHmac('sha256', mac).update(k).digest();
    const iv = randomBytes(12);
    const c = createCipheriv('aes-256-gcm', aes, iv);
    c.setAAD(key);
    const ct = c.update(v);
    c.final();
    const value = new Uint8Array(12 + ct.length + 16);
    value.set(iv);
    value.set(ct, 12);
    value.set(c.getAuthTag(), 12 + ct.length);
    return { key, value };
  };
  return {
    async commit(p, sync) {
      const ops = p.keys.map((k, i) => ({
        type: 'put' as const,
        ...seal(k, p.values[i] as Uint8Array),
      }));
      await db.batch(ops, { sync });
    },
    async putOne(k, v) {
      const { key, value } = seal(k, v);
      await db.put(key, value, { sync: true });
    },
    close: () => db.close(),
  };
}

// ---- Peer: @ethereumjs/mpt with SHA-256 on classic-level ------------------------------------
async function ethereumMpt(): Promise<{
  commit(p: Pairs): Promise<void>;
  durability: { sync: boolean };
  close(): Promise<void>;
}> {
  const db = new ClassicLevel<string, Uint8Array>(freshDir(), {
    valueEncoding: 'view',
    ...LEVEL_DB_OPTIONS,
  });
  await db.open();
  const durability = { sync: true };
  const mpt: MerklePatriciaTrie = await createMPT({
    db: mptDb(db, durability),
    valueEncoding: ValueEncoding.Bytes,
    useKeyHashing: true,
    useKeyHashingFunction: (m: Uint8Array) => nodeHash('sha256', m, 'buffer'),
    cacheSize: 500_000,
  });
  return {
    durability,
    async commit(p) {
      mpt.checkpoint();
      for (let i = 0; i < p.keys.length; i++) {
        await mpt.put(p.keys[i] as Uint8Array, p.values[i] as Uint8Array);
      }
      await mpt.commit();
    },
    close: () => db.close(),
  };
}

// ---- (a) (b) inserts in commits of 1000, (c) single-write commits ---------------------------

/** Inserts per second of COMMITS commits of BATCH pairs from `at`; pairs made before timing. */
async function insertRate(at: number, commit: (start: number, p: Pairs) => Promise<unknown>) {
  const batches = Array.from({ length: COMMITS }, (_, c) => at + c * BATCH);
  const pairs = batches.map((start) => benchPairs(SEED, start, BATCH));
  const ms = await timed(async () => {
    for (let c = 0; c < COMMITS; c++) await commit(batches[c] as number, pairs[c] as Pairs);
  });
  return (COMMITS * BATCH * 1000) / ms;
}

async function writes(code: Uint8Array): Promise<void> {
  const ledger = await ledgerWorker(code);
  const base = await confidentialLevel();
  const peer = await ethereumMpt();
  try {
    // The ledger prefills in its worker while the host prefills the baselines (same pairs).
    const [prefillMs] = await Promise.all([
      timed(() => bulkPrefill(ledger.w, PREFILL)),
      (async () => {
        peer.durability.sync = false;
        for (let at = 0; at < PREFILL; at += PREFILL_COMMIT) {
          const p = benchPairs(SEED, at, Math.min(PREFILL_COMMIT, PREFILL - at));
          await base.commit(p, false);
          await peer.commit(p);
        }
        peer.durability.sync = true;
      })(),
    ]);
    progress(`prefilled ${PREFILL} keys x3 (ledger ${prefillMs.toFixed(0)} ms)`);

    // Each run inserts the same fresh pairs into all three systems, one after the other.
    let next = PREFILL;
    const insertReads = ledger.reads;
    const runs: { ledger: number; base: number; peer: number }[] = [];
    for (let r = 0; r < 3; r++) {
      const at = next;
      next += COMMITS * BATCH;
      runs.push({
        ledger: await insertRate(at, (start) => pingJson(ledger.w, `insert:${start}:${BATCH}`)),
        base: await insertRate(at, (_, p) => base.commit(p, true)),
        peer: await insertRate(at, (_, p) => peer.commit(p)),
      });
    }
    progress('inserts');
    info('ledger.insert1000.store-reads-per-commit', (ledger.reads - insertReads) / (3 * COMMITS));
    const vsBase = median(runs.map((r) => r.ledger / r.base));
    const vsPeer = median(runs.map((r) => r.ledger / r.peer));
    info('ledger.insert1000.prefill', PREFILL);
    info('ledger.insert1000.per-second', median(runs.map((r) => r.ledger)));
    info('confidential-leveldb.insert1000.per-second', median(runs.map((r) => r.base)));
    info('ethereumjs-mpt.insert1000.per-second', median(runs.map((r) => r.peer)));
    target('ledger.insert1000-vs-confidential-leveldb', vsBase, '>=0.50');
    target('ledger.insert1000-vs-ethereumjs-mpt', vsPeer, '>=5.0');

    // (c) 32 writers: 32 single-write commits in flight at once (the engine groups them).
    const before = await pingJson<{ writes: number; commits: number }>(ledger.w, 'stats');
    const singles: { ledger: number; base: number }[] = [];
    for (let r = 0; r < 3; r++) {
      const at = next;
      next += SINGLES;
      const pairs = benchPairs(SEED, at, SINGLES);
      singles.push({
        ledger: await concurrentOpsPerSecond(SINGLES, WRITERS, (i) =>
          pingJson(ledger.w, `single:${at + i}`),
        ),
        base: await concurrentOpsPerSecond(SINGLES, WRITERS, (i) =>
          base.putOne(pairs.keys[i] as Uint8Array, pairs.values[i] as Uint8Array),
        ),
      });
    }
    progress('single writes');
    const after = await pingJson<{ writes: number; commits: number }>(ledger.w, 'stats');
    info(
      'ledger.single-write-32-writers.commits-per-store-write',
      (after.commits - before.commits) / (after.writes - before.writes),
    );
    info('ledger.single-write-32-writers.commits-per-second', median(singles.map((r) => r.ledger)));
    info(
      'confidential-leveldb.single-put-32-writers.per-second',
      median(singles.map((r) => r.base)),
    );
    target(
      'ledger.single-write-32-writers-vs-confidential-leveldb',
      median(singles.map((r) => r.ledger / r.base)),
      '>=0.50',
    );
  } finally {
    await peer.close();
    await base.close();
    await ledger.close();
  }
}

// ---- (d) verified gets ----------------------------------------------------------------------

async function reads(code: Uint8Array): Promise<void> {
  const raw: Bytes = new ClassicLevel<Uint8Array, Uint8Array>(freshDir(), {
    keyEncoding: 'view',
    valueEncoding: 'view',
    ...LEVEL_DB_OPTIONS,
  });
  await raw.open();
  const ledger = await ledgerWorker(code);
  try {
    // The ledger prefills in its worker while the host prefills the raw LevelDB (same pairs).
    const keys: Uint8Array[] = [];
    const [prefillMs] = await Promise.all([
      timed(() => bulkPrefill(ledger.w, GET_KEYS)),
      (async () => {
        for (let at = 0; at < GET_KEYS; at += PREFILL_COMMIT) {
          const p = benchPairs(SEED, at, Math.min(PREFILL_COMMIT, GET_KEYS - at));
          await raw.batch(
            p.keys.map((key, i) => ({
              type: 'put' as const,
              key,
              value: p.values[i] as Uint8Array,
            })),
          );
          keys.push(...p.keys);
        }
      })(),
    ]);
    await pingJson(ledger.w, `keys:${GET_KEYS}`);
    progress(`prefilled ${GET_KEYS} keys (ledger ${prefillMs.toFixed(0)} ms)`);
    info('ledger.verified-get-keys', GET_KEYS);
    info('ledger.prefill-inserts-per-second', (GET_KEYS * 1000) / prefillMs);

    const hits = async (text: string, n: number): Promise<number> => {
      let got = 0;
      const ms = await timed(async () => {
        got = await pingJson<number>(ledger.w, text);
      });
      if (got !== n) throw new Error(`${text}: ${n - got} prefilled keys missing`);
      return (n * 1000) / ms;
    };
    // Warm: the engine that prefilled the table, its node caches at their default bound (an
    // update caches the nodes it writes, so they hold what the prefill wrote, up to the bound),
    // then WARM_GETS more gets before measuring.
    await hits(`get:${WARM_GETS}`, WARM_GETS);
    const rawRate = (n: number): number => {
      let got = 0;
      const t = performance.now();
      for (let i = 0; i < n; i++) {
        if (raw.getSync(keys[Math.floor(Math.random() * keys.length)] as Uint8Array)) got++;
      }
      const ms = performance.now() - t;
      if (got !== n) throw new Error('a prefilled key is missing from LevelDB');
      return (n * 1000) / ms;
    };
    rawRate(Math.min(GETS, 20_000));
    const runs: { ledger: number; raw: number }[] = [];
    const readsBefore = ledger.reads;
    for (let r = 0; r < 3; r++) {
      runs.push({ ledger: await hits(`get:${GETS}`, GETS), raw: rawRate(GETS) });
    }
    const warmReads = (ledger.reads - readsBefore) / (3 * GETS);
    progress('gets');
    info('ledger.verified-get.store-reads-per-get', warmReads);
    info('ledger.verified-get.per-second', median(runs.map((r) => r.ledger)));
    info('leveldb.getsync.per-second', median(runs.map((r) => r.raw)));
    target('ledger.verified-get-vs-getsync', median(runs.map((r) => r.ledger / r.raw)), '>=0.30');

    // Proofs: created in the enclave (timed around the call), verified offline on the host.
    let bytes = 0;
    const created = await median3(async () => {
      let got = { bytes: 0 };
      const ms = await timed(async () => {
        got = await pingJson<{ bytes: number }>(ledger.w, `prove:${PROOFS}`);
      });
      bytes = got.bytes;
      return (PROOFS * 1000) / ms;
    });
    const batch = await pingJson<{ stateHash: string; proofs: [number, string][] }>(
      ledger.w,
      `proofs:${PROOFS}`,
    );
    const stateHash = fromHex(batch.stateHash);
    const claims = batch.proofs.map(([j, hex]) => ({
      claim: {
        ledger: BENCH_LEDGER,
        table: BENCH_TABLE,
        key: keys[j] as Uint8Array,
        value: benchPairs(SEED, j, 1).values[0] as Uint8Array,
      },
      proof: fromHex(hex),
    }));
    const verified = await median3(async () => {
      const ms = await timed(() => {
        for (const { claim, proof } of claims) {
          const v = verifyStateProof(stateHash, claim, proof);
          if (!v.ok) throw new Error(`a proof failed to verify: ${v.reason}`);
        }
      });
      return (claims.length * 1000) / ms;
    });
    progress('proofs');
    // Cold: a reopened engine (empty node caches) reading straight away (last: reopening drops
    // the warm caches).
    const coldBefore = ledger.reads;
    const cold = await median3(() => hits(`cold:${COLD_GETS}`, COLD_GETS));
    const coldReads = (ledger.reads - coldBefore) / (3 * COLD_GETS);
    info('ledger.cold-get.per-second', cold);
    info('ledger.cold-get.store-reads-per-get', coldReads);
    info('ledger.proof-bytes', bytes / PROOFS);
    info('ledger.proofs-created-per-second', created);
    info('ledger.proofs-verified-per-second', verified);
  } finally {
    await ledger.close();
    await raw.close();
  }
}

function progress(what: string): void {
  console.error(`# ${elapsed()} s: ${what}`);
}

try {
  const { code } = await bundleEnclave({ enclave: ENTRY });
  await writes(code);
  await reads(code);
  info('ledger.bench-seconds', Number(elapsed()));
} finally {
  rmSync(root, { recursive: true, force: true });
}
