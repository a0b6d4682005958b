/**
 * The hierarchy (docs/ledger-format.md §11): the admin trie (ledger id → catalogue root) under
 * the state hash, each ledger's catalogue trie (table name → table root), each table's trie (key →
 * version record), and the version index (commit index → state hash). One `Level` per keyring:
 * the admin level (admin trie and version index) and one per app ledger, each with its own keys
 * derived from the engine secret, its own verified node cache and its own overlay of records
 * built by commits whose batch is not yet written.
 */
import { byteKey, bytesEqual, InvalidInputError, utf8 } from '@cloister/core';
import {
  createLedgerKeyring,
  hkdfSha256,
  type LedgerKeyring,
  type LedgerSecret,
} from '../crypto.js';
import { createNodeCachePool } from '../node-cache.js';
import { createConfidentialNodeStore, type RecordPut, type RecordReader } from '../node-store.js';
import { EMPTY_ROOT } from '../trie/node.js';
import { createTrie, type NodeRecord, type Trie } from '../trie/trie.js';
import { integrity, integrityAt } from './errors.js';
import {
  ADMIN_TRIE,
  CATALOGUE_TRIE,
  decodeRootValue,
  encodeStateProof,
  readVersion,
  u64,
  VERSIONS_TRIE,
  type VersionRecord,
} from './format.js';
import { firstAtOrAfter } from './walk.js';

export const MAX_LEDGER_ID_BYTES = 64;
export const MAX_TABLE_BYTES = 255;
const APP_LEDGER_LABEL = 'cloister/ledger/v1/app-ledger';

export interface Level {
  /** The level's keyring; replaced (same path, salt and store keys) when a generation is added. */
  readonly keyring: LedgerKeyring;
  readonly trie: Trie;
  /** Records built by commits whose batch is not written yet, by node hash (byteKey). */
  readonly pending: Map<string, NodeRecord>;
  /** Adds records of an update to `pending` (written by the next `takePending`). */
  stage(records: readonly NodeRecord[]): void;
}

export interface Levels {
  readonly admin: Level;
  ledger(id: string): Level;
  /** Generation new records are sealed under. */
  readonly generation: number;
  /** Sealed puts of every pending record; clears the overlays. */
  takePending(): RecordPut[];
  /** Drops caches and overlays (after a failed write nothing cached may be trusted as stored). */
  reset(): void;
  /**
   * The catalogue and table roots found so far at state `stateHash`, shared by every reader of
   * that state (the last state asked for only): a root is a function of the state hash, so a
   * transaction need not walk the admin trie and its catalogue again (two path HMACs and two
   * trie reads per table) when the one before it read the same state.
   */
  rootsAt(stateHash: Uint8Array): StateRoots;
  /**
   * Adds secret generation `secret` (above every known one): records sealed from now on use it,
   * records of every known generation stay readable. Path, salt and store keys stay the origin's.
   */
  rotate(secret: LedgerSecret): void;
  /**
   * Seals new records under known generation `generation` from now on (the log's current one
   * after a restart); every known generation stays readable.
   */
  useGeneration(generation: number): void;
}

/** Roots found at one state: ledger → catalogue root; ledger → table → table root. */
export interface StateRoots {
  readonly stateHash: Uint8Array;
  readonly catalogues: Map<string, Uint8Array>;
  readonly tables: Map<string, Map<string, Uint8Array>>;
}

export interface LevelsOptions {
  readonly records: RecordReader;
  /** The origin secret (fixes path, salt and store keys for the ledger's life). */
  readonly secret: LedgerSecret;
  /** Other generations (older or newer); new records use the highest known until `useGeneration` or `rotate` says otherwise. */
  readonly secrets?: readonly LedgerSecret[];
  /** Bound of the node caches of all levels together (one pool). */
  readonly cacheBytes: number;
  readonly random?: (out: Uint8Array) => void;
}

function checkName(name: unknown, max: number, what: string): Uint8Array {
  const bytes = typeof name === 'string' ? utf8(name) : new Uint8Array(0);
  if (bytes.length === 0 || bytes.length > max || bytes.includes(0)) {
    throw new InvalidInputError(`${what} must be 1 to ${max} UTF-8 bytes without NUL`);
  }
  return bytes;
}

/**
 * Names checked recently, with their UTF-8 bytes: every get checks its ledger id and table name,
 * and encoding them cost a tenth of a cached get. Bounded (cleared when full); callers never
 * modify the returned bytes.
 */
function memoNames(max: number, what: string): (name: string) => Uint8Array {
  const memo = new Map<string, Uint8Array>();
  return (name) => {
    const hit = typeof name === 'string' ? memo.get(name) : undefined;
    if (hit !== undefined) return hit;
    const bytes = checkName(name, max, what);
    if (memo.size >= 256) memo.clear();
    memo.set(name, bytes);
    return bytes;
  };
}

export const ledgerIdBytes = memoNames(MAX_LEDGER_ID_BYTES, 'a ledger id');
export const tableBytes = memoNames(MAX_TABLE_BYTES, 'a table name');

/** The role of a table's records in integrity errors (built only on failure). */
function tableRole(ledger: string, table: string): string {
  return `table '${table}' of ledger '${ledger}'`;
}

/** The secret of app ledger `id` for the generation of `s`: HKDF(s, label ‖ 0x00 ‖ id). */
function appSecret(s: LedgerSecret, id: string): LedgerSecret {
  const info = new Uint8Array([...utf8(APP_LEDGER_LABEL), 0, ...ledgerIdBytes(id)]);
  return { generation: s.generation, secret: hkdfSha256(s.secret, new Uint8Array(0), info, 32) };
}

export function createLevels(options: LevelsOptions): Levels {
  const { records, secret } = options;
  // One bound for the node caches of every level (docs/ledger-format.md §11).
  const pool = createNodeCachePool(options.cacheBytes);
  // Invariant: `others` holds every known generation but the origin's, each once.
  const others: LedgerSecret[] = [];
  const addSecret = (s: LedgerSecret): void => {
    if (!Number.isInteger(s.generation) || s.generation < 0 || s.generation > 0xffffffff) {
      throw new InvalidInputError('a ledger secret generation must be a whole number below 2^32');
    }
    if (!(s.secret instanceof Uint8Array) || s.secret.length !== 32) {
      throw new InvalidInputError('a ledger secret must be 32 bytes');
    }
    const same = (x: LedgerSecret): boolean => x.generation === s.generation;
    const known = same(secret) ? secret : others.find(same);
    if (known === undefined)
      others.push({ generation: s.generation, secret: Uint8Array.from(s.secret) });
    else if (!bytesEqual(known.secret, s.secret)) {
      throw new InvalidInputError(`two ledger secrets for generation ${s.generation}`);
    }
  };
  for (const s of options.secrets ?? []) addSecret(s);
  const maxGeneration = (): number =>
    Math.max(secret.generation, ...others.map((s) => s.generation));
  // Invariant: a known generation; every level's keyring seals under it.
  let current = maxGeneration();

  function keyringFor(origin: LedgerSecret, later: readonly LedgerSecret[]): LedgerKeyring {
    return createLedgerKeyring({
      origin,
      secrets: later,
      current,
      ...(options.random ? { random: options.random } : {}),
    });
  }

  /** A level whose keyring `make()` builds (again at each rotation). */
  function level(make: () => LedgerKeyring): Level & { rekey(): void } {
    let keyring = make();
    let nodes = createConfidentialNodeStore({ records, keyring });
    const pending = new Map<string, NodeRecord>();
    const source = {
      get: (hash: Uint8Array): Uint8Array | undefined =>
        pending.size === 0
          ? nodes.get(hash)
          : (pending.get(byteKey(hash))?.plaintext ?? nodes.get(hash)),
    };
    const trie = createTrie({ source, cache: pool.cache() });
    return {
      get keyring() {
        return keyring;
      },
      trie,
      pending,
      stage(list: readonly NodeRecord[]): void {
        for (const r of list) pending.set(byteKey(r.hash), r);
      },
      rekey() {
        const old = keyring;
        keyring = make();
        nodes = createConfidentialNodeStore({ records, keyring });
        old.destroy();
      },
    };
  }

  const adminLevel = () => level(() => keyringFor(secret, others));
  function appLevel(id: string) {
    return level(() => {
      const origin = appSecret(secret, id);
      const later = others.map((s) => appSecret(s, id));
      const ring = keyringFor(origin, later);
      for (const s of [origin, ...later]) s.secret.fill(0);
      return ring;
    });
  }

  let admin = adminLevel();
  let ledgers = new Map<string, Level & { rekey(): void }>();
  // Invariant: every root in `roots` is the one the state `roots.stateHash` holds (verified).
  let roots: StateRoots | undefined;
  const self: Levels = {
    get admin() {
      return admin;
    },
    get generation() {
      return admin.keyring.generation;
    },
    ledger(id: string): Level {
      let l = ledgers.get(id);
      if (l === undefined) {
        l = appLevel(id);
        ledgers.set(id, l);
      }
      return l;
    },
    takePending(): RecordPut[] {
      const puts: RecordPut[] = [];
      for (const l of [admin, ...ledgers.values()]) {
        const nodes = createConfidentialNodeStore({ records, keyring: l.keyring });
        puts.push(...nodes.seal([...l.pending.values()]));
        l.pending.clear();
      }
      return puts;
    },
    rootsAt(stateHash: Uint8Array): StateRoots {
      if (roots === undefined || !bytesEqual(roots.stateHash, stateHash)) {
        roots = { stateHash: Uint8Array.from(stateHash), catalogues: new Map(), tables: new Map() };
      }
      return roots;
    },
    reset(): void {
      roots = undefined;
      for (const l of [admin, ...ledgers.values()]) l.keyring.destroy();
      pool.clear();
      admin = adminLevel();
      ledgers = new Map();
    },
    rotate(s: LedgerSecret): void {
      if (!(Number.isInteger(s.generation) && s.generation > maxGeneration())) {
        throw new InvalidInputError(
          `a new ledger secret generation must be above ${maxGeneration()}`,
        );
      }
      addSecret(s);
      current = s.generation;
      for (const l of [admin, ...ledgers.values()]) l.rekey();
    },
    useGeneration(g: number): void {
      if (g === current) return;
      if (g !== secret.generation && !others.some((s) => s.generation === g)) {
        throw new InvalidInputError(`no ledger secret for generation ${g}`);
      }
      current = g;
      for (const l of [admin, ...ledgers.values()]) l.rekey();
    },
  };
  return self;
}

/** A leaf of a table as read at a state: its key and version record. */
export interface TableEntry {
  readonly key: Uint8Array;
  readonly version: VersionRecord;
}

/** Verified reads at one state hash. Memoises the catalogue and table roots it resolves. */
export interface StateReader {
  readonly stateHash: Uint8Array;
  catalogueRoot(ledger: string): Uint8Array;
  tableRoot(ledger: string, table: string): Uint8Array;
  /** The version of `key`, or undefined when the table never held it. */
  read(ledger: string, table: string, key: Uint8Array): VersionRecord | undefined;
  /** The same, given `path`, which the caller computed as the table's path of `key`. */
  readAt(
    ledger: string,
    table: string,
    key: Uint8Array,
    path: Uint8Array,
  ): VersionRecord | undefined;
  /** The smallest path >= `from` holding a leaf (tombstones too), or undefined. */
  firstPath(ledger: string, table: string, from: Uint8Array): Uint8Array | undefined;
  /** The entry at `path` (a path firstPath returned). */
  readPath(ledger: string, table: string, path: Uint8Array): TableEntry;
  /** The state proof of `key` (admin → catalogue → table), format.ts. */
  prove(ledger: string, table: string, key: Uint8Array): Uint8Array;
}

export function createStateReader(levels: Levels, stateHash: Uint8Array): StateReader {
  // ledger → root, ledger → table → root (no string built per read), shared with the other
  // readers of this state.
  const { catalogues, tables } = levels.rootsAt(stateHash);
  const admin = levels.admin;

  function catalogueRoot(ledger: string): Uint8Array {
    const hit = catalogues.get(ledger);
    if (hit) return hit;
    const id = ledgerIdBytes(ledger);
    const what = 'admin trie';
    const leaf = integrityAt(what, () =>
      admin.trie.get(stateHash, admin.keyring.table(ADMIN_TRIE).path(id)),
    );
    if (leaf && !bytesEqual(leaf.key, id)) integrity('structure', what, 'a leaf of another ledger');
    const root = leaf ? Uint8Array.from(decodeRootValue(leaf.value, what)) : EMPTY_ROOT;
    catalogues.set(ledger, root);
    return root;
  }

  function tableRoot(ledger: string, table: string): Uint8Array {
    let byTable = tables.get(ledger);
    const hit = byTable?.get(table);
    if (hit) return hit;
    const name = tableBytes(table);
    const cat = catalogueRoot(ledger);
    const l = levels.ledger(ledger);
    const what = `catalogue of ledger '${ledger}'`;
    const leaf = integrityAt(what, () =>
      l.trie.get(cat, l.keyring.table(CATALOGUE_TRIE).path(name)),
    );
    if (leaf && !bytesEqual(leaf.key, name))
      integrity('structure', what, 'a leaf of another table');
    const root = leaf ? Uint8Array.from(decodeRootValue(leaf.value, what)) : EMPTY_ROOT;
    if (byTable === undefined) {
      byTable = new Map();
      tables.set(ledger, byTable);
    }
    byTable.set(table, root);
    return root;
  }

  /**
   * The entry at `path`. With `key` (the key whose path `path` is), the leaf must hold exactly
   * that key: a byte comparison, which implies the HMAC check below without computing it.
   */
  function entryAt(
    ledger: string,
    table: string,
    path: Uint8Array,
    key?: Uint8Array,
  ): TableEntry | undefined {
    const root = tableRoot(ledger, table);
    const l = levels.ledger(ledger);
    let leaf: ReturnType<Trie['get']>;
    try {
      leaf = l.trie.get(root, path);
    } catch (e) {
      // The role's name is built only on failure (a get must not pay for it).
      return integrityAt(tableRole(ledger, table), () => {
        throw e;
      });
    }
    if (leaf === undefined) return undefined;
    const held = leaf.key;
    if (
      key !== undefined
        ? !bytesEqual(held, key)
        : !bytesEqual(l.keyring.table(table).path(held), path)
    ) {
      integrity('structure', tableRole(ledger, table), 'the leaf holds a key of another path');
    }
    // The leaf's bytes belong to the node cache: only copies leave it (the value, the key).
    const version = readVersion(leaf.value, true);
    if (typeof version === 'string') integrity('malformed', tableRole(ledger, table), version);
    return { key: key ?? Uint8Array.from(held), version };
  }

  return {
    stateHash,
    catalogueRoot,
    tableRoot,
    read(ledger, table, key) {
      const path = levels.ledger(ledger).keyring.table(table).path(key);
      return entryAt(ledger, table, path, key)?.version;
    },
    readAt(ledger, table, key, path) {
      return entryAt(ledger, table, path, key)?.version;
    },
    firstPath(ledger, table, from) {
      const root = tableRoot(ledger, table);
      const l = levels.ledger(ledger);
      const what = `table '${table}' of ledger '${ledger}'`;
      return integrityAt(what, () => firstAtOrAfter((p) => l.trie.prove(root, p), from));
    },
    readPath(ledger, table, path) {
      const e = entryAt(ledger, table, path);
      if (e === undefined) integrity('missing', `table '${table}'`, 'a listed leaf vanished');
      return e;
    },
    prove(ledger, table, key) {
      const id = ledgerIdBytes(ledger);
      const levelsOut: Uint8Array[] = [];
      levelsOut.push(
        integrityAt('admin trie', () =>
          admin.trie.prove(stateHash, admin.keyring.table(ADMIN_TRIE).path(id)),
        ),
      );
      const cat = catalogueRoot(ledger);
      if (bytesEqual(cat, EMPTY_ROOT)) return encodeStateProof(levelsOut);
      const l = levels.ledger(ledger);
      levelsOut.push(
        integrityAt(`catalogue of ledger '${ledger}'`, () =>
          l.trie.prove(cat, l.keyring.table(CATALOGUE_TRIE).path(tableBytes(table))),
        ),
      );
      const root = tableRoot(ledger, table);
      if (bytesEqual(root, EMPTY_ROOT)) return encodeStateProof(levelsOut);
      const path = l.keyring.table(table).path(key);
      const what = `table '${table}' of ledger '${ledger}'`;
      levelsOut.push(integrityAt(what, () => l.trie.prove(root, path)));
      const leaf = integrityAt(what, () => l.trie.get(root, path));
      return encodeStateProof(levelsOut, leaf ? Uint8Array.from(leaf.value) : undefined);
    },
  };
}

/** Commit indexes per block of the version index: the 16 slots of one branch at depth 63. */
export const VERSION_BLOCK = 16;

/**
 * The path of commit `index` in the version index (docs/ledger-format.md §11.2): the path of its
 * block, HMAC(pathKey, u64be(floor(index / 16))), with its last digit replaced by index mod 16.
 * Consecutive indexes share a bottom branch, so a group of k entries rewrites one or two bottom
 * records of the version index instead of k scattered ones; the host, which sees the group's log
 * entries (consecutive indexes), learns nothing new from it.
 */
export function versionPath(admin: LedgerKeyring, index: number): Uint8Array {
  const path = admin.table(VERSIONS_TRIE).path(u64(Math.floor(index / VERSION_BLOCK)));
  path[31] = ((path[31] ?? 0) & 0xf0) | (index % VERSION_BLOCK);
  return path;
}

/** The state hash of commit `index` from the version index at `versionsRoot` (index >= 1). */
export function stateHashAt(levels: Levels, versionsRoot: Uint8Array, index: number): Uint8Array {
  const admin = levels.admin;
  const key = u64(index);
  const what = 'version index';
  const leaf = integrityAt(what, () =>
    admin.trie.get(versionsRoot, versionPath(admin.keyring, index)),
  );
  if (leaf === undefined) integrity('missing', what, `no entry for commit ${index}`);
  if (!bytesEqual(leaf.key, key)) integrity('structure', what, 'an entry of another commit');
  return Uint8Array.from(decodeRootValue(leaf.value, what));
}
