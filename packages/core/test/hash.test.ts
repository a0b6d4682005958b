/**
 * Core's hashing: keyedHmacSha256 (the ledger's path, salt and store-key MACs) against the
 * Wycheproof HMAC-SHA256 vectors and node:crypto's HMAC, including one reused instance across
 * keys, messages of every length around the block size, interleaved calls and the wipe.
 */
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import fc from 'fast-check';
import { InvalidInputError, keyedHmacSha256, toHex } from '../src/index.js';

const VECTORS = new URL(
  '../../../../shared/vectors/wycheproof/hmac_sha256_test.json',
  import.meta.url,
);
const unhex = (h: string): Uint8Array => Uint8Array.from(Buffer.from(h, 'hex'));
const nodeHmac = (key: Uint8Array, msg: Uint8Array): string =>
  createHmac('sha256', key).update(msg).digest('hex');

test('keyedHmacSha256 passes the Wycheproof HMAC-SHA256 vectors (tags at their stated size)', () => {
  type V = { key: string; msg: string; tag: string; result: string };
  const file = JSON.parse(readFileSync(VECTORS, 'utf8')) as {
    testGroups: { tagSize: number; tests: V[] }[];
  };
  let n = 0;
  for (const g of file.testGroups) {
    for (const t of g.tests) {
      const h = keyedHmacSha256(unhex(t.key));
      // Twice with the same instance: the second call must not see the first one's state.
      for (let i = 0; i < 2; i++) {
        const tag = toHex(h.mac(unhex(t.msg))).slice(0, g.tagSize / 4);
        assert.equal(tag === t.tag, t.result === 'valid', `tc ${JSON.stringify(t).slice(0, 80)}`);
      }
      n++;
    }
  }
  assert.ok(n > 100, `${n} vectors`);
});

test('keyedHmacSha256 equals node:crypto HMAC for any key and message, calls interleaved', () => {
  fc.assert(
    fc.property(
      fc.uint8Array({ maxLength: 150 }),
      fc.uint8Array({ maxLength: 150 }),
      fc.array(fc.uint8Array({ maxLength: 200 }), { minLength: 1, maxLength: 6 }),
      (k1, k2, msgs) => {
        const a = keyedHmacSha256(k1);
        const b = keyedHmacSha256(k2);
        for (const m of msgs) {
          assert.equal(toHex(a.mac(m)), nodeHmac(k1, m));
          assert.equal(toHex(b.mac(m)), nodeHmac(k2, m));
        }
      },
    ),
    { numRuns: 300 },
  );
  const h = keyedHmacSha256(new Uint8Array(32).fill(7));
  for (let len = 0; len <= 200; len++) {
    const m = Uint8Array.from({ length: len }, (_, i) => (i * 131 + len) & 255);
    assert.equal(toHex(h.mac(m)), nodeHmac(new Uint8Array(32).fill(7), m), `length ${len}`);
  }
});

test('keyedHmacSha256 writes into a buffer at an offset, refuses a short one, and wipes', () => {
  const key = new Uint8Array(32).fill(1);
  const h = keyedHmacSha256(key);
  const msg = Uint8Array.of(1, 2, 3);
  const out = new Uint8Array(40).fill(0xee);
  assert.equal(h.mac(msg, out, 5), out);
  assert.equal(toHex(out.subarray(5, 37)), nodeHmac(key, msg));
  assert.deepEqual([...out.subarray(0, 5), ...out.subarray(37)], new Array(8).fill(0xee));
  assert.throws(() => h.mac(msg, new Uint8Array(40), 9), InvalidInputError);
  assert.throws(() => h.mac(msg, new Uint8Array(40), -1), InvalidInputError);
  assert.throws(() => keyedHmacSha256('key' as unknown as Uint8Array), InvalidInputError);
  assert.throws(() => h.mac('abc' as unknown as Uint8Array), InvalidInputError);
  assert.equal(toHex(h.mac(msg)), nodeHmac(key, msg), 'still usable after a refused call');
  h.wipe();
  assert.throws(() => h.mac(msg), /wiped/);
  h.wipe(); // idempotent
});
