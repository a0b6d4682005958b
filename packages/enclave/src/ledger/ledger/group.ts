/**
 * One commit group applied as one commit (docs/ledger-format.md §11.7): the group's transactions
 * are checked for serialisability in queue order against the last acknowledged state and the
 * writes of the transactions accepted before them in the group, their writes are merged (the last
 * write of a key in queue order wins), and the merge is applied to the tries once: one update per
 * touched table, one per touched catalogue, one of the administrative trie and one of the version
 * index. The whole group gets ONE commit index and one state hash.
 */
import { bytesEqual, toHex } from '@cloister/core';
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
import { createStateReader, type Level, type Levels, ledgerIdBytes, tableBytes } from './state.js';
import type { TransactionBody } from './transaction.js';

/** A key's merged write in a group: the last one in queue order. */
interface GroupWrite {
  readonly key: Uint8Array;
  readonly path: Uint8Array;
  readonly value: Uint8Array | undefined;
  /** The index of the key's version in the base state (0: none). */
  readonly prev: number;
  /** Whether the base state holds a live value of the key. */
  readonly live: boolean;
}

/**
 * Builds one commit from a group. `add` either accepts a transaction (its writes join the group)
 * or throws (TransactionConflictError: the group is unchanged; any other error: a read failed and
 * the engine must stop). `finish` applies the merged writes and returns the next state (records
 * in the levels' pending overlays), or `base` itself when the group changes nothing.
 */
export interface GroupApply {
  add(body: TransactionBody): void;
  finish(): RootState;
}

export function createGroupApply(levels: Levels, base: RootState): GroupApply {
  const reader = createStateReader(levels, base.stateHash);
  // ledger → table → key hex → merged write. A key or table present here was written by a
  // transaction accepted earlier in the group (so after any snapshot in the group).
  const merged = new Map<string, Map<string, Map<string, GroupWrite>>>();

  function check(body: TransactionBody): void {
    const stale = body.snapshot !== base.index;
    for (const r of body.reads.values()) {
      const hex = toHex(r.key);
      if (merged.get(r.ledger)?.get(r.table)?.has(hex)) {
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
      // Resolve every write against the group so far before changing it (a read may throw).
      const accepted: [string, string, string, GroupWrite][] = [];
      for (const [ledger, tables] of body.writes) {
        for (const [table, keys] of tables) {
          const group = merged.get(ledger)?.get(table);
          for (const [hex, wr] of keys) {
            const prior = group?.get(hex);
            let prev = prior?.prev ?? 0;
            let live = prior?.live ?? false;
            if (prior === undefined) {
              const cur = reader.read(ledger, table, wr.key);
              prev = cur?.index ?? 0;
              live = cur?.value !== undefined;
            }
            const liveNow = prior ? prior.value !== undefined : live;
            // A remove of a key with no live value adds nothing (§11.4).
            if (wr.value === undefined && !liveNow) continue;
            accepted.push([ledger, table, hex, { ...wr, prev, live }]);
          }
        }
      }
      for (const [ledger, table, hex, gw] of accepted) {
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
        byTable.set(hex, gw);
      }
    },

    finish() {
      const index = base.index + 1;
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
            // Set then removed within the group, with no live value before it: nothing.
            if (gw.value === undefined && !gw.live) continue;
            const value = encodeVersion({ index, prev: gw.prev, value: gw.value });
            ops.push({ type: 'put', path: gw.path, salt: salts.salt(gw.key), key: gw.key, value });
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
      if (adminOps.length === 0) return base;
      const a = levels.admin;
      const top = integrityAt('admin trie', () => a.trie.update(base.stateHash, adminOps));
      const vk = a.keyring.table(VERSIONS_TRIE);
      const key = u64(index);
      const vop: TrieOp = {
        type: 'put',
        path: vk.path(key),
        salt: vk.salt(key),
        key,
        value: encodeRootValue(top.root),
      };
      const ver = integrityAt('version index', () => a.trie.update(base.versionsRoot, [vop]));
      made.push([a, top.records], [a, ver.records]);
      for (const [l, records] of made) for (const r of records) l.pending.set(hexKey(r.hash), r);
      // Plain Uint8Array copies (the trie's hashes may be Buffers).
      return {
        index,
        stateHash: Uint8Array.from(top.root),
        versionsRoot: Uint8Array.from(ver.root),
      };
    },
  };
}

function hexKey(b: Uint8Array): string {
  let s = '';
  for (const x of b) s += x.toString(16).padStart(2, '0');
  return s;
}
