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

test('fromBase64 refuses spare bits before the padding: each byte string has one encoding', () => {
  // atob takes all of these as the bytes of the canonical form on their left.
  for (const [canonical, twin] of [
    ['AA==', 'AB=='],
    ['AA==', 'AP=='],
    ['AAE=', 'AAF='],
    ['AAE=', 'AAH='],
    ['AAAAAAE=', 'AAAAAAG='],
  ] as const) {
    assert.equal(atob(twin), atob(canonical));
    assert.deepEqual(
      fromBase64(canonical),
      Uint8Array.from(atob(canonical), (c) => c.charCodeAt(0)),
    );
    assert.throws(() => fromBase64(twin, 'deploy request'), {
      name: 'EncodingError',
      message:
        /^deploy request must be canonical base64: the character before the padding carries bits that are not zero/,
    });
  }
  // Every canonical encoding still parses, and every other last character of its class is refused.
  fc.assert(
    fc.property(
      fc.uint8Array({ minLength: 1, maxLength: 40 }),
      fc.integer({ min: 1, max: 63 }),
      (b, d) => {
        const s = toBase64(b);
        assert.deepEqual(fromBase64(s), b);
        const pad = s.endsWith('==') ? 2 : s.endsWith('=') ? 1 : 0;
        if (pad === 0) return;
        const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
        const at = s.length - 1 - pad;
        const changed = alphabet.charAt((alphabet.indexOf(s.charAt(at)) ^ d) & 63);
        const other = s.slice(0, at) + changed + s.slice(at + 1);
        const spare = pad === 2 ? 0b1111 : 0b11;
        if ((d & spare) !== 0) assert.throws(() => fromBase64(other), { name: 'EncodingError' });
        else assert.notDeepEqual(fromBase64(other), b);
      },
    ),
    { numRuns: 300 },
  );
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
