/// <reference types="node" />
/**
 * The trie's own checks, below the AEAD layer: what it does with plaintext records that are wrong
 * (as if the encryption key leaked, or the enclave had a bug). Every failure is a named
 * LedgerIntegrityError; no byte string makes decoding throw anything else.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { LedgerIntegrityError } from '../src/ledger/errors.js';
import {
  digitAt,
  EMPTY_ROOT,
  LEAF_BYTES,
  makeBranch,
  makeLeaf,
  RADIX_16,
  radix,
  SALT_BYTES,
  sha256,
  type TrieNode,
} from '../src/ledger/trie/node.js';
import { decodeStored, storedForm } from '../src/ledger/trie/stored.js';
import { createTrie, type TrieOp } from '../src/ledger/trie/trie.js';
import { hex, memorySource, pathOf, saltOf } from './ledger-helpers.js';

const put = (i: number): TrieOp => {
  const key = Uint8Array.of(i >> 8, i & 255);
  return {
    type: 'put',
    path: pathOf(key),
    salt: saltOf(key),
    key,
    value: Uint8Array.of(i & 255, 1),
  };
};

function table(
  n: number,
  layout: { packedDepth?: number; branchInlineLimit?: number; inlineLimit?: number } = {},
) {
  const source = memorySource();
  const u = createTrie({ source, ...layout }).update(
    EMPTY_ROOT,
    Array.from({ length: n }, (_, i) => put(i)),
  );
  source.write(u);
  return { source, root: u.root };
}

function readAll(source: ReturnType<typeof memorySource>, root: Uint8Array, n: number): string[] {
  const trie = createTrie({ source });
  const failures: string[] = [];
  for (let i = 0; i < n; i++) {
    const op = put(i) as Extract<TrieOp, { type: 'put' }>;
    try {
      assert.equal(hex(trie.get(root, op.path)?.value ?? new Uint8Array()), hex(op.value));
    } catch (e) {
      if (!(e instanceof LedgerIntegrityError)) throw e;
      failures.push(e.failure);
    }
  }
  return failures;
}

describe('trie integrity checks on plaintext records', () => {
  test('any flipped bit in any record: hash-mismatch or malformed, never wrong data', () => {
    const { source, root } = table(150);
    const ids = [...source.records.keys()];
    fc.assert(
      fc.property(fc.nat(), fc.nat(), fc.nat(7), (i, at, bit) => {
        const id = ids[i % ids.length] as string;
        const orig = source.records.get(id) as Uint8Array;
        const bad = orig.slice();
        bad[at % bad.length] = (bad[at % bad.length] ?? 0) ^ (1 << bit);
        source.records.set(id, bad);
        try {
          const failures = readAll(source, root, 150);
          assert.ok(failures.every((f) => f === 'hash-mismatch' || f === 'malformed'));
        } finally {
          source.records.set(id, orig);
        }
      }),
      { numRuns: 80 },
    );
  });

  test('a record that is another node: hash-mismatch', () => {
    const { source, root } = table(50, { packedDepth: 0, branchInlineLimit: 0 });
    const other = [...source.records.keys()].find((k) => k !== hex(root)) as string;
    source.records.set(hex(root), source.records.get(other) as Uint8Array);
    assert.deepEqual([...new Set(readAll(source, root, 50))], ['hash-mismatch']);
  });

  test('a leaf record that is another leaf of the same key (another value): hash-mismatch', () => {
    // Path, key and salt agree, and the value matches its commitment: only the leaf's hash,
    // which its parent holds, tells it from the real one.
    const { source, root } = table(50, { packedDepth: 0, branchInlineLimit: 0, inlineLimit: 0 });
    const op = put(7) as Extract<TrieOp, { type: 'put' }>;
    const leaf = makeLeaf(op.path, op.salt, op.key, op.value);
    assert.ok(source.records.has(hex(leaf.hash)), 'the leaf is a record of its own');
    const other = makeLeaf(op.path, op.salt, op.key, Uint8Array.of(9, 9));
    source.records.set(hex(leaf.hash), storedForm(other));
    assert.throws(
      () => createTrie({ source }).get(root, op.path),
      (e: unknown) =>
        e instanceof LedgerIntegrityError &&
        e.failure === 'hash-mismatch' &&
        /the leaf does not hash to the value its parent holds/.test(e.message),
    );
  });

  test('a node that hashes right but sits in the wrong slot: structure', () => {
    const source = memorySource();
    const [a, b] = [put(1), put(2)] as Extract<TrieOp, { type: 'put' }>[];
    const la = makeLeaf(a!.path, a!.salt, a!.key, a!.value);
    const lb = makeLeaf(b!.path, b!.salt, b!.key, b!.value);
    const sb = digitAt(lb.path, 0, RADIX_16);
    let wrong = (digitAt(la.path, 0, RADIX_16) + 1) % 16;
    if (wrong === sb) wrong = (wrong + 1) % 16;
    const slots = new Array(16).fill(undefined);
    slots[wrong] = la;
    slots[sb] = lb;
    const root = makeBranch(RADIX_16, 0, new Uint8Array(32), slots, 0);
    source.write([la, lb, root].map((n) => ({ hash: n.hash, plaintext: storedForm(n) })));
    const trie = createTrie({ source });
    assert.equal(hex(trie.get(root.hash, lb.path)?.value ?? new Uint8Array()), hex(b!.value));
    const probe = new Uint8Array(32);
    probe[0] = wrong << 4;
    assert.throws(
      () => trie.get(root.hash, probe),
      (e: unknown) => e instanceof LedgerIntegrityError && e.failure === 'structure',
    );
  });

  test('a leaf record whose key or value length runs past the record: malformed, by name', () => {
    const op = put(3) as Extract<TrieOp, { type: 'put' }>;
    const leaf = makeLeaf(op.path, op.salt, op.key, op.value);
    const ctx = { node: 'x', position: 'root' };
    const keyLenAt = LEAF_BYTES + SALT_BYTES;
    const valueLenAt = keyLenAt + 4 + op.key.length;
    const cases: [number, RegExp][] = [
      [keyLenAt, /a stored leaf key runs past the record/],
      [valueLenAt, /a stored leaf value runs past the record/],
    ];
    for (const [at, message] of cases) {
      const bad = storedForm(leaf).slice();
      new DataView(bad.buffer, bad.byteOffset).setUint32(at, 1000);
      assert.throws(
        () => decodeStored(bad, leaf.hash, RADIX_16, ctx),
        (e: unknown) =>
          e instanceof LedgerIntegrityError && e.failure === 'malformed' && message.test(e.message),
      );
    }
  });

  test('decodeStored: no byte string throws anything but LedgerIntegrityError', () => {
    const ctx = { node: 'x', position: 'root' };
    const expected = new Uint8Array(32);
    for (const r of [RADIX_16, radix(1), radix(8)]) {
      fc.assert(
        fc.property(
          fc.oneof(
            fc.uint8Array({ maxLength: 300 }),
            fc.uint8Array({ maxLength: 300 }).map((b) => Uint8Array.of(1, ...b)),
            fc.uint8Array({ maxLength: 300 }).map((b) => Uint8Array.of(2, ...b)),
          ),
          (bytes) => {
            assert.throws(() => decodeStored(bytes, expected, r, ctx), LedgerIntegrityError);
          },
        ),
        { numRuns: 400 },
      );
    }
  });

  test('decodeStored refuses an embedded branch carried twice (one encoding per record)', () => {
    const ctx = { node: 'x', position: 'root' };
    const at = (b0: number): Uint8Array => {
      const p = new Uint8Array(32).fill(0x33);
      p[0] = b0;
      return p;
    };
    const leafAt = (b0: number) =>
      makeLeaf(at(b0), new Uint8Array(32), Uint8Array.of(b0), Uint8Array.of(1));
    // inner: depth 1 under digit 1, leaves at digits 1 and 2; outer: inner at 1, a leaf at 8.
    const innerSlots = new Array(16).fill(undefined);
    innerSlots[1] = leafAt(0x11);
    innerSlots[2] = leafAt(0x12);
    const inner = makeBranch(RADIX_16, 1, at(0x10), innerSlots, 0);
    const outerSlots = new Array(16).fill(undefined);
    outerSlots[1] = inner;
    outerSlots[8] = leafAt(0x80);
    const outer = makeBranch(RADIX_16, 0, at(0), outerSlots, 0, undefined, 1 << 16);
    const stored = storedForm(outer);
    const enc = outer.encoding.length;
    // encoding ‖ u16(1) ‖ the inner branch's stored form (its encoding ‖ u16(0))
    assert.deepEqual([stored[enc], stored[enc + 1]], [0, 1]);
    assert.equal(hex(decodeStored(stored, outer.hash, RADIX_16, ctx).hash), hex(outer.hash));
    const embedded = stored.subarray(enc + 2);
    const twice = Uint8Array.of(...stored.subarray(0, enc), 0, 2, ...embedded, ...embedded);
    assert.throws(
      () => decodeStored(twice, outer.hash, RADIX_16, ctx),
      (e: unknown) => e instanceof LedgerIntegrityError && /out of slot order/.test(e.message),
    );
  });

  test('decodeStored refuses non-canonical branches even when the hash matches', () => {
    const ctx = { node: 'x', position: 'root' };
    const [a, b] = [put(1), put(2)] as Extract<TrieOp, { type: 'put' }>[];
    const slots = new Array(16).fill(undefined);
    slots[0] = makeLeaf(a!.path, a!.salt, a!.key, a!.value);
    slots[1] = makeLeaf(b!.path, b!.salt, b!.key, b!.value);
    const branch = makeBranch(RADIX_16, 3, new Uint8Array(32).fill(0xff), slots, 0);
    const stored = storedForm(branch);
    assert.equal(hex(decodeStored(stored, branch.hash, RADIX_16, ctx).hash), hex(branch.hash));
    const encLength = branch.encoding.length;
    const cases: [string, (s: Uint8Array) => void][] = [
      [
        'prefix bits set past the depth',
        (x) => {
          x[3] = (x[3] ?? 0) | 0x0f;
        },
      ],
      [
        'depth 64',
        (x) => {
          x[1] = 64;
        },
      ],
    ];
    for (const [what, mutate] of cases) {
      const bad = stored.slice();
      mutate(bad);
      const hash = sha256(bad.subarray(0, encLength));
      assert.throws(
        () => decodeStored(bad, hash, RADIX_16, ctx),
        (e: unknown) => e instanceof LedgerIntegrityError && e.failure === 'malformed',
        what,
      );
    }
    assert.throws(
      () => decodeStored(Uint8Array.of(...stored, 0), branch.hash, RADIX_16, ctx),
      (e: unknown) => e instanceof LedgerIntegrityError && e.failure === 'malformed',
    );
    // A branch naming one child only (its bitmap one bit, one child hash, nothing embedded).
    const bitmapAt = encLength - 2 * 32 - 2;
    const one = Uint8Array.of(
      ...branch.encoding.subarray(0, bitmapAt),
      0x80,
      0x00,
      ...(slots[0] as TrieNode).hash,
      0,
      0,
    );
    assert.throws(
      () => decodeStored(one, sha256(one.subarray(0, one.length - 2)), RADIX_16, ctx),
      (e: unknown) => e instanceof LedgerIntegrityError && /at least two children/.test(e.message),
    );
    // An unknown node tag, even where the hash is computed over it.
    const tagged = stored.slice();
    tagged[0] = 0x07;
    assert.throws(
      () => decodeStored(tagged, sha256(tagged.subarray(0, encLength)), RADIX_16, ctx),
      (e: unknown) => e instanceof LedgerIntegrityError && /unknown node tag/.test(e.message),
    );
    // A stored leaf with a byte after it (its hash covers only its first LEAF_BYTES).
    const leaf = slots[0] as TrieNode;
    const leafStored = storedForm(leaf);
    assert.equal(hex(decodeStored(leafStored, leaf.hash, RADIX_16, ctx).hash), hex(leaf.hash));
    assert.throws(
      () => decodeStored(Uint8Array.of(...leafStored, 0), leaf.hash, RADIX_16, ctx),
      (e: unknown) =>
        e instanceof LedgerIntegrityError && /bytes after the stored leaf/.test(e.message),
    );
  });
});
