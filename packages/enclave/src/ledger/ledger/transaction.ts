/**
 * A transaction (docs/ledger-format.md §11): reads at its snapshot through its own buffered
 * writes (read-your-writes), checks its caps at every write, remembers what it read for the
 * serialisability check at commit, and hands its write set to the engine's commit queue.
 *
 * State machine: open → committing → committed | failed; open → aborted. Only `open` accepts
 * reads and writes. Nothing reaches the store before commit, so abort leaves nothing.
 */
import { byteKey, InvalidInputError, LOG_TERM } from '@cloister/core';
import { ReservedTableError, TransactionClosedError, TransactionTooLargeError } from './errors.js';
import {
  type BufferedWrite,
  type CursorCodec,
  type ListOptions,
  type ListPage,
  listPage,
} from './list.js';
import { type Levels, ledgerIdBytes, type StateReader, tableBytes } from './state.js';
import { comparePaths } from './walk.js';

/** Caps on one transaction; each has a stated default (DEFAULT_TX_LIMITS). */
export interface TransactionLimits {
  /** Distinct keys written (set or removed). */
  readonly maxKeys: number;
  /** Sum over written keys of key bytes + value bytes. */
  readonly maxBytes: number;
  /** Bytes of one key. */
  readonly maxKeyBytes: number;
  /** Bytes of one value. */
  readonly maxValueBytes: number;
}

export const DEFAULT_TX_LIMITS: TransactionLimits = {
  maxKeys: 10_000,
  maxBytes: 16 * 1024 * 1024,
  maxKeyBytes: 4096,
  maxValueBytes: 1024 * 1024,
};

/** The term of every entry until consensus lands (DESIGN.md §11). */
export const TERM = LOG_TERM;

/** The transaction id of the entry at `index`: `term.index` (DESIGN.md §11). */
export function txidAt(index: number): string {
  return `${TERM}.${index}`;
}

export interface CommitResult {
  /** The term of the entry (1 until consensus). */
  readonly term: 1;
  /** This entry's own commit index (docs/ledger-format.md §11.7): one transaction, one index. */
  readonly index: number;
  /** The transaction id, `term.index` (e.g. `1.42`). */
  readonly txid: string;
  /**
   * The state hash after the entry's group (the state its group made durable; a state between two
   * entries of one group is never committed on its own).
   */
  readonly stateHash: Uint8Array;
}

/** What a commit adds to its log entry (docs/ledger-format.md §11.7). */
export interface CommitOptions {
  /** The salted claims digest (32 bytes) the entry's leaf commits to. */
  readonly claims?: Uint8Array;
  /** The app id, public metadata of the entry. */
  readonly app?: string;
}

export type TransactionState = 'open' | 'committing' | 'committed' | 'aborted' | 'failed';

export interface Transaction {
  /** The committed index this transaction reads at. */
  readonly snapshot: number;
  readonly state: TransactionState;
  /** Distinct keys written so far (set or removed): what `TransactionLimits.maxKeys` counts. */
  readonly keysWritten: number;
  get(ledger: string, table: string, key: Uint8Array): Uint8Array | undefined;
  /**
   * The committed version of `key` at the snapshot, ignoring this transaction's own writes: the
   * index of the commit that wrote it and its value (undefined: that commit removed the key);
   * undefined when the table never held the key. A read, as get (conflict checks included).
   */
  version(
    ledger: string,
    table: string,
    key: Uint8Array,
  ): { readonly index: number; readonly value: Uint8Array | undefined } | undefined;
  list(ledger: string, table: string, options?: ListOptions): ListPage;
  set(ledger: string, table: string, key: Uint8Array, value: Uint8Array): void;
  remove(ledger: string, table: string, key: Uint8Array): void;
  /**
   * Queues the commit; resolves once its batch is written with sync (group commit). Every
   * committed transaction is one entry with its own index, even one that wrote nothing (abort a
   * read-only transaction instead).
   */
  commit(options?: CommitOptions): Promise<CommitResult>;
  /** Drops the buffered writes; nothing was or will be written. */
  abort(): void;
}

export interface ReadRecord {
  readonly ledger: string;
  readonly table: string;
  readonly key: Uint8Array;
}

/** What the engine sees of a transaction at commit. */
export interface TransactionBody {
  readonly snapshot: number;
  readonly reader: StateReader;
  /** ledger → table → byteKey(key) → write. */
  readonly writes: ReadonlyMap<string, ReadonlyMap<string, ReadonlyMap<string, BufferedWrite>>>;
  readonly reads: ReadonlyMap<string, ReadRecord>;
  /** "ledger\0table" of every table listed. */
  readonly listed: ReadonlySet<string>;
  /** Distinct keys written, and their key + value bytes: what TransactionLimits caps. */
  readonly size: { readonly keys: number; readonly bytes: number };
  readonly claims?: Uint8Array;
  readonly app?: string;
}

export interface TransactionContext {
  readonly snapshot: number;
  readonly reader: StateReader;
  readonly levels: Levels;
  readonly cursors: CursorCodec;
  readonly limits: TransactionLimits;
  /** May use reserved tables ('$' first) for get/set/remove (the enclave's own code). */
  readonly reserved: boolean;
  readonly submit: (body: TransactionBody) => Promise<CommitResult>;
}

export const isReserved = (table: string): boolean => table.startsWith('$');

function checkBytes(x: unknown, what: string): asserts x is Uint8Array {
  if (!(x instanceof Uint8Array)) throw new InvalidInputError(`${what} must be a Uint8Array`);
}

/**
 * A buffered write: a class instance, not an object literal, which V8 would pretenure after a
 * bulk transaction and then keep each later transaction's keys and values alive through young
 * collections (see Record in trie.ts).
 */
class Buffered implements BufferedWrite {
  readonly key: Uint8Array;
  readonly path: Uint8Array;
  readonly value: Uint8Array | undefined;
  constructor(key: Uint8Array, path: Uint8Array, value: Uint8Array | undefined) {
    this.key = key;
    this.path = path;
    this.value = value;
  }
}

export function createTransaction(ctx: TransactionContext): Transaction {
  return new LedgerTransaction(ctx);
}

/**
 * A class, not an object literal of closures: its methods live once on the prototype and `state`
 * is a getter there, read-only to its holders. An object literal with a getter, made per
 * transaction, allocated an accessor pair in the old generation each time, and through those every
 * transaction's closures and maps survived young collections until the next full one
 * (docs/performance.md, "Hidden classes"): a begin cost three times as much, and most of the
 * enclave's scavenge pauses under SCP queries came from it.
 */
class LedgerTransaction implements Transaction {
  readonly snapshot: number;
  readonly #ctx: TransactionContext;
  readonly #writes = new Map<string, Map<string, Map<string, BufferedWrite>>>();
  // Per "ledger\0table": that table's buffered writes sorted by path, kept until its next write.
  // Sorted on every list call, a transaction of 9,999 writes listing one entry at a time ran
  // 280 ns a fuel unit (a cost review).
  readonly #sorted = new Map<string, BufferedWrite[]>();
  readonly #reads = new Map<string, ReadRecord>();
  readonly #listed = new Set<string>();
  // Invariants: keys = number of entries over `writes`; bytes = their key + value bytes.
  #keys = 0;
  #bytes = 0;
  #state: TransactionState = 'open';

  constructor(ctx: TransactionContext) {
    this.#ctx = ctx;
    this.snapshot = ctx.snapshot;
  }

  get state(): TransactionState {
    return this.#state;
  }

  get keysWritten(): number {
    return this.#keys;
  }

  #open(ledger: string, table: string, what: string): void {
    if (this.#state !== 'open') throw new TransactionClosedError(this.#state);
    ledgerIdBytes(ledger);
    tableBytes(table);
    if (isReserved(table) && !this.#ctx.reserved) throw new ReservedTableError(table, what);
  }

  #tableWrites(ledger: string, table: string): Map<string, BufferedWrite> | undefined {
    return this.#writes.get(ledger)?.get(table);
  }

  #write(ledger: string, table: string, key: Uint8Array, value?: Uint8Array): void {
    this.#open(ledger, table, 'written');
    checkBytes(key, 'a key');
    if (value !== undefined) checkBytes(value, 'a value');
    const limits = this.#ctx.limits;
    if (key.length > limits.maxKeyBytes) {
      throw new TransactionTooLargeError(
        'key-size',
        `a key is at most ${limits.maxKeyBytes} bytes; this one is ${key.length}`,
      );
    }
    if (value !== undefined && value.length > limits.maxValueBytes) {
      throw new TransactionTooLargeError(
        'value-size',
        `a value is at most ${limits.maxValueBytes} bytes; this one is ${value.length}`,
      );
    }
    const id = byteKey(key);
    const old = this.#tableWrites(ledger, table)?.get(id);
    const nextKeys = this.#keys + (old ? 0 : 1);
    const nextBytes =
      this.#bytes -
      (old ? old.key.length + (old.value?.length ?? 0) : 0) +
      key.length +
      (value?.length ?? 0);
    if (nextKeys > limits.maxKeys) {
      throw new TransactionTooLargeError(
        'keys',
        `a transaction writes at most ${limits.maxKeys} keys`,
      );
    }
    if (nextBytes > limits.maxBytes) {
      throw new TransactionTooLargeError(
        'bytes',
        `a transaction writes at most ${limits.maxBytes} bytes of keys and values`,
      );
    }
    this.#sorted.delete(`${ledger}\u0000${table}`);
    let byLedger = this.#writes.get(ledger);
    if (!byLedger) {
      byLedger = new Map();
      this.#writes.set(ledger, byLedger);
    }
    let byTable = byLedger.get(table);
    if (!byTable) {
      byTable = new Map();
      byLedger.set(table, byTable);
    }
    const path = old?.path ?? this.#ctx.levels.ledger(ledger).keyring.table(table).path(key);
    byTable.set(id, new Buffered(Uint8Array.from(key), path, value && Uint8Array.from(value)));
    this.#keys = nextKeys;
    this.#bytes = nextBytes;
  }

  /** The committed version of `key` (`id` = byteKey(key)) at the snapshot, recorded as read. */
  #readCommitted(ledger: string, table: string, key: Uint8Array, id: string) {
    this.#reads.set(`${ledger}\u0000${table}\u0000${id}`, {
      ledger,
      table,
      key: Uint8Array.from(key),
    });
    return this.#ctx.reader.read(ledger, table, key);
  }

  get(ledger: string, table: string, key: Uint8Array): Uint8Array | undefined {
    this.#open(ledger, table, 'read');
    checkBytes(key, 'a key');
    const id = byteKey(key);
    const mine = this.#tableWrites(ledger, table)?.get(id);
    if (mine) return mine.value && Uint8Array.from(mine.value);
    return this.#readCommitted(ledger, table, key, id)?.value;
  }

  version(
    ledger: string,
    table: string,
    key: Uint8Array,
  ): { readonly index: number; readonly value: Uint8Array | undefined } | undefined {
    this.#open(ledger, table, 'read');
    checkBytes(key, 'a key');
    const v = this.#readCommitted(ledger, table, key, byteKey(key));
    return v === undefined ? undefined : { index: v.index, value: v.value };
  }

  list(ledger: string, table: string, options?: ListOptions): ListPage {
    this.#open(ledger, table, 'listed');
    if (isReserved(table)) throw new ReservedTableError(table, 'listed');
    this.#listed.add(`${ledger}\u0000${table}`);
    const id = `${ledger}\u0000${table}`;
    let mine = this.#sorted.get(id);
    if (mine === undefined) {
      mine = [...(this.#tableWrites(ledger, table)?.values() ?? [])].sort((a, b) =>
        comparePaths(a.path, b.path),
      );
      this.#sorted.set(id, mine);
    }
    const where = { ledger, table, snapshot: this.snapshot };
    return listPage(this.#ctx.reader, this.#ctx.cursors, where, mine, options);
  }

  set(ledger: string, table: string, key: Uint8Array, value: Uint8Array): void {
    checkBytes(value, 'a value');
    this.#write(ledger, table, key, value);
  }

  remove(ledger: string, table: string, key: Uint8Array): void {
    this.#write(ledger, table, key, undefined);
  }

  async commit(options?: CommitOptions): Promise<CommitResult> {
    if (this.#state !== 'open') throw new TransactionClosedError(this.#state);
    const claims = options?.claims;
    if (claims !== undefined && !(claims instanceof Uint8Array && claims.length === 32)) {
      throw new InvalidInputError('claims must be a 32-byte digest');
    }
    const app = options?.app;
    if (app !== undefined) ledgerIdBytes(app);
    this.#state = 'committing';
    try {
      const result = await this.#ctx.submit({
        snapshot: this.snapshot,
        reader: this.#ctx.reader,
        writes: this.#writes,
        reads: this.#reads,
        listed: this.#listed,
        size: { keys: this.#keys, bytes: this.#bytes },
        ...(claims ? { claims: Uint8Array.from(claims) } : {}),
        ...(app !== undefined ? { app } : {}),
      });
      this.#state = 'committed';
      return result;
    } catch (e) {
      this.#state = 'failed';
      throw e;
    }
  }

  abort(): void {
    if (this.#state !== 'open') throw new TransactionClosedError(this.#state);
    this.#state = 'aborted';
    this.#writes.clear();
    this.#sorted.clear();
    this.#reads.clear();
  }
}
