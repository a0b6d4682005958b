/**
 * One commit group (docs/ledger-format.md §11.7): k entries (transactions and log-only items) with
 * the consecutive indexes base+1 … base+k, applied to the tries once. Transactions are checked for
 * serialisability in queue order against the last acknowledged state and the writes of the
 * transactions accepted before them in the group. Keys written in a group are disjoint: a
 * transaction writing a key an earlier one of the group wrote is not added (the engine defers it,
 * and everything queued after it, to the next group), so every key has at most one version per
 * group and each version record carries its own transaction's index. `finish` makes one update per
 * touched table, one per touched catalogue, one of the administrative trie and one of the version
 * index (k puts: every index of the group maps to the group-end state hash).
 */
import { byteKey, bytesEqual } from '@cloister/core';
import type { NodeRecord, TrieOp } from '../trie/trie.js';
import { integrityAt, TransactionConflictError } from './errors.js';
import {
  ADMIN_TRIE,
  CATALOGUE_TRIE,
  encodeRootValue,
  encodeVersion,
  type RootState,
  u64,
  VERSIONS_TRIE,
} from './format.js';
import type { BufferedWrite } from './list.js';
import {
  createStateReader,
  type Level,
  type Levels,
  ledgerIdBytes,
  tableBytes,
  versionPath,
} from './state.js';
import type { TransactionBody } from './transaction.js';

/** One write of a log entry's write set: `value` undefined removes the key. */
export interface WriteItem {
  readonly ledger: string;
  readonly table: string;
  readonly key: Uint8Array;
  readonly value: Uint8Array | undefined;
}

// The objects made per write below are class instances, not object literals: V8 pretenures a
// literal's allocation site once most of its objects survived young collections (they do in a
// bulk commit), and then every later commit allocated them in the old generation, where, dead,
// they kept the young objects they point to alive until the next full collection (see Record in
// trie.ts; docs/performance.md, "Hidden classes").

/** A key's write in a group (keys are disjoint across the group's transactions). */
class GroupWrite {
  readonly ledger: string;
  readonly table: string;
  /** byteKey(key). */
  readonly id: string;
  readonly key: Uint8Array;
  readonly path: Uint8Array;
  readonly value: Uint8Array | undefined;
  /** The index of the transaction that wrote it. */
  readonly index: number;
  /** The index of the key's version in the base state (0: none). */
  readonly prev: number;
  constructor(
    ledger: string,
    table: string,
    id: string,
    wr: BufferedWrite,
    index: number,
    prev: number,
  ) {
    this.ledger = ledger;
    this.table = table;
    this.id = id;
    this.key = wr.key;
    this.path = wr.path;
    this.value = wr.value;
    this.index = index;
    this.prev = prev;
  }
}

class Write implements WriteItem {
  readonly ledger: string;
  readonly table: string;
  readonly key: Uint8Array;
  readonly value: Uint8Array | undefined;
  constructor(gw: GroupWrite) {
    this.ledger = gw.ledger;
    this.table = gw.table;
    this.key = gw.key;
    this.value = gw.value;
  }
}

class Put {
  readonly type = 'put';
  readonly path: Uint8Array;
  readonly salt: Uint8Array;
  readonly key: Uint8Array;
  readonly value: Uint8Array;
  constructor(path: Uint8Array, salt: Uint8Array, key: Uint8Array, value: Uint8Array) {
    this.path = path;
    this.salt = salt;
    this.key = key;
    this.value = value;
  }
}

/** What `add` did with a transaction. */
export type AddOutcome =
  | { readonly ok: true; readonly index: number; readonly writes: readonly WriteItem[] }
  | { readonly ok: false; readonly deferred: true };

/**
 * Builds one group. `add` accepts a transaction (its index and the writes that became versions),
 * refuses it as deferred (it writes a key an earlier transaction of the group wrote; nothing
 * changed), or throws (TransactionConflictError: the group is unchanged; any other error: a read
 * failed and the engine must stop). `skip` gives a log-only entry its index. `finish` applies the
 * writes and returns the state after the group (records in the levels' pending overlays), or
 * `base` itself when the group has no entry.
 */
export interface GroupApply {
  add(body: TransactionBody): AddOutcome;
  skip(): number;
  finish(): RootState;
}

export function createGroupApply(levels: Levels, base: RootState): GroupApply {
  const reader = createStateReader(levels, base.stateHash);
  // ledger → table → byteKey(key) → write. A key or table present here was written by a transaction
  // accepted earlier in the group (so after any snapshot in the group).
  const merged = new Map<string, Map<string, Map<string, GroupWrite>>>();
  // Invariant: the last index given in the group (base.index: none yet).
  let last = base.index;

  function check(body: TransactionBody): void {
    const stale = body.snapshot !== base.index;
    for (const r of body.reads.values()) {
      const id = byteKey(r.key);
      if (merged.get(r.ledger)?.get(r.table)?.has(id)) {
        throw new TransactionConflictError(
          `a key this transaction read in table '${r.table}' changed`,
        );
      }
      if (!stale) continue;
      const v = reader.read(r.ledger, r.table, r.key);
      if (v !== undefined && v.index > body.snapshot) {
        throw new TransactionConflictError(
          `a key this transaction read in table '${r.table}' changed`,
        );
      }
    }
    for (const lt of body.listed) {
      const [ledger = '', table = ''] = lt.split('\u0000');
      const changed =
        merged.get(ledger)?.has(table) === true ||
        (stale &&
          !bytesEqual(reader.tableRoot(ledger, table), body.reader.tableRoot(ledger, table)));
      if (changed) {
        throw new TransactionConflictError(
          `table '${table}', which this transaction listed, changed`,
        );
      }
    }
  }

  return {
    add(body) {
      check(body);
      for (const [ledger, tables] of body.writes) {
        for (const [table, keys] of tables) {
          const group = merged.get(ledger)?.get(table);
          if (group === undefined) continue;
          for (const id of keys.keys()) if (group.has(id)) return { ok: false, deferred: true };
        }
      }
      const index = last + 1;
      // Resolve every write against the base before changing anything (a read may throw).
      const accepted: GroupWrite[] = [];
      for (const [ledger, tables] of body.writes) {
        for (const [table, keys] of tables) {
          for (const [id, wr] of keys) {
            // wr.path is the table's path of wr.key (the transaction computed it): no second HMAC.
            const cur = reader.readAt(ledger, table, wr.key, wr.path);
            // A remove of a key with no live value adds nothing (§11.4).
            if (wr.value === undefined && cur?.value === undefined) continue;
            const prev = cur?.index ?? 0;
            accepted.push(new GroupWrite(ledger, table, id, wr, index, prev));
          }
        }
      }
      const writes: WriteItem[] = [];
      for (const gw of accepted) {
        const { ledger, table } = gw;
        let byLedger = merged.get(ledger);
        if (!byLedger) {
          byLedger = new Map();
          merged.set(ledger, byLedger);
        }
        let byTable = byLedger.get(table);
        if (!byTable) {
          byTable = new Map();
          byLedger.set(table, byTable);
        }
        byTable.set(gw.id, gw);
        writes.push(new Write(gw));
      }
      last = index;
      return { ok: true, index, writes };
    },

    skip() {
      last += 1;
      return last;
    },

    finish() {
      if (last === base.index) return base;
      const made: [Level, readonly NodeRecord[]][] = [];
      const adminOps: TrieOp[] = [];
      for (const [ledger, tables] of merged) {
        const l = levels.ledger(ledger);
        const catKeys = l.keyring.table(CATALOGUE_TRIE);
        const catOps: TrieOp[] = [];
        for (const [table, keys] of tables) {
          const salts = l.keyring.table(table);
          const ops: TrieOp[] = [];
          for (const gw of keys.values()) {
            const value = encodeVersion({ index: gw.index, prev: gw.prev, value: gw.value });
            ops.push(new Put(gw.path, salts.salt(gw.key), gw.key, value));
          }
          if (ops.length === 0) continue;
          const what = `table '${table}' of ledger '${ledger}'`;
          const up = integrityAt(what, () => l.trie.update(reader.tableRoot(ledger, table), ops));
          made.push([l, up.records]);
          const name = tableBytes(table);
          const value = encodeRootValue(up.root);
          catOps.push({
            type: 'put',
            path: catKeys.path(name),
            salt: catKeys.salt(name),
            key: name,
            value,
          });
        }
        if (catOps.length === 0) continue;
        const what = `catalogue of ledger '${ledger}'`;
        const up = integrityAt(what, () => l.trie.update(reader.catalogueRoot(ledger), catOps));
        made.push([l, up.records]);
        const id = ledgerIdBytes(ledger);
        const ak = levels.admin.keyring.table(ADMIN_TRIE);
        const value = encodeRootValue(up.root);
        adminOps.push({ type: 'put', path: ak.path(id), salt: ak.salt(id), key: id, value });
      }
      const a = levels.admin;
      let stateHash = base.stateHash;
      if (adminOps.length > 0) {
        const top = integrityAt('admin trie', () => a.trie.update(base.stateHash, adminOps));
        made.push([a, top.records]);
        stateHash = Uint8Array.from(top.root);
      }
      // Every index of the group maps to the group-end state hash: one update, k puts.
      const vk = a.keyring.table(VERSIONS_TRIE);
      const rootValue = encodeRootValue(stateHash);
      const vops: TrieOp[] = [];
      for (let i = base.index + 1; i <= last; i++) {
        const key = u64(i);
        const path = versionPath(a.keyring, i);
        vops.push({ type: 'put', path, salt: vk.salt(key), key, value: rootValue });
      }
      const ver = integrityAt('version index', () => a.trie.update(base.versionsRoot, vops));
      made.push([a, ver.records]);
      for (const [l, records] of made) l.stage(records);
      // Plain Uint8Array copies (the trie's hashes may be Buffers).
      return { index: last, stateHash, versionsRoot: Uint8Array.from(ver.root) };
    },
  };
}
