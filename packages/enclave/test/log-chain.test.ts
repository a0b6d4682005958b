/** The logchain alone (no engine): staging is transactional, formats, write-set encryption. */
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { test } from 'node:test';
import { decodeEntry, ENTRY_KIND, type LogEntry } from '@cloister/core';
import { createLogchain, decodeCheckpoint, type Logchain, logStoreKey } from '../src/log/index.js';
import { rawPublicKey } from '../src/node-state.js';
import { memoryStore, te } from './log-helpers.js';

const BASE = new Uint8Array(32).fill(9);

async function chain() {
  const store = await memoryStore();
  const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const log = createLogchain({
    store,
    serviceKey: privateKey,
    servicePublicKey: rawPublicKey(privateKey),
    secrets: [{ generation: 0, secret: new Uint8Array(32).fill(1) }],
    endorsement: () => ({ end: te('end'), ev: te('ev') }),
  });
  async function commit(items: Parameters<Logchain['stage']>[0]): Promise<void> {
    const puts = log.stage(items, log.size + 1, BASE, BASE);
    await store.write(puts, { sync: true });
    log.settle(true);
  }
  const entry = (i: number): LogEntry => decodeEntry(store.get(logStoreKey(i)) as Uint8Array);
  return { store, log, commit, entry };
}

const write = (k: string, v?: string) => ({
  ledger: 'app',
  table: 't',
  key: te(k),
  value: v === undefined ? undefined : te(v),
});

test('entries: keys 0x02 ‖ u64be(index), write set encrypted with gen and size in meta', async () => {
  const c = await chain();
  await c.commit([{ kind: 'genesis', writes: [] }]);
  await c.commit([{ kind: 'transaction', writes: [write('a', '1'), write('b')], app: 'app' }]);
  assert.deepEqual(logStoreKey(2), Uint8Array.of(2, 0, 0, 0, 0, 0, 0, 0, 2));
  const e = c.entry(2);
  assert.equal(e.kind, ENTRY_KIND.transaction);
  assert.equal(e.meta.gen, 0);
  assert.equal(e.meta.app, 'app');
  assert.ok((e.meta.size ?? 0) > 0);
  assert.equal(e.writeSet.length, 12 + (e.meta.size ?? 0) + 16);
  assert.equal(Buffer.from(e.writeSet).includes(Buffer.from('app')), false);
  assert.deepEqual(c.log.writeSet(2), [write('a', '1'), write('b')]);
  const cp = decodeCheckpoint(c.log.checkpoint());
  assert.equal(cp.size, 2);
  assert.deepEqual(cp.root, c.log.root(2));
});

test('stage is transactional: a failed batch leaves the log as it was', async () => {
  const c = await chain();
  await c.commit([{ kind: 'genesis', writes: [] }]);
  const before = c.log.checkpoint();
  c.log.stage([{ kind: 'transaction', writes: [write('a', '1')] }], 2, BASE, BASE);
  // The checkpoint of the group's root record covers the staged entry; the log does not yet.
  assert.equal(decodeCheckpoint(c.log.checkpoint()).size, 2);
  assert.equal(c.log.size, 1);
  assert.throws(() => c.log.receipt('1.2'));
  c.log.settle(false);
  assert.deepEqual(c.log.checkpoint(), before);
  await c.commit([{ kind: 'transaction', writes: [write('b', '2')] }]);
  assert.equal(c.log.size, 2);
  assert.deepEqual(c.log.writeSet(2), [write('b', '2')]);
});

test('a signature must start its group; the next index must follow the log', async () => {
  const c = await chain();
  await c.commit([{ kind: 'genesis', writes: [] }]);
  assert.throws(() =>
    c.log.stage(
      [
        { kind: 'transaction', writes: [] },
        { kind: 'signature', writes: [] },
      ],
      2,
      BASE,
      BASE,
    ),
  );
  assert.equal(c.log.size, 1);
  assert.throws(() => c.log.stage([{ kind: 'transaction', writes: [] }], 5, BASE, BASE));
  await c.commit([{ kind: 'signature', writes: [] }]);
  assert.equal(c.log.lastSignature, 2);
  assert.equal(c.log.lastSigned, 1);
  assert.equal(c.log.unsigned, 0);
});
