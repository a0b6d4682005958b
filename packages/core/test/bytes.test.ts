/** byteKey (one code unit per byte) and the base64 built on it. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { byteKey, fromBase64, toBase64 } from '../src/bytes.js';

test('byteKey is the latin1 string of the bytes, at any length (chunked above 8 KiB)', () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 20_000 }), (b) => {
      const k = byteKey(b);
      assert.equal(k, Buffer.from(b).toString('latin1'));
      assert.equal(k.length, b.length);
    }),
    { numRuns: 50 },
  );
  const big = new Uint8Array(70_000).map((_, i) => i & 255);
  assert.equal(byteKey(big), Buffer.from(big).toString('latin1'));
});

test('toBase64 round-trips through fromBase64', () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 20_000 }), (b) => {
      assert.equal(toBase64(b), Buffer.from(b).toString('base64'));
      assert.deepEqual(fromBase64(toBase64(b)), b);
    }),
    { numRuns: 50 },
  );
});
