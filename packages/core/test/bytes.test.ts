/** byteKey (one code unit per byte) and the base64 built on it. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import {
  byteKey,
  bytesEqual,
  clipText,
  fromBase64,
  fromHex,
  toBase64,
  utf8,
} from '../src/bytes.js';

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

test('fromBase64 takes standard padded base64 only, which atob alone would not enforce (coverage gap)', () => {
  // Each of these atob decodes (or would): unpadded, whitespace, base64url, padding inside.
  for (const bad of ['AAE', 'AA E=', 'AAE=\n', '-_8=', 'AA==AAAA', 'A===', 'AAE=x']) {
    assert.throws(() => fromBase64(bad, 'evidence'), {
      name: 'EncodingError',
      message: 'evidence must be standard padded base64',
    });
  }
  assert.throws(() => fromBase64('AAE'), { message: 'base64 must be standard padded base64' });
  assert.deepEqual(fromBase64('AAE='), Uint8Array.of(0, 1));
  assert.deepEqual(fromBase64(''), new Uint8Array(0));
});

test('fromHex names what is wrong: a character that is not hex (and where), or an odd count', () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 64 }), (b) => {
      assert.deepEqual(fromHex(Buffer.from(b).toString('hex')), b);
      assert.deepEqual(fromHex(Buffer.from(b).toString('hex').toUpperCase()), b);
    }),
  );
  // "zz" has an even count: it was told it needs "an even number of hexadecimal digits".
  assert.throws(() => fromHex('zz', 'nonce'), {
    code: 'ENCODING',
    message: 'nonce must be hexadecimal digits (0-9, a-f), but has "z" at position 0',
  });
  assert.throws(() => fromHex('abc', 'nonce'), {
    code: 'ENCODING',
    message: 'nonce must be an even number of hexadecimal digits (two per byte), not 3',
  });
});

test('bytesEqual: a prefix is not equal to the longer array, either way round', () => {
  assert.equal(bytesEqual(Uint8Array.of(1, 2), Uint8Array.of(1, 2)), true);
  assert.equal(bytesEqual(Uint8Array.of(1), Uint8Array.of(1, 2)), false);
  assert.equal(bytesEqual(Uint8Array.of(1, 2), Uint8Array.of(1)), false);
});

test('clipText keeps the clipped text and its "…" within max bytes, cutting at whole code points', () => {
  assert.equal(clipText('abc', 3), 'abc');
  const long = 'é'.repeat(600); // 1200 bytes
  const clipped = clipText(long);
  assert.ok(utf8(clipped).length <= 1024);
  assert.equal(clipped, `${'é'.repeat(510)}…`);
  assert.equal(clipText('abcdefghij', 8), 'abcde…');
});
