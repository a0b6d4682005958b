/// <reference types="node" />
/**
 * The offline proof verifier (src/ledger/proof.ts) against: the fixed vectors of
 * docs/ledger-format.md (made by the enclave's code), and a small reference builder written here
 * straight from the document (the canonical trie of a set of leaves, and its proofs).
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { concatBytes, utf8 } from '../src/bytes.js';
import { InvalidInputError } from '../src/errors.js';
import { sha256 } from '../src/hash.js';
import {
  decodeProof,
  EMPTY_TRIE_ROOT,
  keyCommitment,
  ProofError,
  valueCommitment,
  verifyInclusion,
  verifyNonInclusion,
} from '../src/ledger/proof.js';

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');
const unhex = (s: string): Uint8Array => new Uint8Array(Buffer.from(s, 'hex'));

function docVectors(): Map<string, string> {
  const doc = readFileSync(new URL('../../../docs/ledger-format.md', import.meta.url), 'utf8');
  const out = new Map<string, string>();
  for (const block of doc.matchAll(/```vectors\n([\s\S]*?)```/g)) {
    let name = '';
    for (const line of (block[1] ?? '').split('\n')) {
      const m = /^([a-z0-9.-]+):\s*([0-9a-f]*)$/.exec(line.trim());
      if (m) {
        name = m[1] ?? '';
        out.set(name, m[2] ?? '');
      } else if (/^[0-9a-f]+$/.test(line.trim()) && name) {
        out.set(name, (out.get(name) ?? '') + line.trim());
      }
    }
  }
  return out;
}

// ---- A reference builder, straight from docs/ledger-format.md --------------------------------

interface Ref {
  readonly enc: Uint8Array;
  readonly hash: Uint8Array;
  readonly path?: Uint8Array;
  readonly salt?: Uint8Array;
  readonly depth?: number;
  readonly prefix?: Uint8Array;
  readonly children?: (Ref | undefined)[];
}

const nib = (p: Uint8Array, i: number): number => ((p[i >> 1] ?? 0) >> (i & 1 ? 0 : 4)) & 15;
const keyFor = (p: Uint8Array): Uint8Array => concatBytes(utf8('key:'), p);
const valueFor = (p: Uint8Array): Uint8Array => p.subarray(0, (p[31] ?? 0) % 7);
const saltFor = (p: Uint8Array): Uint8Array => sha256(utf8('salt'), p);

function leaf(path: Uint8Array): Ref {
  const salt = saltFor(path);
  const enc = concatBytes(
    Uint8Array.of(1),
    path,
    keyCommitment(salt, keyFor(path)),
    valueCommitment(salt, valueFor(path)),
  );
  return { enc, hash: sha256(enc), path, salt };
}

function build(paths: readonly Uint8Array[]): Ref | undefined {
  const first = paths[0];
  const last = paths[paths.length - 1];
  if (!first || !last) return undefined;
  if (paths.length === 1) return leaf(first);
  let depth = 0;
  while (nib(first, depth) === nib(last, depth)) depth++;
  const children: (Ref | undefined)[] = [];
  for (let s = 0; s < 16; s++) children.push(build(paths.filter((p) => nib(p, depth) === s)));
  const prefix = first.slice(0, (depth + 1) >> 1);
  if (depth & 1) prefix[prefix.length - 1] = (prefix[prefix.length - 1] ?? 0) & 0xf0;
  let bitmap = 0;
  children.forEach((c, s) => {
    if (c) bitmap |= 0x8000 >> s;
  });
  const enc = concatBytes(
    Uint8Array.of(2, depth),
    prefix,
    Uint8Array.of(bitmap >> 8, bitmap & 255),
    ...children.flatMap((c) => (c ? [c.hash] : [])),
  );
  const full = new Uint8Array(32);
  full.set(prefix);
  return { enc, hash: sha256(enc), depth, prefix: full, children };
}

function prove(root: Ref | undefined, path: Uint8Array): Uint8Array {
  const nodes: Ref[] = [];
  let n = root;
  while (n) {
    nodes.push(n);
    if (n.children === undefined || n.depth === undefined || !n.prefix) break;
    let inside = true;
    for (let i = 0; i < n.depth; i++) inside &&= nib(path, i) === nib(n.prefix, i);
    if (!inside) break;
    n = n.children[nib(path, n.depth)];
  }
  const end = nodes[nodes.length - 1];
  const found = end?.path && hex(end.path) === hex(path) ? end : undefined;
  return concatBytes(
    Uint8Array.of(1, found ? 1 : 2),
    path,
    Uint8Array.of(nodes.length),
    ...nodes.map((x) => x.enc),
    found?.salt ?? new Uint8Array(0),
  );
}

const sorted = (ps: Uint8Array[]): Uint8Array[] => [...ps].sort((a, b) => Buffer.compare(a, b));
/** Paths that share prefixes of many lengths. */
const pathArb = fc
  .tuple(fc.nat(255), fc.uint8Array({ minLength: 32, maxLength: 32 }))
  .map(([k, tail]) => {
    const out = tail.slice();
    for (let bit = 0; bit < k; bit++) out[bit >> 3] = (out[bit >> 3] ?? 0) & ~(0x80 >> (bit & 7));
    return out;
  });
const setArb = fc.uniqueArray(pathArb, { maxLength: 30, selector: hex });

function refused(f: () => { ok: boolean }): boolean {
  try {
    return !f().ok;
  } catch (e) {
    if (e instanceof ProofError) return true;
    throw e;
  }
}

describe('ledger proofs: document vectors', () => {
  const v = docVectors();
  const get = (k: string): Uint8Array => {
    const x = v.get(k);
    assert.ok(x !== undefined, `vector ${k} in docs/ledger-format.md`);
    return unhex(x);
  };

  test('commitments and the leaf encoding', () => {
    const salt = get('alice.salt');
    assert.equal(hex(keyCommitment(salt, utf8('alice'))), hex(get('alice.key-commitment')));
    assert.equal(hex(valueCommitment(salt, utf8('100'))), hex(get('alice.value-commitment')));
    assert.equal(hex(sha256(get('alice.leaf'))), hex(get('alice.leaf-hash')));
    assert.equal(hex(sha256(get('odd.branch'))), hex(get('odd.branch-hash')));
  });

  test("verifyInclusion's key and value must be bytes, checked before the proof (coverage gap)", () => {
    const root = get('root');
    const alice = get('alice.path');
    for (const [k, v] of [
      ['alice', utf8('100')],
      [utf8('alice'), undefined],
    ] as const) {
      assert.throws(
        () => verifyInclusion(root, alice, get('alice.proof'), k as never, v as never),
        {
          name: 'InvalidInputError',
          message: 'key and value must be Uint8Arrays',
        },
      );
    }
  });

  test('inclusion of alice, absence of dave, absence in the empty table', () => {
    const root = get('root');
    const alice = get('alice.path');
    assert.deepEqual(verifyInclusion(root, alice, get('alice.proof'), utf8('alice'), utf8('100')), {
      ok: true,
    });
    assert.deepEqual(verifyInclusion(root, alice, get('alice.proof'), utf8('alice'), utf8('101')), {
      ok: false,
      reason: 'value-mismatch',
    });
    // A genuine proof of alice, held up against another state's root.
    assert.deepEqual(
      verifyInclusion(EMPTY_TRIE_ROOT, alice, get('alice.proof'), utf8('alice'), utf8('100')),
      { ok: false, reason: 'root-mismatch' },
    );
    assert.deepEqual(verifyNonInclusion(root, get('dave.path'), get('dave.proof')), { ok: true });
    assert.deepEqual(
      verifyNonInclusion(EMPTY_TRIE_ROOT, get('dave.path'), get('empty.dave.proof')),
      {
        ok: true,
      },
    );
    assert.deepEqual(verifyNonInclusion(root, get('dave.path'), get('empty.dave.proof')), {
      ok: false,
      reason: 'root-mismatch',
    });
    assert.equal(decodeProof(get('dave.proof')).absence, 'empty-slot');
  });
});

describe('ledger proofs: against the reference builder', () => {
  test('every key verifies; every other path has a verified absence', () => {
    fc.assert(
      fc.property(setArb, fc.array(pathArb, { maxLength: 6 }), (set, others) => {
        const paths = sorted(set);
        const tree = build(paths);
        const root = tree?.hash ?? EMPTY_TRIE_ROOT;
        for (const p of paths) {
          const proof = prove(tree, p);
          assert.deepEqual(verifyInclusion(root, p, proof, keyFor(p), valueFor(p)), { ok: true });
          assert.deepEqual(verifyNonInclusion(root, p, proof), {
            ok: false,
            reason: 'key-present',
          });
        }
        for (const q of others) {
          if (set.some((p) => hex(p) === hex(q))) continue;
          assert.deepEqual(verifyNonInclusion(root, q, prove(tree, q)), { ok: true });
        }
      }),
      { numRuns: 200 },
    );
  });

  test('a proof for key A never verifies for key B', () => {
    fc.assert(
      fc.property(
        setArb.filter((s) => s.length >= 2),
        fc.nat(),
        (set, i) => {
          const paths = sorted(set);
          const tree = build(paths);
          const root = tree?.hash ?? EMPTY_TRIE_ROOT;
          const a = paths[i % paths.length] as Uint8Array;
          const b = paths[(i + 1) % paths.length] as Uint8Array;
          const proof = prove(tree, a);
          assert.equal(verifyInclusion(root, b, proof, keyFor(b), valueFor(b)).ok, false);
          assert.deepEqual(verifyInclusion(root, a, proof, keyFor(b), valueFor(a)), {
            ok: false,
            reason: 'key-mismatch',
          });
          assert.deepEqual(verifyNonInclusion(root, b, proof), {
            ok: false,
            reason: 'path-mismatch',
          });
        },
      ),
      { numRuns: 150 },
    );
  });

  test('any flipped bit, truncation or extra byte is refused', () => {
    fc.assert(
      fc.property(setArb, pathArb, fc.nat(), fc.nat(7), (set, q, at, bit) => {
        const paths = sorted(set);
        const tree = build(paths);
        const root = tree?.hash ?? EMPTY_TRIE_ROOT;
        const present = set.some((p) => hex(p) === hex(q));
        const verify = (proof: Uint8Array) =>
          present
            ? verifyInclusion(root, q, proof, keyFor(q), valueFor(q))
            : verifyNonInclusion(root, q, proof);
        const proof = prove(tree, q);
        assert.equal(verify(proof).ok, true);
        const bad = proof.slice();
        bad[at % bad.length] = (bad[at % bad.length] ?? 0) ^ (1 << bit);
        assert.ok(refused(() => verify(bad)));
        assert.ok(refused(() => verify(proof.subarray(0, proof.length - 1))));
        assert.ok(refused(() => verify(concatBytes(proof, Uint8Array.of(0)))));
      }),
      { numRuns: 300 },
    );
  });
});

describe('ledger proofs: strict decoding', () => {
  const paths = sorted(Array.from({ length: 20 }, (_, i) => sha256(Uint8Array.of(i))));
  const tree = build(paths);
  const p = paths[3] as Uint8Array;
  const good = prove(tree, p);

  test('malformed proofs are ProofErrors with a reason', () => {
    const cases: [string, Uint8Array][] = [
      ['empty', new Uint8Array(0)],
      ['version 2', concatBytes(Uint8Array.of(2), good.subarray(1))],
      ['kind 3', concatBytes(Uint8Array.of(1, 3), good.subarray(2))],
      ['inclusion without its salt', good.subarray(0, good.length - 32)],
      [
        'non-inclusion claimed for a present key',
        concatBytes(Uint8Array.of(1, 2), good.subarray(2, good.length - 32)),
      ],
      [
        'node count too large',
        (() => {
          const b = good.slice();
          b[34] = (b[34] ?? 0) + 1;
          return b;
        })(),
      ],
      [
        'node count too small',
        (() => {
          const b = good.slice();
          b[34] = 1;
          return b;
        })(),
      ],
    ];
    for (const [what, bytes] of cases) {
      assert.throws(() => decodeProof(bytes), ProofError, what);
    }
  });

  test('bad arguments are InvalidInputErrors', () => {
    assert.throws(() => verifyNonInclusion(new Uint8Array(31), p, good), InvalidInputError);
    assert.throws(
      () => verifyNonInclusion(tree?.hash ?? EMPTY_TRIE_ROOT, new Uint8Array(3), good),
      InvalidInputError,
    );
    assert.throws(() => decodeProof('x' as unknown as Uint8Array), InvalidInputError);
  });
});

describe('ledger proofs: walks that stop early or do not follow their path (mutation round 13)', () => {
  const paths = sorted(Array.from({ length: 20 }, (_, i) => sha256(Uint8Array.of(i))));
  const tree = build(paths) as Ref;
  const p = paths[3] as Uint8Array;
  /** The nodes of the honest walk to `p`, root first. */
  const walk = (): Ref[] => {
    const out: Ref[] = [];
    let n: Ref | undefined = tree;
    while (n) {
      out.push(n);
      n = n.children?.[nib(p, n.depth ?? 0)];
    }
    return out;
  };
  const proofOf = (
    kind: number,
    path: Uint8Array,
    nodes: Uint8Array[],
    salt: Uint8Array = new Uint8Array(0),
  ) => concatBytes(Uint8Array.of(1, kind), path, Uint8Array.of(nodes.length), ...nodes, salt);

  test('a non-inclusion proof cut short at a branch whose slot holds a child: refused', () => {
    const nodes = walk();
    assert.ok(nodes.length >= 2);
    for (let k = 1; k < nodes.length; k++) {
      const cut = proofOf(
        2,
        p,
        nodes.slice(0, k).map((x) => x.enc),
      );
      assert.throws(() => verifyNonInclusion(tree.hash, p, cut), ProofError, `cut after ${k}`);
    }
  });

  // Proofs for tries an attacker built: every hash chains, yet the walk is not canonical.
  const P = new Uint8Array(32); // path 00…00
  const other = sha256(utf8('another child'));
  const branch = (depth: number, prefix: Uint8Array, slots: Map<number, Uint8Array>) => {
    let bitmap = 0;
    for (const s of slots.keys()) bitmap |= 0x8000 >> s;
    const hashes = [...slots.entries()].sort((a, b) => a[0] - b[0]).map(([, h]) => h);
    return concatBytes(
      Uint8Array.of(2, depth),
      prefix,
      Uint8Array.of(bitmap >> 8, bitmap & 255),
      ...hashes,
    );
  };
  const L = leaf(P);
  const leafSalt = (nodes: Ref[]): Uint8Array => nodes[nodes.length - 1]?.salt ?? new Uint8Array(0);

  test('nodes after the end of the walk (the last one repeated) are refused', () => {
    const nodes = walk().map((x) => x.enc);
    const last = nodes[nodes.length - 1] as Uint8Array;
    const twice = proofOf(1, p, [...nodes, last], leafSalt(walk()));
    assert.throws(() => decodeProof(twice), /after the end of the walk/);
  });

  test('a branch with a single child is refused', () => {
    const root = branch(0, new Uint8Array(0), new Map([[0, L.hash]]));
    const proof = proofOf(1, P, [root, L.enc], L.salt);
    assert.throws(() => decodeProof(proof), ProofError);
  });

  test('a branch prefix with bits set past its odd depth is refused', () => {
    const root = branch(
      1,
      Uint8Array.of(0x01),
      new Map([
        [0, L.hash],
        [1, other],
      ]),
    );
    const proof = proofOf(1, P, [root, L.enc], L.salt);
    assert.throws(() => decodeProof(proof), /past its depth/);
  });

  test('a child no deeper than its parent is refused', () => {
    const inner = branch(
      0,
      new Uint8Array(0),
      new Map([
        [0, L.hash],
        [1, other],
      ]),
    );
    const root = branch(
      1,
      Uint8Array.of(0x00),
      new Map([
        [0, sha256(inner)],
        [1, other],
      ]),
    );
    const proof = proofOf(1, P, [root, inner, L.enc], L.salt);
    assert.throws(() => decodeProof(proof), /does not belong/);
  });

  test('a child in a slot its own prefix does not name is refused', () => {
    const Q = P.slice();
    Q[0] = 0x10; // first digit 1
    const q = leaf(Q);
    const root = branch(
      0,
      new Uint8Array(0),
      new Map([
        [0, q.hash],
        [2, other],
      ]),
    );
    const proof = proofOf(2, P, [root, q.enc]);
    assert.throws(() => decodeProof(proof), /does not belong/);
  });
});
