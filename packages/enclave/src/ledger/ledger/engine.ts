/**
 * The ledger engine (issue 3; docs/ledger-format.md §11, DESIGN.md §5): app ledgers of tables under
 * one state hash, versions, reads at earlier commits, listing, state proofs and transactions with
 * group commit, over an injected record store and an injected root sealing port.
 *
 * Single writer: transactions are serialised in the order `commit()` was called, each checked for
 * serialisability against the commits since its snapshot and the transactions before it in its
 * group (TX_CONFLICT). One transaction = one log entry = one commit index. Every commit queued
 * while a store write is in flight joins the next group: its k entries get the indexes base+1 …
 * base+k (group.ts) and ONE atomic `write` with `sync: true` carries their new nodes, their log
 * entries (the CommitLog port, issue 4) and the new root record; each entry is acknowledged only
 * after that write resolves (group commit).
 */
import { MAX_WRITE_BYTES, MAX_WRITE_OPS } from '@cloister/boundary';
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
  TransactionTooLargeError,
  UnknownIndexError,
} from './errors.js';
import {
  ADMIN_TRIE,
  decodeRoot,
  encodeRoot,
  ROOT_STORE_KEY,
  type RootRecord,
  type RootState,
  u64,
} from './format.js';
import { createGroupApply, type WriteItem } from './group.js';
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
  TERM,
  type Transaction,
  type TransactionBody,
  type TransactionLimits,
  txidAt,
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
  history(
    ledger: string,
    table: string,
    key: Uint8Array,
    options?: {
      limit?: number;
      /** Called with each version's value bytes as it is read (as ListOptions.onRead). */
      onRead?: (bytes: number) => void;
    },
  ): Version[];
  /** State proof of `key` against `stateHash` (core verifyStateProof). Owner or admin only. */
  prove(principal: Principal, ledger: string, table: string, key: Uint8Array): Uint8Array;
}

export type { WriteItem } from './group.js';

/** One log entry as the engine hands it to the log (docs/ledger-format.md §11.7). */
export type LogItem =
  | {
      readonly kind: 'transaction';
      /** The writes that became versions, grouped by ledger and table. */
      readonly writes: readonly WriteItem[];
      readonly claims?: Uint8Array;
      readonly app?: string;
    }
  | {
      readonly kind: 'genesis' | 'signature' | 'rotation';
      readonly writes: readonly [];
      /** 'rotation' items made by `engine.rotate`: the new secret generation. */
      readonly generation?: number;
    };

/** The log-only items `append` takes. */
export type LogOnlyItem = Extract<LogItem, { kind: 'genesis' | 'signature' | 'rotation' }>;

/**
 * The engine's port to the logchain (issue 4; implemented in packages/enclave/src/log). Call
 * order per group: `stage` (after the trie update), then `checkpoint` (for the group's root
 * record: it must describe the log WITH the staged entries), then the store write, then
 * `settle(true)` once it resolved or `settle(false)` if it failed.
 */
export interface CommitLog {
  /**
   * The secret generation the log's entries announced last (its last rotation entry's, else the
   * origin's), read after `open`: the engine seals new records under it, so a generation the
   * sealed service state holds but no rotation entry announced (a kill mid-rotation) stays unused.
   */
  readonly generation: number;
  /** Bytes kept inside the sealed root record; opaque to the engine. */
  checkpoint(): Uint8Array;
  /**
   * Verifies the stored log against `checkpoint` (read back from the sealed root record) and
   * loads it; `index` = the root record's index; `stateHashAt(i)` (0 <= i <= index) is the version
   * index's state hash at i. Throws the named log errors. Not called by createLedgerEngine.
   */
  open(
    checkpoint: Uint8Array,
    index: number,
    stateHashAt: (i: number) => Uint8Array,
  ): Promise<void>;
  /**
   * Once per group: items[j] gets index firstIndex + j; `base`/`after` = the state hash before /
   * after the group. Returns the puts to add to the group's batch.
   */
  stage(
    items: readonly LogItem[],
    firstIndex: number,
    base: Uint8Array,
    after: Uint8Array,
  ): RecordPut[];
  /** The batch landed (true) or failed (false: drop the staged entries). */
  settle(ok: boolean): void;
}

export interface LedgerEngine {
  /** The term of every entry (1 until consensus). */
  readonly term: number;
  /** Latest committed (acknowledged) index; 0 before the first commit. */
  readonly index: number;
  /** The secret generation new records are sealed under (the log's, else the highest known). */
  readonly generation: number;
  readonly stateHash: Uint8Array;
  /** Store writes made (each one batch with sync) and commits acknowledged: for tests, metrics. */
  readonly stats: { readonly writes: number; readonly commits: number };
  /** `reserved: true` lets get/set/remove use reserved tables: the enclave's own code only. */
  begin(options?: { readonly reserved?: boolean }): Transaction;
  /**
   * Reads at committed index `index` (default: the latest). An index inside a group reads the
   * state after the whole group (the group's entries become durable together).
   */
  at(index?: number): LedgerView;
  /**
   * Appends a log-only entry (no writes; it consumes an index). A 'signature' item always starts
   * a new group, so the state before it is the state it signs.
   */
  append(item: LogOnlyItem): Promise<CommitResult>;
  /**
   * Adds secret generation `secret.generation` (above every known one) and appends a 'rotation'
   * entry; records written after that entry's batch use the new generation, older records stay
   * readable (their generation is in their header). Path, salt and store keys never change.
   */
  rotate(secret: LedgerSecret): Promise<CommitResult>;
  /** Re-writes the sealed root record with the log's current checkpoint (sync), in queue order. */
  writeCheckpoint(): Promise<void>;
}

export interface LedgerEngineOptions {
  readonly store: LedgerStore;
  /** The origin secret (32 bytes): every key derives from it; fixes path, salt and store keys. */
  readonly secret: LedgerSecret;
  /** Other secret generations (rotation); new records use the highest known generation, or with a log the one its last rotation entry announced (CommitLog.generation). */
  readonly secrets?: readonly LedgerSecret[];
  /** The logchain: one entry per index, staged into each group's batch (issue 4). */
  readonly log?: CommitLog;
  readonly rootSeal: RootSeal;
  readonly limits?: Partial<TransactionLimits>;
  /** Bound of the engine's one verified node cache, shared by every level (default 1 GiB). */
  readonly cacheBytes?: number;
  /** Most entries (transactions and log-only items) in one group (default 256). */
  readonly maxGroup?: number;
  /**
   * Most bytes (keys plus values) and operations of one store batch (default the store service's
   * caps, MAX_WRITE_BYTES and MAX_WRITE_OPS). A group whose batch would pass either is not sent:
   * its transactions go again one by one, and one alone over the cap is refused (TX_TOO_LARGE,
   * limit 'batch'), instead of a write the store refuses stopping the engine.
   */
  readonly maxBatch?: { readonly bytes: number; readonly ops: number };
  /** Refuse a root record older than this index (the platform counter of issue 4). */
  readonly minIndex?: number;
  /** Random bytes for record nonces (default node:crypto). */
  readonly random?: (out: Uint8Array) => void;
  /**
   * Called once when a failed write stops the engine (every later commit is LEDGER_STATE): the
   * node cannot go on committing, so its host should know at once (ledger.stopped).
   */
  readonly onStopped?: () => void;
}

const GENESIS: RootState = { index: 0, stateHash: EMPTY_ROOT, versionsRoot: EMPTY_ROOT };

/**
 * Creates the ledger in an empty store: writes the genesis root record (index 0, the log's
 * checkpoint, empty without a log) with sync. Does not call `log.open` (the log starts empty).
 */
export async function createLedgerEngine(options: LedgerEngineOptions): Promise<LedgerEngine> {
  if (options.store.get(ROOT_STORE_KEY) !== undefined) {
    throw new InvalidInputError('the store already holds a ledger: open it instead');
  }
  const checkpoint = options.log?.checkpoint() ?? new Uint8Array(0);
  const value = options.rootSeal.seal(encodeRoot(GENESIS, checkpoint));
  await options.store.write([{ type: 'put', key: ROOT_STORE_KEY, value }], { sync: true });
  const levels = newLevels(options);
  return engine(options, levels, readRoot(options, levels));
}

/**
 * Reopens the ledger from its sealed root record, verifying it against the version index, then
 * `await log.open(checkpoint, index, stateHashAt)`.
 */
export async function openLedgerEngine(options: LedgerEngineOptions): Promise<LedgerEngine> {
  const levels = newLevels(options);
  const root = readRoot(options, levels);
  if (options.log) {
    const at = (i: number): Uint8Array => {
      if (!(Number.isSafeInteger(i) && i >= 0 && i <= root.index)) {
        throw new UnknownIndexError(i, root.index);
      }
      if (i === 0) return EMPTY_ROOT;
      if (i === root.index) return root.stateHash;
      return stateHashAt(levels, root.versionsRoot, i);
    };
    await options.log.open(root.checkpoint, root.index, at);
    levels.useGeneration(options.log.generation);
  }
  return engine(options, levels, root);
}

function newLevels(options: LedgerEngineOptions): Levels {
  return createLevels({
    records: options.store,
    secret: options.secret,
    ...(options.secrets ? { secrets: options.secrets } : {}),
    cacheBytes: options.cacheBytes ?? DEFAULT_NODE_CACHE_BYTES,
    ...(options.random ? { random: options.random } : {}),
  });
}

function readRoot(options: LedgerEngineOptions, levels: Levels): RootRecord {
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

/** A queued job: a transaction, a log-only item, or a root record re-write. */
type Queued =
  | {
      readonly kind: 'tx';
      readonly body: TransactionBody;
      readonly resolve: (r: CommitResult) => void;
      readonly reject: (e: unknown) => void;
    }
  | {
      readonly kind: 'item';
      readonly item: LogOnlyItem;
      /** For a rotation: the new generation, applied once the entry's batch landed. */
      readonly secret?: LedgerSecret;
      readonly resolve: (r: CommitResult) => void;
      readonly reject: (e: unknown) => void;
    }
  | {
      readonly kind: 'checkpoint';
      readonly resolve: () => void;
      readonly reject: (e: unknown) => void;
    };

const EMPTY = new Uint8Array(0);

/** A group's transactions write at most this many transactions' worth of keys (nextGroup). */
export const GROUP_KEYS_FACTOR = 4;

function engine(options: LedgerEngineOptions, levels: Levels, initial: RootState): LedgerEngine {
  const { store, rootSeal, log } = options;
  const limits: TransactionLimits = { ...DEFAULT_TX_LIMITS, ...options.limits };
  const maxGroup = options.maxGroup ?? 256;
  const maxBatch = options.maxBatch ?? { bytes: MAX_WRITE_BYTES, ops: MAX_WRITE_OPS };
  // Jobs at the head of the queue to commit one per group: a group whose batch was too large.
  let alone = 0;
  const cursors = createCursorCodec(options.secret.secret);
  // Invariant: `current` is what the root record in the store holds (the last acknowledged
  // group); groups in flight are applied to a copy and land here only after their write.
  // Invariant: one entry per index; a group's entries are its queue slice in queue order, with
  // disjoint write keys (group.ts), each resolving with its own index and the group-end state.
  let current: RootState = initial;
  // Invariant: once set, no commit is applied and every new commit fails (reopen to continue).
  let failed: unknown;
  const queue: Queued[] = [];
  let flushing = false;
  let writes = 0;
  let commits = 0;
  // The highest generation known or queued by `rotate` (checked when rotate is called).
  let generation = levels.generation;

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
          opts?.onRead?.(v.value?.length ?? 0);
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
    const first = failed === undefined;
    failed = e;
    levels.reset();
    if (first) options.onStopped?.();
    const err = new LedgerStateError('the commit batch was not written; reopen the ledger', {
      cause: e,
    });
    for (const q of group) q.reject(q === culprit ? e : err);
  }

  /**
   * Writes the pending records, the log's entries for `items` and the sealed root record of
   * `state` in one batch with sync. False (and the engine stopped) when anything failed;
   * `culprit`, if given, is rejected with the failure itself rather than LEDGER_STATE. A batch
   * over `maxBatch` is not sent: its size is returned, and the engine goes on from `current`
   * (nothing of the group reached the store; the caches that may hold its nodes are dropped).
   */
  async function write(
    group: readonly Queued[],
    state: RootState,
    items: readonly LogItem[],
    culprit?: Queued,
  ): Promise<boolean | { readonly bytes: number; readonly ops: number }> {
    let staged = false;
    try {
      const puts = levels.takePending();
      if (log && items.length > 0) {
        puts.push(...log.stage(items, current.index + 1, current.stateHash, state.stateHash));
        staged = true;
      }
      const checkpoint = log?.checkpoint() ?? EMPTY;
      puts.push({
        type: 'put',
        key: ROOT_STORE_KEY,
        value: rootSeal.seal(encodeRoot(state, checkpoint)),
      });
      let bytes = 0;
      for (const p of puts) bytes += p.key.length + p.value.length;
      if (bytes > maxBatch.bytes || puts.length > maxBatch.ops) {
        if (staged) log?.settle(false);
        levels.reset();
        return { bytes, ops: puts.length };
      }
      await store.write(puts, { sync: true });
      writes++;
    } catch (e) {
      if (staged) log?.settle(false);
      stop(group, e, culprit);
      return false;
    }
    if (staged) log?.settle(true);
    current = state;
    return true;
  }

  async function runGroup(group: readonly Queued[]): Promise<void> {
    const head = group[0];
    if (head?.kind === 'checkpoint') {
      // Alone in its group, the checkpoint's write is the one that failed: its caller (a start
      // beginning its epoch) gets the store's own error, which names the disk and what to do.
      if (await write(group, current, [], head)) head.resolve();
      return;
    }
    // One trie update per group (§11.7): each transaction is checked in queue order; the
    // accepted ones and the log-only items get consecutive indexes.
    const g = createGroupApply(levels, current);
    const items: LogItem[] = [];
    const done: { q: Queued; index: number }[] = [];
    const conflicts: { q: Queued; e: unknown }[] = [];
    let taken = group.length;
    for (let i = 0; i < group.length; i++) {
      const q = group[i] as Queued;
      if (q.kind === 'item') {
        done.push({ q, index: g.skip() });
        items.push(q.item);
        continue;
      }
      if (q.kind !== 'tx') continue;
      try {
        const r = g.add(q.body);
        if (!r.ok) {
          // It writes a key an earlier entry of the group wrote: it and everything after it go
          // back to the head of the queue, in order, for the next group.
          taken = i;
          break;
        }
        done.push({ q, index: r.index });
        const { claims, app } = q.body;
        items.push({
          kind: 'transaction',
          writes: r.writes,
          ...(claims ? { claims } : {}),
          ...(app !== undefined ? { app } : {}),
        });
      } catch (e) {
        // A conflict is found before any change. Anything else (an integrity failure, a store
        // read error) may leave trie caches unsure: stop, like a failed write (reopen).
        if (!(e instanceof TransactionConflictError)) {
          stop(group, e, q);
          return;
        }
        conflicts.push({ q, e });
      }
    }
    if (taken < group.length) queue.unshift(...group.slice(taken));
    const members = group.slice(0, taken);
    let w: RootState;
    try {
      w = g.finish();
    } catch (e) {
      // Trie caches may hold nodes no record backs: stop, like a failed write.
      stop(members, e);
      return;
    }
    if (w !== current) {
      const written = await write(members, w, items);
      if (written === false) return;
      if (written !== true) {
        // Nothing was sent. Several: each goes again in a group of its own (conflicts included:
        // what they conflicted with may not commit now). One transaction alone: too large.
        const [only] = members;
        if (members.length > 1) {
          queue.unshift(...members);
          alone = members.length;
        } else if (only?.kind === 'tx') {
          only.reject(
            new TransactionTooLargeError(
              'batch',
              `this transaction's commit would write ${written.bytes} bytes in ${written.ops} store operations, above the store's ${maxBatch.bytes} bytes and ${maxBatch.ops} operations a batch: write fewer or smaller keys per transaction`,
            ),
          );
        } else {
          stop(members, new LedgerStateError('a log entry alone made a batch above the store cap'));
        }
        return;
      }
    }
    for (const { q } of done) {
      if (q.kind === 'item' && q.secret) levels.rotate(q.secret);
    }
    for (const { q, index } of done) {
      if (q.kind === 'checkpoint') continue;
      commits++;
      q.resolve({ term: TERM, index, txid: txidAt(index), stateHash: w.stateHash });
    }
    for (const { q, e } of conflicts) q.reject(e);
  }

  /**
   * The next group: at most maxGroup jobs; a checkpoint alone; a signature starts a group; and
   * its transactions together write no more bytes than one transaction may and at most four
   * transactions' worth of keys (`limits`; GROUP_KEYS_FACTOR), unless it has only one. The batch
   * a group writes grows with its write sets (about twice their bytes: the log entries carry
   * them, sealed, beside the trie's records) and its keys; a batch over the store's caps is never
   * sent (write), but building one is wasted work, so groups are kept well below them: unbounded,
   * a few large transactions queued together made such a batch, and its failed write stopped the
   * ledger. Keys are bounded less tightly than bytes because keys close together share records:
   * at one transaction's worth, 1,000-key commits queued together (the benchmark's prefill) left
   * the node cache colder and verified gets about 10 % slower (measured).
   */
  function nextGroup(): Queued[] {
    const first = queue[0];
    if (first?.kind === 'checkpoint') return queue.splice(0, 1);
    if (alone > 0) {
      alone--;
      return queue.splice(0, 1);
    }
    let keys = first?.kind === 'tx' ? first.body.size.keys : 0;
    let bytes = first?.kind === 'tx' ? first.body.size.bytes : 0;
    let n = 1;
    while (n < queue.length && n < maxGroup) {
      const q = queue[n] as Queued;
      if (q.kind === 'checkpoint' || (q.kind === 'item' && q.item.kind === 'signature')) break;
      if (q.kind === 'tx') {
        keys += q.body.size.keys;
        bytes += q.body.size.bytes;
        if (keys > GROUP_KEYS_FACTOR * limits.maxKeys || bytes > limits.maxBytes) break;
      }
      n++;
    }
    return queue.splice(0, n);
  }

  async function flush(): Promise<void> {
    flushing = true;
    try {
      while (queue.length > 0) {
        const group = nextGroup();
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

  function enqueue(q: Queued): void {
    queue.push(q);
    // The flush starts after the current synchronous run: commits made together share a batch.
    if (!flushing) {
      flushing = true;
      Promise.resolve().then(flush, () => undefined);
    }
  }

  function submit(body: TransactionBody): Promise<CommitResult> {
    return new Promise<CommitResult>((resolve, reject) => {
      enqueue({ kind: 'tx', body, resolve, reject });
    });
  }

  function live(): void {
    if (failed !== undefined)
      throw new LedgerStateError('the ledger stopped after a failed write; reopen it');
  }

  return {
    term: TERM,
    get index() {
      return current.index;
    },
    get stateHash() {
      return current.stateHash;
    },
    get generation() {
      return levels.generation;
    },
    get stats() {
      return { writes, commits };
    },
    begin(opts) {
      live();
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
    async append(item) {
      live();
      const kind = (item as { kind?: unknown } | undefined)?.kind;
      if (kind !== 'genesis' && kind !== 'signature' && kind !== 'rotation') {
        throw new InvalidInputError('append takes a genesis, signature or rotation item');
      }
      if (!Array.isArray(item.writes) || item.writes.length !== 0) {
        throw new InvalidInputError('a log-only item has no writes');
      }
      const gen = item.generation;
      if (gen !== undefined && !(Number.isInteger(gen) && gen >= 0 && gen <= 0xffffffff)) {
        throw new InvalidInputError('a generation is a whole number below 2^32');
      }
      const copy: LogOnlyItem = {
        kind,
        writes: [],
        ...(gen !== undefined ? { generation: gen } : {}),
      };
      return new Promise<CommitResult>((resolve, reject) => {
        enqueue({ kind: 'item', item: copy, resolve, reject });
      });
    },
    async rotate(secret) {
      live();
      const ok =
        secret !== null &&
        typeof secret === 'object' &&
        Number.isInteger(secret.generation) &&
        secret.generation > generation &&
        secret.generation <= 0xffffffff &&
        secret.secret instanceof Uint8Array &&
        secret.secret.length === 32;
      if (!ok) {
        throw new InvalidInputError(
          `a new ledger secret is 32 bytes with a generation above ${generation} (below 2^32)`,
        );
      }
      generation = secret.generation;
      const copy = { generation: secret.generation, secret: Uint8Array.from(secret.secret) };
      return new Promise<CommitResult>((resolve, reject) => {
        enqueue({
          kind: 'item',
          item: { kind: 'rotation', writes: [], generation: copy.generation },
          secret: copy,
          resolve,
          reject,
        });
      });
    },
    async writeCheckpoint() {
      live();
      return new Promise<void>((resolve, reject) => {
        enqueue({ kind: 'checkpoint', resolve, reject });
      });
    },
  };
}
