/// <reference types="node" />
/**
 * Integrity of reads through the confidential node layer (issue 3, point 9): whatever the host
 * does to the records — flip a bit, swap, drop, duplicate or roll back one — a read returns exactly
 * the data written under the root the enclave holds, or throws LedgerIntegrityError naming what
 * failed. Never wrong data, never another exception.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { createLedgerKeyring, type LedgerKeyring } from '../src/ledger/crypto.js';
import { LedgerIntegrityError } from '../src/ledger/errors.js';
import { createNodeCache } from '../src/ledger/node-cache.js';
import { createConfidentialNodeStore } from '../src/ledger/node-store.js';
import { EMPTY_ROOT } from '../src/ledger/trie/node.js';
import { createTrie, type TrieOp } from '../src/ledger/trie/trie.js';
import { type HostRecords, hex, hostRecords } from './ledger-helpers.js';

const enc = new TextEncoder();

interface Ledger {
  readonly host: HostRecords;
  readonly keyring: LedgerKeyring;
  readonly roots: Uint8Array[];
  readonly entries: Map<string, string>;
}

/** A table of `n` keys written in `versions` commits through trie + node layer. */
function ledger(n: number, versions = 1, inlineLimit?: number): Ledger {
  const host = hostRecords();
  const keyring = createLedgerKeyring({
    origin: { generation: 0, secret: new Uint8Array(32).fill(3) },
  });
  const nodes = createConfidentialNodeStore({ records: host, keyring });
  const trie = createTrie({ source: nodes, ...(inlineLimit === undefined ? {} : { inlineLimit }) });
  const t = keyring.table('t');
  const entries = new Map<string, string>();
  const roots: Uint8Array[] = [];
  let root = EMPTY_ROOT;
  for (let v = 0; v < versions; v++) {
    const ops: TrieOp[] = [];
    for (let i = 0; i < n; i++) {
      const key = enc.encode(`key-${i}`);
      const value = enc.encode(`value-${i}-v${v}${'.'.repeat(i % 50)}`);
      ops.push({ type: 'put', path: t.path(key), salt: t.salt(key), key, value });
      entries.set(`key-${i}`, hex(value));
    }
    const u = trie.update(root, ops);
    host.apply(nodes.seal(u.records));
    root = u.root;
    roots.push(root);
  }
  return { host, keyring, roots, entries };
}

/**
 * Reads every key with a fresh trie (cold cache) at `root`: each read must return the right
 * value or throw LedgerIntegrityError. Returns the failures seen.
 */
function readAll(l: Ledger, root: Uint8Array): LedgerIntegrityError[] {
  const nodes = createConfidentialNodeStore({ records: l.host, keyring: l.keyring });
  const trie = createTrie({ source: nodes });
  const t = l.keyring.table('t');
  const failures: LedgerIntegrityError[] = [];
  for (const [k, v] of l.entries) {
    try {
      const leaf = trie.get(root, t.path(enc.encode(k)));
      assert.ok(leaf, `key ${k} present`);
      assert.equal(hex(leaf.value), v, 'never wrong data');
      assert.equal(new TextDecoder().decode(leaf.key), k);
    } catch (e) {
      if (!(e instanceof LedgerIntegrityError)) throw e;
      failures.push(e);
    }
  }
  return failures;
}

const keys = (l: Ledger): string[] => [...l.host.map.keys()].sort();

describe('integrity of reads through the confidential node layer', () => {
  test('an untouched ledger reads back every key', () => {
    const l = ledger(300);
    assert.deepEqual(readAll(l, l.roots[0] as Uint8Array), []);
  });

  test('a flipped bit in any record: authentication failure, naming node and position', () => {
    const l = ledger(200);
    for (const k of keys(l)) {
      const orig = l.host.map.get(k) as Uint8Array;
      const bad = orig.slice();
      bad[orig.length >> 1] = (bad[orig.length >> 1] ?? 0) ^ 1;
      l.host.map.set(k, bad);
      const failures = readAll(l, l.roots[0] as Uint8Array);
      assert.ok(failures.length > 0, 'some read passes through every record');
      for (const f of failures) {
        assert.equal(f.failure, 'authentication');
        assert.match(f.message, /node [0-9a-f]{16} at [0-9a-f]+|root/);
      }
      l.host.map.set(k, orig);
    }
  });

  test('a swapped or duplicated record: authentication failure', () => {
    const l = ledger(200);
    const [a, b] = keys(l) as [string, string];
    const ra = l.host.map.get(a) as Uint8Array;
    l.host.map.set(b, ra);
    const failures = readAll(l, l.roots[0] as Uint8Array);
    assert.ok(failures.length > 0);
    assert.ok(failures.every((f) => f.failure === 'authentication'));
  });

  test('a missing record: missing, with its position', () => {
    const l = ledger(200);
    const k = keys(l)[3] as string;
    l.host.map.delete(k);
    const failures = readAll(l, l.roots[0] as Uint8Array);
    assert.ok(failures.length > 0);
    assert.ok(failures.every((f) => f.failure === 'missing' && f.position !== undefined));
  });

  test('a record rolled back to an older version of its slot: authentication failure', () => {
    const l = ledger(50, 2);
    const [r1, r2] = l.roots as [Uint8Array, Uint8Array];
    const s1 = hex(l.keyring.storeKey(r1));
    const s2 = hex(l.keyring.storeKey(r2));
    l.host.map.set(s2, l.host.map.get(s1) as Uint8Array);
    const failures = readAll(l, r2);
    assert.equal(failures.length, l.entries.size, 'the root itself fails');
    assert.ok(failures.every((f) => f.failure === 'authentication' && f.position === 'root'));
  });

  test('property: any mix of tampering never yields wrong data or another error', () => {
    const l = ledger(120);
    const pristine = new Map(l.host.map);
    const all = keys(l);
    const tamper = fc.oneof(
      fc.record({ kind: fc.constant('flip'), i: fc.nat(), at: fc.nat(), bit: fc.nat(7) }),
      fc.record({ kind: fc.constant('swap'), i: fc.nat(), j: fc.nat() }),
      fc.record({ kind: fc.constant('drop'), i: fc.nat() }),
      fc.record({ kind: fc.constant('cut'), i: fc.nat(), at: fc.nat() }),
    );
    fc.assert(
      fc.property(fc.array(tamper, { minLength: 1, maxLength: 4 }), (ts) => {
        l.host.map.clear();
        for (const [k, v] of pristine) l.host.map.set(k, v);
        for (const t of ts) {
          const k = all[t.i % all.length] as string;
          const v = l.host.map.get(k);
          if (t.kind === 'drop' || v === undefined) l.host.map.delete(k);
          else if (t.kind === 'swap')
            l.host.map.set(k, pristine.get(all[t.j % all.length] as string) as Uint8Array);
          else if (t.kind === 'cut') l.host.map.set(k, v.subarray(0, t.at % v.length));
          else {
            const bad = v.slice();
            const at = t.at % bad.length;
            bad[at] = (bad[at] ?? 0) ^ (1 << t.bit);
            l.host.map.set(k, bad);
          }
        }
        readAll(l, l.roots[0] as Uint8Array);
      }),
      { numRuns: 60 },
    );
  });

  test('verified nodes in the cache are served without the store; a cold trie detects the damage', () => {
    const l = ledger(100);
    const root = l.roots[0] as Uint8Array;
    const nodes = createConfidentialNodeStore({ records: l.host, keyring: l.keyring });
    const cache = createNodeCache();
    const warm = createTrie({ source: nodes, cache });
    const t = l.keyring.table('t');
    const path = t.path(enc.encode('key-1'));
    assert.ok(warm.get(root, path));
    l.host.map.clear();
    assert.equal(hex(warm.get(root, path)?.value ?? new Uint8Array()), l.entries.get('key-1'));
    assert.throws(
      () => createTrie({ source: nodes }).get(root, path),
      (e: unknown) => e instanceof LedgerIntegrityError && e.failure === 'missing',
    );
  });

  test('the store keys show nothing of the node hashes a proof publishes', () => {
    const l = ledger(50, 1, 0);
    const root = l.roots[0] as Uint8Array;
    const nodes = createConfidentialNodeStore({ records: l.host, keyring: l.keyring });
    const proof = createTrie({ source: nodes }).prove(
      root,
      l.keyring.table('t').path(enc.encode('key-7')),
    );
    const proofHex = hex(proof);
    for (const k of l.host.map.keys()) assert.ok(!proofHex.includes(k.slice(2, 34)));
    assert.ok(!l.host.map.has(`01${hex(root)}`));
  });
});

test('the error message names the failure, node and position once', () => {
  const l = ledger(20);
  const k = keys(l)[0] as string;
  const bad = Uint8Array.from(l.host.map.get(k) as Uint8Array);
  bad[20] = (bad[20] ?? 0) ^ 1;
  l.host.map.set(k, bad);
  const [f] = readAll(l, l.roots[0] as Uint8Array);
  assert.ok(f);
  assert.match(
    f.message,
    /^ledger integrity check failed \(authentication\): node [0-9a-f]{16} at \S+: the record does not authenticate/,
  );
  assert.equal(f.message.match(/ledger integrity/g)?.length, 1);
  assert.equal(f.code, 'LEDGER_INTEGRITY');
});
