/// <reference types="node" />
/** Test kit for the ledger: an in-memory node source, path generators, a structural checker. */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import fc from 'fast-check';
import {
  childHash,
  EMPTY_ROOT,
  embeddedChild,
  RADIX_16,
  type Radix,
  type TrieNode,
} from '../src/ledger/trie/node.js';
import { decodeStored } from '../src/ledger/trie/stored.js';
import type { NodeRecord, NodeSource, TrieUpdate } from '../src/ledger/trie/trie.js';

export const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');
export const unhex = (s: string): Uint8Array => new Uint8Array(Buffer.from(s, 'hex'));

/** Plaintext records by node hash (the trie's view without the confidential layer). */
export interface MemorySource extends NodeSource {
  readonly records: Map<string, Uint8Array>;
  write(update: TrieUpdate | readonly NodeRecord[]): void;
}

export function memorySource(): MemorySource {
  const records = new Map<string, Uint8Array>();
  return {
    records,
    get: (h) => {
      const r = records.get(hex(h));
      return r === undefined ? undefined : Uint8Array.from(r);
    },
    write(update) {
      const list = 'records' in update ? update.records : update;
      for (const r of list) records.set(hex(r.hash), Uint8Array.from(r.plaintext));
    },
  };
}

/** Deterministic "HMAC-like" helpers for tests: path and salt of a user key. */
export function pathOf(key: Uint8Array): Uint8Array {
  return createHash('sha256').update('test-path').update(key).digest();
}
export function saltOf(key: Uint8Array): Uint8Array {
  return createHash('sha256').update('test-salt').update(key).digest();
}

const BASES = [0, 1, 2, 3].map((i) => pathOf(new Uint8Array([0xee, i])));

/**
 * Paths that share prefixes of every length with each other: base `b`'s first `k` bits, then
 * random bits. Keys are not involved: tests pick a user key per path.
 */
export const pathArb: fc.Arbitrary<Uint8Array> = fc
  .tuple(fc.nat(3), fc.nat(255), fc.uint8Array({ minLength: 32, maxLength: 32 }))
  .map(([b, k, tail]) => {
    const base = BASES[b] ?? BASES[0]!;
    const out = new Uint8Array(32);
    for (let bit = 0; bit < 256; bit++) {
      const src = bit < k ? base : tail;
      if (((src[bit >> 3] ?? 0) >> (7 - (bit & 7))) & 1) out[bit >> 3]! |= 0x80 >> (bit & 7);
    }
    return out;
  });

/**
 * Walks the whole trie at `root` through its records, checking that every record exists and
 * decodes, that depth grows downwards and that every branch has two children or more (with
 * distinct slots at its depth, that makes the shape the canonical one for its set of paths).
 * Returns path hex -> value hex.
 */
export function contents(
  source: NodeSource,
  root: Uint8Array,
  r: Radix = RADIX_16,
  visited?: Set<string>,
): Map<string, string> {
  const out = new Map<string, string>();
  if (hex(root) === hex(EMPTY_ROOT)) return out;
  const visit = (hash: Uint8Array, parentDepth: number): void => {
    const bytes = source.get(hash);
    assert.ok(bytes, `record for ${hex(hash)} exists`);
    visited?.add(hex(hash));
    walkNode(decodeStored(bytes, hash, r, { node: hex(hash), position: '?' }), parentDepth);
  };
  const walkNode = (node: TrieNode, parentDepth: number): void => {
    if (node.kind === 'leaf') {
      assert.ok(node.commitmentsHold());
      out.set(hex(node.path), hex(node.value));
      return;
    }
    assert.ok(node.depth > parentDepth, 'branch depth grows downwards');
    let count = 0;
    for (let s = 0; s < r.arity; s++) {
      const h = childHash(node, s, r);
      if (!h) continue;
      count++;
      const e = embeddedChild(node, s, r);
      if (e) walkNode(e, node.depth);
      else visit(h, node.depth);
    }
    assert.ok(count >= 2, 'a branch has at least two children');
  };
  visit(root, -1);
  return out;
}

/** The host's record store as a Map (what the adversary controls in integrity tests). */
export interface HostRecords {
  readonly map: Map<string, Uint8Array>;
  get(key: Uint8Array): Uint8Array | undefined;
  apply(puts: readonly { key: Uint8Array; value: Uint8Array }[]): void;
}

export function hostRecords(): HostRecords {
  const map = new Map<string, Uint8Array>();
  return {
    map,
    get: (k) => {
      const v = map.get(hex(k));
      return v === undefined ? undefined : Uint8Array.from(v);
    },
    apply(puts) {
      for (const p of puts) map.set(hex(p.key), Uint8Array.from(p.value));
    },
  };
}
