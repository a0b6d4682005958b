/**
 * The store records its data-format version at genesis and a start refuses a store whose record
 * is missing, damaged or names another format, before it reads anything else (issue 4, item 1).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { STORE_FORMAT, STORE_FORMAT_KEY, StoreFormatError } from '../src/log/index.js';
import { genesis, restart } from './log-helpers.js';

test('genesis writes the format record; a restart reads it', async () => {
  const w = await genesis();
  const { index, stateHash } = w.service.status();
  w.service.close();
  assert.deepEqual(w.store.get(STORE_FORMAT_KEY), Uint8Array.of(0, 0, 0, STORE_FORMAT));
  const again = await restart(w);
  assert.equal(again.service.status().index, index);
  assert.deepEqual(again.service.status().stateHash, stateHash);
  again.service.close();
});

for (const [what, value] of [
  ['a newer format', Uint8Array.of(0, 0, 0, STORE_FORMAT + 1)],
  ['a damaged record', Uint8Array.of(1)],
  ['no record', undefined],
] as const) {
  test(`a store with ${what} is refused with STORE_FORMAT, naming it`, async () => {
    const w = await genesis();
    w.service.close();
    await w.store.write(
      [
        value === undefined
          ? { type: 'del', key: STORE_FORMAT_KEY }
          : { type: 'put', key: STORE_FORMAT_KEY, value },
      ],
      { sync: true },
    );
    await assert.rejects(restart(w), (e: unknown) => {
      assert.ok(e instanceof StoreFormatError);
      assert.equal(e.code, 'STORE_FORMAT');
      assert.match(
        e.message,
        value !== undefined && value.length === 4
          ? /data format 2; this build reads format 1/
          : /no data-format record/,
      );
      return true;
    });
  });
}
