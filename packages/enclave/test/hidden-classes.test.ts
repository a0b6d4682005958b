/**
 * Objects the enclave makes for every call stay cheap for V8's garbage collector
 * (docs/performance.md, "Hidden classes"). Two patterns made each object carry something in the
 * old generation on Node 20: a getter in an object literal (a new accessor pair, allocated old,
 * per object) and a spread followed by new fields (`{ ...o, fuelUsed }`: a hidden class per object
 * once the site is warm). Through those, every transaction's closures, maps and buffers survived
 * young collections until the next full one: under SCP queries a third of the enclave's time went
 * to the collector and its pauses set the latency tail. Checked here on warm sites: per-call
 * objects have only data properties, and two of them share one hidden class (%HaveSameMap, V8's
 * natives syntax). The control proves the check sees the pattern it guards against.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { setFlagsFromString } from 'node:v8';
import { createAppRuntime } from '../src/apps/runtime/index.js';
import { abiKit, echoBody, putArgsBody } from './app-runtime-wasm.js';
import { genesis } from './log-helpers.js';

setFlagsFromString('--allow-natives-syntax');
// Compiled after the flag is set; the flag only widens what new code may parse.
const haveSameMap = new Function('a', 'b', 'return %HaveSameMap(a, b)') as (
  a: object,
  b: object,
) => boolean;

/** Runs of a call site before it is checked: enough for its inline caches to settle. */
const WARM = 2_000;

function accessors(o: object): string[] {
  return Object.entries(Object.getOwnPropertyDescriptors(o))
    .filter(([, d]) => d.get !== undefined || d.set !== undefined)
    .map(([k]) => k);
}

const FIX =
  'write the object out field by field, or make it a class instance: no getter in a literal, no `{ ...o, extra }` (docs/performance.md, "Hidden classes")';

function assertCheap(what: string, a: object, b: object): void {
  assert.deepEqual(accessors(a), [], `${what} has accessor properties of its own: ${FIX}`);
  assert.ok(haveSameMap(a, b), `${what}: two of them have different hidden classes: ${FIX}`);
}

const kit = abiKit({ t: 't', k: 'k' });
const APP = kit.module({
  routes: [
    { name: 'echo', kind: 'query', body: echoBody(kit) },
    { name: 'put', kind: 'transaction', body: putArgsBody(kit) },
  ],
});
const caller = new Uint8Array(65).fill(4);

describe('per-call objects share one hidden class', () => {
  // The patterns are V8 11.3's (Node 20); a later V8 may have fixed them, and then the control
  // has nothing to catch (the checks of our own objects below still hold).
  const v8 = process.versions.v8;
  const control = v8.startsWith('11.3.') ? {} : { skip: `V8 ${v8}: the control is for V8 11.3` };
  test('the control: a spread followed by a new field is caught', control, () => {
    const base = (i: number) => ({ result: `r${i}`, notifications: [] as string[] });
    const spread = (i: number) => ({ ...base(i), fuelUsed: i });
    for (let i = 0; i < WARM; i++) spread(i);
    assert.equal(
      haveSameMap(spread(1), spread(2)),
      false,
      'this V8 shares one hidden class for spread-then-extend objects: the control needs another pattern',
    );
    let s = 0;
    const withGetter = {
      x: 1,
      get state() {
        return s;
      },
    };
    s += 1;
    assert.deepEqual(accessors(withGetter), ['state']);
  });

  test('ledger transactions', async () => {
    const w = await genesis();
    const begin = () => {
      const tx = w.service.engine.begin({ reserved: true });
      tx.abort();
      return tx;
    };
    for (let i = 0; i < WARM; i++) begin();
    assertCheap('a transaction', begin(), begin());
    // Read-only to its holders all the same: an aborted transaction cannot be reopened.
    const closed = begin();
    assert.throws(() => {
      (closed as { state: string }).state = 'open';
    }, TypeError);
    assert.equal(closed.state, 'aborted');
  });

  test("the app runtime's query and transaction results", async () => {
    const w = await genesis();
    const runtime = createAppRuntime({ engine: w.service.engine });
    await runtime.deploy('demo', APP);
    const query = () =>
      runtime.call({ app: 'demo', method: 'echo', kind: 'query', caller, args: '{"a":1}' });
    for (let i = 0; i < WARM; i++) await query();
    assertCheap('a query result', await query(), await query());

    let n = 0;
    const transact = (requestId?: string) =>
      runtime.call({
        app: 'demo',
        method: 'put',
        kind: 'transaction',
        caller,
        args: requestId === undefined ? `{"n":${n++}}` : '{"n":-1}',
        ...(requestId === undefined ? {} : { requestId }),
      });
    for (let i = 0; i < 200; i++) await transact();
    assertCheap('a transaction result', await transact(), await transact());
    // A repeated request id answers the stored outcome: the same shape as a first answer.
    const first = await transact('r-1');
    const repeated = await transact('r-1');
    assert.equal(repeated.repeated, true);
    assertCheap('a repeated transaction result', first, repeated);
  });
});
