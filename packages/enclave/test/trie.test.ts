/// <reference types="node" />
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { InvalidInputError } from '@cloister/core';
import fc from 'fast-check';
import { LedgerIntegrityError } from '../src/ledger/errors.js';
import { createNodeCache } from '../src/ledger/node-cache.js';
import { EMPTY_ROOT, RADIX_16, type Radix, radix } from '../src/ledger/trie/node.js';
import { createTrie, type TrieOp } from '../src/ledger/trie/trie.js';
import { contents, hex, memorySource, pathArb, pathOf, saltOf } from './ledger-helpers.js';

const keyOf = (path: Uint8Array): Uint8Array => path.subarray(0, 5);
const put = (path: Uint8Array, value: Uint8Array): TrieOp => ({
  type: 'put',
  path,
  salt: saltOf(keyOf(path)),
  key: keyOf(path),
  value,
});
const del = (path: Uint8Array): TrieOp => ({ type: 'del', path });

const opArb: fc.Arbitrary<TrieOp> = fc.oneof(
  {
    weight: 3,
    arbitrary: fc.tuple(pathArb, fc.uint8Array({ maxLength: 40 })).map(([p, v]) => put(p, v)),
  },
  { weight: 1, arbitrary: pathArb.map(del) },
);
const batchesArb = fc.array(fc.array(opArb, { maxLength: 12 }), { minLength: 1, maxLength: 6 });

function applyModel(model: Map<string, string>, ops: readonly TrieOp[]): void {
  for (const op of ops) {
    if (op.type === 'put') model.set(hex(op.path), hex(op.value));
    else model.delete(hex(op.path));
  }
}

/** Name, radix, and the inline limit of each batch's trie (a new trie instance per batch when
 * the limits vary, so a limit change between writers is covered too). */
const CONFIGS: [string, Radix, number[]][] = [
  ['radix 16, leaves inline', RADIX_16, [512]],
  ['radix 16, every leaf its own record', RADIX_16, [0]],
  ['radix 16, some leaves inline (limit 200)', RADIX_16, [200]],
  ['radix 16, the inline limit changing between commits', RADIX_16, [0, 512, 200, 180]],
  ['radix 2', radix(1), [512]],
  ['radix 4', radix(2), [512]],
  ['radix 256', radix(8), [0]],
];

for (const [name, r, limits] of CONFIGS) {
  describe(`trie (${name}) against a Map model`, () => {
    test('same contents after every batch; every key reads back verified', () => {
      fc.assert(
        fc.property(batchesArb, (batches) => {
          const source = memorySource();
          const cache = createNodeCache();
          const trieFor = (i: number) =>
            createTrie({ source, cache, radix: r, inlineLimit: limits[i % limits.length] ?? 0 });
          let trie = trieFor(0);
          const model = new Map<string, string>();
          const touched = new Set<string>();
          let root = EMPTY_ROOT;
          for (const [i, ops] of batches.entries()) {
            if (limits.length > 1) trie = trieFor(i);
            const u = trie.update(root, ops);
            source.write(u);
            root = u.root;
            applyModel(model, ops);
            for (const op of ops) touched.add(hex(op.path));
            assert.deepEqual(
              [...contents(source, root, r)].sort(),
              [...model].sort(),
              'the records under the root hold exactly the model',
            );
            for (const p of touched) {
              const leaf = trie.get(root, Buffer.from(p, 'hex'));
              assert.equal(leaf === undefined ? undefined : hex(leaf.value), model.get(p));
              if (leaf) assert.equal(hex(leaf.key), p.slice(0, 10));
            }
          }
        }),
        { numRuns: r === RADIX_16 ? 100 : 40 },
      );
    });

    test('the root depends only on the contents, not on order or batching', () => {
      fc.assert(
        fc.property(
          fc.uniqueArray(pathArb, { maxLength: 30, selector: hex }),
          fc.array(pathArb, { maxLength: 8 }),
          fc.integer(),
          (paths, extra, seed) => {
            const build = (ops: TrieOp[][]): Uint8Array => {
              const source = memorySource();
              const trie = createTrie({ source, radix: r });
              let root = EMPTY_ROOT;
              for (const batch of ops) {
                const u = trie.update(root, batch);
                source.write(u);
                root = u.root;
              }
              return root;
            };
            const value = (p: Uint8Array): Uint8Array => p.subarray(3, 9);
            const all = paths.map((p) => put(p, value(p)));
            const one = build([all]);
            const shuffled =
              fc.sample(fc.shuffledSubarray(all, { minLength: all.length }), {
                seed,
                numRuns: 1,
              })[0] ?? all;
            const pieces = shuffled.map((op) => [op]);
            const noise = extra.filter((p) => !paths.some((q) => hex(q) === hex(p)));
            const withNoise = [
              noise.map((p) => put(p, new Uint8Array([1]))),
              shuffled,
              noise.map(del),
            ];
            assert.equal(hex(build(pieces)), hex(one));
            assert.equal(hex(build(withNoise)), hex(one));
            assert.equal(hex(build([[...all].reverse()])), hex(one));
          },
        ),
        { numRuns: r === RADIX_16 ? 100 : 30 },
      );
    });
  });
}

describe('trie: copy-on-write and edge cases', () => {
  test('an empty update keeps the root; empty trie reads as absent', () => {
    const source = memorySource();
    const trie = createTrie({ source });
    assert.equal(trie.get(EMPTY_ROOT, pathOf(new Uint8Array([1]))), undefined);
    const u = trie.update(EMPTY_ROOT, []);
    assert.equal(hex(u.root), hex(EMPTY_ROOT));
    assert.equal(u.records.length, 0);
    const d = trie.update(EMPTY_ROOT, [del(pathOf(new Uint8Array([1])))]);
    assert.equal(hex(d.root), hex(EMPTY_ROOT));
  });

  test('old roots stay readable after later updates (versions)', () => {
    const source = memorySource();
    const trie = createTrie({ source });
    const paths = Array.from({ length: 50 }, (_, i) => pathOf(new Uint8Array([i])));
    const roots: Uint8Array[] = [];
    let root = EMPTY_ROOT;
    for (let v = 0; v < 5; v++) {
      const u = trie.update(
        root,
        paths.map((p) => put(p, new Uint8Array([v]))),
      );
      source.write(u);
      root = u.root;
      roots.push(root);
    }
    roots.forEach((r, v) => {
      for (const p of paths) assert.deepEqual(trie.get(r, p)?.value, new Uint8Array([v]));
    });
  });

  test('deleting down to one key leaves a leaf root with its own record', () => {
    const source = memorySource();
    const trie = createTrie({ source });
    const [a, b, c] = [1, 2, 3].map((i) => pathOf(new Uint8Array([i]))) as [
      Uint8Array,
      Uint8Array,
      Uint8Array,
    ];
    let u = trie.update(EMPTY_ROOT, [
      put(a, new Uint8Array([1])),
      put(b, new Uint8Array([2])),
      put(c, new Uint8Array([3])),
    ]);
    source.write(u);
    u = trie.update(u.root, [del(a), del(c)]);
    source.write(u);
    const fresh = createTrie({ source });
    assert.deepEqual(fresh.get(u.root, b)?.value, new Uint8Array([2]));
    assert.ok(source.records.has(hex(u.root)));
  });

  test('a 1000-key batch writes each node once and every record is needed', () => {
    const source = memorySource();
    const cache = createNodeCache();
    const trie = createTrie({ source, cache });
    const ops = Array.from({ length: 1000 }, (_, i) =>
      put(pathOf(new Uint8Array([i >> 8, i & 255])), new Uint8Array(100)),
    );
    const u = trie.update(EMPTY_ROOT, ops);
    source.write(u);
    const hashes = new Set(u.records.map((rec) => hex(rec.hash)));
    assert.equal(hashes.size, u.records.length);
    const visited = new Set<string>();
    assert.equal(contents(source, u.root, RADIX_16, visited).size, 1000);
    assert.deepEqual([...visited].sort(), [...hashes].sort(), 'exactly the reachable records');
    assert.ok(cache.size > 0, 'new nodes enter the cache');
  });

  test('bad input is an InvalidInputError and changes nothing', () => {
    const trie = createTrie({ source: memorySource() });
    const p = pathOf(new Uint8Array([1]));
    assert.throws(() => trie.get(EMPTY_ROOT, new Uint8Array(31)), InvalidInputError);
    assert.throws(() => trie.get(new Uint8Array(31), p), InvalidInputError);
    assert.throws(
      () =>
        trie.update(EMPTY_ROOT, [
          { type: 'put', path: p, salt: new Uint8Array(3), key: p, value: p },
        ]),
      InvalidInputError,
    );
    assert.throws(
      () => trie.update(EMPTY_ROOT, [{ type: 'nope', path: p } as unknown as TrieOp]),
      InvalidInputError,
    );
  });

  test('a root the store does not know is a missing-node integrity error', () => {
    const trie = createTrie({ source: memorySource() });
    assert.throws(
      () => trie.get(pathOf(new Uint8Array([9])), pathOf(new Uint8Array([1]))),
      (e: unknown) =>
        e instanceof LedgerIntegrityError && e.failure === 'missing' && e.position === 'root',
    );
  });
});
