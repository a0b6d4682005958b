/**
 * The shim's lockdown, observed from inside a real enclave worker: the probe enclave is bundled
 * through the real shim entry (in place of @cloister/enclave) and reports, for each removed
 * global, how using it ended, both at module top level and later in a handler.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { fromUtf8 } from '@cloister/core';
import { bundleEnclave } from '../src/build/bundle.js';
import { type EnclaveWorker, launchEnclaveWorker } from '../src/launcher/index.js';
import { PROBE_ENCLAVE, probeBundle, probeCommand } from './fixtures/boundary/probe.js';

/** Every removed global the probe uses, and the name its AmbientAccessError must carry. */
const EXPECTED: [probe: string, ambient: string][] = [
  ['Date.now', 'Date.now'],
  ['new Date()', 'new Date()'],
  ['Date()', 'Date()'],
  ['Math.random', 'Math.random'],
  ['performance', 'performance'],
  ['process', 'process'],
  ['fetch', 'fetch'],
  ['setTimeout', 'setTimeout'],
  ['setInterval', 'setInterval'],
  ['setImmediate', 'setImmediate'],
  ['clearTimeout', 'clearTimeout'],
  ['clearInterval', 'clearInterval'],
  ['clearImmediate', 'clearImmediate'],
  ['WebSocket', 'WebSocket'],
  ['XMLHttpRequest', 'XMLHttpRequest'],
  ['EventSource', 'EventSource'],
  ['BroadcastChannel', 'BroadcastChannel'],
  ['File', 'File'],
  ['Performance', 'Performance'],
  ['PerformanceEntry', 'PerformanceEntry'],
  ['PerformanceMark', 'PerformanceMark'],
  ['PerformanceMeasure', 'PerformanceMeasure'],
  ['PerformanceObserver', 'PerformanceObserver'],
  ['PerformanceObserverEntryList', 'PerformanceObserverEntryList'],
  ['PerformanceResourceTiming', 'PerformanceResourceTiming'],
  ['Atomics.wait', 'Atomics.wait'],
  ['Atomics.waitAsync', 'Atomics.waitAsync'],
  ['AbortSignal.timeout', 'AbortSignal.timeout'],
  ['Event.timeStamp', 'Event.timeStamp'],
  ['Intl.DateTimeFormat format()', 'Intl.DateTimeFormat format()'],
  ['Intl.DateTimeFormat formatToParts()', 'Intl.DateTimeFormat formatToParts()'],
  ["require('node:fs')", "require('node:fs')"],
];

/**
 * Every global and member lockdown replaces or pins, as the probe names them: each must refuse
 * being assigned, redefined and deleted (docs/boundary.md §6).
 */
const LOCKED = [
  ...EXPECTED.map(([probe]) => probe).filter((p) => !/[ ()]|\./.test(p)),
  ...['Date', 'require', 'console', 'Math', 'Atomics', 'AbortSignal', 'Event', 'Intl'],
  ...['Math.random', 'Date.now', 'Atomics.wait', 'Atomics.waitAsync', 'AbortSignal.timeout'],
  ...['Date.prototype.constructor', 'Intl.DateTimeFormat', 'Intl.DateTimeFormat.prototype.format'],
  ...['Intl.DateTimeFormat.prototype.formatToParts', 'Event.prototype.timeStamp', 'console.log'],
];

type Report = {
  probes: { probe: string; outcome: string }[];
  sha256abc: string;
  webcrypto: number;
  datefixed: string;
  intlfixed: string;
  deleted: string[];
};

let w: EnclaveWorker;
let report: { topLevel: Report; tampered: Record<string, string>; handler: Report };

before(async () => {
  w = await launchEnclaveWorker({ code: await probeBundle(), ocalls: {} });
  report = (await probeCommand(w, 'report')) as typeof report;
});
after(() => w.terminate());

for (const when of ['topLevel', 'handler'] as const) {
  describe(when === 'topLevel' ? 'at enclave module top level' : 'in a handler', () => {
    for (const [probe, ambient] of EXPECTED) {
      test(`${probe} throws AmbientAccessError naming ${ambient}`, () => {
        const outcomes = report[when].probes.filter((p) => p.probe === probe).map((p) => p.outcome);
        assert.ok(outcomes.length > 0, `the probe enclave does not try ${probe}`);
        for (const o of outcomes) assert.equal(o, `AmbientAccessError AMBIENT_ACCESS ${ambient}`);
      });
    }

    test('every probe the enclave ran is expected (none silently passes)', () => {
      const expected = new Set(EXPECTED.map(([p]) => p));
      for (const p of report[when].probes) assert.ok(expected.has(p.probe), p.probe);
    });

    test('node:crypto and WebCrypto still work; fixed dates still work', () => {
      const r = report[when];
      assert.equal(r.sha256abc, 'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
      assert.equal(r.webcrypto, 8);
      assert.equal(r.datefixed, '1970-01-01T00:00:00.000Z');
      assert.equal(r.intlfixed, '1/1/1970');
    });

    test('the worker script globals module, exports, __filename, __dirname are gone', () => {
      assert.deepEqual(report[when].deleted, ['undefined', 'undefined', 'undefined', 'undefined']);
    });
  });
}

describe('no enclave code can replace what lockdown put in place', () => {
  test('each locked global and member refuses assignment, redefinition and deletion', () => {
    const { 'inherits Date.prototype: own constructor': _, ...tampered } = report.tampered;
    assert.deepEqual(Object.keys(tampered).sort(), [...LOCKED].sort());
    for (const name of LOCKED) assert.equal(tampered[name], 'refused/refused/refused', name);
  });

  test('an object inheriting from Date.prototype can still be given a constructor of its own', () => {
    assert.equal(report.tampered['inherits Date.prototype: own constructor'], 'true');
  });
});

test('in the bundle, the capture-and-lockdown module comes before every other module', async () => {
  const { code } = await bundleEnclave({ enclave: PROBE_ENCLAVE });
  const modules = fromUtf8(code)
    .split('\n')
    .filter((l) => /^\/\/ (packages|node_modules)\//.test(l))
    .map((l) => l.slice(3));
  assert.deepEqual(modules.slice(0, 2), [
    'packages/shim/src/capture.ts',
    'packages/shim/src/lockdown.ts',
  ]);
  const firstOther = modules.findIndex((m) => !m.startsWith('packages/shim/src/'));
  assert.ok(firstOther >= 2);
  assert.ok(modules.indexOf(PROBE_ENCLAVE) > modules.indexOf('packages/shim/src/ambient-error.ts'));
});
