/// <reference types="node" />
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { InvalidInputError } from '@cloister/core';
import fc from 'fast-check';
import {
  createNodeCache,
  createNodeCachePool,
  nodeBytes,
  RECORD_OVERHEAD,
} from '../src/ledger/node-cache.js';
import { type Leaf, makeBranch, makeLeaf, RADIX_16 } from '../src/ledger/trie/node.js';
import { branchStored, compactBranch } from '../src/ledger/trie/stored.js';

function leaf(i: number, valueBytes = 10): Leaf {
  const path = new Uint8Array(32);
  path[31] = i & 255;
  path[30] = i >> 8;
  return makeLeaf(path, new Uint8Array(32), Uint8Array.of(i & 255), new Uint8Array(valueBytes));
}

test('a node is found by its full hash only', () => {
  const cache = createNodeCache(1 << 20);
  const a = leaf(1);
  cache.set(a);
  assert.equal(cache.get(a.hash), a);
  // Same first six bytes, different hash: a miss, never the wrong node.
  const other = Uint8Array.from(a.hash);
  other[31] = (other[31] ?? 0) ^ 1;
  assert.equal(cache.get(other), undefined);
});

test('least recently used out first; the byte bound always holds', () => {
  const size = nodeBytes(leaf(0));
  const cache = createNodeCache(size * 3);
  const [a, b, c, d] = [1, 2, 3, 4].map((i) => leaf(i)) as [Leaf, Leaf, Leaf, Leaf];
  cache.set(a);
  cache.set(b);
  cache.set(c);
  assert.equal(cache.get(a.hash), a, 'a is now the most recent');
  cache.set(d);
  assert.equal(cache.get(b.hash), undefined, 'b was the least recent');
  assert.equal(cache.get(a.hash), a);
  assert.equal(cache.size, 3);
  assert.equal(cache.bytes, 3 * size);
});

test('a node larger than the whole bound is not cached, and pushes nothing out', () => {
  const small = leaf(1);
  const cache = createNodeCache(nodeBytes(small) * 4);
  cache.set(small);
  const big = leaf(2, nodeBytes(small) * 5);
  cache.set(big);
  assert.equal(cache.get(big.hash), undefined);
  assert.equal(cache.get(small.hash), small, 'the nodes cached before stay');
  assert.equal(cache.size, 1);
});

test('property: bytes equals the sum of the sizes held and never exceeds the bound', () => {
  fc.assert(
    fc.property(
      fc.array(fc.tuple(fc.nat(40), fc.nat(3000), fc.boolean()), { maxLength: 200 }),
      fc.integer({ min: 0, max: 20_000 }),
      (steps, max) => {
        const cache = createNodeCache(max);
        const seen = new Map<string, Leaf>();
        for (const [i, valueBytes, read] of steps) {
          const l = leaf(i, valueBytes);
          if (read) cache.get(l.hash);
          else cache.set(l);
          seen.set(Buffer.from(l.hash).toString('hex'), l);
          assert.ok(cache.bytes <= max);
        }
        let sum = 0;
        for (const l of seen.values()) {
          const got = cache.get(l.hash);
          if (got) sum += nodeBytes(got);
        }
        assert.equal(sum, cache.bytes);
      },
    ),
  );
});

test('a node larger than the whole cache is not kept; bad sizes are refused', () => {
  const cache = createNodeCache(100);
  cache.set(leaf(1));
  assert.equal(cache.size, 0);
  assert.throws(() => createNodeCache(-1), InvalidInputError);
  assert.throws(() => createNodeCache(1.5), InvalidInputError);
});

test('demote keeps the node findable but first to go; another hash with its map key is untouched', () => {
  const size = nodeBytes(leaf(0));
  const cache = createNodeCache(size * 3);
  const [a, b, c, d] = [1, 2, 3, 4].map((i) => leaf(i)) as [Leaf, Leaf, Leaf, Leaf];
  cache.set(a);
  cache.set(b);
  cache.set(c);
  const other = Uint8Array.from(b.hash);
  other[31] = (other[31] ?? 0) ^ 1; // same map key, another hash: not demoted
  cache.demote?.(other);
  cache.demote?.(c.hash); // the newest, demoted: still found (a read at the older state)
  assert.equal(cache.get(c.hash), c);
  assert.equal(cache.size, 3);
  cache.demote?.(c.hash); // demoted again, unmarked: the next node in pushes it out, not a
  cache.set(d);
  assert.equal(cache.get(c.hash), undefined);
  assert.equal(cache.get(a.hash), a);
  assert.equal(cache.get(b.hash), b);
  assert.equal(cache.get(d.hash), d);
  assert.equal(cache.bytes, 3 * size);
});

test('demoted nodes have a bound of their own: the oldest demoted go first, current nodes stay', () => {
  const size = nodeBytes(leaf(0));
  // Room for 8 nodes, of which at most 2 demoted.
  const pool = createNodeCachePool(size * 8, size * 2);
  const cache = pool.cache();
  const nodes = [1, 2, 3, 4, 5, 6].map((i) => leaf(i)) as Leaf[];
  for (const n of nodes) cache.set(n);
  const [a, b, c, d, e, f] = nodes as [Leaf, Leaf, Leaf, Leaf, Leaf, Leaf];
  cache.demote?.(a.hash);
  cache.demote?.(b.hash);
  assert.equal(cache.get(a.hash), a, 'a demoted node is still found');
  cache.demote?.(c.hash); // a third: the first demoted goes, though the pool has room
  assert.equal(cache.get(a.hash), undefined);
  assert.equal(cache.get(b.hash), b);
  assert.equal(cache.get(c.hash), c);
  for (const n of [d, e, f]) assert.equal(cache.get(n.hash), n);
  assert.equal(pool.bytes, 5 * size);
  // Demoting again keeps the bound; a full pool drops demoted nodes before current ones.
  cache.demote?.(c.hash);
  assert.equal(pool.bytes, 5 * size);
  for (const i of [7, 8, 9, 10]) cache.set(leaf(i));
  assert.equal(pool.bytes, 8 * size);
  assert.equal(cache.get(b.hash), undefined);
  assert.equal(cache.get(c.hash), c, 'still in: room remained for it');
  cache.set(leaf(11));
  assert.equal(cache.get(c.hash), undefined, 'the last demoted goes before any current node');
  for (const n of [d, e, f]) assert.equal(cache.get(n.hash), n);
  assert.equal(pool.bytes, 8 * size);
  assert.throws(() => createNodeCachePool(size, -1), InvalidInputError);
});

test('caches of one pool share its bound and eviction order, each with its own hashes', () => {
  const size = nodeBytes(leaf(0));
  const pool = createNodeCachePool(size * 3);
  const x = pool.cache();
  const y = pool.cache();
  const [a, b, c, d] = [1, 2, 3, 4].map((i) => leaf(i)) as [Leaf, Leaf, Leaf, Leaf];
  x.set(a);
  y.set(b);
  x.set(c);
  assert.equal(y.get(a.hash), undefined, 'a node of one cache is not found in another');
  assert.equal(x.get(a.hash), a);
  assert.equal(pool.bytes, 3 * size);
  y.set(d); // over the bound: b (the oldest not used since) goes; a had a second chance
  assert.equal(y.get(b.hash), undefined);
  assert.equal(x.get(a.hash), a);
  assert.equal(x.get(c.hash), c);
  assert.equal(y.get(d.hash), d);
  assert.equal(pool.bytes, 3 * size);
  assert.equal(x.bytes + y.bytes, pool.bytes);
  // getAt finds a hash inside a larger buffer, by offset.
  const buf = new Uint8Array(40);
  buf.set(c.hash, 5);
  assert.equal(x.getAt?.(buf, 5), c);
  assert.equal(x.getAt?.(buf, 4), undefined);
  pool.clear();
  assert.equal(pool.bytes, 0);
  assert.equal(x.size + y.size, 0);
});

test('a decoded branch is charged its buffer plus the measured overhead', () => {
  const path = (s: number): Uint8Array => {
    const p = new Uint8Array(32);
    p[0] = s << 4;
    p[31] = s;
    return p;
  };
  const slots = new Array(16).fill(undefined);
  for (const s of [2, 7])
    slots[s] = makeLeaf(path(s), new Uint8Array(32), Uint8Array.of(s), new Uint8Array(100));
  const built = makeBranch(RADIX_16, 0, new Uint8Array(32), slots, 512);
  const plaintext = branchStored(built, 32);
  const compact = compactBranch(plaintext, built.hash, RADIX_16);
  assert.equal(nodeBytes(compact), RECORD_OVERHEAD + plaintext.length + 32);
  assert.deepEqual([...compact.hash], [...built.hash]);
  assert.equal(compact.leafSlots, (1 << 2) | (1 << 7));
  assert.deepEqual([...branchStored(compact)], [...plaintext]);
});
