/// <reference types="node" />
/**
 * docs/ledger-format.md §9: every vector in the document is what the enclave's code computes from
 * the stated inputs, and the stored forms decode back to the nodes they store.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { RADIX_16 } from '../src/ledger/trie/node.js';
import { decodeStored } from '../src/ledger/trie/stored.js';
import { unhex } from './ledger-helpers.js';
import { computeVectors, documentVectors } from './ledger-vectors.js';

test('the document vectors are exactly what the code computes', () => {
  const computed = computeVectors();
  const documented = documentVectors();
  assert.deepEqual([...documented.keys()].sort(), [...computed.keys()].sort());
  for (const [name, value] of computed) assert.equal(documented.get(name), value, name);
});

test('the stored forms in the vectors decode and verify', () => {
  const v = documentVectors();
  const ctx = { node: 'vector', position: 'root' };
  const get = (k: string): Uint8Array => unhex(v.get(k) ?? '');
  const root = decodeStored(get('root.stored'), get('root'), RADIX_16, ctx);
  assert.equal(root.kind, 'branch');
  const odd = decodeStored(get('odd.stored'), get('odd.branch-hash'), RADIX_16, ctx);
  assert.equal(odd.kind === 'branch' && odd.depth, 3);
});
