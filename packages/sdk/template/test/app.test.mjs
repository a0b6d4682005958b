// Runs the app's methods on the real Cloister runtime (sandbox, fuel, ledger) in this process:
// no node needed. `npm test` builds build/app.wasm first.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { loadApp } from '@cloister/sdk/harness';

const app = await loadApp(new URL('../build/app.wasm', import.meta.url));

test('increment is a transaction, get a query', () => {
  assert.deepEqual(app.routes, [
    { name: 'increment', kind: 'transaction' },
    { name: 'get', kind: 'query' },
  ]);
});

test('increment writes; get reads the committed value', async () => {
  const r = await app.transaction('increment', { name: 'visits', by: 2 });
  assert.equal(r.result.value, 2);
  assert.equal(r.result.by, app.callerId('alice'));
  assert.deepEqual(r.notifications, [{ counter: 'visits', value: 2 }]);
  await app.transaction('increment', { name: 'visits' }, { as: 'bob' });
  assert.equal((await app.query('get', { name: 'visits' })).result, 3);
});

test('an app error names its code, and nothing is written', async () => {
  await assert.rejects(app.transaction('increment', { by: 1 }), {
    code: 'APP_ERROR',
    appCode: 'bad_name',
  });
  assert.equal((await app.query('get', { name: '' })).result, 0);
});

test('a query cannot be called as a transaction', async () => {
  await assert.rejects(app.transaction('get', { name: 'visits' }), { code: 'APP_METHOD_KIND' });
});
