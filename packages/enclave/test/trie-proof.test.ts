/// <reference types="node" />
/**
 * The enclave's proofs against the isomorphic verifier of @cloister/core (a separate
 * implementation of docs/ledger-format.md): every key's proof verifies, absence is proved for
 * every other path, a proof never transfers to another key, and no flipped bit passes.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  decodeProof,
  ProofError,
  verifyInclusion,
  verifyNonInclusion,
  verifyStateProof,
} from '@cloister/core';
import fc from 'fast-check';
import { encodeStateProof } from '../src/ledger/ledger/format.js';
import { comparePaths, firstAtOrAfter, nextPath } from '../src/ledger/ledger/walk.js';
import { EMPTY_ROOT } from '../src/ledger/trie/node.js';
import { createTrie, type Trie, type TrieOp } from '../src/ledger/trie/trie.js';
import { hex, memorySource, pathArb, pathOf, saltOf } from './ledger-helpers.js';

/** Distinct paths have distinct keys, as with real HMAC paths. */
const keyFor = (p: Uint8Array): Uint8Array => Uint8Array.of(0x6b, ...p);
const valueFor = (p: Uint8Array): Uint8Array => p.subarray(6, 6 + ((p[31] ?? 0) % 9));

function table(paths: readonly Uint8Array[]): { trie: Trie; root: Uint8Array } {
  const source = memorySource();
  const trie = createTrie({ source });
  const ops: TrieOp[] = paths.map((p) => ({
    type: 'put',
    path: p,
    salt: saltOf(keyFor(p)),
    key: keyFor(p),
    value: valueFor(p),
  }));
  const u = trie.update(EMPTY_ROOT, ops);
  source.write(u);
  return { trie, root: u.root };
}

const setArb = fc.uniqueArray(pathArb, { minLength: 0, maxLength: 40, selector: hex });

/** A proof is refused: thrown ProofError, or a verdict that is not ok. */
function refused(f: () => { ok: boolean }): boolean {
  try {
    return !f().ok;
  } catch (e) {
    if (e instanceof ProofError) return true;
    throw e;
  }
}

describe('trie proofs verified by @cloister/core', () => {
  test('every key has a valid inclusion proof; other paths a valid non-inclusion proof', () => {
    const absences = new Set<string>();
    fc.assert(
      fc.property(setArb, fc.array(pathArb, { maxLength: 10 }), (paths, others) => {
        const { trie, root } = table(paths);
        for (const p of paths) {
          const proof = trie.prove(root, p);
          assert.deepEqual(verifyInclusion(root, p, proof, keyFor(p), valueFor(p)), { ok: true });
          assert.deepEqual(verifyNonInclusion(root, p, proof), {
            ok: false,
            reason: 'key-present',
          });
        }
        for (const q of others) {
          if (paths.some((p) => hex(p) === hex(q))) continue;
          const proof = trie.prove(root, q);
          assert.deepEqual(verifyNonInclusion(root, q, proof), { ok: true });
          assert.deepEqual(verifyInclusion(root, q, proof, keyFor(q), valueFor(q)), {
            ok: false,
            reason: 'key-absent',
          });
          absences.add(decodeProof(proof).absence ?? '');
        }
      }),
      { numRuns: 150 },
    );
    assert.deepEqual(
      [...absences].sort(),
      ['empty-slot', 'empty-trie', 'other-leaf', 'prefix-diverges'],
      'the runs covered every way a walk can end in absence',
    );
  });

  test('a proof for key A never verifies for key B', () => {
    fc.assert(
      fc.property(
        setArb.filter((s) => s.length >= 2),
        fc.nat(),
        fc.nat(),
        (paths, i, j) => {
          const { trie, root } = table(paths);
          const a = paths[i % paths.length] as Uint8Array;
          const b = paths[(i + 1 + (j % (paths.length - 1))) % paths.length] as Uint8Array;
          const proofA = trie.prove(root, a);
          assert.equal(verifyInclusion(root, b, proofA, keyFor(b), valueFor(b)).ok, false);
          assert.deepEqual(verifyInclusion(root, a, proofA, keyFor(b), valueFor(a)), {
            ok: false,
            reason: 'key-mismatch',
          });
          assert.deepEqual(verifyInclusion(root, a, proofA, keyFor(a), new Uint8Array([1, 2, 3])), {
            ok: false,
            reason: 'value-mismatch',
          });
          assert.equal(verifyNonInclusion(root, b, proofA).ok, false);
        },
      ),
      { numRuns: 100 },
    );
  });

  test('any flipped bit is refused (ProofError or a failed verdict)', () => {
    fc.assert(
      fc.property(setArb, pathArb, fc.nat(), fc.nat(7), (paths, other, at, bit) => {
        const { trie, root } = table(paths);
        const cases: [Uint8Array, (proof: Uint8Array) => { ok: boolean }][] = [];
        const p = paths[0];
        if (p) cases.push([p, (proof) => verifyInclusion(root, p, proof, keyFor(p), valueFor(p))]);
        if (!paths.some((x) => hex(x) === hex(other))) {
          cases.push([other, (proof) => verifyNonInclusion(root, other, proof)]);
        }
        for (const [path, verify] of cases) {
          const proof = trie.prove(root, path);
          assert.equal(verify(proof).ok, true);
          const bad = proof.slice();
          const k = at % bad.length;
          bad[k] = (bad[k] ?? 0) ^ (1 << bit);
          assert.ok(
            refused(() => verify(bad)),
            `flip of bit ${bit} at byte ${k} refused`,
          );
          assert.ok(
            refused(() => verify(proof.subarray(0, proof.length - 1))),
            'truncation refused',
          );
          assert.ok(
            refused(() => verify(Uint8Array.of(...proof, 0))),
            'a trailing byte refused',
          );
        }
      }),
      { numRuns: 300 },
    );
  });

  test('a proof against an older root says root-mismatch; the old root still proves', () => {
    const source = memorySource();
    const trie = createTrie({ source });
    const p = new Uint8Array(32).fill(7);
    const put = (v: number): TrieOp => ({
      type: 'put',
      path: p,
      salt: saltOf(keyFor(p)),
      key: keyFor(p),
      value: Uint8Array.of(v),
    });
    const u1 = trie.update(EMPTY_ROOT, [put(1)]);
    source.write(u1);
    const u2 = trie.update(u1.root, [put(2)]);
    source.write(u2);
    const old = trie.prove(u1.root, p);
    assert.deepEqual(verifyInclusion(u1.root, p, old, keyFor(p), Uint8Array.of(1)), { ok: true });
    assert.deepEqual(verifyInclusion(u2.root, p, old, keyFor(p), Uint8Array.of(1)), {
      ok: false,
      reason: 'root-mismatch',
    });
  });
});

describe('ordered walk over proofs (ledger/walk.ts)', () => {
  test('firstAtOrAfter is the smallest path >= the target: an exact hit, the next one, or none', () => {
    fc.assert(
      fc.property(setArb, fc.array(pathArb, { maxLength: 5 }), (paths, others) => {
        const { trie, root } = table(paths);
        const sorted = [...paths].sort(comparePaths);
        const want = (t: Uint8Array) => sorted.find((p) => comparePaths(p, t) >= 0);
        const targets = [new Uint8Array(32), ...paths, ...others];
        for (const p of paths) {
          const next = nextPath(p);
          if (next) targets.push(next);
        }
        for (const t of targets) {
          const got = firstAtOrAfter((q) => trie.prove(root, q), t);
          const expected = want(t);
          assert.equal(
            got && hex(got),
            expected && hex(expected),
            `first path at or after ${hex(t)} of ${paths.length}`,
          );
        }
      }),
      { numRuns: 60 },
    );
  });
});

describe('state proofs over hand-built tries (records no honest engine writes)', () => {
  /** One leaf per level: admin (ledger id) → catalogue (table) → table (key → `record`). */
  function stateProofOf(record: Uint8Array): { stateHash: Uint8Array; proof: Uint8Array } {
    const leaf = (key: string, value: Uint8Array, seed: number) => {
      const path = pathOf(Uint8Array.of(0x51, seed));
      const source = memorySource();
      const trie = createTrie({ source });
      const k = new TextEncoder().encode(key);
      const u = trie.update(EMPTY_ROOT, [{ type: 'put', path, salt: saltOf(k), key: k, value }]);
      source.write(u);
      return { root: u.root, proof: trie.prove(u.root, path) };
    };
    const table = leaf('alice', record, 3);
    const cat = leaf('accounts', Uint8Array.of(1, ...table.root), 2);
    const admin = leaf('app1', Uint8Array.of(1, ...cat.root), 1);
    return {
      stateHash: admin.root,
      proof: encodeStateProof([admin.proof, cat.proof, table.proof], record),
    };
  }
  const u64 = (n: bigint) => {
    const b = new Uint8Array(8);
    new DataView(b.buffer).setBigUint64(0, n);
    return b;
  };
  const claim = { ledger: 'app1', table: 'accounts', key: new TextEncoder().encode('alice') };

  test('a well-formed set record and tombstone verify; a loose tombstone or a huge index does not', () => {
    const set = stateProofOf(Uint8Array.of(1, 1, ...u64(7n), ...u64(0n), 0x41));
    assert.deepEqual(
      verifyStateProof(set.stateHash, { ...claim, value: Uint8Array.of(0x41) }, set.proof),
      {
        ok: true,
        present: true,
        index: 7,
      },
    );
    const removed = stateProofOf(Uint8Array.of(1, 2, ...u64(8n), ...u64(7n)));
    assert.deepEqual(verifyStateProof(removed.stateHash, claim, removed.proof), {
      ok: true,
      present: false,
      index: 8,
    });
    // The leaf commits to these records, so only a dishonest writer makes them: still refused.
    const loose = stateProofOf(Uint8Array.of(1, 2, ...u64(8n), ...u64(7n), 0x41));
    assert.throws(
      () => verifyStateProof(loose.stateHash, claim, loose.proof),
      /version record is malformed/,
    );
    const huge = stateProofOf(Uint8Array.of(1, 1, ...u64(2n ** 53n), ...u64(0n), 0x41));
    assert.throws(
      () => verifyStateProof(huge.stateHash, { ...claim, value: Uint8Array.of(0x41) }, huge.proof),
      /index above 2\^53 - 1/,
    );
    // Not the engine's canonical form (commits count from 1; prev is an earlier commit or 0):
    // the engine would refuse to read these, so the offline verifier refuses them too.
    for (const [index, prev] of [
      [0n, 0n],
      [5n, 5n],
      [5n, 9n],
    ] as const) {
      for (const kind of [1, 2]) {
        const r = Uint8Array.of(
          1,
          kind,
          ...u64(index),
          ...u64(prev),
          ...(kind === 1 ? [0x41] : []),
        );
        const p = stateProofOf(r);
        const c = kind === 1 ? { ...claim, value: Uint8Array.of(0x41) } : claim;
        assert.throws(
          () => verifyStateProof(p.stateHash, c, p.proof),
          /not canonical: index from 1, prev below index/,
          `kind ${kind} index ${index} prev ${prev}`,
        );
      }
    }
  });
});
