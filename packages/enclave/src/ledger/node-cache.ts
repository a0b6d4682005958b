/**
 * The verified node cache: decoded trie nodes that were checked against their hash when they
 * entered (trie.ts decodes and verifies before it caches; nodes the trie builds itself are trusted
 * by construction). Bounded in bytes, least recently used out first.
 *
 * A cached node is correct for its hash forever (nodes are content-addressed and immutable), so
 * the cache never needs invalidating; it only trades memory for store reads and decryptions.
 */
import { InvalidInputError } from '@cloister/core';
import type { TrieNode } from './trie/node.js';

/** Default bound of a ledger's node cache: 64 MiB of estimated heap. */
export const DEFAULT_NODE_CACHE_BYTES = 64 * 1024 * 1024;

/** Estimated heap bytes of a node beyond its buffers: objects, arrays, map entry. */
const NODE_OVERHEAD = 400;

export interface NodeCache {
  /** The node whose hash is `hash`, if cached (and marks it recently used). */
  get(hash: Uint8Array): TrieNode | undefined;
  /** Caches a verified node. */
  set(node: TrieNode): void;
  /**
   * Drops the node `hash` if cached (the trie drops the nodes an update replaces: they are only
   * read again through an older root, from the store). Optional for other implementations.
   */
  delete?(hash: Uint8Array): void;
  /** Estimated bytes held. Invariant: bytes <= maxBytes after every call. */
  readonly bytes: number;
  readonly size: number;
}

/** Map key of a hash: its first 6 bytes as a number; the entry keeps the full hash to compare. */
function shortKey(h: Uint8Array): number {
  const low = (((h[2] ?? 0) << 24) | ((h[3] ?? 0) << 16) | ((h[4] ?? 0) << 8) | (h[5] ?? 0)) >>> 0;
  return ((h[0] ?? 0) * 256 + (h[1] ?? 0)) * 2 ** 32 + low;
}

function sameHash(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = a.length - 1; i >= 0; i--) if (a[i] !== b[i]) return false;
  return true;
}

/** Estimated heap bytes of a node and what it keeps alive. */
export function nodeBytes(n: TrieNode): number {
  return n.kind === 'leaf'
    ? NODE_OVERHEAD + n.stored.length
    : NODE_OVERHEAD * n.storedNodes + n.storedBytes;
}

interface Entry {
  readonly key: number;
  readonly node: TrieNode;
  readonly size: number;
  /** Toward the most recently used end. */
  newer: Entry | undefined;
  /** Toward the least recently used end. */
  older: Entry | undefined;
}

export function createNodeCache(maxBytes: number = DEFAULT_NODE_CACHE_BYTES): NodeCache {
  if (!(Number.isSafeInteger(maxBytes) && maxBytes >= 0)) {
    throw new InvalidInputError('the node cache size must be a whole number of bytes >= 0');
  }
  // Invariants: `entries` and the list newest..oldest hold the same entries; `bytes` is the sum
  // of their sizes; bytes <= maxBytes between calls.
  const entries = new Map<number, Entry>();
  let newest: Entry | undefined;
  let oldest: Entry | undefined;
  let bytes = 0;

  function unlink(e: Entry): void {
    if (e.newer) e.newer.older = e.older;
    else newest = e.older;
    if (e.older) e.older.newer = e.newer;
    else oldest = e.newer;
    e.newer = undefined;
    e.older = undefined;
  }

  function pushNewest(e: Entry): void {
    e.older = newest;
    e.newer = undefined;
    if (newest) newest.newer = e;
    newest = e;
    if (!oldest) oldest = e;
  }

  function remove(e: Entry): void {
    unlink(e);
    entries.delete(e.key);
    bytes -= e.size;
  }

  return {
    get bytes() {
      return bytes;
    },
    get size() {
      return entries.size;
    },
    get(hash: Uint8Array): TrieNode | undefined {
      const e = entries.get(shortKey(hash));
      if (e === undefined || !sameHash(e.node.hash, hash)) return undefined;
      if (e !== newest) {
        unlink(e);
        pushNewest(e);
      }
      return e.node;
    },
    delete(hash: Uint8Array): void {
      const e = entries.get(shortKey(hash));
      if (e !== undefined && sameHash(e.node.hash, hash)) remove(e);
    },
    set(node: TrieNode): void {
      const size = nodeBytes(node);
      if (size > maxBytes) return;
      const key = shortKey(node.hash);
      const old = entries.get(key);
      if (old !== undefined) remove(old);
      const e: Entry = { key, node, size, newer: undefined, older: undefined };
      entries.set(key, e);
      pushNewest(e);
      bytes += size;
      while (bytes > maxBytes && oldest !== undefined) remove(oldest);
    },
  };
}
