/// <reference types="node" />
/**
 * Packed records (docs/ledger-format.md, "Stored forms"): branches embedded in their parent's
 * record, the top levels in one record. A storage layout only: the same contents give the same
 * root and proofs under every layout, every layout reads back, and whatever the host does to a
 * packed record is a LedgerIntegrityError naming the failure, never wrong data.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { createLedgerKeyring } from '../src/ledger/crypto.js';
import { LedgerIntegrityError } from '../src/ledger/errors.js';
import { createNodeCache } from '../src/ledger/node-cache.js';
import { createConfidentialNodeStore } from '../src/ledger/node-store.js';
import { EMPTY_ROOT, RADIX_16, type TrieNode } from '../src/ledger/trie/node.js';
import { decodeStored } from '../src/ledger/trie/stored.js';
import {
  createTrie,
  type NodeRecord,
  type TrieOp,
  type TrieOptions,
} from '../src/ledger/trie/trie.js';
import {
  contents,
  hex,
  hostRecords,
  memorySource,
  pathArb,
  pathOf,
  saltOf,
} from './ledger-helpers.js';

type Layout = Omit<TrieOptions, 'source' | 'cache'>;
const LAYOUTS: Layout[] = [
  { packedDepth: 0, branchInlineLimit: 0 },
  { packedDepth: 2, branchInlineLimit: 0 },
  { packedDepth: 0, branchInlineLimit: 700 },
  { packedDepth: 3, branchInlineLimit: 100_000 },
  { packedDepth: 1, branchInlineLimit: 0, inlineLimit: 0 },
];

const keyOf = (path: Uint8Array): Uint8Array => path.subarray(0, 5);
const opArb: fc.Arbitrary<TrieOp> = fc.oneof(
  {
    weight: 3,
    arbitrary: fc.tuple(pathArb, fc.uint8Array({ maxLength: 40 })).map(([path, value]) => ({
      type: 'put' as const,
      path,
      salt: saltOf(keyOf(path)),
      key: keyOf(path),
      value,
    })),
  },
  { weight: 1, arbitrary: pathArb.map((path) => ({ type: 'del' as const, path })) },
);

const enc = new TextEncoder();
const put = (i: number, v = 0): TrieOp => {
  const key = enc.encode(`key-${i}`);
  return {
    type: 'put',
    path: pathOf(key),
    salt: saltOf(key),
    key,
    value: enc.encode(`v${i}.${v}`),
  };
};

/** The root node of an update, decoded from the root's own record among the update's records. */
function rootNode(u: { root: Uint8Array; records: readonly NodeRecord[] }): TrieNode {
  const rec = u.records.find((r) => hex(r.hash) === hex(u.root));
  assert.ok(rec, 'the root has a record of its own');
  return decodeStored(rec.plaintext, u.root, RADIX_16, { node: 'root', position: 'root' });
}

describe('packed records', () => {
  test('every layout, changing between commits, gives the same roots, contents and proofs', () => {
    fc.assert(
      fc.property(
        // Up to 40 ops: updates of 16 and more pack the root with its level-1 branches.
        fc.array(fc.array(opArb, { maxLength: 40 }), { minLength: 1, maxLength: 6 }),
        fc.nat(),
        (batches, seed) => {
          const refSource = memorySource();
          const ref = createTrie({ source: refSource, packedDepth: 0, branchInlineLimit: 0 });
          const source = memorySource();
          const cache = createNodeCache();
          let root = EMPTY_ROOT;
          let refRoot = EMPTY_ROOT;
          for (const [i, ops] of batches.entries()) {
            const layout = LAYOUTS[(seed + i) % LAYOUTS.length] as Layout;
            const trie = createTrie({ source, cache, ...layout });
            const u = trie.update(root, ops);
            source.write(u);
            root = u.root;
            const r = ref.update(refRoot, ops);
            refSource.write(r);
            refRoot = r.root;
            assert.equal(hex(root), hex(refRoot), 'the layout does not change the root');
            assert.deepEqual(
              [...contents(source, root)].sort(),
              [...contents(refSource, refRoot)].sort(),
            );
            const cold = createTrie({ source, ...layout });
            for (const op of ops) {
              assert.equal(hex(cold.prove(root, op.path)), hex(ref.prove(refRoot, op.path)));
            }
          }
        },
      ),
      { numRuns: 60 },
    );
  });

  test('the top levels form one record; a big commit writes fewer records', () => {
    const ops = Array.from({ length: 3000 }, (_, i) => put(i));
    const flat = createTrie({ source: memorySource(), packedDepth: 0, branchInlineLimit: 0 });
    const packed = createTrie({ source: memorySource(), packedDepth: 2, branchInlineLimit: 0 });
    const a = flat.update(EMPTY_ROOT, ops);
    const b = packed.update(EMPTY_ROOT, ops);
    assert.equal(hex(a.root), hex(b.root));
    // 3000 keys: a full root and 16 full branches below it, all inside the root's record.
    assert.equal(a.records.length - b.records.length, 16 + 16 * 16);
    const node = rootNode(b);
    assert.equal(node.kind, 'branch');
  });

  test('an update of 16 to 255 ops packs the root with its level-1 branches only', () => {
    const source = memorySource();
    const flat = createTrie({ source, packedDepth: 0, branchInlineLimit: 0 });
    const base = flat.update(
      EMPTY_ROOT,
      Array.from({ length: 3000 }, (_, i) => put(i)),
    );
    source.write(base);
    const medium = Array.from({ length: 40 }, (_, i) => put(3000 + i));
    const packed = createTrie({ source, packedDepth: 2, branchInlineLimit: 0 });
    const a = flat.update(base.root, medium);
    const b = packed.update(base.root, medium);
    assert.equal(hex(a.root), hex(b.root));
    // Each level-1 branch the update rewrote lives in the root's record, not in one of its own;
    // the level-2 branches below keep records of their own (40 ops < 256: no second level).
    const level1 = new Set(medium.map((op) => (op.path[0] ?? 0) >> 4)).size;
    assert.equal(a.records.length - b.records.length, level1);
    const node = rootNode(b);
    assert.equal(node.kind, 'branch');
    const embedded = node.kind === 'branch' ? (node.embedded ?? []) : [];
    assert.equal(embedded.filter((c) => c?.kind === 'branch').length, level1);
    for (const c of embedded) {
      if (c?.kind === 'branch') assert.ok(!(c.embedded ?? []).some((e) => e?.kind === 'branch'));
    }
    // Fewer than 16 ops: nothing packed, every rewritten branch has its own record.
    const small = Array.from({ length: 15 }, (_, i) => put(4000 + i));
    assert.equal(
      flat.update(base.root, small).records.length,
      packed.update(base.root, small).records.length,
    );
  });

  test('small updates after a packed one unpack what they keep, then stay small', () => {
    const source = memorySource();
    const flatSource = memorySource();
    const cache = createNodeCache();
    const trie = createTrie({ source, cache });
    const flat = createTrie({ source: flatSource, packedDepth: 0 });
    let root = EMPTY_ROOT;
    let flatRoot = EMPTY_ROOT;
    const commit = (ops: TrieOp[]): number => {
      const u = trie.update(root, ops);
      source.write(u);
      root = u.root;
      const f = flat.update(flatRoot, ops);
      flatSource.write(f);
      flatRoot = f.root;
      assert.equal(hex(root), hex(flatRoot));
      return Math.max(0, ...u.records.map((x) => x.plaintext.length));
    };
    const big = commit(Array.from({ length: 3000 }, (_, i) => put(i)));
    assert.ok(big > 50_000, 'the packed top levels are one big record');
    const sizes: number[] = [];
    for (let i = 0; i < 20; i++) sizes.push(commit([put(i * 131, 1)]));
    assert.ok(
      sizes.slice(2).every((n) => n < 10_000),
      `small commits stay small: ${sizes}`,
    );
    commit(
      Array.from({ length: 500 }, (_, i) => ({ type: 'del' as const, path: put(i * 5).path })),
    );
    commit(Array.from({ length: 400 }, (_, i) => put(i * 7, 2)));
    for (let i = 0; i < 5; i++) commit([put(i, 3)]);
    assert.deepEqual(
      [...contents(source, root)].sort(),
      [...contents(flatSource, flatRoot)].sort(),
    );
  });

  test('a flipped bit in a packed plaintext record: hash-mismatch or malformed', () => {
    const source = memorySource();
    const n = 400;
    const u = createTrie({ source, packedDepth: 2, branchInlineLimit: 700 }).update(
      EMPTY_ROOT,
      Array.from({ length: n }, (_, i) => put(i)),
    );
    source.write(u);
    const rootHex = hex(u.root);
    const orig = source.records.get(rootHex) as Uint8Array;
    fc.assert(
      fc.property(fc.nat(orig.length * 8 - 1), (bit) => {
        const bad = orig.slice();
        bad[bit >> 3] = (bad[bit >> 3] ?? 0) ^ (0x80 >> (bit & 7));
        source.records.set(rootHex, bad);
        const trie = createTrie({ source });
        try {
          for (let i = 0; i < n; i += 7) {
            const op = put(i) as Extract<TrieOp, { type: 'put' }>;
            try {
              assert.equal(
                hex(trie.get(u.root, op.path)?.value ?? new Uint8Array()),
                hex(op.value),
              );
            } catch (e) {
              if (!(e instanceof LedgerIntegrityError)) throw e;
              assert.ok(e.failure === 'hash-mismatch' || e.failure === 'malformed', e.failure);
            }
          }
        } finally {
          source.records.set(rootHex, orig);
        }
      }),
      { numRuns: 80 },
    );
  });

  test('the host flips, swaps or drops a packed record: a named integrity error, never wrong data', () => {
    const host = hostRecords();
    const keyring = createLedgerKeyring({
      origin: { generation: 0, secret: new Uint8Array(32).fill(7) },
    });
    const nodes = createConfidentialNodeStore({ records: host, keyring });
    const layout = { packedDepth: 1, branchInlineLimit: 700 };
    const n = 2000;
    let root = EMPTY_ROOT;
    for (let v = 0; v < 2; v++) {
      const u = createTrie({ source: nodes, ...layout }).update(
        root,
        Array.from({ length: n }, (_, i) => put(i, v)),
      );
      host.apply(nodes.seal(u.records));
      root = u.root;
    }
    const readAll = (): string[] => {
      const trie = createTrie({ source: nodes, ...layout });
      const failures: string[] = [];
      for (let i = 0; i < n; i++) {
        const op = put(i, 1) as Extract<TrieOp, { type: 'put' }>;
        try {
          assert.equal(hex(trie.get(root, op.path)?.value ?? new Uint8Array()), hex(op.value));
        } catch (e) {
          if (!(e instanceof LedgerIntegrityError)) throw e;
          failures.push(e.failure);
        }
      }
      return failures;
    };
    assert.deepEqual(readAll(), []);
    const rootKey = hex(keyring.storeKey(root));
    const original = host.map.get(rootKey) as Uint8Array;
    const others = [...host.map.keys()].filter((k) => k !== rootKey);
    // A flipped bit in the packed root record.
    const flipped = original.slice();
    flipped[original.length >> 1] = (flipped[original.length >> 1] ?? 0) ^ 1;
    host.map.set(rootKey, flipped);
    assert.deepEqual([...new Set(readAll())], ['authentication']);
    // Another record (another packed or bottom node, or the root of the older version) in its place.
    for (const other of others.slice(0, 5)) {
      host.map.set(rootKey, host.map.get(other) as Uint8Array);
      assert.deepEqual([...new Set(readAll())], ['authentication']);
    }
    // Missing.
    host.map.delete(rootKey);
    assert.deepEqual([...new Set(readAll())], ['missing']);
    host.map.set(rootKey, original);
    // A record below the packed levels, swapped or dropped: only the keys under it fail.
    const visited = new Set<string>();
    contents(nodes, root, RADIX_16, visited);
    const belowHash = [...visited].find((h) => h !== hex(root)) as string;
    const below = hex(keyring.storeKey(Buffer.from(belowHash, 'hex')));
    const kept = host.map.get(below) as Uint8Array;
    host.map.delete(below);
    const failures = readAll();
    assert.ok(failures.length > 0 && failures.length < n);
    assert.deepEqual([...new Set(failures)], ['missing']);
    host.map.set(below, kept);
    assert.deepEqual(readAll(), []);
  });
});
