import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { test } from 'node:test';
import {
  auditLog,
  claimsDigest,
  decodeEntry,
  ENTRY_KIND,
  isCloisterError,
  verifyConsistency,
  verifyReceipt,
} from '@cloister/core';
import { ROOT_STORE_KEY } from '../src/ledger/ledger/index.js';
import { logStoreKey, ReceiptNotReadyError, UnknownTransactionError } from '../src/log/index.js';
import { CONSTRAINT, fakePlatform, genesis, put, restart, te } from './log-helpers.js';

function storedEntry(store: { get(k: Uint8Array): Uint8Array | undefined }, index: number) {
  const b = store.get(logStoreKey(index));
  assert.ok(b, `entry ${index} is stored`);
  return decodeEntry(b);
}

function kinds(store: { get(k: Uint8Array): Uint8Array | undefined }, n: number): number[] {
  const out: number[] = [];
  for (let i = 1; i <= n; i++) out.push(storedEntry(store, i).kind);
  return out;
}

test('genesis: entry 1 names the service key, entry 2 signs it, epoch 1 begun', async () => {
  const w = await genesis();
  const s = w.service.status();
  assert.equal(s.index, 2);
  assert.equal(s.term, 1);
  assert.equal(s.lastSigned, 1);
  assert.equal(s.epoch, 1);
  assert.equal(s.generation, 0);
  assert.ok(w.sealed.length > 0, 'the host must persist the new service state');
  const g = storedEntry(w.store, 1);
  assert.equal(g.kind, ENTRY_KIND.genesis);
  assert.deepEqual(g.meta.svc, w.service.servicePublicKey);
  assert.ok(g.meta.end && g.meta.ev);
  assert.equal(storedEntry(w.store, 2).kind, ENTRY_KIND.signature);
  assert.deepEqual([...w.platform.counters.values()], [1]);
});

test('a signature every signEvery entries; tick signs only when unsigned entries exist', async () => {
  const w = await genesis({ signEvery: 3 });
  const e = w.service.engine;
  for (let i = 0; i < 7; i++) await put(e, `k${i}`, `v${i}`);
  // Let queued signatures land.
  await w.service.tick();
  const n = w.service.status().index;
  const ks = kinds(w.store, n);
  const sig = ENTRY_KIND.signature;
  const tx = ENTRY_KIND.transaction;
  // genesis, sig, then 3 tx + sig, 3 tx + sig, 1 tx + (tick) sig.
  assert.deepEqual(ks, [1, sig, tx, tx, tx, sig, tx, tx, tx, sig, tx, sig]);
  // Nothing unsigned: tick adds nothing.
  await w.service.tick();
  assert.equal(w.service.status().index, n);
  assert.equal(w.service.log.unsigned, 0);
  await put(e, 'one', 'more');
  assert.equal(w.service.log.unsigned, 1);
  await w.service.tick();
  assert.equal(w.service.status().index, n + 2);
  assert.equal(storedEntry(w.store, n + 2).kind, sig);
  assert.equal(w.service.status().lastSigned, n + 1);
});

test('receipts: not before a signature, verify offline after the service is closed', async () => {
  const w = await genesis();
  const salt = new Uint8Array(randomBytes(32));
  const claims = { salt, request: te('req'), response: te('resp'), codeId: new Uint8Array(32) };
  const tx = w.service.engine.begin();
  tx.set('app', 't', te('k'), te('v'));
  const r = await tx.commit({ claims: claimsDigest(claims), app: 'app' });
  assert.throws(() => w.service.receipt(r.txid), ReceiptNotReadyError);
  assert.throws(() => w.service.receipt(`1.${r.index + 5}`), UnknownTransactionError);
  await w.service.tick();
  const receipt = w.service.receipt(r.txid);
  const first = w.service.receipt('1.1');
  w.service.close();
  const v = await verifyReceipt(receipt, {
    constraint: CONSTRAINT,
    service: w.service.serviceIdentity,
    claims,
  });
  assert.equal(v.txid, r.txid);
  assert.equal(v.index, r.index);
  assert.deepEqual(v.stateHash, r.stateHash);
  assert.deepEqual(v.servicePublicKey, w.service.servicePublicKey);
  const g = await verifyReceipt(first, { constraint: CONSTRAINT });
  assert.equal(g.kind, ENTRY_KIND.genesis);
  // One byte changed: refused.
  const bad = receipt.slice();
  bad[bad.length - 70] = (bad[bad.length - 70] as number) ^ 1;
  await assert.rejects(verifyReceipt(bad, { constraint: CONSTRAINT }), (e: unknown) =>
    isCloisterError(e),
  );
  // Another client's claims: refused.
  await assert.rejects(
    verifyReceipt(receipt, { constraint: CONSTRAINT, claims: { ...claims, response: te('x') } }),
    (e: unknown) => isCloisterError(e, 'RECEIPT'),
  );
});

test('consistency proofs between signed sizes verify with core', async () => {
  const w = await genesis();
  const a = w.service.status().lastSigned;
  const rootA = w.service.log.root(a);
  for (let i = 0; i < 5; i++) await put(w.service.engine, `k${i}`, 'v');
  await w.service.tick();
  const b = w.service.status().lastSigned;
  const proof = w.service.consistency(a, b);
  verifyConsistency(a, b, rootA, w.service.log.root(b), proof);
  assert.throws(() => w.service.consistency(a, b + 2));
  // Committed but not signed yet: in the tree, yet no proof reaches into the unsigned tail (the
  // window the host could still cut, DESIGN.md §11), nor runs backwards.
  await put(w.service.engine, 'tail', 'v');
  const st = w.service.status();
  assert.ok(st.index > st.lastSigned, `an unsigned tail: ${st.index} > ${st.lastSigned}`);
  const beyond = {
    code: 'INVALID_INPUT',
    message: /needs 0 <= old <= new <= \d+ \(the last signed size\)/,
  };
  assert.throws(() => w.service.consistency(a, st.index), beyond);
  assert.throws(() => w.service.consistency(st.lastSigned, st.lastSigned + 1), beyond);
  assert.throws(() => w.service.consistency(b, a), beyond);
  assert.throws(() => w.service.consistency(-1, b), beyond);
});

test('restart: the log verifies, a new epoch begins, receipts still verify', async () => {
  const w = await genesis();
  const r = await put(w.service.engine, 'a', '1');
  await w.service.tick();
  const before = w.service.status();
  w.service.close();
  const again = await restart(w);
  assert.equal(again.sealedService.length, 0);
  const s = again.service.status();
  assert.equal(s.index, before.index);
  assert.deepEqual(s.treeRoot, before.treeRoot);
  assert.deepEqual(s.stateHash, before.stateHash);
  assert.equal(s.epoch, 2);
  assert.equal([...w.platform.counters.values()][0], 2);
  await verifyReceipt(again.service.receipt(r.txid), { constraint: CONSTRAINT });
  assert.deepEqual(again.service.log.writeSet(r.index), [
    { ledger: 'app', table: 't', key: te('a'), value: te('1') },
  ]);
  const r2 = await put(again.service.engine, 'b', '2');
  assert.equal(r2.index, s.index + 1);
});

test('a commit whose batch would pass the store cap is refused alone; the log goes on, signs and restarts', async () => {
  // The real log staged the group's entries before the engine found the batch too large: they
  // are settled unwritten, so the next commit takes the same index and the chain stays whole.
  const engine = { cacheBytes: 1 << 20, maxBatch: { bytes: 8_000, ops: 1000 } };
  const w = await genesis({ engine });
  const a = await put(w.service.engine, 'a', '1');
  await assert.rejects(put(w.service.engine, 'big', 'x'.repeat(9_000)), {
    code: 'TX_TOO_LARGE',
  });
  const b = await put(w.service.engine, 'b', '2');
  assert.equal(b.index, a.index + 1);
  await w.service.tick();
  await verifyReceipt(w.service.receipt(b.txid), { constraint: CONSTRAINT });
  const before = w.service.status();
  w.service.close();
  const again = await restart(w, { engine });
  assert.equal(again.service.status().index, before.index);
  assert.deepEqual(again.service.status().treeRoot, before.treeRoot);
  assert.deepEqual(again.service.log.writeSet(b.index), [
    { ledger: 'app', table: 't', key: te('b'), value: te('2') },
  ]);
  assert.equal(again.service.engine.at().get('app', 't', te('big')), undefined);
});

test('secret rotation: new entries use the new generation, old ones still decrypt and prove', async () => {
  const w = await genesis();
  const old = await put(w.service.engine, 'a', 'old');
  await w.service.tick();
  const oldReceipt = w.service.receipt(old.txid);
  const persisted: Uint8Array[] = [];
  const rot = await w.service.rotateSecret(async (b) => {
    // The new state is durable before the rotation entry commits.
    assert.equal(w.service.status().generation, 0);
    persisted.push(b);
  });
  assert.equal(rot.generation, 1);
  assert.deepEqual(persisted, [rot.sealedService]);
  const rotEntry = storedEntry(w.store, Number(rot.txid.split('.')[1]));
  assert.equal(rotEntry.kind, ENTRY_KIND.rotation);
  assert.equal(rotEntry.meta.rot, 1);
  const fresh = await put(w.service.engine, 'b', 'new');
  assert.equal(storedEntry(w.store, fresh.index).meta.gen, 1);
  assert.equal(storedEntry(w.store, old.index).meta.gen, 0);
  assert.equal(w.service.status().generation, 1);
  await w.service.tick();
  await verifyReceipt(oldReceipt, { constraint: CONSTRAINT });
  await verifyReceipt(w.service.receipt(old.txid), { constraint: CONSTRAINT });
  await verifyReceipt(w.service.receipt(fresh.txid), { constraint: CONSTRAINT });
  w.service.close();
  // Restart with the rotated state: both generations decrypt; the engine reads both.
  const again = await restart({ ...w, sealed: rot.sealedService });
  assert.equal(again.service.status().generation, 1);
  assert.deepEqual(again.service.log.writeSet(old.index)[0]?.value, te('old'));
  assert.deepEqual(again.service.log.writeSet(fresh.index)[0]?.value, te('new'));
  assert.deepEqual(again.service.engine.at().get('app', 't', te('a')), te('old'));
  assert.deepEqual(again.service.engine.at().get('app', 't', te('b')), te('new'));
  const later = await put(again.service.engine, 'c', 'later');
  assert.equal(storedEntry(w.store, later.index).meta.gen, 1);
});

test('a kill between persisting the rotated state and the rotation entry leaves the generation unused', async () => {
  const w = await genesis();
  await put(w.service.engine, 'a', '1');
  let blob: Uint8Array | undefined;
  await assert.rejects(
    w.service.rotateSecret(async (b) => {
      blob = b;
      throw new Error('killed after the host wrote service.sealed');
    }),
    /killed/,
  );
  w.service.close();
  assert.ok(blob !== undefined);
  // The node restarts with the new sealed state (it holds generations 0 and 1); no rotation entry
  // announced 1, so the log and the engine both stay on 0 (docs/logchain.md §8).
  const again = await restart({ ...w, sealed: blob });
  assert.equal(again.service.status().generation, 0);
  assert.equal(again.service.engine.generation, 0);
  const records = new Set<string>();
  for await (const e of w.store.iterate()) records.add(Buffer.from(e.key).toString('hex'));
  const b = await put(again.service.engine, 'b', '2');
  assert.equal(storedEntry(w.store, b.index).meta.gen, 0);
  let fresh = 0;
  for await (const e of w.store.iterate()) {
    if (e.key[0] !== 0x01 || records.has(Buffer.from(e.key).toString('hex'))) continue;
    fresh++;
    assert.equal(Buffer.from(e.value).readUInt32BE(1), 0, 'a new ledger record uses generation 0');
  }
  assert.ok(fresh > 0);
  again.service.close();
  // So the older sealed state, which lacks generation 1, still opens everything (nothing used 1).
  const older = await restart(w);
  assert.deepEqual(older.service.engine.at().get('app', 't', te('b')), te('2'));
  older.service.close();
  // And the next rotation from the newer state takes generation 2 and uses it.
  const third = await restart({ ...w, sealed: blob });
  const rot = await third.service.rotateSecret();
  assert.equal(rot.generation, 2);
  const c = await put(third.service.engine, 'c', '3');
  assert.equal(storedEntry(w.store, c.index).meta.gen, 2);
  assert.equal(third.service.engine.generation, 2);
});

test("the stored log passes core's offline auditor", async () => {
  const w = await genesis({ signEvery: 4 });
  for (let i = 0; i < 9; i++) await put(w.service.engine, `k${i}`, 'v');
  await w.service.rotateSecret();
  await w.service.tick();
  const status = w.service.status();
  w.service.close();
  async function* entries() {
    for await (const e of w.store.iterate()) if (e.key[0] === 0x02) yield e.value;
  }
  const report = await auditLog(entries(), { constraint: CONSTRAINT });
  assert.equal(report.entries, status.index);
  assert.equal(report.lastSigned, status.lastSigned);
  assert.deepEqual(report.service, w.service.serviceIdentity);
});

test('epochEvery: the counter is bumped every K signatures while running', async () => {
  const w = await genesis({ signEvery: 2, epochEvery: 2 });
  const name = [...w.platform.counters.keys()][0] as string;
  assert.equal(w.platform.counters.get(name), 1);
  for (let i = 0; i < 4; i++) await put(w.service.engine, `k${i}`, 'v');
  await w.service.tick();
  // Two signatures since the start (one after every two entries): epoch 2.
  assert.equal(w.platform.counters.get(name), 2);
  assert.equal(w.service.status().epoch, 2);
  w.service.close();
  const again = await restart(w);
  assert.equal(again.service.status().epoch, 3);
  assert.equal(w.platform.counters.get(name), 3);
});

test("the node's own evidence, as platform.report answers it, is checked before it is endorsed (coverage gap)", async () => {
  const honest = fakePlatform();
  // Not evidence at all: a broken platform, or the host relaying it, named as such.
  await assert.rejects(
    genesis({ platform: { ...honest, report: async () => Uint8Array.of(1, 2) } }),
    {
      name: 'EvidenceFormatError',
      message: /platform\.report answered with 2 bytes that are not evidence v1/,
    },
  );
  // Genuine evidence, but of another report: it would bind no key of this node.
  await assert.rejects(
    genesis({ platform: { ...honest, report: () => honest.report(new Uint8Array(64)) } }),
    { name: 'KeyBindingError', message: /evidence of another report/ },
  );
});

test('a start given a store and sealed state that do not go together is refused by name (coverage gap)', async () => {
  const w = await genesis();
  w.service.close();
  // No sealed state (a genesis) on a store that holds a service.
  await assert.rejects(restart({ ...w, sealed: new Uint8Array(0) }), {
    code: 'INVALID_INPUT',
    message: /no sealed service state was given but the store is not empty/,
  });
  // A sealed state on a store that holds no ledger.
  await w.store.write([{ type: 'del', key: ROOT_STORE_KEY }], { sync: true });
  await assert.rejects(restart(w), {
    code: 'INVALID_INPUT',
    message: /a sealed service state was given but the store holds no ledger/,
  });
});

test('epochEvery: a counter moved by another instance while running stops epoch changes, logged (coverage gap)', async () => {
  const events: [number, string][] = [];
  const w = await genesis({
    signEvery: 1,
    epochEvery: 1,
    log: (level, event) => events.push([level, event]),
  });
  const name = [...w.platform.counters.keys()][0] as string;
  // Another instance of the service bumps the counter meanwhile.
  w.platform.counters.set(name, (w.platform.counters.get(name) ?? 0) + 5);
  const moved = w.platform.counters.get(name);
  await put(w.service.engine, 'k0', 'v');
  await w.service.tick();
  // The bump found the counter elsewhere: the change is given up, named in the log.
  assert.deepEqual(
    events.filter(([, e]) => e === 'service.epoch-failed'),
    [[50, 'service.epoch-failed']],
  );
  assert.equal(w.platform.counters.get(name), (moved as number) + 1, 'one increment, then none');
  for (let i = 1; i < 4; i++) await put(w.service.engine, `k${i}`, 'v');
  await w.service.tick();
  assert.equal(
    w.platform.counters.get(name),
    (moved as number) + 1,
    'no epoch change after a failed one',
  );
  assert.equal(events.filter(([, e]) => e === 'service.epoch-failed').length, 1);
  w.service.close();
});
