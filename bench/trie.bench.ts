/**
 * Ledger groundwork benchmark (issue 3): the table trie + confidential node layer + LevelDB store,
 * in this process. GROUNDWORK: the real ledger benchmark will run the ledger inside the enclave,
 * behind the boundary, with the log entry in the same batch; this one measures the data structure
 * and its storage path alone, against baselines measured in the same run:
 *
 *   (a) inserts in commits of 1000 into a table prefilled with N keys (default 100,000), each commit
 *       one LevelDB batch with sync, vs a confidential LevelDB baseline: the same 32-byte random
 *       keys and 100-byte values, keys HMAC'd, values AES-256-GCM with random nonces, batches of
 *       1000, sync;
 *   (b) the same inserts vs @ethereumjs/mpt 10.1.3 with SHA-256 as its key and node hash, a node
 *       cache, checkpoint + commit every 1000 puts onto classic-level with sync;
 *   (c) info: proof size, proofs created and verified per second (the core's offline verifier),
 *       verified gets per second against classic-level getSync at the same N (warm cache).
 *
 * `--radix-study` adds the measurement behind the choice of radix (docs/ledger-format.md):
 * records and bytes per commit, proof size and insert rate for radix 2, 4, 16 and 256.
 * Figures are medians of three runs of `COMMITS` commits each (bench/lib.ts).
 */
import {
  createCipheriv,
  createHmac,
  createSecretKey,
  hash as nodeHash,
  randomBytes,
  randomFillSync,
} from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { verifyInclusion } from '@cloister/core';
import { createMPT, type MerklePatriciaTrie } from '@ethereumjs/mpt';
import { ValueEncoding } from '@ethereumjs/util';
import { ClassicLevel } from 'classic-level';
import { createLedgerKeyring } from '../packages/enclave/src/ledger/crypto.js';
import { createNodeCache } from '../packages/enclave/src/ledger/node-cache.js';
import { createConfidentialNodeStore } from '../packages/enclave/src/ledger/node-store.js';
import {
  EMPTY_ROOT,
  RADIX_16,
  type Radix,
  radix,
} from '../packages/enclave/src/ledger/trie/node.js';
import { createTrie, type TrieOp } from '../packages/enclave/src/ledger/trie/trie.js';
import {
  LEVEL_DB_OPTIONS,
  type LevelStore,
  openLevelStore,
} from '../packages/host/src/store/level.js';
import { benchOptions, info, median3, target } from './lib.js';
import { mptDb } from './mpt-db.js';

const opts = benchOptions();
const N = opts.size ?? (opts.smoke ? 1_000 : 100_000);
const BATCH = 1000;
const COMMITS = opts.smoke ? 2 : 10;
const PROOFS = opts.smoke ? 100 : 2_000;
const VALUE_BYTES = 100;
const STUDY = process.argv.includes('--radix-study');

const root = mkdtempSync(join(tmpdir(), 'cloister-bench-trie-'));
let dirs = 0;
const freshDir = (): string => join(root, `db${dirs++}`);

type Batch = { keys: Uint8Array[]; values: Uint8Array[] };
function batch(n = BATCH): Batch {
  const keys: Uint8Array[] = [];
  const values: Uint8Array[] = [];
  for (let i = 0; i < n; i++) {
    keys.push(randomBytes(32));
    values.push(randomBytes(VALUE_BYTES));
  }
  return { keys, values };
}

/** Inserts per second over `COMMITS` fresh batches, each committed by `commit`. */
async function rate(commit: (b: Batch) => Promise<void>): Promise<number> {
  const batches = Array.from({ length: COMMITS }, () => batch());
  const t0 = performance.now();
  for (const b of batches) await commit(b);
  return (COMMITS * BATCH * 1000) / (performance.now() - t0);
}

async function prefill(commit: (b: Batch) => Promise<void>, n: number): Promise<void> {
  for (let done = 0; done < n; done += BATCH) await commit(batch(Math.min(BATCH, n - done)));
}

// ---- Ours: trie + confidential node layer + LevelDB store ----------------------------------

interface Ledger {
  commit(b: Batch): Promise<void>;
  readonly stats: { commits: number; records: number; bytes: number };
  readonly keys: Uint8Array[];
  readonly store: LevelStore;
  get(key: Uint8Array): Uint8Array | undefined;
  prove(key: Uint8Array): Uint8Array;
  verify(key: Uint8Array, value: Uint8Array, proof: Uint8Array): boolean;
}

async function ledger(
  r: Radix = RADIX_16,
  inlineLimit?: number,
  packedDepth?: number,
): Promise<Ledger> {
  const store = await openLevelStore(freshDir());
  const keyring = createLedgerKeyring({ origin: { generation: 0, secret: randomBytes(32) } });
  const table = keyring.table('bench');
  const nodes = createConfidentialNodeStore({ records: store, keyring });
  const trie = createTrie({
    source: nodes,
    cache: createNodeCache(),
    radix: r,
    ...(inlineLimit === undefined ? {} : { inlineLimit }),
    ...(packedDepth === undefined ? {} : { packedDepth }),
  });
  let current = EMPTY_ROOT;
  const stats = { commits: 0, records: 0, bytes: 0 };
  const keys: Uint8Array[] = [];
  return {
    stats,
    keys,
    store,
    async commit(b: Batch): Promise<void> {
      const ops: TrieOp[] = b.keys.map((key, i) => ({
        type: 'put',
        path: table.path(key),
        salt: table.salt(key),
        key,
        value: b.values[i] as Uint8Array,
      }));
      const u = trie.update(current, ops);
      const puts = nodes.seal(u.records);
      await store.write(puts, { sync: true });
      current = u.root;
      stats.commits++;
      stats.records += puts.length;
      for (const p of puts) stats.bytes += p.value.length;
      if (keys.length < 100_000) keys.push(...b.keys.slice(0, 100));
    },
    get: (key) => trie.get(current, table.path(key))?.value,
    prove: (key) => trie.prove(current, table.path(key)),
    verify: (key, value, proof) => verifyInclusion(current, table.path(key), proof, key, value).ok,
  };
}

// ---- Baseline: confidential LevelDB ---------------------------------------------------------

async function confidentialLevel(): Promise<{
  commit(b: Batch): Promise<void>;
  db: ClassicLevel<Uint8Array, Uint8Array>;
  /** Store keys of some inserted keys, for the getSync baseline. */
  stored: Uint8Array[];
}> {
  const db = new ClassicLevel<Uint8Array, Uint8Array>(freshDir(), {
    keyEncoding: 'view',
    valueEncoding: 'view',
    ...LEVEL_DB_OPTIONS,
  });
  await db.open();
  const mac = createSecretKey(randomBytes(32));
  const aes = createSecretKey(randomBytes(32));
  const pool = new Uint8Array(12 * 1024);
  let at = pool.length;
  const stored: Uint8Array[] = [];
  return {
    db,
    stored,
    async commit(b: Batch): Promise<void> {
      const ops = b.keys.map((k, i) => {
        const key = createHmac('sha256', mac).update(k).digest();
        if (at === pool.length) {
          randomFillSync(pool);
          at = 0;
        }
        const iv = pool.subarray(at, at + 12);
        at += 12;
        const c = createCipheriv('aes-256-gcm', aes, iv);
        c.setAAD(key);
        const ct = c.update(b.values[i] as Uint8Array);
        c.final();
        const value = new Uint8Array(12 + ct.length + 16);
        value.set(iv);
        value.set(ct, 12);
        value.set(c.getAuthTag(), 12 + ct.length);
        return { type: 'put' as const, key, value };
      });
      await db.batch(ops, { sync: true });
      if (stored.length < 100_000) stored.push(...ops.slice(0, 100).map((op) => op.key));
    },
  };
}

// ---- Peer: @ethereumjs/mpt with SHA-256 on classic-level -------------------------------------

async function ethereumMpt(): Promise<{ commit(b: Batch): Promise<void> }> {
  const db = new ClassicLevel<string, Uint8Array>(freshDir(), {
    valueEncoding: 'view',
    ...LEVEL_DB_OPTIONS,
  });
  await db.open();
  const mpt: MerklePatriciaTrie = await createMPT({
    db: mptDb(db),
    valueEncoding: ValueEncoding.Bytes,
    useKeyHashing: true,
    useKeyHashingFunction: (m: Uint8Array) => nodeHash('sha256', m, 'buffer'),
    cacheSize: 500_000,
  });
  return {
    async commit(b: Batch): Promise<void> {
      mpt.checkpoint();
      for (let i = 0; i < b.keys.length; i++) {
        await mpt.put(b.keys[i] as Uint8Array, b.values[i] as Uint8Array);
      }
      await mpt.commit();
    },
  };
}

// ---- Runs ------------------------------------------------------------------------------------

async function inserts(): Promise<void> {
  const ours = await ledger();
  const base = await confidentialLevel();
  const peer = await ethereumMpt();
  await prefill((b) => ours.commit(b), N);
  await prefill((b) => base.commit(b), N);
  await prefill((b) => peer.commit(b), N);
  const recordsBefore = ours.stats.records;
  const commitsBefore = ours.stats.commits;
  // Three rounds, each measuring the three back to back, and the median of each figure and of
  // each round's ratios: on a shared machine the load drifts over a run, and a ratio of rates
  // measured minutes apart would carry that drift.
  const rounds: [number, number, number][] = [];
  await median3(async () => {
    const round: [number, number, number] = [
      await rate((b) => ours.commit(b)),
      await rate((b) => base.commit(b)),
      await rate((b) => peer.commit(b)),
    ];
    rounds.push(round);
    return round[0];
  });
  const med = (f: (r: [number, number, number]) => number): number =>
    rounds.map(f).sort((a, b) => a - b)[1] as number;
  const oursRate = med((r) => r[0]);
  const baseRate = med((r) => r[1]);
  const peerRate = med((r) => r[2]);
  info('trie.n', N);
  info('trie.insert1000.per-second', oursRate);
  info('confidential-leveldb.insert1000.per-second', baseRate);
  info('ethereumjs-mpt.insert1000.per-second', peerRate);
  info(
    'trie.records-per-commit',
    (ours.stats.records - recordsBefore) / (ours.stats.commits - commitsBefore),
  );
  target(
    'trie.insert1000-vs-confidential-leveldb',
    med((r) => r[0] / r[1]),
    '>=0.50',
  );
  target(
    'trie.insert1000-vs-ethereumjs-mpt',
    med((r) => r[0] / r[2]),
    '>=5.0',
  );
  await proofsAndGets(ours, base);
}

async function proofsAndGets(
  ours: Ledger,
  base: Awaited<ReturnType<typeof confidentialLevel>>,
): Promise<void> {
  const sample = Array.from(
    { length: PROOFS },
    (_, i) => ours.keys[(i * 7919) % ours.keys.length] as Uint8Array,
  );
  const values = sample.map((k) => ours.get(k) as Uint8Array);
  let proofs: Uint8Array[] = [];
  const created = await median3(() => {
    const t0 = performance.now();
    proofs = sample.map((k) => ours.prove(k));
    return (sample.length * 1000) / (performance.now() - t0);
  });
  const verified = await median3(() => {
    const t0 = performance.now();
    sample.forEach((k, i) => {
      if (!ours.verify(k, values[i] as Uint8Array, proofs[i] as Uint8Array))
        throw new Error('proof failed');
    });
    return (sample.length * 1000) / (performance.now() - t0);
  });
  info('trie.proof-bytes.mean', proofs.reduce((s, p) => s + p.length, 0) / proofs.length);
  info('trie.proofs-created.per-second', created);
  info('trie.proofs-verified.per-second', verified);
  const baseKeys = sample.map((_, i) => base.stored[(i * 7919) % base.stored.length] as Uint8Array);
  const gets = await median3(() => {
    const t0 = performance.now();
    for (const k of sample) if (ours.get(k) === undefined) throw new Error('missing key');
    return (sample.length * 1000) / (performance.now() - t0);
  });
  const raw = await median3(() => {
    const t0 = performance.now();
    for (const k of baseKeys) if (base.db.getSync(k) === undefined) throw new Error('missing key');
    return (sample.length * 1000) / (performance.now() - t0);
  });
  info('trie.verified-get.per-second', gets);
  info('classic-level.getSync.per-second', raw);
  info('trie.verified-get-vs-getsync', gets / raw);
}

async function radixStudy(): Promise<void> {
  const configs: [string, Radix, number | undefined][] = [
    ['radix2', radix(1), undefined],
    ['radix4', radix(2), undefined],
    ['radix16', RADIX_16, undefined],
    ['radix16-no-inline', RADIX_16, 0],
    ['radix256', radix(8), 0],
  ];
  for (const [name, r, inline] of configs) {
    // Without packed top levels (section 3), as the radix table in docs/ledger-format.md §8.
    const l = await ledger(r, inline, 0);
    await prefill((b) => l.commit(b), N);
    const before = { ...l.stats };
    const perSecond = await median3(() => rate((b) => l.commit(b)));
    const commits = l.stats.commits - before.commits;
    info(`study.${name}.insert1000.per-second`, perSecond);
    info(`study.${name}.records-per-commit`, (l.stats.records - before.records) / commits);
    info(`study.${name}.kib-per-commit`, (l.stats.bytes - before.bytes) / commits / 1024);
    const sample = l.keys.slice(0, 500);
    info(
      `study.${name}.proof-bytes.mean`,
      sample.reduce((s, k) => s + l.prove(k).length, 0) / sample.length,
    );
    const keys = Array.from(
      { length: PROOFS },
      (_, i) => l.keys[(i * 7919) % l.keys.length] as Uint8Array,
    );
    const gets = await median3(() => {
      const t0 = performance.now();
      for (const k of keys) if (l.get(k) === undefined) throw new Error('missing key');
      return (keys.length * 1000) / (performance.now() - t0);
    });
    info(`study.${name}.verified-get.per-second`, gets);
    await l.store.close();
  }
}

try {
  if (STUDY) await radixStudy();
  else await inserts();
} finally {
  rmSync(root, { recursive: true, force: true });
}
