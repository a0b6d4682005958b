/**
 * Attack: the host is the adversary (DESIGN.md §2) and drives the REAL enclave worker through the
 * boundary with well-formed but hostile calls: in the wrong order, twice, at once, with sealed
 * state of another node or platform, with deploys it altered, replayed or made for another
 * service, with frames of another client's session, with its clock jumping, and with platform
 * answers of the wrong shape. Each case checks the named refusal, that nothing changed, and that
 * the enclave keeps serving (docs/boundary.md §9).
 */
import assert from 'node:assert/strict';
import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import { describe, it } from 'node:test';
import { RemoteError } from '@cloister/boundary';
import { abiKit, SCRATCH2 } from '../../enclave/test/app-runtime-wasm.js';
import { get, i32 } from '../../enclave/test/sandbox-wasm.js';
import { signDeployRequest } from '../src/node/operator.js';
import { type HostileHost, hostileHost } from './hostile-kit.js';

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
