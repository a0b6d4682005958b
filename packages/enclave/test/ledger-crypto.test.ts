/// <reference types="node" />
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, test } from 'node:test';
import { InvalidInputError, keyedHmacSha256 as keyedHmac } from '@cloister/core';
import { aesGcmOpen, aesGcmSeal } from '@cloister/node-crypto';
import {
  createLedgerKeyring,
  hkdfSha256,
  hmacSha256,
  LABELS,
  RECORD_OVERHEAD,
  RecordPurpose,
} from '../src/ledger/crypto.js';
import { LedgerIntegrityError } from '../src/ledger/errors.js';
import { hex, unhex } from './ledger-helpers.js';

const WYCHEPROOF = new URL('../../../../shared/vectors/wycheproof/', import.meta.url);

interface Group<T> {
  keySize?: number;
  ivSize?: number;
  tagSize?: number;
  tests: T[];
}
function vectors<T>(file: string): Group<T>[] {
  return JSON.parse(readFileSync(new URL(file, WYCHEPROOF), 'utf8')).testGroups;
}

describe('crypto wrappers against Wycheproof', () => {
  test('HKDF-SHA256 (RFC 5869)', () => {
    type V = { ikm: string; salt: string; info: string; size: number; okm: string; result: string };
    let n = 0;
    for (const g of vectors<V>('hkdf_sha256_test.json')) {
      for (const t of g.tests) {
        if (t.result === 'valid') {
          assert.equal(hex(hkdfSha256(unhex(t.ikm), unhex(t.salt), unhex(t.info), t.size)), t.okm);
          n++;
        } else {
          // The only invalid cases ask for more than 255 * 32 bytes.
          assert.throws(() => hkdfSha256(unhex(t.ikm), unhex(t.salt), unhex(t.info), t.size));
        }
      }
    }
    assert.ok(n > 50);
  });

  test('HMAC-SHA256 (RFC 2104), tags compared at their stated size', () => {
    type V = { key: string; msg: string; tag: string; result: string };
    let n = 0;
    for (const g of vectors<V>('hmac_sha256_test.json')) {
      for (const t of g.tests) {
        const tag = hex(hmacSha256(unhex(t.key), unhex(t.msg))).slice(0, (g.tagSize ?? 256) / 4);
        assert.equal(tag === t.tag, t.result === 'valid', `tc ${JSON.stringify(t).slice(0, 60)}`);
        n++;
      }
    }
    assert.ok(n > 100);
  });

  test('keyedHmac equals HMAC-SHA256 on Wycheproof and every length 0..300', () => {
    type V = { key: string; msg: string; tag: string; result: string };
    let n = 0;
    for (const g of vectors<V>('hmac_sha256_test.json')) {
      for (const t of g.tests) {
        const key = unhex(t.key);
        const msg = unhex(t.msg);
        assert.equal(hex(keyedHmac(key).mac(msg)), hex(hmacSha256(key, msg)));
        n++;
      }
    }
    assert.ok(n > 100);
    for (const keyLen of [0, 16, 32, 64, 65, 100]) {
      const key = Uint8Array.from({ length: keyLen }, (_, i) => (i * 37 + keyLen) & 255);
      const h = keyedHmac(key);
      for (let len = 0; len <= 300; len++) {
        const msg = Uint8Array.from({ length: len }, (_, i) => (i * 131 + len) & 255);
        assert.equal(hex(h.mac(msg)), hex(hmacSha256(key, msg)), `key ${keyLen}, message ${len}`);
      }
      const out = new Uint8Array(40);
      h.mac(Uint8Array.of(1, 2, 3), out, 5);
      assert.equal(hex(out.subarray(5, 37)), hex(hmacSha256(key, Uint8Array.of(1, 2, 3))));
      h.wipe();
      assert.throws(() => h.mac(new Uint8Array(1)), InvalidInputError);
    }
  });

  test('AES-256-GCM with 96-bit nonces and 128-bit tags (the only parameters we use)', () => {
    type V = {
      tcId: number;
      key: string;
      iv: string;
      aad: string;
      msg: string;
      ct: string;
      tag: string;
      result: string;
    };
    let n = 0;
    for (const g of vectors<V>('aes_gcm_test.json')) {
      if (g.keySize !== 256 || g.ivSize !== 96 || g.tagSize !== 128) continue;
      for (const t of g.tests) {
        const [key, iv, aad] = [unhex(t.key), unhex(t.iv), unhex(t.aad)];
        const sealed = unhex(t.ct + t.tag);
        const opened = aesGcmOpen(key, iv, aad, sealed);
        if (t.result === 'valid') {
          assert.equal(hex(aesGcmSeal(key, iv, aad, unhex(t.msg))), t.ct + t.tag, `tc ${t.tcId}`);
          assert.equal(opened && hex(opened), t.msg, `tc ${t.tcId}`);
        } else {
          assert.equal(opened, undefined, `tc ${t.tcId} must not open`);
        }
        n++;
      }
    }
    assert.ok(n > 20);
  });
});

const secret = (b: number): Uint8Array => new Uint8Array(32).fill(b);
const keyring = (b = 1) => createLedgerKeyring({ origin: { generation: 0, secret: secret(b) } });
const H = new Uint8Array(32).fill(0xab);

describe('ledger keyring', () => {
  test('table keys: fixed per table and ledger, distinct per purpose and table', () => {
    const a = keyring().table('accounts');
    const k = new TextEncoder().encode('alice');
    assert.equal(hex(a.path(k)), hex(keyring().table('accounts').path(k)), 'fixed');
    assert.notEqual(hex(a.path(k)), hex(a.salt(k)));
    assert.notEqual(hex(a.path(k)), hex(keyring().table('accounts2').path(k)));
    assert.notEqual(hex(a.path(k)), hex(keyring(2).table('accounts').path(k)));
    assert.equal(a.path(k).length, 32);
    assert.throws(() => keyring().table(''), InvalidInputError);
    assert.throws(() => keyring().table('x'.repeat(256)), InvalidInputError);
    assert.equal(keyring().table('x'.repeat(255)).path(k).length, 32, 'the longest name');
  });

  test('store keys are keyed: 0x01 then HMAC of the node hash, unlinkable to the hash', () => {
    const k = keyring().storeKey(H);
    assert.equal(k.length, 33);
    assert.equal(k[0], 0x01);
    assert.equal(hex(k), hex(keyring().storeKey(H)));
    assert.notEqual(hex(k), hex(keyring(2).storeKey(H)));
    assert.ok(!hex(k).includes(hex(H).slice(0, 16)));
  });

  test('records: randomized, never two equal records for equal plaintexts', () => {
    const kr = keyring();
    const plain = new Uint8Array(100).fill(5);
    const seen = new Set<string>();
    for (let i = 0; i < 2000; i++) {
      const rec = kr.seal(RecordPurpose.node, H, plain);
      assert.equal(rec.length, plain.length + RECORD_OVERHEAD);
      seen.add(hex(rec.subarray(17)));
      if (i < 10) assert.deepEqual(kr.open(RecordPurpose.node, H, rec), plain);
    }
    assert.equal(seen.size, 2000);
    assert.equal(kr.sealed, 2000);
  });

  test('a record opens only for its own node, purpose and ledger', () => {
    const kr = keyring();
    const rec = kr.seal(RecordPurpose.node, H, new Uint8Array([1, 2, 3]));
    const authFails = (f: () => unknown): void => {
      assert.throws(
        f,
        (e: unknown) => e instanceof LedgerIntegrityError && e.failure === 'authentication',
      );
    };
    authFails(() => kr.open(RecordPurpose.node, new Uint8Array(32), rec));
    authFails(() => kr.open(2 as RecordPurpose, H, rec));
    authFails(() => keyring(2).open(RecordPurpose.node, H, rec));
    for (let i = 0; i < rec.length; i++) {
      const bad = rec.slice();
      bad[i] = (bad[i] ?? 0) ^ 0x10;
      assert.throws(() => kr.open(RecordPurpose.node, H, bad), LedgerIntegrityError);
    }
    assert.throws(
      () => kr.open(RecordPurpose.node, H, rec.subarray(0, RECORD_OVERHEAD - 1)),
      (e: unknown) => e instanceof LedgerIntegrityError && e.failure === 'malformed',
    );
  });

  test('rotation: new records under the current generation, old ones stay readable', () => {
    const old = keyring();
    const rec0 = old.seal(RecordPurpose.node, H, new Uint8Array([0]));
    const kr = createLedgerKeyring({
      origin: { generation: 0, secret: secret(1) },
      secrets: [{ generation: 7, secret: secret(9) }],
    });
    assert.equal(kr.generation, 7);
    const rec7 = kr.seal(RecordPurpose.node, H, new Uint8Array([7]));
    assert.deepEqual([...rec7.subarray(1, 5)], [0, 0, 0, 7]);
    assert.deepEqual(kr.open(RecordPurpose.node, H, rec0), new Uint8Array([0]));
    assert.throws(
      () => old.open(RecordPurpose.node, H, rec7),
      (e: unknown) => e instanceof LedgerIntegrityError && /generation 7/.test(e.message),
    );
    assert.equal(hex(kr.table('t').path(H)), hex(old.table('t').path(H)), 'paths never rotate');
    assert.throws(
      () => createLedgerKeyring({ origin: { generation: 0, secret: secret(1) }, current: 3 }),
      InvalidInputError,
    );
    assert.throws(
      () =>
        createLedgerKeyring({
          origin: { generation: 0, secret: secret(1) },
          secrets: [{ generation: 0, secret: secret(2) }],
        }),
      /two ledger secrets for generation 0/,
    );
  });

  test('bad secrets are refused; a destroyed keyring refuses every use', () => {
    assert.throws(
      () => createLedgerKeyring({ origin: { generation: 0, secret: new Uint8Array(31) } }),
      InvalidInputError,
    );
    assert.throws(
      () => createLedgerKeyring({ origin: { generation: -1, secret: secret(1) } }),
      InvalidInputError,
    );
    // A record names its generation in 4 bytes: 2^32 would read back as generation 0.
    assert.throws(
      () => createLedgerKeyring({ origin: { generation: 2 ** 32, secret: secret(1) } }),
      InvalidInputError,
    );
    assert.equal(
      createLedgerKeyring({ origin: { generation: 2 ** 32 - 1, secret: secret(1) } }).generation,
      2 ** 32 - 1,
    );
    const kr = keyring();
    const rec = kr.seal(RecordPurpose.node, H, new Uint8Array([1]));
    kr.destroy();
    assert.throws(() => kr.seal(RecordPurpose.node, H, new Uint8Array([1])), InvalidInputError);
    assert.throws(() => kr.open(RecordPurpose.node, H, rec), InvalidInputError);
    assert.throws(() => kr.storeKey(H), InvalidInputError);
    assert.throws(() => kr.table('new'), InvalidInputError);
  });

  test('destroy wipes the copy of the origin secret the keyring kept; the caller keeps its own', (t) => {
    // The keyring's only copy is made with Uint8Array.from (crypto.ts): caught here to look at.
    const from = Uint8Array.from.bind(Uint8Array) as (src: ArrayLike<number>) => Uint8Array;
    const copies: Uint8Array[] = [];
    t.mock.method(Uint8Array, 'from', (src: ArrayLike<number>) => {
      const out = from(src);
      copies.push(out);
      return out;
    });
    const origin = secret(9);
    const kr = createLedgerKeyring({ origin: { generation: 0, secret: origin } });
    t.mock.restoreAll();
    const kept = copies.filter((c) => hex(c) === hex(origin));
    assert.equal(kept.length, 1, 'one copy of the secret');
    kr.destroy();
    assert.ok(
      (kept[0] as Uint8Array).every((b) => b === 0),
      'wiped',
    );
    assert.equal(hex(origin), hex(secret(9)), "the caller's secret is untouched");
  });

  test('labels are distinct and none is a prefix of another', () => {
    const all = Object.values(LABELS);
    for (const a of all) for (const b of all) if (a !== b) assert.ok(!b.startsWith(`${a}\u0000`));
    assert.equal(new Set(all).size, all.length);
  });
});
