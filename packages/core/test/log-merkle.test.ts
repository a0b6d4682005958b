/**
 * RFC 9162 §2.1 Merkle tree (src/log/merkle.ts) against published vectors and properties.
 *
 * Vector data (only the data) from github.com/transparency-dev/merkle, Apache-2.0:
 * testonly/constants.go (LeafInputs, NodeHashes, RootHashes) and proof/verify_test.go
 * (inclusionProofs, consistencyProofs; there leaf numbers are 1-based).
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { fromHex, toHex } from '../src/bytes.js';
import { InvalidInputError } from '../src/errors.js';
import { sha256 } from '../src/hash.js';
import { LogProofError } from '../src/log/errors.js';
import {
  EMPTY_TREE_ROOT,
  leafHash,
  MerkleLog,
  nodeHash,
  rootFromInclusion,
  verifyConsistency,
} from '../src/log/merkle.js';

const LEAF_INPUTS = [
  '',
  '00',
  '10',
  '2021',
  '3031',
  '40414243',
  '5051525354555657',
  '606162636465666768696a6b6c6d6e6f',
].map((h) => fromHex(h));

const NODE_HASHES = [
  [
    '6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d',
    '96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7',
    '0298d122906dcfc10892cb53a73992fc5b9f493ea4c9badb27b791b4127a7fe7',
    '07506a85fd9dd2f120eb694f86011e5bb4662e5c415a62917033d4a9624487e7',
    'bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b',
    '4271a26be0d8a84f0bd54c8c302e7cb3a3b5d1fa6780a40bcce2873477dab658',
    'b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f',
    '46f6ffadd3d06a09ff3c5860d2755c8b9819db7df44251788c7d8e3180de8eb1',
  ],
  [
    'fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125',
    '5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e',
    '0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a',
    'ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0',
  ],
  [
    'd37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7',
    '6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4',
  ],
  ['5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328'],
];

const ROOTS = [
  'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855',
  '6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d',
  'fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125',
  'aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77',
  'd37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7',
  '4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4',
  '76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef',
  'ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c',
  '5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328',
];

/** [leaf (1-based), size, proof] */
const INCLUSION: [number, number, string[]][] = [
  [1, 1, []],
  [
    1,
    8,
    [
      '96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7',
      '5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e',
      '6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4',
    ],
  ],
  [
    6,
    8,
    [
      'bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b',
      'ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0',
      'd37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7',
    ],
  ],
  [3, 3, ['fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125']],
  [
    2,
    5,
    [
      '6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d',
      '5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e',
      'bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b',
    ],
  ],
];

/** [size1, size2, proof] */
const CONSISTENCY: [number, number, string[]][] = [
  [1, 1, []],
  [
    1,
    8,
    [
      '96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7',
      '5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e',
      '6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4',
    ],
  ],
  [
    6,
    8,
    [
      '0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a',
      'ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0',
      'd37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7',
    ],
  ],
  [
    2,
    5,
    [
      '5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e',
      'bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b',
    ],
  ],
  [
    6,
    7,
    [
      '0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a',
      'b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f',
      'd37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7',
    ],
  ],
];

function vectorLog(): MerkleLog {
  const m = new MerkleLog();
  for (const l of LEAF_INPUTS) m.append(leafHash(l));
  return m;
}

const flipped = (h: Uint8Array, bit = 8): Uint8Array => {
  const out = h.slice();
  out[0] = (out[0] as number) ^ bit;
  return out;
};

describe('RFC 9162 vectors (transparency-dev/merkle)', () => {
  test('leaf and node hashes of every complete subtree', () => {
    NODE_HASHES[0]?.forEach((h, i) => {
      assert.equal(toHex(leafHash(LEAF_INPUTS[i] as Uint8Array)), h);
    });
    for (let level = 1; level < NODE_HASHES.length; level++) {
      NODE_HASHES[level]?.forEach((h, i) => {
        const below = NODE_HASHES[level - 1] as string[];
        const got = nodeHash(fromHex(below[2 * i] as string), fromHex(below[2 * i + 1] as string));
        assert.equal(toHex(got), h);
      });
    }
  });

  test('roots for every size 0..8, from one log', () => {
    const m = vectorLog();
    assert.equal(m.size, 8);
    ROOTS.forEach((r, n) => {
      assert.equal(toHex(m.root(n)), r, `size ${n}`);
    });
    assert.equal(toHex(EMPTY_TREE_ROOT), ROOTS[0]);
    assert.deepEqual(EMPTY_TREE_ROOT, sha256());
  });

  test('inclusion proofs: generated equal the vectors, and verify', () => {
    const m = vectorLog();
    for (const [leaf, size, proof] of INCLUSION) {
      assert.deepEqual(m.inclusionProof(leaf - 1, size).map(toHex), proof, `${leaf}/${size}`);
      const lh = leafHash(LEAF_INPUTS[leaf - 1] as Uint8Array);
      const root = rootFromInclusion(
        leaf - 1,
        size,
        lh,
        proof.map((h) => fromHex(h)),
      );
      assert.equal(toHex(root), ROOTS[size]);
    }
  });

  test('consistency proofs: generated equal the vectors, and verify', () => {
    const m = vectorLog();
    for (const [m1, n, proof] of CONSISTENCY) {
      assert.deepEqual(m.consistencyProof(m1, n).map(toHex), proof, `${m1}->${n}`);
      verifyConsistency(
        m1,
        n,
        fromHex(ROOTS[m1] as string),
        fromHex(ROOTS[n] as string),
        proof.map((h) => fromHex(h)),
      );
    }
  });

  test('corrupted inclusion proofs are refused (the probes of verify_test.go)', () => {
    const some = fromHex('abacaba000000000000000000000000000000000000000000060061e00123456');
    for (const [leaf, size, hexProof] of INCLUSION.slice(1)) {
      const proof = hexProof.map((h) => fromHex(h));
      const root = fromHex(ROOTS[size] as string);
      const lh = leafHash(LEAF_INPUTS[leaf - 1] as Uint8Array);
      const probes: [number, number, Uint8Array, Uint8Array[], Uint8Array][] = [
        [leaf - 2, size, lh, proof, root],
        [leaf, size, lh, proof, root],
        [(leaf - 1) ^ 2, size, lh, proof, root],
        [leaf - 1, size * 2, lh, proof, root],
        [leaf - 1, Math.floor(size / 2), lh, proof, root],
        [leaf - 1, size, leafHash(new TextEncoder().encode('WrongLeaf')), proof, root],
        [leaf - 1, size, lh, proof, EMPTY_TREE_ROOT],
        [leaf - 1, size, lh, proof, some],
        [leaf - 1, size, lh, [...proof, root], root],
        [leaf - 1, size, lh, [root, ...proof], root],
        [leaf - 1, size, lh, proof.slice(0, -1), root],
        [leaf - 1, size, lh, [proof[0] as Uint8Array, some, ...proof.slice(1)], root],
        ...proof.map(
          (_, i) =>
            [leaf - 1, size, lh, proof.map((p, j) => (j === i ? flipped(p) : p)), root] as [
              number,
              number,
              Uint8Array,
              Uint8Array[],
              Uint8Array,
            ],
        ),
      ];
      for (const [i, n, h, p, r] of probes) {
        assert.equal(verifiesInclusion(i, n, h, p, r), false, `leaf ${i} size ${n}`);
      }
    }
  });

  test('corrupted consistency proofs are refused (the probes of verify_test.go)', () => {
    for (const [m1, n, hexProof] of CONSISTENCY.slice(1)) {
      const proof = hexProof.map((h) => fromHex(h));
      const r1 = fromHex(ROOTS[m1] as string);
      const r2 = fromHex(ROOTS[n] as string);
      const wrong = sha256(new TextEncoder().encode('WrongRoot'));
      const probes: [number, number, Uint8Array, Uint8Array, Uint8Array[]][] = [
        [m1 - 1, n, r1, r2, proof],
        [m1 + 1, n, r1, r2, proof],
        [m1 ^ 2, n, r1, r2, proof],
        [m1, n * 2, r1, r2, proof],
        [m1, Math.floor(n / 2), r1, r2, proof],
        [m1, n, wrong, r2, proof],
        [m1, n, r1, wrong, proof],
        [m1, n, r2, r1, proof],
        [m1, n, r1, r2, []],
        [m1, n, r1, r2, [...proof, r1]],
        [m1, n, r1, r2, [...proof, r2]],
        [m1, n, r1, r2, [r1, ...proof]],
        [m1, n, r1, r2, [r2, ...proof]],
        [m1, n, r1, r2, [proof[0] as Uint8Array, ...proof]],
        [m1, n, r1, r2, proof.slice(0, -1)],
        ...proof.map(
          (_, i) =>
            [m1, n, r1, r2, proof.map((p, j) => (j === i ? flipped(p, 16) : p))] as [
              number,
              number,
              Uint8Array,
              Uint8Array,
              Uint8Array[],
            ],
        ),
      ];
      for (const [a, b, x, y, p] of probes) {
        assert.equal(verifiesConsistency(a, b, x, y, p), false, `${a}->${b}`);
      }
    }
  });

  test('edge cases of verifyConsistency (TestVerifyConsistency)', () => {
    const e = EMPTY_TREE_ROOT;
    const a = sha256(Uint8Array.of(1));
    const b = sha256(Uint8Array.of(2));
    assert.equal(verifiesConsistency(0, 0, a, b, []), false);
    assert.equal(verifiesConsistency(1, 1, a, b, []), false);
    assert.equal(verifiesConsistency(0, 0, a, a, []), true);
    assert.equal(verifiesConsistency(0, 1, a, b, []), true);
    assert.equal(verifiesConsistency(1, 1, b, b, []), true);
    assert.equal(verifiesConsistency(1, 0, a, b, []), false);
    assert.equal(verifiesConsistency(2, 1, a, b, []), false);
    assert.equal(verifiesConsistency(1, 2, a, b, []), false);
    assert.equal(verifiesConsistency(0, 0, e, e, [e]), false);
    assert.equal(verifiesConsistency(0, 1, e, e, [e]), false);
    assert.equal(verifiesConsistency(1, 1, e, e, [e]), false);
  });

  test('an old size above the new one is refused even when the hashes line up', () => {
    // Walked as if it were a consistency proof, [a, c] leads from size 3 with root a to size 2
    // with root H(1 ‖ a ‖ c): only the size order refuses it.
    const a = sha256(Uint8Array.of(1));
    const c = sha256(Uint8Array.of(2));
    const node = sha256(Uint8Array.of(1), a, c);
    assert.throws(() => verifyConsistency(3, 2, a, node, [a, c]), LogProofError);
  });
});

function verifiesInclusion(
  i: number,
  n: number,
  h: Uint8Array,
  p: Uint8Array[],
  root: Uint8Array,
): boolean {
  try {
    if (i < 0 || n < 0) return false;
    return toHex(rootFromInclusion(i, n, h, p)) === toHex(root);
  } catch (e) {
    if (e instanceof LogProofError) return false;
    throw e;
  }
}

function verifiesConsistency(
  a: number,
  b: number,
  x: Uint8Array,
  y: Uint8Array,
  p: Uint8Array[],
): boolean {
  try {
    if (a < 0 || b < 0) return false;
    verifyConsistency(a, b, x, y, p);
    return true;
  } catch (e) {
    if (e instanceof LogProofError) return false;
    throw e;
  }
}

/** The RFC 9162 §2.1.1 definition, written directly (the reference for the properties). */
function mth(leaves: Uint8Array[]): Uint8Array {
  if (leaves.length === 0) return sha256();
  if (leaves.length === 1) return leaves[0] as Uint8Array;
  let k = 1;
  while (k * 2 < leaves.length) k *= 2;
  return nodeHash(mth(leaves.slice(0, k)), mth(leaves.slice(k)));
}

function randomLog(n: number): { log: MerkleLog; leaves: Uint8Array[] } {
  const log = new MerkleLog();
  const leaves: Uint8Array[] = [];
  for (let i = 0; i < n; i++) {
    const h = leafHash(Uint8Array.of(i & 255, i >> 8, 7));
    leaves.push(h);
    log.append(h);
  }
  return { log, leaves };
}

describe('properties', () => {
  test('root(size) is the RFC MTH for every size; inclusion proofs verify for every leaf and size', () => {
    const { log, leaves } = randomLog(70);
    for (let n = 0; n <= 70; n++) {
      const root = log.root(n);
      assert.deepEqual(root, mth(leaves.slice(0, n)), `size ${n}`);
      for (let i = 0; i < n; i++) {
        const p = log.inclusionProof(i, n);
        assert.deepEqual(rootFromInclusion(i, n, leaves[i] as Uint8Array, p), root);
      }
    }
  });

  test('consistency proofs verify for every (m, n) up to 70', () => {
    const { log } = randomLog(70);
    for (let n = 0; n <= 70; n++) {
      for (let m1 = 0; m1 <= n; m1++) {
        verifyConsistency(m1, n, log.root(m1), log.root(n), log.consistencyProof(m1, n));
      }
    }
  });

  test('any changed hash, index or size refuses an inclusion proof', () => {
    const { log, leaves } = randomLog(300);
    fc.assert(
      fc.property(
        fc.integer({ min: 2, max: 300 }),
        fc.nat(),
        fc.nat(),
        fc.integer({ min: 0, max: 3 }),
        fc.integer({ min: 1, max: 255 }),
        (n, i0, which, what, mask) => {
          const i = i0 % n;
          const root = log.root(n);
          const path = log.inclusionProof(i, n);
          const leaf = leaves[i] as Uint8Array;
          assert.equal(verifiesInclusion(i, n, leaf, path, root), true);
          if (what === 0 && path.length > 0) {
            const j = which % path.length;
            const bad = path.map((p, k) => (k === j ? flipped(p, mask) : p));
            assert.equal(verifiesInclusion(i, n, leaf, bad, root), false);
          } else if (what === 1) {
            assert.equal(verifiesInclusion(i, n, flipped(leaf, mask), path, root), false);
          } else if (what === 2) {
            const other = (i + 1 + (which % (n - 1))) % n;
            assert.equal(verifiesInclusion(other, n, leaf, path, root), false);
          } else {
            // Another size, with that size's root (a size is only ever believed with its root).
            const size = 1 + ((n + (which % 299)) % 300);
            if (size !== n && i < size) {
              assert.equal(verifiesInclusion(i, size, leaf, path, log.root(size)), false);
            }
          }
        },
      ),
      { numRuns: 400 },
    );
  });

  test('any changed hash or size refuses a consistency proof', () => {
    const { log } = randomLog(300);
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 299 }),
        fc.integer({ min: 1, max: 300 }),
        fc.nat(),
        fc.integer({ min: 0, max: 3 }),
        fc.integer({ min: 1, max: 255 }),
        (a, b0, which, what, mask) => {
          const b = a + 1 + ((b0 - 1) % (300 - a));
          const p = log.consistencyProof(a, b);
          const r1 = log.root(a);
          const r2 = log.root(b);
          assert.equal(verifiesConsistency(a, b, r1, r2, p), true);
          if (what === 0) {
            const j = which % p.length;
            const bad = p.map((h, k) => (k === j ? flipped(h, mask) : h));
            assert.equal(verifiesConsistency(a, b, r1, r2, bad), false);
          } else if (what === 1) {
            assert.equal(verifiesConsistency(a, b, flipped(r1, mask), r2, p), false);
          } else if (what === 2) {
            assert.equal(verifiesConsistency(a, b, r1, flipped(r2, mask), p), false);
          } else {
            const a2 = 1 + ((a + (which % 298)) % 299);
            if (a2 !== a && a2 < b) {
              assert.equal(verifiesConsistency(a2, b, log.root(a2), r2, p), false);
            }
          }
        },
      ),
      { numRuns: 400 },
    );
  });
});

describe('MerkleLog', () => {
  test('truncate drops staged leaves and the log appends again from there', () => {
    const { log, leaves } = randomLog(37);
    const r20 = log.root(20);
    log.truncate(20);
    assert.equal(log.size, 20);
    assert.deepEqual(log.root(), r20);
    for (let i = 20; i < 37; i++) log.append(leaves[i] as Uint8Array);
    assert.deepEqual(log.root(), mth(leaves));
  });

  test('refuses sizes and indexes outside the log, and non-hashes', () => {
    const { log } = randomLog(5);
    assert.throws(() => log.root(6), InvalidInputError);
    assert.throws(() => log.inclusionProof(5, 5), InvalidInputError);
    assert.throws(() => log.inclusionProof(0, 6), InvalidInputError);
    assert.throws(() => log.consistencyProof(4, 3), InvalidInputError);
    assert.throws(() => log.append(new Uint8Array(31)), InvalidInputError);
    assert.throws(() => log.root(1.5), InvalidInputError);
    assert.throws(
      () => rootFromInclusion(0, 1, new Uint8Array(32), [new Uint8Array(3)]),
      LogProofError,
    );
    assert.throws(() => rootFromInclusion(1, 1, new Uint8Array(32), []), LogProofError);
    // A path longer than the tree is deep is refused, not folded into some other root.
    assert.throws(
      () => rootFromInclusion(0, 1, new Uint8Array(32), [new Uint8Array(32)]),
      (e: unknown) => e instanceof LogProofError && /longer than the tree is deep/.test(e.message),
    );
    const root = log.root();
    assert.throws(() => log.truncate(6), InvalidInputError);
    assert.equal(log.size, 5);
    assert.deepEqual(log.root(), root);
  });

  test('returned hashes are copies', () => {
    const { log } = randomLog(4);
    const r = log.root();
    r.fill(0);
    assert.notDeepEqual(log.root(), r);
    const p = log.inclusionProof(0, 4);
    (p[0] as Uint8Array).fill(0);
    assert.notDeepEqual(log.inclusionProof(0, 4)[0], p[0]);
  });

  test('a caller-supplied SHA-256 gives the same roots and proofs', () => {
    let calls = 0;
    const hash = (d: Uint8Array): Uint8Array => {
      calls++;
      return sha256(d);
    };
    const a = new MerkleLog();
    const b = new MerkleLog({ hash });
    for (let i = 0; i < 37; i++) {
      const l = leafHash(Uint8Array.of(i));
      assert.deepEqual(leafHash(Uint8Array.of(i), hash), l);
      a.append(l);
      b.append(l);
      assert.deepEqual(b.root(), a.root());
    }
    assert.deepEqual(b.root(21), a.root(21));
    assert.deepEqual(b.inclusionProof(5, 30), a.inclusionProof(5, 30));
    assert.deepEqual(b.consistencyProof(13, 37), a.consistencyProof(13, 37));
    assert.ok(calls > 0);
  });
});
