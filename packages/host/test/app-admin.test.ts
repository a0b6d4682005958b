/**
 * The app admin and runtime together (the enclave's deploy path, with the host's request signing).
 *
 * An upgrade racing a transaction (docs/app-abi.md §3.3): a call that started on the old code
 * never commits on the upgraded state. Every transaction call reads the app's record in the
 * administrative ledger, so an upgrade that commits after the call's snapshot makes the call
 * conflict, and its re-run finds the code changed: APP_CODE_CHANGED, nothing of it stays.
 * Before, the runtime re-ran the call on the old module it had looked up at the start.
 */
import assert from 'node:assert/strict';
import { createPublicKey, generateKeyPairSync, type KeyObject } from 'node:crypto';
import { test } from 'node:test';
import {
  CborTag,
  decodeCbor,
  decodeSign1,
  ES256_PROTECTED,
  encodeCbor,
  encodeSign1,
  sha256,
  sign1ToBeSigned,
  toHex,
} from '@cloister/core';
import {
  createAppAdmin,
  decodeDeployRequest,
  recordedCode,
} from '../../enclave/src/apps/deploy/index.js';
import { AppCodeChangedError, createAppRuntime } from '../../enclave/src/apps/runtime/index.js';
import { createLedgerEngine } from '../../enclave/src/ledger/ledger/index.js';
import { abiKit } from '../../enclave/test/app-runtime-wasm.js';
import { options } from '../../enclave/test/ledger-engine-helpers.js';
import { signDeployRequest } from '../src/node/operator.js';
import { signEs256 } from '../src/platform/p256.js';
import { createMemoryStore } from '../src/store/index.js';

const CALLER = Uint8Array.from({ length: 65 }, (_, i) => (i === 0 ? 4 : i));
const te = (s: string): Uint8Array => new TextEncoder().encode(s);

/** `w` (transaction): t/k := the module's tag, answered as the result; `r` (query): t/k. */
function moduleTagged(tag: string): Uint8Array {
  const kit = abiKit({ t: 't', k: 'k', v: JSON.stringify(tag) });
  const c = kit.call;
  return kit.module({
    routes: [
      {
        name: 'w',
        kind: 'transaction',
        body: [
          ...[...kit.str('t'), ...kit.str('k'), ...kit.str('v'), ...c('ledger_set')],
          ...[...kit.str('v'), ...c('result_set')],
        ],
      },
    ],
  });
}

/** A first deploy of app `app` with `module`, signed by `key` for `service`: the request. */
function firstDeploy(
  key: KeyObject,
  service: Uint8Array,
  module: Uint8Array,
  app = 'demo',
): Uint8Array {
  return signDeployRequest(key, {
    app,
    module,
    upgrade: false,
    prev: new Uint8Array(0),
    prevIndex: 0,
    service,
  }).request;
}

/** `request`'s payload with one field changed, signed again by `key` (signDeployRequest can't). */
function resigned(key: KeyObject, request: Uint8Array, field: string, value: unknown): Uint8Array {
  const payload = decodeCbor(decodeSign1(request).payload) as Map<string, unknown>;
  const changed = encodeCbor(new Map(payload).set(field, value));
  const signature = signEs256(key, sign1ToBeSigned(ES256_PROTECTED, changed));
  return encodeSign1({ protectedBytes: ES256_PROTECTED, payload: changed, signature });
}

/** `bytes` with its last byte changed. */
function lastByteFlipped(bytes: Uint8Array): Uint8Array {
  const out = bytes.slice();
  out[out.length - 1] = (out.at(-1) ?? 0) ^ 1;
  return out;
}

/** An app runtime and admin over `engine`, opened with a new operator key. */
async function opened(engine: Awaited<ReturnType<typeof createLedgerEngine>>) {
  const runtime = createAppRuntime({ engine, currentCode: recordedCode });
  const service = new Uint8Array(32).fill(0x55);
  const admin = createAppAdmin({ engine, runtime, serviceIdentity: service });
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  await admin.open(new Uint8Array(publicKey.export({ format: 'der', type: 'spki' }).subarray(-65)));
  return { runtime, service, admin, privateKey };
}

test('a transaction racing an upgrade stops with APP_CODE_CHANGED instead of running old code after it', async () => {
  const inner = createMemoryStore();
  // The store tells the test when a batch starts being written (the upgrade's commit).
  let onWrite: (() => void) | undefined;
  const store = Object.assign(Object.create(inner) as typeof inner, {
    write: async (...a: Parameters<typeof inner.write>) => {
      const cb = onWrite;
      onWrite = undefined;
      cb?.();
      return inner.write(...a);
    },
  });
  const engine = await createLedgerEngine(options(store));
  const { runtime, service, admin, privateKey } = await opened(engine);
  const v1 = moduleTagged('v1');
  const v2 = moduleTagged('v2');
  const first = await admin.deploy(firstDeploy(privateKey, service, v1), v1);
  const w = () =>
    runtime.call({ app: 'demo', method: 'w', kind: 'transaction', args: 'null', caller: CALLER });
  assert.equal((await w()).result, '"v1"');

  // The call starts while the upgrade's batch is being written: it sees the old snapshot.
  const writing = new Promise<void>((r) => {
    onWrite = r;
  });
  const upgrade = admin.deploy(
    signDeployRequest(privateKey, {
      app: 'demo',
      module: v2,
      upgrade: true,
      prev: first.codeId,
      prevIndex: first.index,
      service,
    }).request,
    v2,
  );
  await writing;
  const racing = w();
  const [up, call] = await Promise.allSettled([upgrade, racing]);
  assert.equal(up.status, 'fulfilled');
  if (call.status === 'fulfilled') {
    // Had it committed, it must have been the new code's.
    assert.equal(call.value.codeId, toHex(up.status === 'fulfilled' ? up.value.codeId : v2));
  } else {
    assert.ok(call.reason instanceof AppCodeChangedError, String(call.reason));
  }
  // Whatever the interleaving, nothing the old code wrote came after the upgrade.
  const upIndex = up.status === 'fulfilled' ? up.value.index : 0;
  for (const v of engine.at().history('demo', 't', te('k'), { limit: 10 })) {
    if (v.index > upIndex) assert.equal(new TextDecoder().decode(v.value), '"v2"');
  }
  // And the next call runs the new code.
  assert.equal((await w()).result, '"v2"');
});

test('a restart reloads every recorded app, past the 1,000 a listing shows', async () => {
  const engine = await createLedgerEngine(options(createMemoryStore()));
  const service = new Uint8Array(32).fill(0x55);
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const operator = new Uint8Array(publicKey.export({ format: 'der', type: 'spki' }).subarray(-65));
  const first = createAppAdmin({
    engine,
    runtime: createAppRuntime({ engine }),
    serviceIdentity: service,
  });
  await first.open(operator);
  const module = moduleTagged('v1');
  const names = Array.from({ length: 1001 }, (_, i) => `a${String(i).padStart(4, '0')}`);
  for (const app of names) {
    await first.deploy(firstDeploy(privateKey, service, module, app), module);
  }
  // The node's next start: a fresh runtime and admin over the same ledger.
  const runtime = createAppRuntime({ engine, currentCode: recordedCode });
  const again = createAppAdmin({ engine, runtime, serviceIdentity: service });
  assert.equal((await again.open(operator)).apps, 1001);
  const last = names.at(-1) as string;
  assert.equal(again.info(last)[0]?.loaded, true);
  const r = await runtime.call({
    app: last,
    method: 'w',
    kind: 'transaction',
    args: 'null',
    caller: CALLER,
  });
  assert.equal(r.result, '"v1"');
  // The listing stays capped.
  assert.equal(again.info('').length, 1000);
});

test('a deploy request re-encoded with an unprotected header (same signature) is refused', async () => {
  const { service, admin, privateKey } = await opened(
    await createLedgerEngine(options(createMemoryStore())),
  );
  const v1 = moduleTagged('v1');
  const { request } = signDeployRequest(privateKey, {
    app: 'demo',
    module: v1,
    upgrade: false,
    prev: new Uint8Array(0),
    prevIndex: 0,
    service,
  });
  const d = decodeSign1(request);
  const extra = new Map<unknown, unknown>([[4, Uint8Array.of(0)]]);
  const reshaped = encodeCbor(new CborTag(18, [d.protectedBytes, extra, d.payload, d.signature]));
  await assert.rejects(admin.deploy(reshaped, v1), (e: unknown) => {
    assert.equal((e as { code?: string }).code, 'ENCODING');
    assert.match((e as Error).message, /unprotected header must be empty/);
    return true;
  });
  // The request as signed deploys.
  assert.equal((await admin.deploy(request, v1)).app, 'demo');
});

test('a deploy request whose prevIndex is not a whole number >= 0 is ENCODING, not a stale request', async () => {
  const { service, admin, privateKey } = await opened(
    await createLedgerEngine(options(createMemoryStore())),
  );
  const v1 = moduleTagged('v1');
  // A negative index would otherwise reach the freshness check and be refused as APP_DEPLOY_STALE
  // (for a first deploy, prevIndex must be 0): malformed input is named as such, before that.
  for (const prevIndex of [-1, -(2 ** 53 - 1), 1.5]) {
    const { request } = signDeployRequest(privateKey, {
      app: 'demo',
      module: v1,
      upgrade: false,
      prev: new Uint8Array(0),
      prevIndex,
      service,
    });
    await assert.rejects(admin.deploy(request, v1), (e: unknown) => {
      assert.equal((e as { code?: string }).code, 'ENCODING', String(prevIndex));
      assert.match((e as Error).message, /deploy request prevIndex is a whole number/);
      return true;
    });
  }
  assert.throws(() => admin.info('demo'), { code: 'APP_NOT_FOUND' }, 'nothing was recorded');
});

test('a deploy request payload is decoded strictly: each deviation is refused by name before any check of its content', () => {
  const field = (n: number, fill: number) => new Uint8Array(n).fill(fill);
  const valid = (): Map<string, unknown> =>
    new Map<string, unknown>([
      ['v', 1],
      ['app', 'demo'],
      ['codeId', field(32, 1)],
      ['upgrade', false],
      ['prev', new Uint8Array(0)],
      ['prevIndex', 0],
      ['service', field(32, 2)],
      ['salt', field(32, 3)],
    ]);
  const req = decodeDeployRequest(encodeCbor(valid()));
  assert.equal(req.app, 'demo');
  assert.equal(decodeDeployRequest(encodeCbor(valid().set('prev', field(32, 4)))).prev.length, 32);
  const cases: [string, (m: Map<string, unknown>) => void, string, RegExp][] = [
    ['a field missing', (m) => m.delete('salt'), 'ENCODING', /is a map of v, app, codeId/],
    ['a field more', (m) => m.set('note', 'x'), 'ENCODING', /is a map of v, app, codeId/],
    [
      'an unknown field instead of one',
      (m) => {
        m.delete('salt');
        m.set('sal', field(32, 3));
      },
      'ENCODING',
      /has no field sal/,
    ],
    ['version 2', (m) => m.set('v', 2), 'ENCODING', /version 2 is not supported \(1 is\)/],
    ['an app id that is not text', (m) => m.set('app', 7), 'ENCODING', /app must be text/],
    // `$admin` is the administrative ledger: no app id may name it.
    [
      'the administrative ledger as app id',
      (m) => m.set('app', '$admin'),
      'INVALID_INPUT',
      /an app id is/,
    ],
    ['upgrade not a bool', (m) => m.set('upgrade', 1), 'ENCODING', /upgrade is a bool/],
    [
      'a 31-byte codeId',
      (m) => m.set('codeId', field(31, 1)),
      'ENCODING',
      /codeId must be 32 bytes/,
    ],
    [
      'a 16-byte prev',
      (m) => m.set('prev', field(16, 1)),
      'ENCODING',
      /prev must be 0 or 32 bytes/,
    ],
    [
      'an empty service',
      (m) => m.set('service', new Uint8Array(0)),
      'ENCODING',
      /service must be 32 bytes/,
    ],
    ['a 31-byte salt', (m) => m.set('salt', field(31, 3)), 'ENCODING', /salt must be 32 bytes/],
    [
      'prevIndex as text',
      (m) => m.set('prevIndex', '0'),
      'ENCODING',
      /prevIndex is a whole number/,
    ],
  ];
  for (const [what, change, code, message] of cases) {
    const m = valid();
    change(m);
    assert.throws(() => decodeDeployRequest(encodeCbor(m)), { code, message }, what);
  }
  assert.throws(() => decodeDeployRequest(encodeCbor([1])), { code: 'ENCODING' }, 'not a map');
});

test('a deploy request without a given salt carries a fresh random 32-byte one, the one it signs', () => {
  const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const fields = {
    app: 'demo',
    module: moduleTagged('v1'),
    upgrade: false,
    prev: new Uint8Array(0),
    prevIndex: 0,
    service: new Uint8Array(32).fill(0x55),
  };
  const a = signDeployRequest(privateKey, fields);
  const b = signDeployRequest(privateKey, fields);
  assert.equal(a.salt.length, 32);
  assert.notDeepEqual(a.salt, b.salt, 'each request has its own salt');
  assert.deepEqual(decodeDeployRequest(decodeSign1(a.request).payload).salt, a.salt);
});

test('the enclave caps a deploy request at 4096 bytes and a module at maxModuleBytes, by name', async () => {
  const engine = await createLedgerEngine(options(createMemoryStore()));
  const runtime = createAppRuntime({ engine, currentCode: recordedCode });
  const service = new Uint8Array(32).fill(0x55);
  const v1 = moduleTagged('v1');
  const admin = createAppAdmin({
    engine,
    runtime,
    serviceIdentity: service,
    maxModuleBytes: v1.length - 1,
  });
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  await admin.open(new Uint8Array(publicKey.export({ format: 'der', type: 'spki' }).subarray(-65)));
  const signed = (module: Uint8Array) => firstDeploy(privateKey, service, module);
  // Checked before any decoding: a host cannot make the enclave parse a large request.
  await assert.rejects(admin.deploy(new Uint8Array(4097), v1), {
    code: 'INVALID_INPUT',
    message: 'a deploy request is at most 4096 bytes',
  });
  await assert.rejects(admin.deploy(signed(v1), v1), {
    code: 'INVALID_INPUT',
    message: `a module is 1 to ${v1.length - 1} bytes`,
  });
  assert.throws(() => admin.info('demo'), { code: 'APP_NOT_FOUND' }, 'nothing was recorded');
  // One byte shorter (a custom section's name), it fits and deploys.
  const shorter = moduleTagged('v');
  assert.equal(shorter.length, v1.length - 1);
  assert.equal((await admin.deploy(signed(shorter), shorter)).app, 'demo');
});

test('a first deploy must name no previous code and index 0: another prevIndex is a stale request', async () => {
  const { service, admin, privateKey } = await opened(
    await createLedgerEngine(options(createMemoryStore())),
  );
  const v1 = moduleTagged('v1');
  const { request } = signDeployRequest(privateKey, {
    app: 'demo',
    module: v1,
    upgrade: false,
    prev: new Uint8Array(0),
    prevIndex: 3,
    service,
  });
  await assert.rejects(admin.deploy(request, v1), {
    code: 'APP_DEPLOY_STALE',
    message:
      /the request is for app 'demo' at no code, but it is at no code: a replayed or stale request/,
  });
  assert.throws(() => admin.info('demo'), { code: 'APP_NOT_FOUND' }, 'nothing was recorded');
});

test('a deploy request off in one thing is refused by name: an empty module, the service or code id off in its last byte, an upgrade of an app never deployed', async () => {
  const { service, admin, privateKey } = await opened(
    await createLedgerEngine(options(createMemoryStore())),
  );
  const v1 = moduleTagged('v1');
  const sign = (module: Uint8Array, f: { upgrade?: boolean; service?: Uint8Array } = {}) =>
    signDeployRequest(privateKey, {
      app: 'demo',
      module,
      upgrade: f.upgrade ?? false,
      prev: new Uint8Array(0),
      prevIndex: 0,
      service: f.service ?? service,
    }).request;
  const empty = new Uint8Array(0);
  await assert.rejects(admin.deploy(sign(empty), empty), {
    code: 'INVALID_INPUT',
    message: /^a module is 1 to \d+ bytes$/,
  });
  await assert.rejects(admin.deploy(sign(v1, { service: lastByteFlipped(service) }), v1), {
    code: 'APP_DEPLOY_STALE',
    message: 'the deploy request was made for another service',
  });
  const codeId = lastByteFlipped(sha256(v1));
  await assert.rejects(admin.deploy(resigned(privateKey, sign(v1), 'codeId', codeId), v1), {
    code: 'APP_DEPLOY_CODE_MISMATCH',
    message: `the module's code id is ${toHex(sha256(v1))}; the request signs ${toHex(codeId)}`,
  });
  // An upgrade names code that runs: with none, it is not taken as a first deploy.
  await assert.rejects(admin.deploy(sign(v1, { upgrade: true }), v1), {
    code: 'APP_NOT_FOUND',
    message: "no app 'demo' is deployed",
  });
  assert.throws(() => admin.info('demo'), { code: 'APP_NOT_FOUND' }, 'nothing was recorded');
  assert.equal((await admin.deploy(sign(v1), v1)).app, 'demo', 'the exact request deploys');
});

test('an upgrade names both the current code id and the index it took effect at: either one off is a stale request', async () => {
  const { service, admin, privateKey } = await opened(
    await createLedgerEngine(options(createMemoryStore())),
  );
  const [v1, v2, v3] = ['v1', 'v2', 'v3'].map(moduleTagged) as [Uint8Array, Uint8Array, Uint8Array];
  const sign = (module: Uint8Array, prev: Uint8Array, prevIndex: number) =>
    signDeployRequest(privateKey, { app: 'demo', module, upgrade: true, prev, prevIndex, service })
      .request;
  const first = await admin.deploy(firstDeploy(privateKey, service, v1), v1);
  // Signed while v1 first ran; v1 runs again later, from another index: the request is stale.
  const early = sign(v3, first.codeId, first.index);
  const second = await admin.deploy(sign(v2, first.codeId, first.index), v2);
  const again = await admin.deploy(sign(v1, second.codeId, second.index), v1);
  const stale =
    /the request is for app 'demo' at code [0-9a-f]{64} \(index \d+\), but it is at code [0-9a-f]{64} \(index \d+\): a replayed or stale request/;
  await assert.rejects(admin.deploy(early, v3), { code: 'APP_DEPLOY_STALE', message: stale });
  // The current index with another code id.
  await assert.rejects(admin.deploy(sign(v3, sha256(v2), again.index), v3), {
    code: 'APP_DEPLOY_STALE',
    message: stale,
  });
  assert.deepEqual(
    admin.info('demo')[0]?.history.map((h) => h.index),
    [again.index, second.index, first.index],
    'nothing more was recorded',
  );
  assert.equal((await admin.deploy(sign(v3, again.codeId, again.index), v3)).app, 'demo');
});

test("apps.open refuses the recorded operator key's mirror point (same x, the other y) as another key", async () => {
  const engine = await createLedgerEngine(options(createMemoryStore()));
  const { privateKey } = await opened(engine);
  const spki = createPublicKey(privateKey).export({ format: 'der', type: 'spki' });
  const recorded = new Uint8Array(spki.subarray(-65));
  // -Q = (x, p - y): a valid P-256 key equal to the recorded one in its first 33 bytes.
  const p = 2n ** 256n - 2n ** 224n + 2n ** 192n + 2n ** 96n - 1n;
  const y = BigInt(`0x${toHex(recorded.subarray(33))}`);
  const mirror = recorded.slice();
  mirror.set(Buffer.from((p - y).toString(16).padStart(64, '0'), 'hex'), 33);
  const again = createAppAdmin({
    engine,
    runtime: createAppRuntime({ engine, currentCode: recordedCode }),
    serviceIdentity: new Uint8Array(32).fill(0x55),
  });
  await assert.rejects(again.open(mirror), {
    code: 'OPERATOR_KEY_MISMATCH',
    message: /records another operator key/,
  });
  assert.equal((await again.open(recorded)).txid, '', 'the recorded key opens');
});
