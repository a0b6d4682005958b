import { randomBytes } from 'node:crypto';
import { createNodeCache } from './packages/enclave/src/ledger/node-cache.js';
import { EMPTY_ROOT } from './packages/enclave/src/ledger/trie/node.js';
import { type TrieOp, createTrie } from './packages/enclave/src/ledger/trie/trie.js';
const N = Number(process.argv[2] ?? 100000);
const inline = process.argv[3] === undefined ? undefined : Number(process.argv[3]);
const mem = new Map<string, Uint8Array>();
let loads = 0;
const source = { get: (h: Uint8Array) => { loads++; return mem.get(Buffer.from(h).toString('hex')); } };
const cache = createNodeCache(Number(process.argv[4] ?? 64 * 1024 * 1024));
const trie = createTrie({ source, cache, ...(inline === undefined ? {} : { inlineLimit: inline }) });
let root = EMPTY_ROOT;
function mk(n: number): TrieOp[] { const ops: TrieOp[] = []; for (let i = 0; i < n; i++) ops.push({ type: 'put', path: randomBytes(32), salt: randomBytes(32), key: randomBytes(32), value: randomBytes(100) }); return ops; }
for (let d = 0; d < N; d += 1000) { const u = trie.update(root, mk(1000)); for (const r of u.records) mem.set(Buffer.from(r.hash).toString('hex'), r.plaintext); root = u.root; }
let tu = 0, recs = 0; loads = 0;
for (let i = 0; i < 20; i++) { const ops = mk(1000); const t0 = performance.now(); const u = trie.update(root, ops); tu += performance.now() - t0; recs += u.records.length; for (const r of u.records) mem.set(Buffer.from(r.hash).toString('hex'), r.plaintext); root = u.root; }
console.log('update ms', (tu / 20).toFixed(1), 'records', recs / 20, 'loads', loads / 20, 'cache', cache.size);
