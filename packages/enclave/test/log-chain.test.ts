/** The logchain alone (no engine): staging is transactional, formats, write-set encryption. */
import assert from 'node:assert/strict';
import { createCipheriv, generateKeyPairSync } from 'node:crypto';
import { test } from 'node:test';
import { decodeEntry, ENTRY_KIND, encodeCbor, type LogEntry } from '@cloister/core';
import { CHECKPOINT_LABEL, encodeCheckpoint } from '../src/log/checkpoint.js';
import { createLogchain, decodeCheckpoint, type Logchain, logStoreKey } from '../src/log/index.js';
import {
  checkGeneration,
  decryptWriteSet,
  WRITE_SET_AAD_LABEL,
  writeSetKeyFor,
} from '../src/log/write-set.js';
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

test("open refuses a root record whose index is not its checkpoint's size, as a tampered record", async () => {
  const c = await chain();
  await c.commit([{ kind: 'genesis', writes: [] }]);
  const cp = c.log.checkpoint();
  await assert.rejects(
    c.log.open(cp, 2, () => BASE),
    {
      code: 'LEDGER_INTEGRITY',
      message:
        'ledger integrity check failed (structure): the root record is at index 2 but its log checkpoint covers 1 entries',
    },
  );
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

test('decodeCheckpoint refuses another label, short hashes, a last signature past the size and a security version off 32 bits', () => {
  const cp = { last: BASE, size: 5, root: BASE, epoch: 2, lastSignature: 5, maxSvn: 3 };
  assert.deepEqual(decodeCheckpoint(encodeCheckpoint(cp)), cp);
  // Written before maxSvn was recorded: six elements, read as version 0.
  assert.deepEqual(decodeCheckpoint(encodeCbor([CHECKPOINT_LABEL, BASE, 5, BASE, 2, 5])), {
    ...cp,
    maxSvn: 0,
  });
  assert.throws(() => decodeCheckpoint(encodeCbor([CHECKPOINT_LABEL, BASE, 5, BASE, 2, 5, 3, 0])), {
    code: 'LEDGER_INTEGRITY',
    message:
      'ledger integrity check failed (malformed): the root record holds no log checkpoint of format v1',
  });
  assert.throws(
    () => decodeCheckpoint(encodeCbor(['cloister/log/v2/checkpoint', BASE, 5, BASE, 2, 5])),
    {
      code: 'LEDGER_INTEGRITY',
      message:
        'ledger integrity check failed (malformed): the root record holds no log checkpoint of format v1',
    },
  );
  const malformed = {
    code: 'LEDGER_INTEGRITY',
    message:
      'ledger integrity check failed (malformed): the log checkpoint in the root record is malformed',
  };
  assert.throws(() => decodeCheckpoint(encodeCheckpoint({ ...cp, lastSignature: 6 })), malformed);
  assert.throws(
    () => decodeCheckpoint(encodeCbor([CHECKPOINT_LABEL, BASE.subarray(1), 5, BASE, 2, 5])),
    malformed,
  );
  for (const bad of [2 ** 32, -1, 1.5, '3']) {
    assert.throws(
      () => decodeCheckpoint(encodeCbor([CHECKPOINT_LABEL, BASE, 5, BASE, 2, 5, bad])),
      malformed,
      String(bad),
    );
  }
  assert.equal(
    decodeCheckpoint(encodeCbor([CHECKPOINT_LABEL, BASE, 5, BASE, 2, 5, 2 ** 32 - 1])).maxSvn,
    2 ** 32 - 1,
  );
});

/** An entry whose write set is `plaintext` sealed as write-set.ts does (nonce ‖ ct ‖ tag). */
function sealedEntry(secret: Uint8Array, plaintext: Uint8Array, gen: number | undefined): LogEntry {
  const key = writeSetKeyFor({ generation: gen ?? 0, secret });
  const nonce = new Uint8Array(12).fill(3);
  const label = new TextEncoder().encode(WRITE_SET_AAD_LABEL);
  const aad = new Uint8Array(label.length + 21);
  aad.set(label);
  const v = new DataView(aad.buffer);
  v.setUint32(label.length + 5, 1); // term 1
  v.setUint32(label.length + 13, 2); // index 2
  v.setUint32(label.length + 17, gen ?? 0);
  const c = createCipheriv('aes-256-gcm', key, nonce, { authTagLength: 16 });
  c.setAAD(aad);
  const body = Buffer.concat([c.update(plaintext), c.final(), c.getAuthTag()]);
  return {
    term: 1,
    index: 2,
    prev: BASE,
    kind: ENTRY_KIND.transaction,
    meta: gen === undefined ? {} : { gen, size: plaintext.length },
    writeSet: new Uint8Array([...nonce, ...body]),
    claims: new Uint8Array(0),
    sig: new Uint8Array(0),
  };
}

test('decryptWriteSet: an authentic write set of the wrong shape is altered, as is one without its generation', () => {
  const secret = new Uint8Array(32).fill(1);
  const keys = new Map([[0, writeSetKeyFor({ generation: 0, secret })]]);
  const good = encodeCbor([['app', 't', te('k'), null]]);
  assert.deepEqual(decryptWriteSet(keys, sealedEntry(secret, good, 0)), [
    { ledger: 'app', table: 't', key: te('k'), value: undefined },
  ]);
  const altered = (message: string) => ({ code: 'LOG_ENTRY_ALTERED', message });
  assert.throws(
    () => decryptWriteSet(keys, sealedEntry(secret, good, undefined)),
    altered('write set without generation'),
  );
  assert.throws(
    () =>
      decryptWriteSet(keys, sealedEntry(secret, encodeCbor([['app', 't', te('k'), null, 1]]), 0)),
    altered('malformed write set'),
  );
  assert.throws(
    () => decryptWriteSet(keys, sealedEntry(secret, encodeCbor([['app', 7, te('k'), null]]), 0)),
    altered('malformed write set'),
  );
  const short = { ...sealedEntry(secret, good, 0), writeSet: new Uint8Array(27) };
  assert.throws(
    () => decryptWriteSet(keys, short),
    altered('the write set of entry 2 is truncated'),
  );
  assert.throws(() => checkGeneration(2 ** 32), {
    code: 'INVALID_INPUT',
    message: 'a ledger secret generation must be a whole number below 2^32',
  });
  checkGeneration(2 ** 32 - 1);
});

test('setEpoch takes whole numbers >= 0 only (an epoch comes from a counter the host reads)', async () => {
  const { log } = await chain();
  for (const bad of [-1, 1.5, 2 ** 53, Number.NaN]) {
    assert.throws(() => log.setEpoch(bad), /an epoch must be a whole number >= 0/, String(bad));
  }
  log.setEpoch(7);
  assert.equal(log.epoch, 7);
});

test('a rotation needs a new secret generation and a claims digest is 32 bytes: both refused before staging', async () => {
  const c = await chain();
  await c.commit([{ kind: 'genesis', writes: [] }]);
  // Without addSecret the rotation would name the generation in use, which every audit refuses
  // (docs/logchain.md: a rotation moves to a later generation).
  assert.throws(
    () => c.log.stage([{ kind: 'rotation', writes: [] }], 2, BASE, BASE),
    (e: unknown) => e instanceof Error && /new secret generation/.test(e.message),
  );
  for (const claims of [new Uint8Array(31), new Uint8Array(33)]) {
    assert.throws(
      () => c.log.stage([{ kind: 'transaction', writes: [], claims }], 2, BASE, BASE),
      (e: unknown) => e instanceof Error && /claims digest must be 32 bytes/.test(e.message),
    );
  }
  assert.equal(c.log.size, 1);
  // With the next generation added, the rotation stages and commits.
  c.log.addSecret({ generation: 1, secret: new Uint8Array(32).fill(2) });
  await c.commit([{ kind: 'rotation', writes: [] }]);
  assert.equal(c.entry(2).kind, ENTRY_KIND.rotation);
  assert.equal(c.entry(2).meta.rot, 1);
});
