import assert from 'node:assert/strict';
import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import { test } from 'node:test';
import { encodeCbor } from '@cloister/core';
import {
  newServiceState,
  openServiceState,
  sealServiceState,
  serviceStateOwner,
  withNewSecret,
} from '../src/log/index.js';
import { createNodeState, openNodeState } from '../src/node-state.js';
import { SealedDataCorruptError, SecurityVersionRollbackError, seal, unseal } from '../src/seal.js';
import { fakePlatform, newNode } from './log-helpers.js';

test('service state round-trips: key, secrets, root key, counter', async () => {
  const p = fakePlatform();
  const owner = serviceStateOwner(newNode().publicKey);
  const s = withNewSecret(newServiceState()).state;
  const blob = await sealServiceState(p, owner, 1, s);
  const o = await openServiceState(p, owner, 1, blob);
  assert.equal(o.resealed, undefined);
  assert.deepEqual(o.state.servicePublicKey, s.servicePublicKey);
  assert.deepEqual(o.state.secrets, s.secrets);
  assert.deepEqual(o.state.rootKey, s.rootKey);
  assert.equal(o.state.counter, s.counter);
  assert.match(s.counter, /^cloister-ledger-epoch\.[0-9a-f]{16}$/);
});

test('corrupt, foreign or other-purpose blobs are refused', async () => {
  const p = fakePlatform();
  const owner = serviceStateOwner(newNode().publicKey);
  const blob = await sealServiceState(p, owner, 1, newServiceState());
  const bad = blob.slice();
  bad[bad.length - 3] = (bad[bad.length - 3] as number) ^ 1;
  await assert.rejects(openServiceState(p, owner, 1, bad), SealedDataCorruptError);
  const otherNode = serviceStateOwner(newNode().publicKey);
  await assert.rejects(openServiceState(p, otherNode, 1, blob), SealedDataCorruptError);
  await assert.rejects(openServiceState(fakePlatform(), owner, 1, blob), SealedDataCorruptError);
  const nodeBlob = (await createNodeState(p, 'n1', 1)).resealed as Uint8Array;
  await assert.rejects(openServiceState(p, owner, 1, nodeBlob), SealedDataCorruptError);
  // A node state sealed under this service's owner name (only a holder of the sealing key can
  // make one): its purpose alone refuses it, named, before it is decrypted and parsed.
  const sameOwner = await seal(
    p,
    { policy: 'signer', svn: 1, purpose: 'node-state', owner },
    encodeCbor(['cloister-node-state', 1, 1, Uint8Array.of(1, 2, 3)]),
  );
  await assert.rejects(
    openServiceState(p, owner, 1, sameOwner),
    (e: unknown) =>
      e instanceof SealedDataCorruptError &&
      /sealed blob is for purpose 'node-state', expected 'service-state'/.test(e.message),
  );
});

test('a node state that authenticates but holds no readable key is SealedDataCorruptError', async () => {
  // Only a holder of the sealing key can make one (the host, on simulation): still a named error.
  const p = fakePlatform();
  const blob = await seal(
    p,
    { policy: 'signer', svn: 1, purpose: 'node-state', owner: 'n1' },
    encodeCbor(['cloister-node-state', 1, 1, Uint8Array.of(1, 2, 3)]),
  );
  await assert.rejects(
    openNodeState(p, 'n1', 1, blob),
    (e: unknown) =>
      e instanceof SealedDataCorruptError && /unreadable identity key/.test(e.message),
  );
});

test('an svn upgrade reseals; the older version cannot open the resealed state', async () => {
  const p1 = fakePlatform({ svn: 1 });
  const p2 = p1.withSvn(2);
  const owner = serviceStateOwner(newNode().publicKey);
  const blob = await sealServiceState(p1, owner, 1, newServiceState());
  const up = await openServiceState(p2, owner, 2, blob);
  assert.ok(up.resealed);
  assert.equal(up.maxSvn, 2);
  await assert.rejects(openServiceState(p1, owner, 1, up.resealed), SecurityVersionRollbackError);
});

test('a node state opened by a higher svn is resealed at it; the older version then cannot open it', async () => {
  const p1 = fakePlatform({ svn: 1 });
  const created = await createNodeState(p1, 'n1', 1);
  for (const svn of [2, 3]) {
    const up = await openNodeState(p1.withSvn(svn), 'n1', svn, created.resealed as Uint8Array);
    assert.ok(up.resealed, `resealed at ${svn}`);
    assert.equal(up.maxSvn, svn);
    assert.deepEqual(up.identity.publicKey, created.identity.publicKey);
    await assert.rejects(openNodeState(p1.withSvn(svn - 1), 'n1', svn - 1, up.resealed), {
      code: 'SECURITY_VERSION_ROLLBACK',
      message: new RegExp(`written by security version ${svn}; this enclave is version ${svn - 1}`),
    });
    // Opened again at its own version, it is current: nothing to reseal.
    assert.equal(
      (await openNodeState(p1.withSvn(svn), 'n1', svn, up.resealed)).resealed,
      undefined,
    );
  }
});

test('a node state that authenticates but records a max svn above the opener is SecurityVersionRollbackError', async () => {
  // Only a holder of the sealing key can make one (the host, on simulation): the version the
  // state records is checked as well as the one its header names.
  const p = fakePlatform({ svn: 1 });
  const pkcs8 = new Uint8Array(newNode().privateKey.export({ type: 'pkcs8', format: 'der' }));
  const blob = await seal(
    p,
    { policy: 'signer', svn: 1, purpose: 'node-state', owner: 'n1' },
    encodeCbor(['cloister-node-state', 1, 2, pkcs8]),
  );
  await assert.rejects(openNodeState(p, 'n1', 1, blob), {
    code: 'SECURITY_VERSION_ROLLBACK',
    message: /written by security version 2; this enclave is version 1/,
  });
});

test('a service state that authenticates but breaks the format is SealedDataCorruptError, by name', async () => {
  // Only a holder of the sealing key can make one (the host, on simulation): still a named error.
  const p = fakePlatform();
  const owner = serviceStateOwner(newNode().publicKey);
  const s = withNewSecret(newServiceState()).state;
  const pkcs8 = new Uint8Array(s.serviceKey.export({ type: 'pkcs8', format: 'der' }));
  const secrets = s.secrets.map((x) => [x.generation, x.secret]);
  const fields = (): unknown[] => [
    'cloister-service-state',
    1,
    1,
    pkcs8,
    s.rootKey,
    s.counter,
    secrets,
  ];
  const sealed = (f: unknown[]) =>
    seal(p, { policy: 'signer', svn: 1, purpose: 'service-state', owner }, encodeCbor(f));
  assert.deepEqual(
    (await openServiceState(p, owner, 1, await sealed(fields()))).state.secrets,
    s.secrets,
  );
  const first = secrets[0] as [number, Uint8Array];
  const cases: [string, (f: unknown[]) => void][] = [
    [
      'is not in the service-state format',
      (f) => {
        f[1] = 2;
      },
    ],
    [
      'fields are malformed',
      (f) => {
        f[4] = s.rootKey.subarray(1);
      },
    ],
    [
      'fields are malformed',
      (f) => {
        f[5] = 'some-other-counter';
      },
    ],
    [
      'fields are malformed',
      (f) => {
        f[6] = [];
      },
    ],
    [
      'secrets are malformed',
      (f) => {
        f[6] = [first, first];
      },
    ],
    [
      'secrets are malformed',
      (f) => {
        f[6] = [[first[0], first[1].subarray(1)]];
      },
    ],
  ];
  for (const [what, edit] of cases) {
    const f = fields();
    edit(f);
    await assert.rejects(
      openServiceState(p, owner, 1, await sealed(f)),
      (e: unknown) =>
        e instanceof SealedDataCorruptError && e.message === `sealed service state ${what}`,
      what,
    );
  }
});

test('a node state that authenticates but breaks the format or holds a non-P-256 key is SealedDataCorruptError, by name', async () => {
  const p = fakePlatform();
  const p256 = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;
  const der = (k: KeyObject) => new Uint8Array(k.export({ type: 'pkcs8', format: 'der' }));
  const sealed = (f: unknown[]) =>
    seal(p, { policy: 'signer', svn: 1, purpose: 'node-state', owner: 'n1' }, encodeCbor(f));
  const ok = await openNodeState(
    p,
    'n1',
    1,
    await sealed(['cloister-node-state', 1, 1, der(p256)]),
  );
  assert.equal(ok.identity.publicKey.length, 65);
  const cases: [string, unknown[]][] = [
    ['is not in the node-state format', ['cloister-node-state', 2, 1, der(p256)]],
    ['is not in the node-state format', ['cloister-node-state', 1, 1, der(p256), 0]],
    ['fields are malformed', ['cloister-node-state', 1, 1.5, der(p256)]],
    [
      'holds a key that is not P-256',
      [
        'cloister-node-state',
        1,
        1,
        der(generateKeyPairSync('ec', { namedCurve: 'secp256k1' }).privateKey),
      ],
    ],
  ];
  for (const [what, fields] of cases) {
    await assert.rejects(
      openNodeState(p, 'n1', 1, await sealed(fields)),
      (e: unknown) =>
        e instanceof SealedDataCorruptError && e.message === `sealed node state ${what}`,
      what,
    );
  }
});

test('seal and unseal each wipe the key the platform derived for them', async () => {
  const given: Uint8Array[] = [];
  const keys = {
    // A key that depends on the key id alone, so unseal derives the one seal used.
    sealKey: async (_policy: unknown, _svn: number, keyId: Uint8Array) => {
      const k = new Uint8Array(32);
      k.set(keyId);
      k[31] = 1;
      given.push(k);
      return k;
    },
  };
  const opts = { policy: 'signer', svn: 1, purpose: 'test', owner: 'n1' } as const;
  const blob = await seal(keys, opts, Uint8Array.of(1, 2, 3));
  assert.deepEqual(given[0], new Uint8Array(32), 'seal wiped its key');
  const opened = await unseal(keys, { purpose: 'test', owner: 'n1', ownSvn: 1 }, blob);
  assert.deepEqual(opened.plaintext, Uint8Array.of(1, 2, 3));
  assert.equal(given.length, 2);
  assert.deepEqual(given[1], new Uint8Array(32), 'unseal wiped its key');
});
