import { randomBytes } from 'node:crypto';
import { EMPTY_ROOT } from './packages/enclave/src/ledger/trie/node.js';
import { type TrieOp, createTrie } from './packages/enclave/src/ledger/trie/trie.js';
const mem = new Map<string, Uint8Array>();
const source = { get: (h: Uint8Array) => mem.get(Buffer.from(h).toString('hex')) };
const trie = createTrie({ source, inlineLimit: 0 });
let root = EMPTY_ROOT;
const seen = new Set<string>();
function mk(n: number): TrieOp[] { const ops: TrieOp[] = []; for (let i = 0; i < n; i++) ops.push({ type: 'put', path: randomBytes(32), salt: randomBytes(32), key: randomBytes(32), value: randomBytes(100) }); return ops; }
for (let d = 0; d < 20; d++) { const u = trie.update(root, mk(1000)); let leaves = 0, rewrites = 0; for (const r of u.records) { const k = Buffer.from(r.hash).toString('hex'); if (r.plaintext[0] === 1) { leaves++; if (seen.has(k)) rewrites++; } seen.add(k); mem.set(k, r.plaintext); } root = u.root; if (d > 15) console.log('records', u.records.length, 'leaf records', leaves, 'rewritten', rewrites); }
