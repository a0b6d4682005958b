/**
 * The logchain benchmark (issue 4), in the configuration that ships: the ledger engine and the
 * logchain service (`startService`) run in the enclave worker
 * (packages/host/test/fixtures/ledger/logchain-enclave.ts, bundled through the real shim), over
 * the host's LevelDB store through the boundary (sync `store.get`, `store.iterate` pages, one
 * `store.write` with sync per group commit); the host serves `storeOcalls(openLevelStore(dir))`
 * and times each enclave command around its `enclave.ping` (the enclave has no clock). Every
 * figure is the median of three runs (bench/lib.ts); the baseline runs in the same process, in
 * the same run, interleaved with what it is compared to.
 *
 * Workload of the commit targets: single-write transactions (bench/ledger's 32-byte keys and
 * 100-byte values) from 32 concurrent writers (32 `enclave.ping` calls in flight), so the
 * engine's group commit forms groups as a busy node's would; with the log each transaction also
 * carries a 32-byte claims digest and an app id, as a node's do. Three engines, each in its own
 * worker over its own LevelDB store, each measured on the same number of commits per run:
 *   - no log: the same engine (createLedgerEngine) without the CommitLog port: the baseline;
 *   - signEvery 1000: the service's default policy (a signature after 1000 unsigned entries);
 *   - signEvery 1: a signature as soon as any entry is unsigned. At most one signature is in flight
 *     and a signature starts its group, so under 32 writers this is one signature per group
 *     commit, not per transaction (info: entries per signature).
 * Targets: signEvery 1000 >= 0.8x and signEvery 1 >= 0.4x the commits/s without the log.
 *
 * Receipts: of the signEvery-1000 engine's last transactions (after a signature), their size and
 * core `verifyReceipt` (offline, on the host: evidence, endorsement, signature, inclusion) per
 * second: info.
 *
 * Restart verification: a log of 1,000,000 entries (`--size N`) made by the BULK GENERATOR of the
 * fixture (`gen`: genesis and 10 real transactions through the service, then the rest written
 * straight into the store in batches of 50,000 with a signature every 1000 entries, the version
 * index entries and a sealed root record whose checkpoint covers them), then the node's start
 * path (`startService` on the sealed service state: unseal, endorse, open the engine, which
 * verifies every entry against the checkpoint, the epoch step) timed three times: entries/s,
 * goal >= 100,000. `--smoke`: tiny sizes. Progress lines go to stderr.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fromHex, verifyReceipt } from '@cloister/core';
import { bundleEnclave } from '../packages/host/src/build/bundle.js';
import { type EnclaveWorker, launchEnclaveWorker } from '../packages/host/src/launcher/index.js';
import { openLevelStore } from '../packages/host/src/store/level.js';
import { storeOcalls } from '../packages/host/src/store/service.js';
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

const ENTRY = 'packages/host/test/fixtures/ledger/logchain-enclave.ts';
const opts = benchOptions();
const SMOKE = opts.smoke;
const WRITERS = 32;
/** Commits per measured run of each engine. */
const SINGLES = SMOKE ? 64 : 3000;
/** Slices each run's commits are measured in, interleaved across the three engines. */
const SLICES = SMOKE ? 2 : 6;
/** Untimed commits per engine before the runs. */
const WARM = SMOKE ? 32 : 500;
const RECEIPTS = SMOKE ? 10 : 300;
const SIGN_EVERY = 1000;
const RESTART_ENTRIES = opts.size ?? (SMOKE ? 5_000 : 1_000_000);
if (RESTART_ENTRIES < 100) {
  // The generator starts with genesis, 10 real transactions and a signature (entries 1-13).
  throw new Error('--size takes at least 100 (entries of the generated log)');
}

const root = mkdtempSync(join(tmpdir(), 'cloister-bench-logchain-'));
let dirs = 0;
const t0 = performance.now();
const elapsed = (): string => `${((performance.now() - t0) / 1000).toFixed(1)}`;

function progress(what: string): void {
  console.error(`# ${elapsed()} s: ${what}`);
}

/** A fixture worker over a fresh LevelDB store. */
async function worker(code: Uint8Array): Promise<{ w: EnclaveWorker; close(): Promise<void> }> {
  const store = await openLevelStore(join(root, `db${dirs++}`));
  const w = await launchEnclaveWorker({ code, ocalls: storeOcalls(store) });
  return {
    w,
    async close() {
      await w.terminate();
      await store.close();
    },
  };
}

interface Stats {
  writes: number;
  commits: number;
  size: number;
}

async function commits(code: Uint8Array): Promise<void> {
  const engines = {
    none: await worker(code),
    every1000: await worker(code),
    every1: await worker(code),
  };
  type Name = keyof typeof engines;
  const names = Object.keys(engines) as Name[];
  try {
    await pingJson(engines.none.w, 'init:none');
    const { constraint } = await pingJson<{ constraint: string }>(
      engines.every1000.w,
      `init:log:${SIGN_EVERY}`,
    );
    await pingJson(engines.every1.w, 'init:log:1');
    let next = 0;
    const run = async (name: Name, n: number): Promise<number> => {
      const at = next;
      next += n;
      return concurrentOpsPerSecond(n, WRITERS, (i) =>
        pingJson(engines[name].w, `single:${at + i}`),
      );
    };
    for (const name of names) await run(name, WARM);
    const before = await Promise.all(names.map((n) => pingJson<Stats>(engines[n].w, 'stats')));
    const runs: Record<Name, number>[] = [];
    for (let r = 0; r < 3; r++) {
      // Each run measures all three in SLICES interleaved slices (rotated order), so that a
      // change in the machine's load during the run falls on all three alike.
      const ms = { none: 0, every1000: 0, every1: 0 } as Record<Name, number>;
      const per = Math.ceil(SINGLES / SLICES);
      for (let k = 0; k < SLICES; k++) {
        for (let e = 0; e < names.length; e++) {
          const name = names[(r + k + e) % names.length] as Name;
          const rate = await run(name, per);
          ms[name] += (per * 1000) / rate;
        }
      }
      runs.push({
        none: (per * SLICES * 1000) / ms.none,
        every1000: (per * SLICES * 1000) / ms.every1000,
        every1: (per * SLICES * 1000) / ms.every1,
      });
    }
    const after = await Promise.all(names.map((n) => pingJson<Stats>(engines[n].w, 'stats')));
    progress(`commits: 3 runs x ${SINGLES} single-write commits x 3 engines`);
    const i1 = names.indexOf('every1');
    const b1 = before[i1] as Stats;
    const { signatures } = await pingJson<{ signatures: number }>(
      engines.every1.w,
      `signatures:${b1.size}`,
    );
    const ratio = (name: Name): number => median(runs.map((r) => r[name] / r.none));
    names.forEach((name, i) => {
      const b = before[i] as Stats;
      const a = after[i] as Stats;
      const label = { none: 'no-log', every1000: 'sign-every-1000', every1: 'sign-every-entry' }[
        name
      ];
      info(`logchain.${label}.commits-per-s`, median(runs.map((r) => r[name])));
      info(
        `logchain.${label}.commits-per-store-write`,
        (a.commits - b.commits) / (a.writes - b.writes),
      );
    });
    info(
      'logchain.sign-every-entry.transactions-per-signature',
      (3 * SINGLES) / Math.max(1, signatures),
    );
    target('logchain.commits-sign-every-1000-vs-no-log', ratio('every1000'), '>=0.8');
    target('logchain.commits-sign-every-entry-vs-no-log', ratio('every1'), '>=0.4');

    // Receipts of the last transactions of the signEvery-1000 engine, verified on the host.
    const { receipts } = await pingJson<{ receipts: string[] }>(
      engines.every1000.w,
      `receipts:${RECEIPTS}`,
    );
    const bytes = receipts.map((h) => fromHex(h));
    info('logchain.receipt-bytes', bytes.reduce((s, b) => s + b.length, 0) / bytes.length);
    const verified = await median3(async () => {
      const ms = await timed(async () => {
        for (const b of bytes) await verifyReceipt(b, { constraint });
      });
      return (bytes.length * 1000) / ms;
    });
    info('logchain.receipts-verified-per-s', verified);
    progress(`receipts: ${bytes.length} verified x3`);
  } finally {
    for (const name of names) await engines[name].close();
  }
}

async function restart(code: Uint8Array): Promise<void> {
  const g = await worker(code);
  try {
    let made = { size: 0, entryBytes: 0 };
    const genMs = await timed(async () => {
      made = await pingJson(g.w, `gen:${RESTART_ENTRIES}:${SIGN_EVERY}`);
    });
    if (made.size !== RESTART_ENTRIES) throw new Error(`generated ${made.size} entries`);
    progress(`generated ${RESTART_ENTRIES} entries in ${(genMs / 1000).toFixed(1)} s`);
    info('logchain.restart-entries', RESTART_ENTRIES);
    info('logchain.restart-entry-bytes', made.entryBytes);
    info('logchain.bulk-generated-entries-per-s', (RESTART_ENTRIES * 1000) / genMs);
    const cpu: number[] = [];
    const rate = await median3(async () => {
      let index = 0;
      const c = process.cpuUsage();
      const ms = await timed(async () => {
        ({ index } = await pingJson<{ index: number }>(g.w, 'restart'));
      });
      const used = process.cpuUsage(c);
      cpu.push((used.user + used.system) / RESTART_ENTRIES);
      // Each start appends nothing: the epoch step rewrites the root record only.
      if (index !== RESTART_ENTRIES) throw new Error(`restart opened ${index} entries`);
      progress(`restart verified ${index} entries in ${(ms / 1000).toFixed(2)} s`);
      return (RESTART_ENTRIES * 1000) / ms;
    });
    // CPU time of the whole process (host thread, enclave worker, LevelDB threads) per entry:
    // what the rate would be on one free core, whatever else the machine was doing.
    info('logchain.restart-cpu-us-per-entry', median(cpu));
    target('logchain.restart-verify-entries-per-s', rate, '>=100000');
  } finally {
    await g.close();
  }
}

try {
  const { code } = await bundleEnclave({ enclave: ENTRY });
  await commits(code);
  await restart(code);
  info('logchain.bench-seconds', Number(elapsed()));
} finally {
  rmSync(root, { recursive: true, force: true });
}
