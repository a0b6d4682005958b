/**
 * Objects made per write are not pretenured after bulk commits (docs/performance.md, "Hidden
 * classes"). V8 pretenures an object literal's allocation site once most of its objects survived
 * young collections, as a bulk commit's records and sealed puts do (they live until its batch is
 * written); every later small commit then allocated them in the old generation, where, dead,
 * they kept the commit's new nodes and sealed records alive through young collections until the
 * next full one. They are class instances now, which V8 never pretenures. Its own file: the
 * decision is taken once per allocation site and process, so the sites must meet the bulk
 * updates first, as they do in a node's prefill or bulk import (in a file whose earlier tests ran
 * small transactions, the sites had already settled on "young" and the check could not fail).
 * %InYoungGeneration is V8's natives syntax.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { setFlagsFromString } from 'node:v8';
import { createLedgerKeyring } from '../src/ledger/crypto.js';
import { createNodeCache } from '../src/ledger/node-cache.js';
import { createConfidentialNodeStore } from '../src/ledger/node-store.js';
import { EMPTY_ROOT } from '../src/ledger/trie/node.js';
import { createTrie, type TrieOp } from '../src/ledger/trie/trie.js';
import { hostRecords, pathOf, saltOf } from './ledger-helpers.js';

setFlagsFromString('--allow-natives-syntax');
const inYoungGeneration = new Function('o', 'return %InYoungGeneration(o)') as (
  o: object,
) => boolean;

test("a small update's records and sealed puts are allocated young after bulk updates", () => {
  const host = hostRecords();
  const keyring = createLedgerKeyring({
    origin: { generation: 0, secret: new Uint8Array(32).fill(7) },
  });
  const nodes = createConfidentialNodeStore({ records: host, keyring });
  const trie = createTrie({ source: nodes, cache: createNodeCache() });
  const put = (i: number): TrieOp => {
    const key = Uint8Array.of(i >>> 24, (i >>> 16) & 255, (i >>> 8) & 255, i & 255);
    return { type: 'put', path: pathOf(key), salt: saltOf(key), key, value: key };
  };
  let root = EMPTY_ROOT;
  for (let b = 0; b < 4; b++) {
    const u = trie.update(
      root,
      Array.from({ length: 20_000 }, (_, i) => put(b * 20_000 + i)),
    );
    host.apply(nodes.seal(u.records));
    root = u.root;
  }
  let young = 0;
  let all = 0;
  for (let i = 0; i < 300; i++) {
    const u = trie.update(root, [put(1_000_000 + i)]);
    const puts = nodes.seal(u.records);
    for (const o of [...u.records, ...puts]) {
      all += 1;
      if (inYoungGeneration(o)) young += 1;
    }
    host.apply(puts);
    root = u.root;
  }
  // A scavenge during an update may promote a few legitimately; pretenured sites put ~90% old.
  assert.ok(
    young / all > 0.8,
    `${all - young} of ${all} records and sealed puts were allocated old: a per-write object literal was pretenured; make it a class instance (docs/performance.md, "Hidden classes")`,
  );
});
