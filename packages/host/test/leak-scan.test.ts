/** The leak scanner finds a secret in each form it claims to, and nothing in clean data. */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { tempDir } from './helpers.js';
import { scanBytes, scanDirectory } from './leak-scan.js';

const secret = new Uint8Array(randomBytes(24));
const secrets = new Map([['s', secret]]);
const pad = (n: number) => randomBytes(n);

test('finds the secret raw, as hex, base64 at any alignment, and UTF-16', () => {
  const b = Buffer.from(secret);
  const embeddings: [string, Buffer][] = [
    ['raw', Buffer.concat([pad(7), b, pad(5)])],
    ['hex', Buffer.from(`x${b.toString('hex')}y`)],
    ['HEX', Buffer.from(`x${b.toString('hex').toUpperCase()}y`)],
    ['utf16le', Buffer.from(b.toString('latin1'), 'utf16le')],
  ];
  for (let k = 0; k < 3; k++) {
    embeddings.push(['base64', Buffer.from(Buffer.concat([pad(k), b, pad(4)]).toString('base64'))]);
    embeddings.push([
      'base64url',
      Buffer.from(Buffer.concat([pad(k + 3), b, pad(2)]).toString('base64url')),
    ]);
  }
  for (const [form, hay] of embeddings) {
    const leaks = scanBytes(hay, secrets, 'hay');
    assert.ok(
      leaks.some((l) => l.form === form),
      `${form} not found`,
    );
  }
});

test('finds nothing in unrelated data, and scans whole directories', () => {
  const dir = tempDir();
  mkdirSync(join(dir, 'a', 'b'), { recursive: true });
  writeFileSync(join(dir, 'a', 'clean'), randomBytes(4096));
  assert.deepEqual(scanDirectory(dir, secrets), []);
  writeFileSync(join(dir, 'a', 'b', 'dirty'), Buffer.concat([pad(100), Buffer.from(secret)]));
  const leaks = scanDirectory(dir, secrets);
  assert.equal(leaks.length, 1);
  assert.match(leaks[0]!.where, /dirty$/);
});
