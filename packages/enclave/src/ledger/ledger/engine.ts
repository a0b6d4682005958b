/**
 * The ledger engine (issue 3; docs/ledger-format.md §11, DESIGN.md §5): app ledgers of tables under
 * one state hash, versions, reads at earlier commits, listing, state proofs and transactions with
 * group commit, over an injected record store and an injected root sealing port.
 *
 * Single writer: transactions are serialised in the order `commit()` was called, each checked for
 * serialisability against the commits since its snapshot and the transactions before it in its
 * group (TX_CONFLICT). Every commit queued while a store write is in flight joins the next group,
 * which is ONE commit (one index, one state hash; group.ts): one atomic `write` with `sync: true`
 * carries its new nodes and the new root record; each transaction is acknowledged only after that
 * write resolves (group commit).
 */
import { bytesEqual, InvalidInputError } from '@cloister/core';
import type { LedgerSecret } from '../crypto.js';
import { DEFAULT_NODE_CACHE_BYTES } from '../node-cache.js';
import type { RecordPut, RecordReader } from '../node-store.js';
import { EMPTY_ROOT } from '../trie/node.js';
import {
  integrity,
  integrityAt,
  LedgerStateError,
  ProofAccessError,
  ReservedTableError,
  TransactionConflictError,
  UnknownIndexError,
} from './errors.js';
import {
  ADMIN_TRIE,
  decodeRoot,
  encodeRoot,
  ROOT_STORE_KEY,
  type RootState,
  u64,
} from './format.js';
import { createGroupApply } from './group.js';
import {
  checkLimit,
  createCursorCodec,
  type ListOptions,
  type ListPage,
  listPage,
} from './list.js';
import {
  createLevels,
  createStateReader,
  type Levels,
  ledgerIdBytes,
  type StateReader,
  stateHashAt,
  tableBytes,
} from './state.js';
import {
  type CommitResult,
  createTransaction,
  DEFAULT_TX_LIMITS,
  isReserved,
  type Transaction,
  type TransactionBody,
  type TransactionLimits,
} from './transaction.js';

/** The host's record store as the engine uses it (structurally the host Store). */
export interface LedgerStore extends RecordReader {
  /** One atomic batch; with `sync: true` it resolves once durable (host store.ts contract). */
  write(batch: readonly RecordPut[], options: { readonly sync: boolean }): Promise<void>;
}

/**
 * Seals the root record to this enclave (in the node: the platform sealing of issue 2). `open`
 * throws (any error) when the bytes were not sealed by `seal` of the same enclave identity.
 */
export interface RootSeal {
  seal(plaintext: Uint8Array): Uint8Array;
  open(sealed: Uint8Array): Uint8Array;
}

/** Who asks for a proof: the app owning the ledger, or the administrative role. */
export type Principal = { readonly app: string } | { readonly admin: true };

export interface Version {
  /** The commit index that wrote this version. */
  readonly index: number;
  /** The value, or undefined when this version removed the key. */
  readonly value: Uint8Array | undefined;
}

/** App-facing reads at one committed state. Reserved tables are refused everywhere here. */
export interface LedgerView {
  readonly index: number;
  readonly stateHash: Uint8Array;
  get(ledger: string, table: string, key: Uint8Array): Uint8Array | undefined;
  list(ledger: string, table: string, options?: ListOptions): ListPage;
  /** Versions of `key`, newest first, at most `limit` (default 100, at most 1000). */
  history(ledger: string, table: string, key: Uint8Array, options?: { limit?: number }): Version[];
  /** State proof of `key` against `stateHash` (core verifyStateProof). Owner or admin only. */
  prove(principal: Principal, ledger: string, table: string, key: Uint8Array): Uint8Array;
}

export interface LedgerEngine {
  /** Latest committed (acknowledged) index; 0 before the first commit. */
  readonly index: number;
  readonly stateHash: Uint8Array;
  /** Store writes made (each one batch with sync) and commits acknowledged: for tests, metrics. */
  readonly stats: { readonly writes: number; readonly commits: number };
  /** `reserved: true` lets get/set/remove use reserved tables: the enclave's own code only. */
  begin(options?: { readonly reserved?: boolean }): Transaction;
  /** Reads at committed index `index` (default: the latest). */
  at(index?: number): LedgerView;
}

export interface LedgerEngineOptions {
  readonly store: LedgerStore;
  /** The engine secret (32 bytes; generation 0 today): every key derives from it. */
  readonly secret: LedgerSecret;
  readonly rootSeal: RootSeal;
  readonly limits?: Partial<TransactionLimits>;
  /** Bound of each level's verified node cache (default 64 MiB). */
  readonly cacheBytes?: number;
  /** Most transactions in one batch (default 256). */
  readonly maxGroup?: number;
  /** Refuse a root record older than this index (the platform counter of issue 4). */
  readonly minIndex?: number;
  /** Random bytes for record nonces (default node:crypto). */
  readonly random?: (out: Uint8Array) => void;
}

const GENESIS: RootState = { index: 0, stateHash: EMPTY_ROOT, versionsRoot: EMPTY_ROOT };

/** Creates the ledger in an empty store: writes the genesis root record (index 0) with sync. */
export async function createLedgerEngine(options: LedgerEngineOptions): Promise<LedgerEngine> {
  if (options.store.get(ROOT_STORE_KEY) !== undefined) {
    throw new InvalidInputError('the store already holds a ledger: open it instead');
  }
  const value = options.rootSeal.seal(encodeRoot(GENESIS));
  await options.store.write([{ type: 'put', key: ROOT_STORE_KEY, value }], { sync: true });
  return openLedgerEngine(options);
}

/** Reopens the ledger from its sealed root record, verifying it against the version index. */
export function openLedgerEngine(options: LedgerEngineOptions): LedgerEngine {
  const levels = createLevels({
    records: options.store,
    secret: options.secret,
    cacheBytes: options.cacheBytes ?? DEFAULT_NODE_CACHE_BYTES,
    ...(options.random ? { random: options.random } : {}),
  });
  const root = readRoot(options, levels);
  return engine(options, levels, root);
}

function readRoot(options: LedgerEngineOptions, levels: Levels): RootState {
  const sealed = options.store.get(ROOT_STORE_KEY);
  if (sealed === undefined) integrity('missing', 'root record', 'the store has no root record');
  let plain: Uint8Array;
  try {
    plain = options.rootSeal.open(sealed);
  } catch {
    integrity('authentication', 'root record', 'the root record does not unseal');
  }
  const root = decodeRoot(plain);
  if (options.minIndex !== undefined && root.index < options.minIndex) {
    integrity(
      'structure',
      'root record',
      `rolled back to ${root.index} (at least ${options.minIndex})`,
    );
  }
  if (root.index === 0) {
    if (!bytesEqual(root.stateHash, EMPTY_ROOT) || !bytesEqual(root.versionsRoot, EMPTY_ROOT)) {
      integrity('structure', 'root record', 'index 0 with a non-empty state');
    }
    return root;
  }
  if (!bytesEqual(stateHashAt(levels, root.versionsRoot, root.index), root.stateHash)) {
    integrity('hash-mismatch', 'root record', 'the version index disagrees with the state hash');
  }
  // Load (and so verify) the admin root node.
  integrityAt('admin trie', () =>
    levels.admin.trie.get(root.stateHash, levels.admin.keyring.table(ADMIN_TRIE).path(u64(0))),
  );
  return root;
}

interface Queued {
  readonly body: TransactionBody;
  readonly resolve: (r: CommitResult) => void;
  readonly reject: (e: unknown) => void;
}

function engine(options: LedgerEngineOptions, levels: Levels, initial: RootState): LedgerEngine {
  const { store, rootSeal } = options;
  const limits: TransactionLimits = { ...DEFAULT_TX_LIMITS, ...options.limits };
  const maxGroup = options.maxGroup ?? 256;
  const cursors = createCursorCodec(options.secret.secret);
  // Invariant: `current` is what the root record in the store holds (the last acknowledged
  // commit); commits in flight are applied to a copy and land here only after their write.
  // Invariant: a commit index covers one group; transactions in it are serialised in queue order
  // (each reports the group's index and state hash; the last write of a key in the group wins).
  let current = initial;
  // Invariant: once set, no commit is applied and every new commit fails (reopen to continue).
  let failed: unknown;
  const queue: Queued[] = [];
  let flushing = false;
  let writes = 0;
  let commits = 0;

  function readerAt(index: number): StateReader {
    if (!(Number.isSafeInteger(index) && index >= 0)) {
      throw new InvalidInputError('a commit index must be a whole number >= 0');
    }
    if (index > current.index) throw new UnknownIndexError(index, current.index);
    if (index === current.index) return createStateReader(levels, current.stateHash);
    if (index === 0) return createStateReader(levels, EMPTY_ROOT);
    return createStateReader(levels, stateHashAt(levels, current.versionsRoot, index));
  }

  function appTable(table: string, what: string): void {
    tableBytes(table);
    if (isReserved(table)) throw new ReservedTableError(table, what);
  }

  function view(index: number): LedgerView {
    const reader = readerAt(index);
    const versionsRoot = current.versionsRoot;
    return {
      index,
      stateHash: reader.stateHash,
      get(ledger, table, key) {
        appTable(table, 'read');
        return reader.read(ledger, table, key)?.value;
      },
      list(ledger, table, opts) {
        appTable(table, 'listed');
        return listPage(reader, cursors, { ledger, table, snapshot: index }, [], opts);
      },
      history(ledger, table, key, opts) {
        appTable(table, 'read');
        const limit = checkLimit(opts?.limit, 1000, 100);
        const out: Version[] = [];
        let v = reader.read(ledger, table, key);
        while (v !== undefined && out.length < limit) {
          out.push({ index: v.index, value: v.value });
          if (v.prev === 0) break;
          const older = createStateReader(levels, stateHashAt(levels, versionsRoot, v.prev));
          const p = older.read(ledger, table, key);
          if (p === undefined || p.index !== v.prev) {
            integrity('structure', `history in table '${table}'`, 'the version chain is broken');
          }
          v = p;
        }
        return out;
      },
      prove(principal, ledger, table, key) {
        appTable(table, 'proved');
        ledgerIdBytes(ledger);
        const admin = 'admin' in principal && principal.admin === true;
        if (!admin && !('app' in principal && principal.app === ledger)) {
          throw new ProofAccessError(
            `proofs of ledger '${ledger}' go to its app or the admin role`,
          );
        }
        return reader.prove(ledger, table, key);
      },
    };
  }

  /** Rejects the whole group (`culprit` with its own error) and stops the engine. */
  function stop(group: readonly Queued[], e: unknown, culprit?: Queued): void {
    failed = e;
    levels.reset();
    const err = new LedgerStateError('the commit batch was not written; reopen the ledger', {
      cause: e,
    });
    for (const q of group) q.reject(q === culprit ? e : err);
  }

  async function runGroup(group: readonly Queued[]): Promise<void> {
    // One commit per group (§11.7): each transaction is checked in queue order, the accepted
    // ones are merged and applied to the tries once, under one new commit index.
    const g = createGroupApply(levels, current);
    const outcomes: ({ ok: true } | { ok: false; e: unknown })[] = [];
    for (const q of group) {
      try {
        g.add(q.body);
        outcomes.push({ ok: true });
      } catch (e) {
        outcomes.push({ ok: false, e });
        // A conflict is found before any change. Anything else (an integrity failure, a store
        // read error) may leave trie caches unsure: stop, like a failed write (reopen).
        if (!(e instanceof TransactionConflictError)) {
          stop(group, e, q);
          return;
        }
      }
    }
    let w: RootState;
    try {
      w = g.finish();
    } catch (e) {
      // Trie caches may hold nodes no record backs: stop, like a failed write.
      stop(group, e);
      return;
    }
    if (w !== current) {
      try {
        const puts = levels.takePending();
        puts.push({ type: 'put', key: ROOT_STORE_KEY, value: rootSeal.seal(encodeRoot(w)) });
        await store.write(puts, { sync: true });
        writes++;
      } catch (e) {
        stop(group, e);
        return;
      }
      current = w;
    }
    const result: CommitResult = { index: w.index, stateHash: w.stateHash };
    group.forEach((q, i) => {
      const o = outcomes[i];
      if (o?.ok) {
        commits++;
        q.resolve(result);
      } else q.reject(o?.e);
    });
  }

  async function flush(): Promise<void> {
    flushing = true;
    try {
      while (queue.length > 0) {
        const group = queue.splice(0, maxGroup);
        if (failed !== undefined) {
          const err = new LedgerStateError('the ledger stopped after a failed write; reopen it', {
            cause: failed,
          });
          for (const q of group) q.reject(err);
          continue;
        }
        await runGroup(group);
      }
    } finally {
      flushing = false;
    }
  }

  function submit(body: TransactionBody): Promise<CommitResult> {
    return new Promise<CommitResult>((resolve, reject) => {
      queue.push({ body, resolve, reject });
      // The flush starts after the current synchronous run: commits made together share a batch.
      if (!flushing) {
        flushing = true;
        Promise.resolve().then(flush, () => undefined);
      }
    });
  }

  return {
    get index() {
      return current.index;
    },
    get stateHash() {
      return current.stateHash;
    },
    get stats() {
      return { writes, commits };
    },
    begin(opts) {
      if (failed !== undefined)
        throw new LedgerStateError('the ledger stopped after a failed write; reopen it');
      const snapshot = current.index;
      return createTransaction({
        snapshot,
        reader: createStateReader(levels, current.stateHash),
        levels,
        cursors,
        limits,
        reserved: opts?.reserved === true,
        submit,
      });
    },
    at(index) {
      return view(index ?? current.index);
    },
  };
}
