/**
 * Restart without trusting the disk (issue 4 item 6): every tampering of the stored log gives its
 * own error naming the first bad entry; a whole-store restore is caught by the epoch counter; a
 * kill between sealing a checkpoint and bumping the counter neither bricks the node nor opens a
 * rollback.
 */
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { test } from 'node:test';
import type { IterateOptions, StoreEntry } from '@cloister/boundary';
import {
  CborTag,
  decodeEntry,
  decodeSign1,
  ENTRY_KIND,
  encodeCbor,
  encodeEntry,
  type LogEntry,
  LogEntryAlteredError,
  LogEntryMissingError,
  LogEntryReorderedError,
  LogSignatureError,
  LogTailCutError,
  RollbackDetectedError,
  sha256,
  verifyReceipt,
} from '@cloister/core';
import { LedgerIntegrityError } from '../src/ledger/errors.js';
import { ROOT_STORE_KEY } from '../src/ledger/ledger/index.js';
import { logStoreKey, READ_RANGE, signCose } from '../src/log/index.js';
import { LEAF_CACHE_ENTRIES, LeafCache } from '../src/log/receipts.js';
import {
  CONSTRAINT,
  dump,
  genesis,
  memoryStore,
  newNode,
  put,
  restart,
  storeOf,
  type World,
} from './log-helpers.js';

/**
 * A service with entries 1 genesis, 2 sig, 3..6 tx, 7 sig, 8..9 tx, 10 sig, 11..12 tx (unsigned),
 * closed. Returns the world to tamper with.
 */
async function built(): Promise<World & { size: number; signatures: number[] }> {
  const w = await genesis({ signEvery: 1000 });
  const e = w.service.engine;
  for (let i = 0; i < 4; i++) await put(e, `a${i}`, `v${i}`);
  await w.service.tick();
  for (let i = 0; i < 2; i++) await put(e, `b${i}`, `v${i}`);
  await w.service.tick();
  for (let i = 0; i < 2; i++) await put(e, `c${i}`, `v${i}`);
  const size = w.service.status().index;
  assert.equal(size, 12);
  w.service.close();
  return { ...w, size, signatures: [2, 7, 10] };
}

function read(w: World, index: number): Uint8Array {
  const b = w.store.get(logStoreKey(index));
  assert.ok(b);
  return b;
}

async function putRaw(w: World, index: number, value: Uint8Array): Promise<void> {
  await w.store.write([{ type: 'put', key: logStoreKey(index), value }], { sync: true });
}

async function del(w: World, index: number): Promise<void> {
  await w.store.write([{ type: 'del', key: logStoreKey(index) }], { sync: true });
}

function named<E extends Error>(
  cls: new (...a: never[]) => E,
  index?: number,
): (e: unknown) => boolean {
  return (e: unknown) => {
    assert.ok(e instanceof cls, `expected ${cls.name}, got ${String(e)}`);
    if (index !== undefined) assert.equal((e as unknown as { index: number }).index, index);
    return true;
  };
}

test('an untouched log restarts', async () => {
  const w = await built();
  const again = await restart(w);
  assert.equal(again.service.status().index, w.size);
});

test('an untouched log whose signature entry starts a group with transactions restarts', async () => {
  // A signature entry signs the state before it, not the state its group ends in.
  const w = await genesis({ signEvery: 1000 });
  const e = w.service.engine;
  await put(e, 'a', '1');
  const first = put(e, 'b', '2');
  const group = [w.service.tick(), put(e, 'c', '3'), put(e, 'd', '4')];
  await Promise.all([first, ...group]);
  const size = w.service.status().index;
  w.service.close();
  const again = await restart(w);
  assert.equal(again.service.status().index, size);
  again.service.close();
});

test('one byte altered in a transaction entry: LogEntryAlteredError at that entry', async () => {
  const w = await built();
  const e = decodeEntry(read(w, 4));
  const ws = e.writeSet.slice();
  ws[20] = (ws[20] as number) ^ 1;
  await putRaw(w, 4, encodeEntry({ ...e, writeSet: ws }));
  await assert.rejects(restart(w), named(LogEntryAlteredError, 4));
});

test('two entries altered: the first one is named', async () => {
  const w = await built();
  for (const i of [9, 4]) {
    const e = decodeEntry(read(w, i));
    await putRaw(w, i, encodeEntry({ ...e, meta: { ...e.meta, app: 'forged' } }));
  }
  await assert.rejects(restart(w), named(LogEntryAlteredError, 4));
});

test('the prev hash of an entry altered: LogEntryAlteredError at that entry', async () => {
  const w = await built();
  const e = decodeEntry(read(w, 5));
  const prev = e.prev.slice();
  prev[0] = (prev[0] as number) ^ 1;
  await putRaw(w, 5, encodeEntry({ ...e, prev }));
  await assert.rejects(restart(w), named(LogEntryAlteredError, 5));
});

test('the last entry altered: LogEntryAlteredError at it (checked against the checkpoint)', async () => {
  const w = await built();
  const e = decodeEntry(read(w, w.size));
  await putRaw(w, w.size, encodeEntry({ ...e, meta: { ...e.meta, app: 'other' } }));
  await assert.rejects(restart(w), named(LogEntryAlteredError, w.size));
});

test('an entry that no longer decodes: LogEntryAlteredError at it', async () => {
  const w = await built();
  const b = read(w, 6).slice();
  b[0] = 0xff;
  await putRaw(w, 6, b);
  await assert.rejects(restart(w), named(LogEntryAlteredError, 6));
});

test('a missing entry: LogEntryMissingError at it', async () => {
  const w = await built();
  await del(w, 5);
  await assert.rejects(restart(w), named(LogEntryMissingError, 5));
});

test('a stray key for index 0: LogEntryAlteredError at entry 1, as the offline audit says', async () => {
  const w = await built();
  await putRaw(w, 0, read(w, 1));
  await assert.rejects(restart(w), (e: unknown) => {
    named(LogEntryAlteredError, 1)(e);
    assert.match((e as Error).message, /a log key for index 0 sits at entry 1/);
    return true;
  });
});

test('two entries swapped: LogEntryReorderedError at the first', async () => {
  const w = await built();
  const a = read(w, 8);
  const b = read(w, 9);
  await putRaw(w, 8, b);
  await putRaw(w, 9, a);
  await assert.rejects(restart(w), named(LogEntryReorderedError, 8));
});

test('the tail cut: LogTailCutError at the first absent entry', async () => {
  const w = await built();
  await del(w, w.size);
  await del(w, w.size - 1);
  await assert.rejects(restart(w), named(LogTailCutError, w.size - 1));
});

test('the last entry cut: LogTailCutError at it', async () => {
  const w = await built();
  await del(w, w.size);
  await assert.rejects(restart(w), named(LogTailCutError, w.size));
});

test('an entry altered and the next one re-linked to it: the altered entry is named, by its own check', async () => {
  // The chain alone would name the re-linked entry (its link out is the broken one).
  const cases: [string, number, (e: LogEntry, w: World) => LogEntry, RegExp][] = [
    ['another term', 4, (e) => ({ ...e, term: e.term + 1 }), /^log entry 4 has term \d+$/],
    [
      'a transaction entry in place of the genesis entry',
      1,
      (e, w) => ({ ...decodeEntry(read(w, 3)), index: 1, prev: e.prev }),
      /^log entry 1 is not a genesis entry$/,
    ],
    [
      'a genesis entry naming another service key',
      1,
      (e) => ({ ...e, meta: { ...e.meta, svc: newNode().publicKey } }),
      /^the genesis entry names another service key$/,
    ],
    [
      'a second genesis entry',
      4,
      (e, w) => ({ ...decodeEntry(read(w, 1)), index: 4, prev: e.prev }),
      /^log entry 4 is a second genesis entry$/,
    ],
  ];
  for (const [what, at, change, message] of cases) {
    const w = await built();
    const altered = encodeEntry(change(decodeEntry(read(w, at)), w));
    await putRaw(w, at, altered);
    const next = decodeEntry(read(w, at + 1));
    await putRaw(w, at + 1, encodeEntry({ ...next, prev: sha256(altered) }));
    await assert.rejects(restart(w), (e: unknown) => {
      named(LogEntryAlteredError, at)(e);
      assert.match((e as Error).message, message, what);
      return true;
    });
  }
});

test('service.sealed from before a secret rotation, the log ending at its rotation entry: RollbackDetectedError', async () => {
  const w = await genesis();
  await put(w.service.engine, 'a', '1');
  const rot = await w.service.rotateSecret();
  const at = Number(rot.txid.split('.')[1]);
  assert.equal(w.service.status().index, at);
  w.service.close();
  // The host keeps the service state sealed before the rotation (generation 0 only). Nothing
  // committed after the rotation entry: a later commit writes ledger records under generation 1,
  // and the ledger's root check refuses those first (LedgerIntegrityError).
  await assert.rejects(restart(w), (e: unknown) => {
    named(RollbackDetectedError)(e);
    assert.match(
      (e as Error).message,
      new RegExp(
        `^log entry ${at} rotated to secret generation 1, which the sealed service state does not hold`,
      ),
    );
    return true;
  });
  // The state sealed at the rotation starts.
  (await restart({ ...w, sealed: rot.sealedService })).service.close();
});

test('service.sealed from before a secret rotation, with commits after it: the ledger error names the rollback', async () => {
  const w = await genesis();
  await put(w.service.engine, 'a', '1');
  await w.service.rotateSecret();
  await put(w.service.engine, 'b', '2');
  w.service.close();
  // Records written after the rotation are under generation 1, which the old state lacks: the
  // ledger refuses them before the log is read, and says what that most likely means.
  await assert.rejects(restart(w), (e: unknown) => {
    assert.ok(e instanceof LedgerIntegrityError, String(e));
    assert.match(
      e.message,
      /key generation 1, newer than this ledger's secrets \(up to 0\): the sealed service state is older than the ledger \(service\.sealed restored from before a secret rotation: a rollback\), or the record was altered/,
    );
    return true;
  });
});

test('a forged signature entry: LogSignatureError at it', async () => {
  const w = await built();
  const e = decodeEntry(read(w, 7));
  assert.equal(e.kind, ENTRY_KIND.signature);
  // The same payload (root and state hash of the log), signed by another key.
  const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const forged = signCose(privateKey, decodeSign1(e.sig).payload);
  await putRaw(w, 7, encodeEntry({ ...e, sig: forged }));
  await assert.rejects(restart(w), named(LogSignatureError, 7));
});

test('the last entry a forged signature entry: LogSignatureError at it, as anywhere else', async () => {
  const w = await genesis();
  assert.equal(w.service.status().index, 2);
  w.service.close();
  const e = decodeEntry(read(w, 2));
  assert.equal(e.kind, ENTRY_KIND.signature);
  const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  await putRaw(w, 2, encodeEntry({ ...e, sig: signCose(privateKey, decodeSign1(e.sig).payload) }));
  await assert.rejects(restart(w), named(LogSignatureError, 2));
});

test('a genuine signature entry moved to another position: LogSignatureError naming the size it signs', async () => {
  const w = await built();
  const e = decodeEntry(read(w, 10));
  await putRaw(w, 10, encodeEntry({ ...e, sig: decodeEntry(read(w, 7)).sig }));
  await assert.rejects(restart(w), (err: unknown) => {
    named(LogSignatureError, 10)(err);
    assert.match(
      (err as Error).message,
      /^signature entry 10: it signs term (\d+) size 6, not term \1 size 9$/,
    );
    return true;
  });
});

test('a signature entry re-encoded with an unprotected header (same signature): LogSignatureError', async () => {
  const w = await built();
  const e = decodeEntry(read(w, 7));
  const d = decodeSign1(e.sig);
  const extra = new Map<unknown, unknown>([[4, Uint8Array.of(0)]]);
  const reshaped = encodeCbor(new CborTag(18, [d.protectedBytes, extra, d.payload, d.signature]));
  await putRaw(w, 7, encodeEntry({ ...e, sig: reshaped }));
  await assert.rejects(restart(w), (err: unknown) => {
    named(LogSignatureError, 7)(err);
    assert.match((err as Error).message, /unprotected header must be empty/);
    return true;
  });
});

test('an entry beyond the sealed checkpoint: RollbackDetectedError', async () => {
  const w = await built();
  const e = decodeEntry(read(w, w.size));
  await putRaw(w, w.size + 1, encodeEntry({ ...e, index: w.size + 1 }));
  await assert.rejects(restart(w), named(RollbackDetectedError));
});

test('keys planted beyond the checkpoint in bulk are not all read before the restart refuses', async () => {
  const w = await built();
  const e = decodeEntry(read(w, w.size));
  const planted = 3 * READ_RANGE;
  const junk = encodeEntry({ ...e, index: w.size + 1 });
  for (let at = 0; at < planted; at += 1000) {
    const ops = [];
    for (let i = at; i < Math.min(planted, at + 1000); i++) {
      ops.push({ type: 'put' as const, key: logStoreKey(w.size + 1 + i), value: junk });
    }
    await w.store.write(ops, { sync: true });
  }
  let yielded = 0;
  type Iterating = { iterate(o?: IterateOptions): AsyncIterable<StoreEntry> };
  const target = w.store as unknown as Iterating;
  const iterate = target.iterate.bind(target);
  target.iterate = async function* (o?: IterateOptions) {
    for await (const x of iterate(o)) {
      yielded++;
      yield x;
    }
  };
  await assert.rejects(restart(w), named(RollbackDetectedError));
  assert.ok(yielded <= READ_RANGE + 1, `read ${yielded} log keys, of ${w.size + planted}`);
});

test('a whole-store restore to an older copy: RollbackDetectedError (epoch counter)', async () => {
  const w = await built();
  const old = await dump(w.store);
  const second = await restart(w);
  await put(second.service.engine, 'after', 'restore');
  second.service.close();
  const restored = { ...w, store: await storeOf(old) };
  await assert.rejects(restart(restored), named(RollbackDetectedError));
  // The current copy still starts.
  await restart(w);
});

test('a kill between sealing the checkpoint and bumping the counter: the node restarts', async () => {
  const w = await built();
  const older = await dump(w.store);
  const counterName = [...w.platform.counters.keys()][0] as string;
  assert.equal(w.platform.counters.get(counterName), 1);
  // The restart seals a checkpoint of epoch 2, then "dies" before the increment lands.
  const dying = {
    ...w.platform,
    counterIncrement: async () => {
      throw new Error('killed');
    },
  };
  await assert.rejects(restart({ ...w, platform: { ...w.platform, ...dying } }), /killed/);
  assert.equal(w.platform.counters.get(counterName), 1);
  // Next start: epoch 2 = counter + 1, the bump is finished, then epoch 3 begins.
  const events: string[] = [];
  const again = await restart(w, { log: (_l, ev) => events.push(ev) });
  assert.ok(events.includes('service.epoch-recovered'));
  assert.equal(again.service.status().epoch, 3);
  assert.equal(w.platform.counters.get(counterName), 3);
  again.service.close();
  // The window opened no rollback: the copy from before the kill (epoch 1) is refused.
  await assert.rejects(
    restart({ ...w, store: await storeOf(older) }),
    named(RollbackDetectedError),
  );
});

test('a store copied during genesis (root record of index 0, no entries) is a rollback', async () => {
  // The host copies the store right after genesis wrote its first root record (index 0, before
  // entry 1), lets genesis finish, then restores the copy beside the now-sealed service state.
  const store = await memoryStore();
  let copy: Awaited<ReturnType<typeof dump>> | undefined;
  const write = store.write.bind(store);
  store.write = async (ops, o) => {
    await write(ops, o);
    if (copy === undefined && store.get(ROOT_STORE_KEY) !== undefined) copy = await dump(store);
  };
  const g = await genesis({}, store);
  assert.equal(g.service.status().index, 2);
  g.service.close();
  assert.ok(copy !== undefined);
  const w = { ...g, store: await storeOf(copy) };
  await assert.rejects(restart(w), (e: unknown) => {
    assert.ok(e instanceof RollbackDetectedError);
    assert.match(e.message, /0 log entries.*before genesis finished/);
    return true;
  });
  // The real store still starts.
  (await restart({ ...w, store })).service.close();
});

test('the reverse order (counter bumped, checkpoint not sealed) is a rollback', async () => {
  const w = await built();
  const counterName = [...w.platform.counters.keys()][0] as string;
  await w.platform.counterIncrement(counterName);
  await assert.rejects(restart(w), named(RollbackDetectedError));
});

test('a signature altered in the store while running: the receipt is refused, not forged', async () => {
  const w = await genesis();
  const r = await put(w.service.engine, 'x', 'y');
  await w.service.tick();
  const s = r.index + 1;
  const e = decodeEntry(read(w, s));
  const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  await putRaw(w, s, encodeEntry({ ...e, sig: signCose(privateKey, decodeSign1(e.sig).payload) }));
  assert.throws(() => w.service.receipt(r.txid), named(LogEntryAlteredError, s));
  await putRaw(w, s, encodeEntry(e));
  assert.ok(w.service.receipt(r.txid).length > 0);
});

test('a receipt reads its entry back once: later ones use the checked leaf; one never read is still checked', async () => {
  // A receipt of an entry of megabytes read and hashed it whole on every request.
  const w = await genesis();
  const a = await put(w.service.engine, 'a', '1');
  const b = await put(w.service.engine, 'b', '2');
  await w.service.tick();
  const first = w.service.receipt(a.txid);
  const entryA = read(w, a.index);
  // Gone from the store after its leaf was checked: the receipt is the same, from the leaf.
  await del(w, a.index);
  assert.deepEqual(w.service.receipt(a.txid), first);
  await verifyReceipt(first, { constraint: CONSTRAINT });
  // An entry whose receipt was never made is read back and checked as before.
  await putRaw(w, b.index, entryA);
  assert.throws(() => w.service.receipt(b.txid), named(LogEntryReorderedError));
});

test('LeafCache keeps the most recently used LEAF_CACHE_ENTRIES leaves', () => {
  const c = new LeafCache();
  const leaf = (i: number) => ({
    term: 1,
    index: i,
    kind: ENTRY_KIND.transaction,
    metaDigest: new Uint8Array(32),
    writeSetDigest: new Uint8Array(32),
    claims: new Uint8Array(32),
  });
  for (let i = 1; i <= LEAF_CACHE_ENTRIES; i++) c.set(i, leaf(i));
  assert.equal(c.get(1)?.index, 1); // used: now the newest
  c.set(LEAF_CACHE_ENTRIES + 1, leaf(LEAF_CACHE_ENTRIES + 1));
  assert.equal(c.size, LEAF_CACHE_ENTRIES);
  assert.equal(c.get(2), undefined, 'the oldest-used went');
  assert.equal(c.get(1)?.index, 1);
  assert.equal(c.get(LEAF_CACHE_ENTRIES + 1)?.index, LEAF_CACHE_ENTRIES + 1);
});

test('entry(i) read back: a signature altered in the store is refused; prev is as stored', async () => {
  const w = await genesis();
  const r = await put(w.service.engine, 'x', 'y');
  await w.service.tick();
  const s = r.index + 1;
  assert.equal(w.service.log.entry(s).kind, ENTRY_KIND.signature);
  const e = decodeEntry(read(w, s));
  const forged = e.sig.slice();
  forged[forged.length - 1] = (forged[forged.length - 1] as number) ^ 1;
  await putRaw(w, s, encodeEntry({ ...e, sig: forged }));
  assert.throws(() => w.service.log.entry(s), named(LogEntryAlteredError, s));
  // Leaf fields are checked: a write set altered is refused too.
  const t = decodeEntry(read(w, r.index));
  const ws = t.writeSet.slice();
  ws[0] = (ws[0] as number) ^ 1;
  await putRaw(w, r.index, encodeEntry({ ...t, writeSet: ws }));
  assert.throws(() => w.service.log.entry(r.index), named(LogEntryAlteredError, r.index));
  // `prev` is outside the leaf: returned as stored (documented); the restart check names it.
  await putRaw(w, r.index, encodeEntry({ ...t, prev: new Uint8Array(32).fill(0xaa) }));
  assert.deepEqual(w.service.log.entry(r.index).prev, new Uint8Array(32).fill(0xaa));
  w.service.close();
  await assert.rejects(restart(w), named(LogEntryAlteredError, r.index));
});

test('entry(i) read back: another entry stored at i is LogEntryReorderedError, naming both', async () => {
  const w = await genesis();
  const r = await put(w.service.engine, 'x', 'y');
  await w.service.tick();
  const s = r.index + 1;
  await putRaw(w, r.index, read(w, s));
  assert.throws(
    () => w.service.log.entry(r.index),
    (e: unknown) =>
      named(LogEntryReorderedError, r.index)(e) &&
      (e as Error).message === `the store holds entry ${s} at ${r.index}`,
  );
});

test('entry(i) read back: an entry gone from the store, or no longer decoding, is named (coverage gap)', async () => {
  const w = await genesis();
  const r = await put(w.service.engine, 'x', 'y');
  await w.service.tick();
  const s = r.index + 1;
  const sig = read(w, s);
  await del(w, s);
  assert.throws(
    () => w.service.log.entry(s),
    (e: unknown) =>
      named(LogEntryMissingError, s)(e) &&
      (e as Error).message === `log entry ${s} is missing from the store`,
  );
  // The receipt needs that signature entry: refused by name, never served without it.
  assert.throws(() => w.service.receipt(r.txid), named(LogEntryMissingError, s));
  await putRaw(w, r.index, Uint8Array.of(0x83, 0x01));
  assert.throws(
    () => w.service.log.entry(r.index),
    (e: unknown) =>
      named(LogEntryAlteredError, r.index)(e) &&
      (e as Error).message === `log entry ${r.index} does not decode`,
  );
  assert.throws(() => w.service.log.writeSet(r.index), named(LogEntryAlteredError, r.index));
  await putRaw(w, s, sig);
  assert.equal(w.service.log.entry(s).kind, ENTRY_KIND.signature);
  // Beyond the log, or not an index: an unknown transaction, nothing read.
  for (const i of [0, s + 1, 1.5]) {
    assert.throws(() => w.service.log.entry(i), { code: 'UNKNOWN_TRANSACTION' });
    assert.throws(() => w.service.log.writeSet(i), { code: 'UNKNOWN_TRANSACTION' });
  }
});

test('read in ranges of 1 to 5 entries, every tampering is named as when read in one range', async () => {
  // open reads the log as ranges of indexes read ahead (4096 by default); they must tile the
  // namespace exactly, malformed keys, gaps and cut tails included.
  const cases: [string, (w: World) => Promise<void>][] = [
    ['untouched', async () => {}],
    ['missing entry', (w) => del(w, 5)],
    [
      'gap of four',
      async (w) => {
        for (const i of [4, 5, 6, 7]) await del(w, i);
      },
    ],
    [
      'tail cut',
      async (w) => {
        for (const i of [12, 11, 10, 9]) await del(w, i);
      },
    ],
    [
      'swapped',
      async (w) => {
        const a = read(w, 8);
        await putRaw(w, 8, read(w, 9));
        await putRaw(w, 9, a);
      },
    ],
    [
      'altered',
      async (w) => {
        const e = decodeEntry(read(w, 6));
        await putRaw(w, 6, encodeEntry({ ...e, meta: { ...e.meta, app: 'forged' } }));
      },
    ],
    [
      'malformed key',
      (w) =>
        w.store.write(
          [{ type: 'put', key: Uint8Array.of(...logStoreKey(6), 0), value: read(w, 6) }],
          { sync: true },
        ),
    ],
    [
      'beyond the checkpoint',
      async (w) => {
        const e = decodeEntry(read(w, 12));
        await putRaw(w, 12 + 9, encodeEntry({ ...e, index: 12 + 9 }));
      },
    ],
  ];
  const outcome = async (w: World, range?: number): Promise<string> => {
    try {
      const r = await restart(w, range === undefined ? {} : { logReadRange: range });
      r.service.close();
      return `opened ${r.service.status().index}`;
    } catch (e) {
      return `${(e as Error).name} ${(e as { index?: number }).index} ${(e as Error).message}`;
    }
  };
  for (const [what, tamper] of cases) {
    const w = await built();
    await tamper(w);
    const old = await dump(w.store);
    // Each start begins an epoch: every variant starts from the same store and counter.
    const fresh = async (): Promise<World> => {
      const c = new Map(w.platform.counters);
      const platform = {
        ...w.platform,
        counters: c,
        async counterRead(name: string) {
          return c.get(name) ?? 0;
        },
        async counterIncrement(name: string) {
          const v = (c.get(name) ?? 0) + 1;
          c.set(name, v);
          return v;
        },
      };
      return { ...w, platform, store: await storeOf(old) };
    };
    const expected = await outcome(await fresh());
    for (const range of [1, 2, 3, 5]) {
      assert.equal(await outcome(await fresh(), range), expected, `${what}, ranges of ${range}`);
    }
  }
});
