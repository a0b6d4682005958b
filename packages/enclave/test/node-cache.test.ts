/// <reference types="node" />
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { InvalidInputError } from '@cloister/core';
import fc from 'fast-check';
import { createNodeCache, nodeBytes } from '../src/ledger/node-cache.js';
import { type Leaf, makeLeaf } from '../src/ledger/trie/node.js';

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

test('delete drops exactly the node with that hash', () => {
  const cache = createNodeCache();
  const [a, b] = [leaf(1), leaf(2)];
  cache.set(a);
  cache.set(b);
  const bytes = cache.bytes;
  cache.delete?.(a.hash);
  assert.equal(cache.get(a.hash), undefined);
  assert.equal(cache.get(b.hash), b);
  assert.equal(cache.size, 1);
  assert.equal(cache.bytes, bytes - nodeBytes(a));
  const other = Uint8Array.from(b.hash);
  other[31] = (other[31] ?? 0) ^ 1; // same map key, another hash: not dropped
  cache.delete?.(other);
  assert.equal(cache.get(b.hash), b);
});
