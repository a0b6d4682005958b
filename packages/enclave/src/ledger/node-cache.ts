/**
 * The verified node cache: decoded trie nodes that were checked against their hash when they
 * entered (trie.ts decodes and verifies before it caches; nodes the trie builds itself are trusted
 * by construction). Bounded in bytes, least recently used out first (approximately: CLOCK).
 *
 * A cached node is correct for its hash forever (nodes are content-addressed and immutable), so
 * the cache never needs invalidating; it only trades memory for store reads and decryptions.
 *
 * Several caches can share one bound (`createNodeCachePool`): the ledger engine keeps one cache
 * per level (the administrative level and each app ledger: their records are keyed and sealed
 * under different keys, so a node of one level must never be taken for a record of another) and
 * one bound and one least-recently-used order for all of them.
 */
import { InvalidInputError } from '@cloister/core';
import type { TrieNode } from './trie/node.js';

/**
 * Default bound of a ledger engine's node caches (all levels together): 1 GiB of heap, as
 * estimated by nodeBytes (measured: within about 5% of the V8 heap and array buffers a cached
 * record really holds). It holds every node of a 1,000,000-key table of 32-byte keys and 100-byte
 * values (about 600 MiB by that estimate, docs/performance.md), so verified gets on such a table
 * are served from the enclave's memory once warm. A deployment with less memory sets `cacheBytes`.
 */
export const DEFAULT_NODE_CACHE_BYTES = 1024 * 1024 * 1024;

/**
 * Heap bytes, beyond the bytes of its buffer, of one cached record (measured on Node 20 as the
 * growth of the V8 heap and array buffers per record cached, docs/performance.md): the record's
 * ArrayBuffer and its views, the branch object with its encoding and hash views, the cache entry
 * and its map slot (with the hash as eight words); 690-830 bytes in three measurements, rounded up.
 */
export const RECORD_OVERHEAD = 850;
/** Heap bytes of each further branch object a record holds (a packed or embedded branch). */
export const BRANCH_OVERHEAD = 330;
/**
 * Heap bytes of a node built by an update rather than decoded (a branch holding its children as
 * objects, a leaf with its own buffers), per node it holds.
 */
export const NODE_OVERHEAD = 400;

export interface NodeCache {
  /** The node whose hash is `hash`, if cached (and marks it recently used). */
  get(hash: Uint8Array): TrieNode | undefined;
  /** The same for the hash at `at` of `bytes` (a branch's child hash, without a view of it). */
  getAt?(bytes: Uint8Array, at: number): TrieNode | undefined;
  /** Caches a verified node. */
  set(node: TrieNode): void;
  /**
   * Moves the node `hash`, if cached, out of the current nodes into the pool's demoted nodes:
   * still found, but the first to go when room is needed, oldest demoted first, and never more
   * than the pool's bound for them (RETIRED_BYTES by default). The trie demotes the nodes an
   * update replaces: they serve reads at the state before it (transactions whose snapshot that
   * is, which keep starting while the update's batch is written, and recent older indexes)
   * without pushing out nodes of the current state. Optional for other implementations.
   */
  demote?(hash: Uint8Array): void;
  /** Estimated bytes held by this cache. Invariant: the pool's bytes <= its maxBytes. */
  readonly bytes: number;
  readonly size: number;
}

/** Caches sharing one byte bound and one least-recently-used order. */
export interface NodeCachePool {
  /** A new cache drawing on this pool's bound (its own hash space). */
  cache(): NodeCache;
  /** Drops every node of every cache of the pool. */
  clear(): void;
  /** Estimated bytes held by all its caches. Invariant: bytes <= maxBytes after every call. */
  readonly bytes: number;
  readonly maxBytes: number;
}

/**
 * Map key of the hash at `o` of `h`: its first 30 bits, a small integer (V8 hashes and compares
 * those without allocating). The entry keeps the full hash to compare; two cached hashes with the
 * same key only evict each other (about 1 in 3,000 at 350,000 entries).
 */
function shortKey(h: Uint8Array, o = 0): number {
  return (
    ((h[o] ?? 0) << 22) | ((h[o + 1] ?? 0) << 14) | ((h[o + 2] ?? 0) << 6) | ((h[o + 3] ?? 0) >> 2)
  );
}

/** The 32-bit word at `o` of `h` (big endian, as a signed integer). */
function word(h: Uint8Array, o: number): number {
  return ((h[o] ?? 0) << 24) | ((h[o + 1] ?? 0) << 16) | ((h[o + 2] ?? 0) << 8) | (h[o + 3] ?? 0);
}

/**
 * True when the entry's node hash equals the 32 bytes at `o` of `b`, by the words the entry
 * keeps (not touching the node: a cold cache line fewer per level of a walk).
 */
function entryHolds(e: Entry, b: Uint8Array, o: number): boolean {
  return (
    b.length - o >= 32 &&
    e.h0 === word(b, o) &&
    e.h1 === word(b, o + 4) &&
    e.h2 === word(b, o + 8) &&
    e.h3 === word(b, o + 12) &&
    e.h4 === word(b, o + 16) &&
    e.h5 === word(b, o + 20) &&
    e.h6 === word(b, o + 24) &&
    e.h7 === word(b, o + 28)
  );
}

/** True when the hash `a` equals the 32 bytes at `o` of `b`. */
function sameHash(a: Uint8Array, b: Uint8Array, o = 0): boolean {
  if (a.length !== 32 || b.length - o < 32) return false;
  for (let i = 31; i >= 0; i--) if (a[i] !== b[o + i]) return false;
  return true;
}

/** Branch objects a decoded branch holds: itself and the branches embedded in it. */
function branchObjects(n: TrieNode): number {
  if (n.kind === 'leaf') return 0;
  let k = 1;
  if (n.embedded !== undefined) for (const c of n.embedded) if (c) k += branchObjects(c);
  return k;
}

/** Estimated heap bytes of a node and what it keeps alive. */
export function nodeBytes(n: TrieNode): number {
  if (n.kind === 'leaf') return NODE_OVERHEAD + n.stored.length;
  const rec = n.rec;
  if (rec === undefined) return NODE_OVERHEAD * n.storedNodes + n.storedBytes;
  // Decoded (compact) form: one buffer (the record, and the hash after it when the trie made
  // room for it), leaves as bytes in it, branches as objects.
  return RECORD_OVERHEAD + rec.buffer.byteLength + BRANCH_OVERHEAD * (branchObjects(n) - 1);
}

/**
 * Most bytes of demoted nodes a pool keeps by default (its bound, when that is smaller): 32 MiB,
 * about a hundred groups of 32 single-key commits. Demoted nodes serve reads at the states just
 * before recent updates. Without a bound of their own (they only went first when the pool was
 * full) every update's replaced nodes stayed until the pool filled: in a soak-like run
 * (scratch harness of branch `attrib`, one new random key per transaction) 1 GiB held about
 * 413,000 records at 175,000 keys, of which under 100,000 were current; the rest were dead
 * versions that kept the heap at 350-390 MB and 400,000 ArrayBuffers for V8 to trace and sweep.
 */
export const RETIRED_BYTES = 32 * 1024 * 1024;

interface List {
  newest: Entry | undefined;
  oldest: Entry | undefined;
}

interface Entry {
  readonly key: number;
  /** The node's hash as eight 32-bit words (compared without touching the node). */
  readonly h0: number;
  readonly h1: number;
  readonly h2: number;
  readonly h3: number;
  readonly h4: number;
  readonly h5: number;
  readonly h6: number;
  readonly h7: number;
  readonly node: TrieNode;
  readonly size: number;
  /** The map of the cache it belongs to. */
  readonly map: Map<number, Entry>;
  /** Read since it was cached or last passed over by eviction. */
  used: boolean;
  /** Demoted: in the retired list, not the current nodes' list. */
  retired: boolean;
  /** Toward the most recently used end. */
  newer: Entry | undefined;
  /** Toward the least recently used end. */
  older: Entry | undefined;
}

export function createNodeCachePool(
  maxBytes: number = DEFAULT_NODE_CACHE_BYTES,
  retiredMaxBytes: number = Math.min(maxBytes, RETIRED_BYTES),
): NodeCachePool {
  if (!(Number.isSafeInteger(maxBytes) && maxBytes >= 0)) {
    throw new InvalidInputError('the node cache size must be a whole number of bytes >= 0');
  }
  if (!(Number.isSafeInteger(retiredMaxBytes) && retiredMaxBytes >= 0)) {
    throw new InvalidInputError('the demoted-node bound must be a whole number of bytes >= 0');
  }
  // Invariants: the entries of every cache's map are the entries of the two lists (each entry in
  // the one its `retired` names); `bytes` is the sum of all their sizes, `retiredBytes` that of
  // the retired list's; bytes <= maxBytes and retiredBytes <= retiredMaxBytes between calls.
  const maps = new Set<Map<number, Entry>>();
  /** Current nodes, newest..oldest (CLOCK). */
  const live: List = { newest: undefined, oldest: undefined };
  /** Demoted (replaced) nodes, in the order they were demoted (FIFO). */
  const retired: List = { newest: undefined, oldest: undefined };
  let bytes = 0;
  let retiredBytes = 0;

  function unlink(e: Entry): void {
    const l = e.retired ? retired : live;
    if (e.newer) e.newer.older = e.older;
    else l.newest = e.older;
    if (e.older) e.older.newer = e.newer;
    else l.oldest = e.newer;
    e.newer = undefined;
    e.older = undefined;
    if (e.retired) {
      retiredBytes -= e.size;
      e.retired = false;
    }
  }

  function pushNewest(l: List, e: Entry): void {
    e.older = l.newest;
    e.newer = undefined;
    if (l.newest) l.newest.newer = e;
    l.newest = e;
    if (!l.oldest) l.oldest = e;
  }

  function remove(e: Entry): void {
    unlink(e);
    e.map.delete(e.key);
    bytes -= e.size;
  }

  /**
   * Retired nodes out first, oldest first; then current nodes, least recently used out first,
   * approximately (CLOCK, second chance): the oldest entry goes unless it was used since it
   * last reached the old end; then it moves to the recent end with its mark cleared. Ends with
   * bytes <= maxBytes and retiredBytes <= retiredMaxBytes: each entry is passed over at most once.
   */
  function evict(): void {
    while (retiredBytes > retiredMaxBytes && retired.oldest !== undefined) remove(retired.oldest);
    while (bytes > maxBytes && retired.oldest !== undefined) remove(retired.oldest);
    while (bytes > maxBytes && live.oldest !== undefined) {
      const e: Entry = live.oldest;
      if (e.used) {
        e.used = false;
        unlink(e);
        pushNewest(live, e);
      } else remove(e);
    }
  }

  return {
    get bytes() {
      return bytes;
    },
    maxBytes,
    clear(): void {
      for (const m of maps) m.clear();
      live.newest = live.oldest = retired.newest = retired.oldest = undefined;
      bytes = 0;
      retiredBytes = 0;
    },
    cache(): NodeCache {
      const entries = new Map<number, Entry>();
      maps.add(entries);
      let own = 0;
      const getAt = (bytes: Uint8Array, at: number): TrieNode | undefined => {
        const e = entries.get(shortKey(bytes, at));
        if (e === undefined || !entryHolds(e, bytes, at)) return undefined;
        // Marked, not moved: the entry moves to the recent end only if it reaches the old end
        // marked (evict). A hit then writes one field instead of relinking three entries.
        e.used = true;
        return e.node;
      };
      return {
        get bytes() {
          // Estimated bytes of this cache's entries (sum over them; for tests and metrics).
          own = 0;
          for (const e of entries.values()) own += e.size;
          return own;
        },
        get size() {
          return entries.size;
        },
        get: (hash: Uint8Array): TrieNode | undefined => getAt(hash, 0),
        getAt,
        demote(hash: Uint8Array): void {
          const e = entries.get(shortKey(hash));
          if (e === undefined || !sameHash(e.node.hash, hash)) return;
          unlink(e);
          e.used = false;
          e.retired = true;
          retiredBytes += e.size;
          pushNewest(retired, e);
          evict();
        },
        set(node: TrieNode): void {
          const size = nodeBytes(node);
          if (size > maxBytes) return;
          const key = shortKey(node.hash);
          const old = entries.get(key);
          if (old !== undefined) remove(old);
          const h = node.hash;
          const e: Entry = {
            key,
            node,
            size,
            h0: word(h, 0),
            h1: word(h, 4),
            h2: word(h, 8),
            h3: word(h, 12),
            h4: word(h, 16),
            h5: word(h, 20),
            h6: word(h, 24),
            h7: word(h, 28),
            map: entries,
            used: false,
            retired: false,
            newer: undefined,
            older: undefined,
          };
          entries.set(key, e);
          pushNewest(live, e);
          bytes += size;
          evict();
        },
      };
    },
  };
}

/** A cache with a bound of its own. */
export function createNodeCache(maxBytes: number = DEFAULT_NODE_CACHE_BYTES): NodeCache {
  return createNodeCachePool(maxBytes).cache();
}
