/**
 * SCP: honest handshakes and the record layer (messages both ways, ordering under concurrency,
 * key updates, sequence limit, padding, close), and the strict codecs.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { bytesEqual } from '../src/bytes.js';
import { encodeCbor } from '../src/cbor.js';
import { isCloisterError } from '../src/errors.js';
import { sha256 } from '../src/hash.js';
import { decodePlaintext, encodePlaintext, messageArray } from '../src/scp/codec.js';
import {
  clientHandshake,
  decodeAlert,
  encodeAlert,
  FRAME,
  MAX_FRAME,
  MAX_RESULT_BYTES,
  paddedLength,
  REKEY_AFTER,
  type ScpCrypto,
  type ScpMessage,
  type ScpSession,
  SEQ_LIMIT,
  serverHandshake,
  webCryptoScp,
  webCryptoSigner,
} from '../src/scp/index.js';
import { createSession } from '../src/scp/session.js';
import {
  connected,
  makeWorld,
  nobleSigner,
  type RunOptions,
  randomKey,
  runHandshake,
  withSyncAead,
} from './scp-kit.js';

const code = (c: string) => (e: unknown) => isCloisterError(e) && e.code === c;

async function deliver(
  from: ScpSession,
  to: ScpSession,
  m: ScpMessage,
  pad = false,
): Promise<ScpMessage[]> {
  const out: ScpMessage[] = [];
  for (const f of await from.seal(m, { pad })) out.push(...(await to.open(f)));
  return out;
}

const req = (id: number, args: Record<string, unknown> = { app: 'mail' }): ScpMessage => ({
  type: 'request',
  id,
  op: 'app.info',
  args,
});

describe('SCP handshake: honest runs', () => {
  test('both sides agree on the session hash; each knows the other key; server auth verified', async () => {
    const world = makeWorld();
    const identity = nobleSigner(randomKey());
    const r = await runHandshake({ world, identity });
    assert.equal(r.clientError, undefined);
    assert.equal(r.serverError, undefined);
    const c = r.clientSession as ScpSession;
    const s = r.serverSession as ScpSession;
    assert.ok(bytesEqual(c.sessionHash, s.sessionHash));
    assert.equal(c.sessionHash.length, 32);
    assert.ok(bytesEqual(c.peerKey, world.node.publicKey));
    assert.ok(bytesEqual(s.peerKey, identity.publicKey));
    assert.ok(bytesEqual(r.clientKey as Uint8Array, identity.publicKey));
    assert.ok(bytesEqual(r.auth?.serviceIdentity as Uint8Array, sha256(world.service.publicKey)));
    assert.equal(c.closed, false);
  });

  test('the client identity never appears in clear on the wire', async () => {
    const identity = nobleSigner(randomKey());
    const r = await runHandshake({ identity });
    const hex = Buffer.from(identity.publicKey).toString('hex');
    for (const f of Object.values(r.frames)) {
      assert.ok(!Buffer.from(f).toString('hex').includes(hex.slice(2, 40)));
    }
  });

  test('a WebCrypto identity (non-extractable key) works as the client signer', async () => {
    const pair = (await crypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, false, [
      'sign',
      'verify',
    ])) as CryptoKeyPair;
    const pub = new Uint8Array(await crypto.subtle.exportKey('raw', pair.publicKey));
    const { server } = await connected({ identity: webCryptoSigner(pair, pub) });
    assert.ok(bytesEqual(server.peerKey, pub));
  });

  test('authorize refusing stops the client before CA; its error is the one rethrown', async () => {
    const r = await runHandshake({
      authorize: async () => {
        throw new Error('pinned service changed');
      },
    });
    assert.match(String(r.clientError), /pinned service changed/);
    assert.equal(r.frames.CA, undefined);
    assert.equal(r.clientSession, undefined);
  });

  test('a constraint the evidence does not meet is refused by verifyServerAuth', async () => {
    const world = makeWorld();
    const strict = world.constraint.replace(' SEC:INSECURE', '');
    const r = await runHandshake({ world: { ...world, constraint: strict } });
    assert.ok(code('INSECURE_PLATFORM')(r.clientError), String(r.clientError));
    assert.equal(r.frames.CA, undefined);
    const svc = `${world.constraint} SVC:${'00'.repeat(32)}`;
    const r2 = await runHandshake({ world: { ...world, constraint: svc } });
    assert.ok(code('CONSTRAINT_MISMATCH')(r2.clientError), String(r2.clientError));
    const ok = `${world.constraint} SVC:${Buffer.from(sha256(world.service.publicKey)).toString('hex')}`;
    assert.equal(
      (await runHandshake({ world: { ...world, constraint: ok } })).clientError,
      undefined,
    );
  });

  test('an endorsement of another service, or evidence for another key, is refused', async () => {
    const world = makeWorld();
    const other = makeWorld({ node: world.node });
    const r = await runHandshake({ world: { ...world, endorsement: other.endorsement } });
    assert.ok(
      code('SCP_HANDSHAKE')(r.clientError) || code('NONCE_MISMATCH')(r.clientError),
      String(r.clientError),
    );
    assert.equal(r.frames.CA, undefined);
    const r2 = await runHandshake({ world: { ...world, evidence: makeWorld().evidence } });
    assert.ok(isCloisterError(r2.clientError), String(r2.clientError));
    assert.equal(r2.frames.CA, undefined);
  });

  test('a service key in SA other than the one the endorsement names is refused', async () => {
    // The node's evidence and endorsement are genuine; the service key it presents is not the
    // endorsed one (the client would pin it as the service identity).
    const world = makeWorld();
    const server = serverHandshake({
      crypto: webCryptoScp,
      nodeSigner: nobleSigner(world.node),
      serviceKey: randomKey().publicKey,
      evidence: world.evidence,
      endorsement: world.endorsement,
    });
    const r = await runHandshake({ world, server });
    assert.ok(code('SCP_HANDSHAKE')(r.clientError), String(r.clientError));
    assert.match(
      (r.clientError as Error).message,
      /the service endorsement names other keys than the node presented in the handshake/,
    );
    assert.equal(r.frames.CA, undefined);
  });

  test('state machines refuse out-of-order calls and stay poisoned after a failure', async () => {
    const world = makeWorld();
    const client = clientHandshake({
      crypto: webCryptoScp,
      identity: nobleSigner(randomKey()),
      authorize: async () => {},
    });
    await assert.rejects(client.receive(Uint8Array.of(2)), code('SCP_PROTOCOL'));
    await assert.rejects(client.start(), code('SCP_HANDSHAKE')); // poisoned by the failure
    const server = serverHandshake({
      crypto: webCryptoScp,
      nodeSigner: nobleSigner(world.node),
      serviceKey: world.service.publicKey,
      evidence: world.evidence,
      endorsement: world.endorsement,
    });
    const c2 = clientHandshake({
      crypto: webCryptoScp,
      identity: nobleSigner(randomKey()),
      authorize: async () => {},
    });
    const ch = await c2.start();
    await assert.rejects(server.receive(Uint8Array.of(FRAME.CA, 1, 2)), code('SCP_HANDSHAKE'));
    await assert.rejects(server.receive(ch), code('SCP_HANDSHAKE'));
  });

  test('a finished handshake takes no more frames: a replayed CA or SA gets no second session', async () => {
    const world = makeWorld();
    const client = clientHandshake({
      crypto: webCryptoScp,
      identity: nobleSigner(randomKey()),
      authorize: async () => {},
    });
    const server = serverHandshake({
      crypto: webCryptoScp,
      nodeSigner: nobleSigner(world.node),
      serviceKey: world.service.publicKey,
      evidence: world.evidence,
      endorsement: world.endorsement,
    });
    const r = await runHandshake({ world, client, server });
    assert.ok(r.clientSession && r.serverSession);
    await assert.rejects(server.receive(r.frames.CA as Uint8Array), code('SCP_PROTOCOL'));
    await assert.rejects(client.receive(r.frames.SA as Uint8Array), code('SCP_PROTOCOL'));
    // start() sends one CH: a second call is refused, not a second ephemeral key.
    const once = clientHandshake({
      crypto: webCryptoScp,
      identity: nobleSigner(randomKey()),
      authorize: async () => {},
    });
    await once.start();
    await assert.rejects(once.start(), code('SCP_PROTOCOL'));
  });

  test('a CH naming another protocol is refused before the server answers', async () => {
    const world = makeWorld();
    const server = serverHandshake({
      crypto: webCryptoScp,
      nodeSigner: nobleSigner(world.node),
      serviceKey: world.service.publicKey,
      evidence: world.evidence,
      endorsement: world.endorsement,
    });
    const key = randomKey();
    const ch = (name: string) =>
      Uint8Array.of(FRAME.CH, ...encodeCbor([name, [1], key.publicKey, new Uint8Array(32)]));
    await assert.rejects(
      server.receive(ch('cloister/scp/v2')),
      (e: unknown) => code('SCP_HANDSHAKE')(e) && /CH must start with/.test((e as Error).message),
    );
  });

  test('an ALERT ends the client handshake with the alert code', async () => {
    const client = clientHandshake({
      crypto: webCryptoScp,
      identity: nobleSigner(randomKey()),
      authorize: async () => {},
    });
    await client.start();
    await assert.rejects(
      client.receive(encodeAlert('SCP_VERSION', 'no common version')),
      code('SCP_VERSION'),
    );
    assert.deepEqual(decodeAlert(encodeAlert('X', 'y')), { code: 'X', message: 'y' });
    assert.throws(() => decodeAlert(Uint8Array.of(FRAME.ALERT, 0x80)), code('SCP_PROTOCOL'));
  });

  test('an ALERT whose code or message is not text of at most 1024 UTF-8 bytes is SCP_PROTOCOL (coverage gap)', () => {
    const alert = (parts: unknown[]) => Uint8Array.of(FRAME.ALERT, ...encodeCbor(parts));
    const cases: [unknown[], string][] = [
      [[1, 'm'], 'ALERT code must be text of at most 1024 bytes'],
      [['X', Uint8Array.of(1)], 'ALERT message must be text of at most 1024 bytes'],
      [['X', 'm'.repeat(1025)], 'ALERT message must be text of at most 1024 bytes'],
      // 513 characters, 1026 bytes: the bound is in bytes.
      [['X', '\u00e9'.repeat(513)], 'ALERT message must be text of at most 1024 bytes'],
    ];
    for (const [parts, message] of cases) {
      assert.throws(
        () => decodeAlert(alert(parts)),
        (e: unknown) => code('SCP_PROTOCOL')(e) && (e as Error).message === message,
      );
    }
    assert.deepEqual(decodeAlert(alert(['X', 'm'.repeat(1024)])).message.length, 1024);
  });

  test('webCryptoScp.verify: a key that is not a P-256 point verifies nothing and throws nothing (coverage gap)', async () => {
    const key = randomKey();
    const data = Uint8Array.of(1, 2, 3);
    const sig = await nobleSigner(key).sign(data);
    assert.equal(await webCryptoScp.verify(key.publicKey, data, sig), true);
    const offCurve = key.publicKey.slice();
    offCurve[64] = (offCurve[64] as number) ^ 1;
    for (const bad of [offCurve, key.publicKey.subarray(0, 64), new Uint8Array(65)]) {
      assert.equal(await webCryptoScp.verify(bad, data, sig), false);
    }
  });

  test('versions: no common version is SCP_VERSION at the server and the client', async () => {
    const r = await runHandshake({ versions: [2, 3] });
    assert.ok(code('SCP_VERSION')(r.serverError), String(r.serverError));
    assert.ok(code('SCP_VERSION')(r.clientError), String(r.clientError));
    const ok = await runHandshake({ versions: [1, 2] });
    assert.equal(ok.clientError, undefined);
  });
});

for (const [label, crypto] of [
  ['WebCrypto AEAD', webCryptoScp],
  ['synchronous AEAD', withSyncAead(webCryptoScp)],
  ['synchronous AEAD, sealed after the type byte', withSyncAead(webCryptoScp, { prefixed: true })],
] as const) {
  describe(`SCP records (${label})`, () => {
    const conn = (o: RunOptions = {}) =>
      connected({ clientCrypto: crypto, serverCrypto: crypto, ...o });

    test('messages both ways, every type, in order', async () => {
      const { client, server } = await conn();
      const args = { app: 'mail', n: 5 };
      const [got] = await deliver(client, server, req(1, args));
      assert.deepEqual(got, { ...req(1), args: new Map(Object.entries(args)) });
      const notes: ScpMessage[] = [
        { type: 'notify', id: 1, json: '{"progress":1}' },
        { type: 'response', id: 1, ok: true, result: { codeId: new Uint8Array(32), index: 3 } },
        { type: 'response', id: 2, ok: false, code: 'APP_NOT_FOUND', message: 'no app "x"' },
      ];
      for (const n of notes) {
        const [m] = await deliver(server, client, n);
        if (n.type === 'response' && n.ok) {
          assert.deepEqual(m, { ...n, result: new Map(Object.entries(n.result)) });
        } else assert.deepEqual(m, n);
      }
    });

    test('concurrent seals and opens keep call order', async () => {
      const { client, server } = await conn();
      const sealed = await Promise.all(
        Array.from({ length: 50 }, (_, i) => client.seal(req(i + 1))),
      );
      const opened = await Promise.all(sealed.flat().map((f) => server.open(f)));
      assert.deepEqual(
        opened.flat().map((m) => (m as { id: number }).id),
        Array.from({ length: 50 }, (_, i) => i + 1),
      );
    });

    test('key update: the sender rekeys after rekeyAfter records; the receiver follows', async () => {
      const { client, server } = await conn({ clientLimits: { rekeyAfter: 4 } });
      let frames = 0;
      const ids: number[] = [];
      for (let i = 1; i <= 20; i++) {
        const fs = await client.seal(req(i));
        frames += fs.length;
        assert.equal(fs.length, i % 3 === 1 && i > 1 ? 2 : 1, `message ${i}`);
        for (const f of fs)
          ids.push(...(await server.open(f)).map((m) => (m as { id: number }).id));
      }
      assert.equal(frames, 20 + 6);
      assert.deepEqual(
        ids,
        Array.from({ length: 20 }, (_, i) => i + 1),
      );
      // The other direction still works on its own keys.
      assert.equal((await deliver(server, client, { type: 'notify', id: 1, json: '1' })).length, 1);
    });

    test('a dropped key update makes the next record fail', async () => {
      const { client, server } = await conn({ clientLimits: { rekeyAfter: 2 } });
      await server.open((await client.seal(req(1)))[0] as Uint8Array);
      const [ku, m] = (await client.seal(req(2))) as [Uint8Array, Uint8Array];
      assert.ok(ku && m);
      await assert.rejects(server.open(m), code('SCP_RECORD'));
    });

    test('SEQ_LIMIT: a peer that never rekeys is cut off with SCP_SEQUENCE', async () => {
      const { client, server } = await conn({ serverLimits: { seqLimit: 4, rekeyAfter: 4 } });
      for (let i = 1; i <= 4; i++) await server.open((await client.seal(req(i)))[0] as Uint8Array);
      await assert.rejects(
        server.open((await client.seal(req(5)))[0] as Uint8Array),
        code('SCP_SEQUENCE'),
      );
      await assert.rejects(
        server.open((await client.seal(req(6)))[0] as Uint8Array),
        code('SCP_SEQUENCE'),
      );
      assert.equal(server.closed, true);
    });

    test('limits are never above the defaults', async () => {
      const world = makeWorld();
      const base = {
        crypto: webCryptoScp,
        nodeSigner: nobleSigner(world.node),
        serviceKey: world.service.publicKey,
        evidence: world.evidence,
        endorsement: world.endorsement,
      };
      assert.throws(
        () => serverHandshake({ ...base, limits: { seqLimit: SEQ_LIMIT + 1 } }),
        code('INVALID_INPUT'),
      );
      assert.throws(
        () => serverHandshake({ ...base, limits: { rekeyAfter: REKEY_AFTER + 1 } }),
        code('INVALID_INPUT'),
      );
      assert.throws(
        () => serverHandshake({ ...base, limits: { rekeyAfter: 8, seqLimit: 4 } }),
        code('INVALID_INPUT'),
      );
      assert.throws(
        () => serverHandshake({ ...base, limits: { rekeyAfter: 1 } }),
        code('INVALID_INPUT'),
      );
    });

    test('padding: bucket sizes, round trip, and only zero bytes accepted', async () => {
      assert.deepEqual(
        [0, 256, 257, 1024, 1025, 4097, 16384, 16385, 65536, 65537].map(paddedLength),
        [256, 256, 1024, 1024, 4096, 16384, 16384, 65536, 65536, 131072],
      );
      const { client, server } = await conn();
      for (const n of [0, 300, 5000, 70_000]) {
        const m: ScpMessage = { type: 'notify', id: 1, json: 'x'.repeat(n) };
        const [f] = (await client.seal(m, { pad: true })) as [Uint8Array];
        const pt = encodeCbor([3, 1, 'x'.repeat(n)]).length;
        assert.equal(f.length, 1 + paddedLength(pt) + 16);
        assert.deepEqual(await server.open(f), [m]);
      }
      const pt = encodePlaintext([3, 1, 'x'], true);
      assert.deepEqual(decodePlaintext(pt), { type: 'notify', id: 1, json: 'x' });
      const bad = pt.slice();
      bad[bad.length - 1] = 1;
      assert.throws(() => decodePlaintext(bad), code('SCP_PROTOCOL'));
      // Padding fills the message's own bucket: not another bucket, not a length in between.
      const body = encodePlaintext([3, 1, 'x'], false);
      for (const len of [body.length + 1, 255, 300, 512, 1024]) {
        const other = new Uint8Array(len);
        other.set(body);
        assert.throws(
          () => decodePlaintext(other),
          (e: unknown) =>
            code('SCP_PROTOCOL')(e) &&
            /must fill the message's bucket: 256/.test((e as Error).message),
          `padded to ${len}`,
        );
      }
    });

    test('close: sealing or opening a close ends that session', async () => {
      const { client, server } = await conn();
      const close: ScpMessage = { type: 'close', code: 'SCP_CLOSED', message: 'bye' };
      assert.deepEqual(await deliver(client, server, close), [close]);
      assert.equal(client.closed, true);
      assert.equal(server.closed, true);
      await assert.rejects(client.seal(req(1)), code('SCP_CLOSED'));
      await assert.rejects(
        server.open(Uint8Array.of(5, ...new Uint8Array(20))),
        code('SCP_CLOSED'),
      );
    });

    test('oversized messages are refused before sealing; oversized frames are refused on open', async () => {
      const { client, server } = await conn();
      await assert.rejects(
        client.seal({ type: 'notify', id: 1, json: 'x'.repeat(MAX_FRAME) }),
        code('FRAME_TOO_LARGE'),
      );
      // The refused seal consumed nothing: the next record still opens.
      assert.equal((await deliver(client, server, req(1))).length, 1);
      await assert.rejects(
        server.open(new Uint8Array(MAX_FRAME + 1).fill(5)),
        code('FRAME_TOO_LARGE'),
      );
    });

    test('the frame cap is exact: a record of MAX_FRAME bytes seals and opens, one byte more is refused before sealing', async () => {
      const { client, server } = await conn();
      const note = (n: number): ScpMessage => ({ type: 'notify', id: 1, json: 'x'.repeat(n) });
      // cbor([3, 1, json]) is json plus 8 bytes at this size; a record adds a type byte and a tag.
      const fits = MAX_FRAME - 1 - 16 - 8;
      assert.equal(encodePlaintext(messageArray(note(fits)), false).length, MAX_FRAME - 17);
      const [f, more] = await server.seal(note(fits));
      assert.equal(more, undefined);
      assert.equal(f?.length, MAX_FRAME);
      assert.deepEqual(await client.open(f as Uint8Array), [note(fits)]);
      await assert.rejects(server.seal(note(fits + 1)), code('FRAME_TOO_LARGE'));
      // Refused before sealing: no sequence number consumed, the next record opens.
      assert.deepEqual(await deliver(server, client, note(1)), [note(1)]);
    });

    test('a key update wipes the traffic secret it replaces, on both sides', async () => {
      const limits = { rekeyAfter: 2, seqLimit: 2 };
      const secret = (b: number) => new Uint8Array(32).fill(b);
      const base = { crypto, sessionHash: secret(9), peerKey: new Uint8Array(65), limits };
      const aSend = secret(1);
      const bRecv = secret(1);
      const a = await createSession({ ...base, sendSecret: aSend, recvSecret: secret(2) });
      const b = await createSession({ ...base, sendSecret: secret(2), recvSecret: bRecv });
      assert.equal((await deliver(a, b, req(1))).length, 1);
      assert.deepEqual(aSend, secret(1), 'no key update yet');
      const frames = await a.seal(req(2));
      assert.equal(frames.length, 2, 'a key update, then the record');
      assert.deepEqual(aSend, new Uint8Array(32), 'the sender wiped the secret it replaced');
      assert.deepEqual(await b.open(frames[0] as Uint8Array), []);
      assert.deepEqual(bRecv, new Uint8Array(32), 'the receiver wiped the secret it replaced');
      assert.equal((await b.open(frames[1] as Uint8Array)).length, 1);
    });

    test('a response with the largest app result and every field at its largest fits one frame, padded or not', async () => {
      const { client, server } = await conn();
      const largest = (result: string): ScpMessage => ({
        type: 'response',
        id: Number.MAX_SAFE_INTEGER,
        ok: true,
        result: {
          result,
          codeId: new Uint8Array(32).fill(0xff),
          repeated: true,
          txid: `${Number.MAX_SAFE_INTEGER}.${Number.MAX_SAFE_INTEGER}`,
        },
      });
      for (const pad of [false, true]) {
        const frames = await server.seal(largest('x'.repeat(MAX_RESULT_BYTES)), { pad });
        assert.equal(frames.length, 1);
        assert.ok((frames[0] as Uint8Array).length <= MAX_FRAME);
        const [m] = await client.open(frames[0] as Uint8Array);
        assert.ok(m?.type === 'response' && m.ok && m.result instanceof Map);
        assert.equal((m.result.get('result') as string).length, MAX_RESULT_BYTES);
      }
      // The bound is not slack by an order of magnitude: a result of a whole frame does not fit.
      await assert.rejects(server.seal(largest('x'.repeat(MAX_FRAME))), code('FRAME_TOO_LARGE'));
    });

    test('malformed messages to seal are InvalidInputError and do not poison', async () => {
      const { client, server } = await conn();
      await assert.rejects(
        client.seal({ type: 'request', id: 0, op: 'x', args: {} }),
        code('INVALID_INPUT'),
      );
      await assert.rejects(
        client.seal({ type: 'bogus' } as unknown as ScpMessage),
        code('INVALID_INPUT'),
      );
      assert.equal((await deliver(client, server, req(1))).length, 1);
    });
  });
}

describe('SCP records: the synchronous record layer', () => {
  test('sealSync/openSync exist exactly when the crypto has aeadKeySync', async () => {
    const sync = await connected({
      clientCrypto: withSyncAead(webCryptoScp),
      serverCrypto: withSyncAead(webCryptoScp),
    });
    assert.equal(typeof sync.client.sealSync, 'function');
    assert.equal(typeof sync.server.openSync, 'function');
    const plain = await connected();
    assert.equal(plain.client.sealSync, undefined);
    assert.equal(plain.server.openSync, undefined);
  });

  test('a synchronous and an asynchronous session interoperate, key updates included', async () => {
    const { client, server } = await connected({
      clientCrypto: withSyncAead(webCryptoScp),
      clientLimits: { rekeyAfter: 3 },
      serverLimits: { rekeyAfter: 3 },
    });
    const seal = (client.sealSync as NonNullable<ScpSession['sealSync']>).bind(client);
    const open = (client.openSync as NonNullable<ScpSession['openSync']>).bind(client);
    for (let i = 1; i <= 10; i++) {
      const ids: number[] = [];
      for (const f of seal(req(i)))
        ids.push(...(await server.open(f)).map((m) => (m as { id: number }).id));
      assert.deepEqual(ids, [i]);
      const back: ScpMessage[] = [];
      for (const f of await server.seal({ type: 'notify', id: i, json: String(i) })) {
        back.push(...open(f));
      }
      assert.deepEqual(back, [{ type: 'notify', id: i, json: String(i) }]);
    }
  });

  test('sync failures: an altered record throws SCP_RECORD and poisons; later opens throw the same', async () => {
    const { client, server } = await connected({
      clientCrypto: withSyncAead(webCryptoScp),
      serverCrypto: withSyncAead(webCryptoScp),
    });
    const seal = (client.sealSync as NonNullable<ScpSession['sealSync']>).bind(client);
    const open = (server.openSync as NonNullable<ScpSession['openSync']>).bind(server);
    const [f] = seal(req(1)) as [Uint8Array];
    const bad = f.slice();
    bad[bad.length - 1] = (bad[bad.length - 1] as number) ^ 1;
    assert.throws(() => open(bad), code('SCP_RECORD'));
    assert.throws(() => open(f), code('SCP_RECORD'));
    assert.equal(server.closed, true);
    await assert.rejects(server.open(f), code('SCP_RECORD'));
  });
});

describe('SCP message codec (strict)', () => {
  const bad: [string, unknown[]][] = [
    ['unknown type', [9]],
    ['request arity', [1, 1, 'op']],
    ['request id 0', [1, 0, 'op', new Map()]],
    ['request args not a map', [1, 1, 'op', []]],
    ['response ok not bool', [2, 1, 1, new Map()]],
    ['response error shape', [2, 1, false, ['A']]],
    ['notify json not text', [3, 1, new Uint8Array(1)]],
    ['key update with payload', [4, 1]],
    ['close arity', [5, 'X']],
  ];
  for (const [name, array] of bad) {
    test(name, () => {
      assert.throws(() => decodePlaintext(encodeCbor(array)), code('SCP_PROTOCOL'));
    });
  }
  test('message ids are whole numbers from 1 to 2^53 - 1, the largest one JavaScript holds exactly', () => {
    const top = Number.MAX_SAFE_INTEGER;
    assert.deepEqual(decodePlaintext(encodeCbor([3, top, 'x'])), {
      type: 'notify',
      id: top,
      json: 'x',
    });
    for (const id of [2n ** 53n, 2n ** 64n - 1n]) {
      assert.throws(
        () => decodePlaintext(encodeCbor([1, id, 'op', new Map()])),
        (e: unknown) => code('SCP_PROTOCOL')(e) && /from 1 to 2\^53 - 1/.test((e as Error).message),
      );
    }
  });
  test('not CBOR, empty, or a non-array', () => {
    assert.throws(() => decodePlaintext(new Uint8Array(0)), code('SCP_PROTOCOL'));
    assert.throws(() => decodePlaintext(Uint8Array.of(0xff)), code('SCP_PROTOCOL'));
    assert.throws(() => decodePlaintext(encodeCbor(new Map())), code('SCP_PROTOCOL'));
    assert.throws(() => decodePlaintext(encodeCbor([])), code('SCP_PROTOCOL'));
  });
  test('a request map with a non-text key is refused', () => {
    assert.throws(
      () => decodePlaintext(encodeCbor([1, 1, 'op', new Map([[1, 2]])])),
      code('SCP_PROTOCOL'),
    );
  });

  // What one side encodes, the other decodes: an error message longer than the 1024-byte text
  // limit (an app's own message under its code prefix can be) is clipped by the sender, never
  // refused by the receiver (which made clients reconnect and re-send the call without end).
  const utf8Length = (t: string): number => new TextEncoder().encode(t).length;
  const roundTrip = (m: ScpMessage): ScpMessage | 'key-update' =>
    decodePlaintext(encodePlaintext(messageArray(m), false));
  for (const [name, unit] of [
    ['ASCII', 'm'],
    ['two-byte', 'é'],
    ['three-byte', '€'],
    ['astral (surrogate pairs)', '😀'],
  ] as const) {
    test(`an over-long error or close message (${name}) is clipped to 1024 bytes on encode`, () => {
      for (const n of [1000, 1024, 1025, 5000]) {
        const message = unit.repeat(Math.ceil(n / utf8Length(unit)));
        const r = roundTrip({ type: 'response', id: 1, ok: false, code: 'APP_ERROR', message });
        assert.ok(r !== 'key-update' && r.type === 'response' && !r.ok);
        assert.ok(utf8Length(r.message) <= 1024, `${utf8Length(r.message)} bytes`);
        if (utf8Length(message) <= 1024) assert.equal(r.message, message);
        else {
          assert.ok(r.message.endsWith('…'));
          assert.ok(message.startsWith(r.message.slice(0, -1)), 'a prefix of whole characters');
          assert.ok(utf8Length(r.message) > 1024 - 3 - utf8Length(unit));
        }
        const c = roundTrip({ type: 'close', code: 'SCP_CLOSED', message });
        assert.ok(c !== 'key-update' && c.type === 'close' && utf8Length(c.message) <= 1024);
      }
      const alert = decodeAlert(encodeAlert('SCP_HANDSHAKE', unit.repeat(2000)));
      assert.ok(utf8Length(alert.message) <= 1024 && alert.message.endsWith('…'));
    });
  }

  test('names and codes the decoder would refuse are refused on encode (not clipped)', () => {
    const long = 'x'.repeat(1025);
    assert.throws(
      () => messageArray({ type: 'request', id: 1, op: long, args: new Map() }),
      code('INVALID_INPUT'),
    );
    assert.throws(
      () => messageArray({ type: 'response', id: 1, ok: false, code: long, message: 'm' }),
      code('INVALID_INPUT'),
    );
    assert.throws(
      () => messageArray({ type: 'close', code: long, message: '' }),
      code('INVALID_INPUT'),
    );
    assert.throws(() => encodeAlert(long, 'm'), code('INVALID_INPUT'));
    // 1024 bytes exactly is allowed, and decodes.
    const op = 'é'.repeat(512);
    const r = roundTrip({ type: 'request', id: 1, op, args: new Map() });
    assert.ok(r !== 'key-update' && r.type === 'request' && r.op === op);
  });
});

describe('a failed seal (coverage gap)', () => {
  test('closes the sending side for good: later seals are SCP_CLOSED, no nonce is used twice', async () => {
    const base = withSyncAead(webCryptoScp);
    const ivs: string[] = [];
    let fail = false;
    const flaky: ScpCrypto = {
      ...base,
      aeadKeySync: (raw32) => {
        const k = (base.aeadKeySync as NonNullable<ScpCrypto['aeadKeySync']>)(raw32);
        return {
          open: k.open,
          seal: (iv, aad, pt) => {
            ivs.push(Buffer.from(iv).toString('hex'));
            if (fail) throw new Error('the AEAD failed');
            return k.seal(iv, aad, pt);
          },
        };
      },
    };
    const { client, server } = await connected({ clientCrypto: flaky, serverCrypto: base });
    const request = (id: number): ScpMessage => ({
      type: 'request',
      id,
      op: 'node.status',
      args: {},
    });
    // The synchronous record layer (the crypto has aeadKeySync).
    const sealSync = client.sealSync?.bind(client);
    assert.ok(sealSync);
    assert.equal(
      server.openSync?.((sealSync(request(1)) as Uint8Array[])[0] as Uint8Array)?.length,
      1,
    );
    fail = true;
    assert.throws(() => sealSync(request(2)), /the AEAD failed/);
    fail = false;
    const closed = (e: unknown) =>
      code('SCP_CLOSED')(e) &&
      (e as Error).message === 'a seal failed earlier; the session is closed';
    assert.throws(() => sealSync(request(3)), closed);
    await assert.rejects(client.seal(request(4)), closed);
    assert.equal(client.closed, true);
    assert.equal(new Set(ivs).size, ivs.length, 'a nonce was used twice');
  });
});
