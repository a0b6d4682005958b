import { randomBytes } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createLedgerKeyring } from './packages/enclave/src/ledger/crypto.js';
import { createNodeCache } from './packages/enclave/src/ledger/node-cache.js';
import { createConfidentialNodeStore } from './packages/enclave/src/ledger/node-store.js';
import { EMPTY_ROOT } from './packages/enclave/src/ledger/trie/node.js';
import { type TrieOp, createTrie } from './packages/enclave/src/ledger/trie/trie.js';
import { openLevelStore } from './packages/host/src/store/level.js';
const N = Number(process.argv[2] ?? 100000);
const inline = process.argv[3] === undefined ? undefined : Number(process.argv[3]);
const store = await openLevelStore(mkdtempSync(join(tmpdir(), 'lw-')));
const keyring = createLedgerKeyring({ origin: { generation: 0, secret: randomBytes(32) } });
const table = keyring.table('bench');
const nodes = createConfidentialNodeStore({ records: store, keyring });
const cache = createNodeCache();
let loads = 0; let loadBytes = 0;
const counted = { get: (h: Uint8Array) => { const r = nodes.get(h); loads++; loadBytes += r?.length ?? 0; return r; } };
const trie = createTrie({ source: counted, cache, ...(inline === undefined ? {} : { inlineLimit: inline }) });
let root = EMPTY_ROOT;
const t = { update: 0, seal: 0, write: 0, ops: 0 };
let records = 0;
async function commit(n: number, timed: boolean) {
  const t0 = performance.now();
  const ops: TrieOp[] = [];
  for (let i = 0; i < n; i++) { const key = randomBytes(32); ops.push({ type: 'put', path: table.path(key), salt: table.salt(key), key, value: randomBytes(100) }); }
  const t1 = performance.now();
  const u = trie.update(root, ops);
  const t2 = performance.now();
  const puts = nodes.seal(u.records);
  const t3 = performance.now();
  await store.write(puts, { sync: true });
  const t4 = performance.now();
  root = u.root;
  if (!timed) { loads = 0; loadBytes = 0; }
  if (timed) { t.ops += t1 - t0; t.update += t2 - t1; t.seal += t3 - t2; t.write += t4 - t3; records += puts.length; }
}
for (let d = 0; d < N; d += 1000) await commit(1000, false);
console.log('cache', cache.size, (cache.bytes / 1e6).toFixed(1), 'MB');
for (let i = 0; i < 10; i++) await commit(1000, true);
console.log(Object.fromEntries(Object.entries(t).map(([k, v]) => [k, (v / 10).toFixed(1) + 'ms'])), 'records/commit', records / 10, 'loads/commit', loads / 10, 'KB loaded/commit', loadBytes / 10240);
