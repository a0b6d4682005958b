/**
 * Attack: the host is the adversary (DESIGN.md §2) and drives the REAL enclave worker through the
 * boundary with well-formed but hostile calls: in the wrong order, twice, at once, with sealed
 * state of another node or platform, with deploys it altered, replayed or made for another
 * service, with frames of another client's session, with its clock jumping, and with platform
 * answers of the wrong shape. Each case checks the named refusal, that nothing changed, and that
 * the enclave keeps serving (docs/boundary.md §9).
 *
 * Four of these found defects (fixed): two apps.open at once recorded two operator keys; a
 * sealing key of the wrong length failed the start as "the handler failed"; junk evidence from
 * platform.report went into the genesis entry; enclave.stop during enclave.start was overridden
 * by the start. The rest are regressions: calls before start, start
 * twice, sealed state of another node, service, store, platform or purpose; unsigned, altered,
 * misdirected, replayed and stale deploys; another client's record (a hijack), a replayed one,
 * frames for ended or unknown sessions; the host clock at u53 max then 0; a full session table.
 */
import assert from 'node:assert/strict';
import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { RemoteError } from '@cloister/boundary';
import { decodeCbor, STORE_NAMESPACE_LOG } from '@cloister/core';
import { abiKit, SCRATCH2 } from '../../enclave/test/app-runtime-wasm.js';
import { get, i32 } from '../../enclave/test/sandbox-wasm.js';
import { signDeployRequest } from '../src/node/operator.js';
import { createMemoryStore } from '../src/store/index.js';
import { tempDir } from './helpers.js';
import { type HostileHost, hostileClient, hostileHost } from './hostile-kit.js';

const EMPTY = new Uint8Array(0);

/** A rejection with this code (and message, when given). */
function refused(code: string, message?: RegExp) {
  return (e: unknown): boolean => {
    assert.ok(e instanceof RemoteError, `expected the enclave's error reply, got ${e}`);
    assert.equal(e.code, code, e.message);
    if (message) assert.match(e.message, message);
    return true;
  };
}

function operatorKey(): { privateKey: KeyObject; publicKey: Uint8Array } {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const raw = new Uint8Array(publicKey.export({ format: 'der', type: 'spki' }).subarray(-65));
  return { privateKey, publicKey: raw };
}

/** `ver` (a query) answers the version string; `echo` (a query) answers its arguments. */
function appModule(version: string): Uint8Array {
  const kit = abiKit({ ver: `"${version}"` });
  const c = kit.call;
  return kit.module({
    routes: [
      { name: 'ver', kind: 'query', body: [...kit.str('ver'), ...c('result_set')] },
      {
        name: 'echo',
        kind: 'query',
        body: [
          ...i32(SCRATCH2),
          ...c('call_args'),
          ...i32(SCRATCH2),
          ...get(1),
          ...c('result_set'),
        ],
      },
    ],
  });
}

/** A started enclave (genesis) in a hostile host. */
async function started(o: Parameters<typeof hostileHost>[0] = {}): Promise<HostileHost> {
  const h = await hostileHost(o);
  await h.call('enclave.start', { nodeId: 'n1', sealedNode: EMPTY, sealedService: EMPTY });
  return h;
}

describe('attack: a hostile host calls apps.open', () => {
  it('with a key that is no P-256 public key: refused by name, nothing recorded; a real key then is', async (t) => {
    const h = await started();
    t.after(() => h.close());
    const offCurve = Uint8Array.from({ length: 65 }, (_, i) => (i === 0 ? 4 : 0)); // (0, 0)
    await assert.rejects(
      h.call('apps.open', { operatorKey: offCurve }),
      refused('INVALID_INPUT', /not a point on P-256/),
    );
    const compressedTag = Uint8Array.from({ length: 65 }, (_, i) => (i === 0 ? 2 : 1));
    for (const operatorKey of [new Uint8Array(64).fill(4), compressedTag]) {
      await assert.rejects(
        h.call('apps.open', { operatorKey }),
        refused('INVALID_INPUT', /a 65-byte uncompressed P-256 public key/),
      );
    }
    // Had one been recorded, this would be OPERATOR_KEY_MISMATCH for good.
    assert.notEqual((await h.call('apps.open', { operatorKey: operatorKey().publicKey })).txid, '');
  });

  it('twice at once with two operator keys: the second is refused, the first stays recorded', async (t) => {
    const h = await started();
    t.after(() => h.close());
    const k1 = operatorKey();
    const k2 = operatorKey();
    // Both sent before either is answered: the second arrives while the first's commit waits.
    const first = h.call('apps.open', { operatorKey: k1.publicKey });
    const second = h.call('apps.open', { operatorKey: k2.publicKey });
    assert.notEqual((await first).txid, '');
    await assert.rejects(second, refused('OPERATOR_KEY_MISMATCH'));
    // k1 is the recorded key: it opens without recording again, and it alone signs deploys.
    assert.equal((await h.call('apps.open', { operatorKey: k1.publicKey })).txid, '');
    const { serviceIdentity } = await h.call('service.status', {});
    const module = appModule('v1');
    const fields = { app: 'a', module, upgrade: false, prev: EMPTY, prevIndex: 0 };
    const by = (k: KeyObject) =>
      signDeployRequest(k, { ...fields, service: serviceIdentity }).request;
    await assert.rejects(
      h.call('apps.deploy', { request: by(k2.privateKey), module }),
      refused('APP_DEPLOY_SIGNATURE'),
    );
    assert.equal((await h.call('apps.deploy', { request: by(k1.privateKey), module })).app, 'a');
  });
});

describe('attack: a hostile host answers the platform calls', () => {
  for (const bytes of [0, 5, 33]) {
    it(`platform.sealKey with a ${bytes}-byte key: the start is refused by name, and a retry with the platform's answer starts`, async (t) => {
      let broken = true;
      const h = await hostileHost({
        wrap: (b) => ({
          ...b,
          'platform.sealKey': (req) =>
            broken
              ? { key: new Uint8Array(bytes) }
              : (b['platform.sealKey'] as (r: typeof req) => { key: Uint8Array })(req),
        }),
      });
      t.after(() => h.close());
      const start = { nodeId: 'n1', sealedNode: EMPTY, sealedService: EMPTY };
      await assert.rejects(
        h.call('enclave.start', start),
        refused('BOUNDARY', new RegExp(`platform\\.sealKey reply holds a ${bytes}-byte key`)),
      );
      await assert.rejects(h.call('service.status', {}), refused('BOUNDARY', /not running/));
      broken = false;
      assert.equal((await h.call('enclave.start', start)).identityPublicKey.length, 65);
      assert.equal((await h.call('service.status', {})).index, 2);
    });
  }
});

/** platform.self's answer (the boundary catalogue's fields). */
type Self = {
  platform: string;
  measurement: Uint8Array;
  signer: Uint8Array;
  product: number;
  svn: number;
};

describe('attack: a hostile host answers platform.self', () => {
  const cases: [string, (real: Self) => Self, RegExp][] = [
    [
      'a 100,000-character platform name',
      (r) => ({ ...r, platform: 'x'.repeat(100_000) }),
      /platform\.self reply names the platform with 100000 characters/,
    ],
    ['an empty platform name', (r) => ({ ...r, platform: '' }), /with 0 characters/],
    ['a name with capitals', (r) => ({ ...r, platform: 'Simulation' }), /with 10 characters/],
    [
      'a 31-byte measurement',
      (r) => ({ ...r, measurement: r.measurement.subarray(1) }),
      /a 31-byte measurement and a 32-byte signer/,
    ],
    [
      'an empty signer',
      (r) => ({ ...r, signer: EMPTY }),
      /a 32-byte measurement and a 0-byte signer/,
    ],
  ];
  for (const [what, answer, message] of cases) {
    it(`${what}: the start is refused by name, and a retry with the platform's answer starts`, async (t) => {
      let broken = true;
      const h = await hostileHost({
        wrap: (b) => ({
          ...b,
          'platform.self': async (req) => {
            const real = await (b['platform.self'] as (r: typeof req) => Self | Promise<Self>)(req);
            return broken ? answer(real) : real;
          },
        }),
      });
      t.after(() => h.close());
      const start = { nodeId: 'n1', sealedNode: EMPTY, sealedService: EMPTY };
      await assert.rejects(h.call('enclave.start', start), refused('BOUNDARY', message));
      broken = false;
      assert.equal((await h.call('enclave.start', start)).identityPublicKey.length, 65);
      assert.equal((await h.call('service.status', {})).index, 2);
    });
  }
});

describe('attack: a hostile host answers platform.report', () => {
  type Report = (r: { reportData: Uint8Array }) => Promise<{ evidence: Uint8Array }>;
  type Answer = (
    real: Report,
    r: { reportData: Uint8Array },
  ) => { evidence: Uint8Array } | Promise<{ evidence: Uint8Array }>;
  const cases: [string, string, Answer][] = [
    ['junk bytes', 'EVIDENCE_FORMAT', () => ({ evidence: new Uint8Array(3) })],
    ['nothing', 'EVIDENCE_FORMAT', () => ({ evidence: EMPTY })],
    [
      "the platform's evidence of other report data",
      'KEY_BINDING',
      (real, r) => real({ reportData: r.reportData.map((b) => b ^ 1) }),
    ],
  ];
  for (const [what, code, answer] of cases) {
    it(`with ${what}: genesis is refused by name before it writes; the platform's answer starts it`, async (t) => {
      let broken = true;
      const h = await hostileHost({
        wrap: (b) => ({
          ...b,
          'platform.report': (req) =>
            broken
              ? answer(b['platform.report'] as Report, req)
              : (b['platform.report'] as Report)(req),
        }),
      });
      t.after(() => h.close());
      const start = { nodeId: 'n1', sealedNode: EMPTY, sealedService: EMPTY };
      await assert.rejects(h.call('enclave.start', start), refused(code, /platform\.report/));
      // Before: the junk went into the genesis entry, which every audit of the log checks.
      let written = 0;
      for await (const _ of h.store.iterate({})) written++;
      assert.equal(written, 0);
      broken = false;
      await h.call('enclave.start', start);
      assert.equal((await h.call('service.status', {})).index, 2);
    });
  }
});

describe('attack: a hostile host asks for app trace output, or names the node badly', () => {
  // App trace output sends app data to the host in the clear: the simulation platform only
  // (docs/node-api.md). The enclave takes the platform's name from platform.self, so a node whose
  // platform names itself otherwise must refuse it, and keep refusing.
  it('apps.trace is refused on a platform that is not the simulation, allowed on it', async (t) => {
    for (const [platform, allowed] of [
      ['sgx', false],
      ['simulation', true],
    ] as const) {
      const h = await hostileHost({
        wrap: (b) => ({
          ...b,
          'platform.self': async (req) => ({
            ...(await (b['platform.self'] as (r: typeof req) => Promise<Self>)(req)),
            platform,
          }),
        }),
      });
      t.after(() => h.close());
      await h.call('enclave.start', { nodeId: 'n1', sealedNode: EMPTY, sealedService: EMPTY });
      if (allowed) {
        assert.equal((await h.call('apps.trace', { enable: true })).enabled, true);
      } else {
        await assert.rejects(
          h.call('apps.trace', { enable: true }),
          refused('INVALID_INPUT', /refused on the sgx platform/),
        );
        assert.equal((await h.call('apps.trace', { enable: false })).enabled, false);
      }
    }
  });

  it('a node id outside [a-z0-9-]{1,64} is refused before anything is sealed', async (t) => {
    const h = await hostileHost();
    t.after(() => h.close());
    for (const nodeId of ['', 'N1', 'n 1', 'n/1', 'x'.repeat(65)]) {
      await assert.rejects(
        h.call('enclave.start', { nodeId, sealedNode: EMPTY, sealedService: EMPTY }),
        refused('INVALID_INPUT', /node id must match/),
        JSON.stringify(nodeId),
      );
    }
    const start = { nodeId: 'n1', sealedNode: EMPTY, sealedService: EMPTY };
    assert.equal((await h.call('enclave.start', start)).identityPublicKey.length, 65);
  });
});

describe('attack: a hostile host answers platform.counterIncrement', () => {
  // The epoch counter is the service's defence against a second instance (docs/logchain.md §7):
  // an increment that lands anywhere but one past what this start read means another instance
  // moved it meanwhile (or the platform lies), and starting anyway would fork the service.
  it('with a value other than the one expected: the start is refused as a rollback', async (t) => {
    type Increment = (r: { name: string }) => Promise<{ value: number }>;
    const h = await hostileHost({
      wrap: (b) => ({
        ...b,
        'platform.counterIncrement': async (req) => {
          const real = await (b['platform.counterIncrement'] as Increment)(req);
          return { value: real.value + 1 };
        },
      }),
    });
    t.after(() => h.close());
    const start = { nodeId: 'n1', sealedNode: EMPTY, sealedService: EMPTY };
    await assert.rejects(
      h.call('enclave.start', start),
      refused('ROLLBACK_DETECTED', /another instance runs this service/),
    );
  });
});

describe('attack: a hostile host calls enclave.start and enclave.stop out of order', () => {
  it('every other call before enclave.start is refused by name', async (t) => {
    const h = await hostileHost();
    t.after(() => h.close());
    const calls = [
      h.call('service.status', {}),
      h.call('enclave.evidence', { nonce: EMPTY }),
      h.call('apps.open', { operatorKey: EMPTY }),
      h.call('apps.deploy', { request: EMPTY, module: EMPTY }),
      h.call('apps.info', { app: '' }),
      h.call('apps.trace', { enable: true }),
      h.call('scp.open', {}),
      h.call('scp.frame', { session: 1, frame: EMPTY, ms: 0 }),
      h.call('service.tick', {}),
      h.call('service.rotateSecret', {}),
      h.call('service.receipt', { txid: '1.1' }),
      h.call('service.consistency', { from: 0, to: 0 }),
    ];
    for (const c of calls) await assert.rejects(c, refused('BOUNDARY', /enclave is new/));
    const start = { nodeId: 'n1', sealedNode: EMPTY, sealedService: EMPTY };
    assert.equal((await h.call('enclave.start', start)).identityPublicKey.length, 65);
  });

  it('enclave.start twice at once, and again once running: the later ones are refused', async (t) => {
    const h = await hostileHost();
    t.after(() => h.close());
    const start = { nodeId: 'n1', sealedNode: EMPTY, sealedService: EMPTY };
    const [first, second] = await Promise.allSettled([
      h.call('enclave.start', start),
      h.call('enclave.start', start),
    ]);
    assert.equal(first.status, 'fulfilled');
    assert.equal(second.status, 'rejected');
    refused('BOUNDARY', /while starting/)(second.status === 'rejected' && second.reason);
    await assert.rejects(h.call('enclave.start', start), refused('BOUNDARY', /while running/));
    // One genesis: entry 1 and its signature, not two services.
    assert.equal((await h.call('service.status', {})).index, 2);
  });

  it('enclave.stop while enclave.start waits on the host: the start is refused, the enclave stays stopped', async (t) => {
    const h = await hostileHost();
    t.after(() => h.close());
    const start = { nodeId: 'n1', sealedNode: EMPTY, sealedService: EMPTY };
    // The stop is queued before the host answers the start's first platform call.
    const starting = h.call('enclave.start', start);
    await h.call('enclave.stop', {});
    await assert.rejects(
      starting,
      refused('BOUNDARY', /enclave\.stop arrived during enclave\.start/),
    );
    await assert.rejects(h.call('service.status', {}), refused('BOUNDARY', /enclave is stopped/));
    await assert.rejects(h.call('scp.open', {}), refused('BOUNDARY', /enclave is stopped/));
    await assert.rejects(h.call('enclave.start', start), refused('BOUNDARY', /while stopped/));
  });

  it('enclave.stop while a failing enclave.start waits on the host: still stopped, not startable', async (t) => {
    const h = await hostileHost();
    t.after(() => h.close());
    // A sealed node state of the wrong format fails the start after its first platform call.
    const starting = h.call('enclave.start', {
      nodeId: 'n1',
      sealedNode: new Uint8Array(100),
      sealedService: EMPTY,
    });
    await h.call('enclave.stop', {});
    await assert.rejects(starting, refused('SEALED_DATA_CORRUPT'));
    const start = { nodeId: 'n1', sealedNode: EMPTY, sealedService: EMPTY };
    await assert.rejects(h.call('enclave.start', start), refused('BOUNDARY', /while stopped/));
  });
});

describe('attack: a hostile host starts the enclave on sealed state that is not its own', () => {
  it("another node's, another service's, another platform's, another purpose's: each refused by name; the right one starts", async (t) => {
    const p1 = join(tempDir('cloister-hostile-'), 'platform');
    const p2 = join(tempDir('cloister-hostile-'), 'platform');
    const storeA = createMemoryStore();
    const storeB = createMemoryStore();
    const genesis = async (nodeId: string, store: typeof storeA) => {
      const h = await hostileHost({ platformDir: p1, store });
      const r = await h.call('enclave.start', { nodeId, sealedNode: EMPTY, sealedService: EMPTY });
      await h.call('enclave.stop', {});
      await h.close();
      return r;
    };
    const a = await genesis('na', storeA);
    const b = await genesis('nb', storeB);
    const cases: [string, string, Uint8Array, Uint8Array, typeof storeA, string, string][] = [
      ["B's service state", 'na', a.sealedNode, b.sealedService, storeA, p1, 'SEALED_DATA_CORRUPT'],
      [
        "A's node state named as B",
        'nb',
        a.sealedNode,
        b.sealedService,
        storeB,
        p1,
        'SEALED_DATA_CORRUPT',
      ],
      [
        "a new identity with A's service",
        'na',
        EMPTY,
        a.sealedService,
        storeA,
        p1,
        'SEALED_DATA_CORRUPT',
      ],
      [
        "A's state on B's store",
        'na',
        a.sealedNode,
        a.sealedService,
        storeB,
        p1,
        'LEDGER_INTEGRITY',
      ],
      [
        "A's state on another platform",
        'na',
        a.sealedNode,
        a.sealedService,
        storeA,
        p2,
        'SEALED_DATA_CORRUPT',
      ],
      [
        'the service state as node state',
        'na',
        a.sealedService,
        a.sealedService,
        storeA,
        p1,
        'SEALED_DATA_CORRUPT',
      ],
      [
        'the node state as service state',
        'na',
        a.sealedNode,
        a.sealedNode,
        storeA,
        p1,
        'SEALED_DATA_CORRUPT',
      ],
      ["genesis over A's store", 'na', a.sealedNode, EMPTY, storeA, p1, 'INVALID_INPUT'],
    ];
    for (const [what, nodeId, sealedNode, sealedService, store, platformDir, code] of cases) {
      const h = await hostileHost({ platformDir, store });
      t.after(() => h.close());
      const req = { nodeId, sealedNode, sealedService };
      await assert.rejects(h.call('enclave.start', req), refused(code), what);
      await assert.rejects(h.call('service.status', {}), refused('BOUNDARY', /enclave is new/));
    }
    // The refusals changed nothing: A's own state still starts on A's store, after a refusal in
    // the same worker.
    const h = await hostileHost({ platformDir: p1, store: storeA });
    t.after(() => h.close());
    const wrong = { nodeId: 'na', sealedNode: a.sealedNode, sealedService: b.sealedService };
    await assert.rejects(h.call('enclave.start', wrong), refused('SEALED_DATA_CORRUPT'));
    const right = { nodeId: 'na', sealedNode: a.sealedNode, sealedService: a.sealedService };
    assert.deepEqual((await h.call('enclave.start', right)).identityPublicKey, a.identityPublicKey);
    const status = await h.call('service.status', {});
    // Genesis and its signature; epoch 2: no refused start began an epoch on A's counter.
    assert.equal(status.index, 2);
    assert.equal(status.epoch, 2);
  });
});

describe('attack: a hostile host sends deploys', () => {
  it('unsigned, signed by another key, altered, for another service, replayed, stale: refused; the code history holds only the real ones', async (t) => {
    const h = await started();
    t.after(() => h.close());
    const op = operatorKey();
    const other = operatorKey();
    assert.notEqual((await h.call('apps.open', { operatorKey: op.publicKey })).txid, '');
    // Another key after one is recorded: refused (the node's later starts meet the same check).
    await assert.rejects(
      h.call('apps.open', { operatorKey: other.publicKey }),
      refused('OPERATOR_KEY_MISMATCH'),
    );
    const { serviceIdentity } = await h.call('service.status', {});
    const [v1, v2, v3] = ['v1', 'v2', 'v3'].map(appModule) as [Uint8Array, Uint8Array, Uint8Array];
    const sign = (
      module: Uint8Array,
      f: { upgrade?: boolean; prev?: Uint8Array; prevIndex?: number; service?: Uint8Array } = {},
      key = op.privateKey,
    ) =>
      signDeployRequest(key, {
        app: 'a',
        module,
        upgrade: f.upgrade ?? false,
        prev: f.prev ?? EMPTY,
        prevIndex: f.prevIndex ?? 0,
        service: f.service ?? serviceIdentity,
      }).request;
    const deploy = (request: Uint8Array, module: Uint8Array) =>
      h.call('apps.deploy', { request, module });

    await assert.rejects(deploy(EMPTY, v1), refused('ENCODING'));
    await assert.rejects(
      deploy(sign(v1, {}, other.privateKey), v1),
      refused('APP_DEPLOY_SIGNATURE'),
    );
    const altered = sign(v1);
    altered[altered.length - 70] = (altered[altered.length - 70] ?? 0) ^ 1; // in the payload
    await assert.rejects(deploy(altered, v1), refused('APP_DEPLOY_SIGNATURE'));
    await assert.rejects(deploy(sign(v1), v2), refused('APP_DEPLOY_CODE_MISMATCH'));
    await assert.rejects(
      deploy(sign(v1, { service: new Uint8Array(32).fill(7) }), v1),
      refused('APP_DEPLOY_STALE', /another service/),
    );
    const first = sign(v1);
    const d1 = await deploy(first, v1);
    await assert.rejects(deploy(first, v1), refused('APP_DEPLOY_STALE', /already deployed/));
    const up2 = sign(v2, { upgrade: true, prev: d1.codeId, prevIndex: d1.index });
    const d2 = await deploy(up2, v2);
    const up3 = sign(v3, { upgrade: true, prev: d2.codeId, prevIndex: d2.index });
    // An upgrade back to v1 signed while v1 was current (prev = v1): stale once v2 runs.
    const back = sign(v1, { upgrade: true, prev: d1.codeId, prevIndex: d1.index });
    await assert.rejects(deploy(back, v1), refused('APP_DEPLOY_STALE', /replayed or stale/));
    await assert.rejects(deploy(up2, v2), refused('APP_DEPLOY_STALE', /replayed or stale/));
    // An upgrade of v2 to v2 itself, current prev and index: refused, nothing recorded.
    await assert.rejects(
      deploy(sign(v2, { upgrade: true, prev: d2.codeId, prevIndex: d2.index }), v2),
      refused('APP_DEPLOY_STALE', /already runs code/),
    );
    const d3 = await deploy(up3, v3);
    await assert.rejects(deploy(up3, v3), refused('APP_DEPLOY_STALE', /replayed or stale/));

    // The history is the three real deploys, and a client's session runs v3.
    const info = await h.call('apps.info', { app: 'a' });
    const [[, history]] = decodeCbor(info.info) as [[string, [Uint8Array, number][], boolean]];
    assert.deepEqual(
      history.map(([, index]) => index),
      [d3.index, d2.index, d1.index],
    );
    const c = await hostileClient(h);
    const r = await c.call('query', { app: 'a', method: 'ver', args: '{}', codeId: d3.codeId });
    assert.ok(r.ok);
    assert.equal((r.result as Map<string, unknown>).get('result'), '"v3"');
  });
});

describe('attack: a hostile host relays secure sessions', () => {
  /** A started enclave with app `a` (v1) deployed. */
  async function serving() {
    const h = await started();
    const op = operatorKey();
    await h.call('apps.open', { operatorKey: op.publicKey });
    const { serviceIdentity } = await h.call('service.status', {});
    const module = appModule('v1');
    const request = signDeployRequest(op.privateKey, {
      app: 'a',
      module,
      upgrade: false,
      prev: EMPTY,
      prevIndex: 0,
      service: serviceIdentity,
    }).request;
    const { codeId } = await h.call('apps.deploy', { request, module });
    const echo = (args: string) => ({ app: 'a', method: 'echo', args, codeId });
    return { h, echo };
  }

  it("one client's record on another's session, or again on its own: only that session ends; the others serve", async (t) => {
    const { h, echo } = await serving();
    t.after(() => h.close());
    const a = await hostileClient(h);
    const b = await hostileClient(h);
    const bystander = await hostileClient(h);
    // A record of a's, sent on b's session (a hijack): b cannot open it and ends.
    const [record] = await a.session.seal({ type: 'request', id: 9, op: 'query', args: echo('1') });
    await h.call('scp.frame', { session: b.id, frame: record as Uint8Array, ms: 0 });
    assert.deepEqual(h.ended, [{ session: b.id, code: 'SCP_RECORD' }]);
    // The same record delivered to a, then replayed: the replay ends a.
    await h.call('scp.frame', { session: a.id, frame: record as Uint8Array, ms: 0 });
    await h.call('scp.frame', { session: a.id, frame: record as Uint8Array, ms: 0 });
    assert.deepEqual(h.ended.at(-1), { session: a.id, code: 'SCP_RECORD' });
    // Frames for ended, closed and never-opened sessions.
    await h.call('scp.frame', { session: b.id, frame: record as Uint8Array, ms: 0 });
    await h.call('scp.close', { session: bystander.id + 1000 });
    await assert.rejects(
      h.call('scp.frame', { session: 2 ** 53 - 1, frame: EMPTY, ms: 0 }),
      refused('INVALID_INPUT', /no such secure session/),
    );
    await assert.rejects(
      h.call('scp.frame', { session: 0, frame: EMPTY, ms: 0 }),
      refused('INVALID_INPUT', /no such secure session/),
    );
    const r = await bystander.call('query', echo('"still here"'));
    assert.equal(r.ok && (r.result as Map<string, unknown>).get('result'), '"still here"');
    assert.equal(h.exits.length, 0);
  });

  it("the host's clock jumping to the largest u53 and back to 0: calls are answered", async (t) => {
    const { h, echo } = await serving();
    t.after(() => h.close());
    let ms = 1_000;
    const c = await hostileClient(h, () => ms);
    for (const at of [2 ** 53 - 1, 0, 5]) {
      ms = at;
      const r = await c.call('query', echo(String(at)));
      assert.equal(r.ok && (r.result as Map<string, unknown>).get('result'), String(at));
    }
  });

  it('the session table filled: SCP_SESSIONS by name, open sessions still served, closing frees room', async (t) => {
    const { h, echo } = await serving();
    t.after(() => h.close());
    const c = await hostileClient(h);
    const opened: number[] = [];
    let full: unknown;
    for (;;) {
      try {
        opened.push((await h.call('scp.open', {})).session);
      } catch (e) {
        full = e;
        break;
      }
    }
    refused('SCP_SESSIONS', /secure sessions open/)(full);
    assert.equal(opened.length, 10_000 - 1);
    const r = await c.call('query', echo('1'));
    assert.ok(r.ok);
    await h.call('scp.close', { session: opened[0] as number });
    assert.equal((await h.call('scp.open', {})).session, (opened.at(-1) as number) + 1);
  });
});

describe("attack: a hostile host sends inputs over the enclave's own caps", () => {
  // The node's HTTP layer caps the nonce too; the enclave must not rely on it.
  it('a nonce over 64 bytes and a ping over 64 KiB are refused by name; at the caps they are answered', async (t) => {
    const h = await started();
    t.after(() => h.close());
    const nonce = new Uint8Array(64).fill(7);
    assert.ok((await h.call('enclave.evidence', { nonce })).evidence.length > 0);
    await assert.rejects(
      h.call('enclave.evidence', { nonce: new Uint8Array(65) }),
      refused('INVALID_INPUT', /nonce is 65 bytes; at most 64 allowed/),
    );
    const payload = new Uint8Array(64 * 1024).fill(1);
    assert.deepEqual((await h.call('enclave.ping', { payload })).payload, payload);
    await assert.rejects(
      h.call('enclave.ping', { payload: new Uint8Array(64 * 1024 + 1) }),
      refused('INVALID_INPUT', /ping payload too large/),
    );
  });
});

describe('attack: a hostile host alters a stored module between two starts', () => {
  it('the reload at apps.open fails by name (LEDGER_INTEGRITY) instead of serving without the app', async (t) => {
    const store = createMemoryStore();
    const platformDir = join(tempDir('cloister-hostile-'), 'platform');
    const first = await hostileHost({ store, platformDir });
    const start = { nodeId: 'n1', sealedNode: EMPTY, sealedService: EMPTY };
    const sealed = await first.call('enclave.start', start);
    const op = operatorKey();
    await first.call('apps.open', { operatorKey: op.publicKey });
    const { serviceIdentity } = await first.call('service.status', {});
    const module = appModule('v1');
    const fields = { app: 'a', module, upgrade: false, prev: EMPTY, prevIndex: 0 };
    const { request } = signDeployRequest(op.privateKey, { ...fields, service: serviceIdentity });
    await first.call('apps.deploy', { request, module });
    await first.call('enclave.stop', {});
    await first.close();
    // The largest record outside the log is the module's code (encrypted): one bit of it flipped.
    let largest: { key: Uint8Array; value: Uint8Array } | undefined;
    for await (const e of store.iterate()) {
      if (e.key[0] === STORE_NAMESPACE_LOG) continue;
      if (largest === undefined || e.value.length > largest.value.length) largest = e;
    }
    assert.ok(largest !== undefined && largest.value.length > module.length);
    const altered = largest.value.slice();
    altered[altered.length - 1] = (altered[altered.length - 1] as number) ^ 1;
    await store.write([{ type: 'put', key: largest.key, value: altered }], { sync: true });
    const h = await hostileHost({ store, platformDir });
    t.after(() => h.close());
    await h.call('enclave.start', {
      nodeId: 'n1',
      sealedNode: sealed.sealedNode,
      sealedService: sealed.sealedService,
    });
    // Not "0 apps loaded" (the app would then answer APP_NOT_FOUND on a node that looks fine).
    await assert.rejects(
      h.call('apps.open', { operatorKey: op.publicKey }),
      refused('LEDGER_INTEGRITY'),
    );
  });
});
