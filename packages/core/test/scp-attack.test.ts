/**
 * SCP against a hostile relay (DESIGN.md §2: the host carries every byte): altered handshake
 * frames, downgrade, altered/dropped/reordered/replayed/reflected/truncated records, and a whole
 * recorded session replayed against a new server handshake. Each must fail with a named error
 * and leave no usable session; the server must never yield a client key from an altered run.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { decodeCbor, encodeCbor } from '../src/cbor.js';
import { isCloisterError } from '../src/errors.js';
import {
  encodeAlert,
  FRAME,
  type ScpCrypto,
  type ScpMessage,
  serverHandshake,
  webCryptoScp,
} from '../src/scp/index.js';
import {
  connected,
  makeWorld,
  nobleSigner,
  randomKey,
  runHandshake,
  type Which,
} from './scp-kit.js';

const code = (c: string) => (e: unknown) => isCloisterError(e) && e.code === c;
const HANDSHAKE_CODES = new Set(['SCP_HANDSHAKE', 'SCP_VERSION', 'SCP_PROTOCOL']);
const req = (id: number): ScpMessage => ({ type: 'request', id, op: 'node.status', args: {} });

function altered(f: Uint8Array, i: number, mask: number): Uint8Array {
  const g = f.slice();
  g[i] = (g[i] as number) ^ mask;
  return g;
}

/** The run failed with a named error and left the relay nothing to use. */
function assertFailedRun(
  r: Awaited<ReturnType<typeof runHandshake>>,
  which: Which,
  at: string,
): void {
  const err = r.serverError ?? r.clientError;
  assert.ok(
    isCloisterError(err) && HANDSHAKE_CODES.has(err.code),
    `${at}: expected a named handshake error, got ${String(err)}`,
  );
  assert.equal(r.serverSession, undefined, `${at}: server session`);
  assert.equal(r.clientKey, undefined, `${at}: server yielded a client key`);
  // Only an altered CA leaves the client with a session, and the server never accepts it.
  if (which !== 'CA') assert.equal(r.clientSession, undefined, `${at}: client session`);
}

describe('hostile relay: every byte of every handshake frame', () => {
  const world = makeWorld();
  for (const which of ['CH', 'SH', 'SA', 'CA'] as const) {
    test(`${which}: each byte altered in turn fails the handshake`, async () => {
      const honest = await runHandshake({ world });
      const n = (honest.frames[which] as Uint8Array).length;
      for (let i = 0; i < n; i++) {
        const r = await runHandshake({
          world,
          tamper: (w, f) => (w === which ? altered(f, i, 0x01 << (i % 8)) : f),
        });
        assertFailedRun(r, which, `${which}[${i}]`);
      }
    });
  }

  test('property: any single-byte change to any handshake frame fails it', async () => {
    const sizes = (await runHandshake({ world })).frames;
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom<Which>('CH', 'SH', 'SA', 'CA'),
        fc.nat(),
        fc.integer({ min: 1, max: 255 }),
        async (which, pos, mask) => {
          const i = pos % (sizes[which] as Uint8Array).length;
          const r = await runHandshake({
            world,
            tamper: (w, f) => (w === which ? altered(f, i, mask) : f),
          });
          assertFailedRun(r, which, `${which}[${i}]^${mask}`);
        },
      ),
      { numRuns: 60 },
    );
  });

  test('truncated or extended frames fail the handshake', async () => {
    for (const which of ['CH', 'SH', 'SA', 'CA'] as const) {
      for (const tamper of [
        (f: Uint8Array) => f.subarray(0, f.length - 1),
        (f: Uint8Array) => Uint8Array.of(...f, 0),
        (f: Uint8Array) => f.subarray(0, 1),
      ]) {
        const r = await runHandshake({ world, tamper: (w, f) => (w === which ? tamper(f) : f) });
        assertFailedRun(r, which, which);
      }
    }
  });

  test('swapped or reflected frames fail the handshake', async () => {
    let sh: Uint8Array | undefined;
    const r = await runHandshake({
      world,
      tamper: (w, f) => {
        if (w === 'SH') sh = f;
        return w === 'SA' ? (sh as Uint8Array) : f;
      },
    });
    assertFailedRun(r, 'SA', 'SH instead of SA');
    let ch: Uint8Array | undefined;
    const r2 = await runHandshake({
      world,
      tamper: (w, f) => {
        if (w === 'CH') ch = f;
        return w === 'SH' ? (ch as Uint8Array) : f;
      },
    });
    assertFailedRun(r2, 'SH', 'CH reflected');
  });
});

describe('hostile relay: version downgrade', () => {
  test('a relay that strips the higher version from CH is caught by the client', async () => {
    const r = await runHandshake({
      versions: [1, 2],
      tamper: (w, f) => {
        if (w !== 'CH') return f;
        const ch = decodeCbor(f.subarray(1)) as unknown[];
        assert.deepEqual(ch[1], [1, 2]);
        ch[1] = [1];
        return Uint8Array.of(FRAME.CH, ...encodeCbor(ch));
      },
    });
    assert.equal(r.serverError, undefined); // the server happily speaks 1 …
    assert.ok(code('SCP_HANDSHAKE')(r.clientError), String(r.clientError)); // … the client refuses
    assert.equal(r.clientSession, undefined);
    assert.equal(r.frames.CA, undefined);
  });

  test('a relay that rewrites the versions to one the server lacks gets SCP_VERSION', async () => {
    const r = await runHandshake({
      tamper: (w, f) => {
        if (w !== 'CH') return f;
        const ch = decodeCbor(f.subarray(1)) as unknown[];
        ch[1] = [7];
        return Uint8Array.of(FRAME.CH, ...encodeCbor(ch));
      },
    });
    assert.ok(code('SCP_VERSION')(r.serverError), String(r.serverError));
    assert.ok(code('SCP_VERSION')(r.clientError), String(r.clientError));
  });

  test('an SH choosing a version the client did not offer is SCP_VERSION', async () => {
    const r = await runHandshake({
      tamper: (w, f) => {
        if (w !== 'SH') return f;
        const sh = decodeCbor(f.subarray(1)) as unknown[];
        sh[0] = 2;
        return Uint8Array.of(FRAME.SH, ...encodeCbor(sh));
      },
    });
    assert.ok(code('SCP_VERSION')(r.clientError), String(r.clientError));
  });
});

describe('hostile relay: what the client believes of the handshake frames (coverage gap)', () => {
  test('an SH version that is not an integer from 1 to 2^53 - 1 is SCP_HANDSHAKE, named', async () => {
    for (const version of [0, -1, 1.5, 'v1']) {
      const r = await runHandshake({
        tamper: (w, f) => {
          if (w !== 'SH') return f;
          const sh = decodeCbor(f.subarray(1)) as unknown[];
          sh[0] = version;
          return Uint8Array.of(FRAME.SH, ...encodeCbor(sh));
        },
      });
      assert.ok(
        code('SCP_HANDSHAKE')(r.clientError) &&
          (r.clientError as Error).message === 'SH version must be an integer from 1 to 2^53 - 1',
        `${String(version)}: ${String(r.clientError)}`,
      );
      assert.equal(r.clientSession, undefined);
    }
  });

  test('an unauthenticated ALERT cannot claim any error code: only peer codes are kept', async () => {
    const claim = async (alertCode: string) => {
      const r = await runHandshake({
        tamper: (w, f) => (w === 'SH' ? encodeAlert(alertCode, 'from the relay') : f),
      });
      assert.equal(r.clientSession, undefined);
      assert.match((r.clientError as Error).message, /alerts are not authenticated/);
      return (r.clientError as { code?: string }).code;
    };
    for (const c of ['ROLLBACK_DETECTED', 'APP_CODE_MISMATCH', 'OUTCOME_UNKNOWN', 'made up']) {
      assert.equal(await claim(c), 'SCP_HANDSHAKE', c);
    }
    for (const c of ['SCP_VERSION', 'SCP_SESSIONS', 'FRAME_TOO_LARGE']) {
      assert.equal(await claim(c), c);
    }
  });
});

describe('hostile relay: records', () => {
  test('altered: every byte of a record', async () => {
    const { client, server } = await connected();
    const [f] = (await client.seal(req(1))) as [Uint8Array];
    await assert.rejects(server.open(altered(f, 0, 0x80)), code('SCP_RECORD'), 'byte 0');
    assert.equal(server.closed, true);
    // Byte 0, the frame type, is outside the AEAD: above, record 0 itself is opened as record 0,
    // so only the type check can refuse it.
    for (let i = 1; i < f.length; i++) {
      const { client: c2, server: s2 } = await connected();
      const [g] = (await c2.seal(req(1))) as [Uint8Array];
      await assert.rejects(s2.open(altered(g, i, 0x80)), code('SCP_RECORD'), `byte ${i}`);
      assert.equal(s2.closed, true);
    }
  });

  test('property: any single-byte change of a record is SCP_RECORD', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.nat(),
        fc.integer({ min: 1, max: 255 }),
        fc.boolean(),
        async (pos, mask, pad) => {
          const { client, server } = await connected();
          const [f] = (await client.seal(req(7), { pad })) as [Uint8Array];
          await assert.rejects(server.open(altered(f, pos % f.length, mask)), code('SCP_RECORD'));
        },
      ),
      { numRuns: 40 },
    );
  });

  test('dropped, reordered, replayed: SCP_RECORD, and the session stays poisoned', async () => {
    for (const order of [
      [1], // record 0 dropped
      [1, 0], // reordered
      [0, 0], // replayed
      [0, 2], // record 1 dropped in the middle
    ]) {
      const { client, server } = await connected();
      const frames = [];
      for (let i = 1; i <= 3; i++) frames.push(...(await client.seal(req(i))));
      let failed = false;
      for (const k of order) {
        try {
          await server.open(frames[k] as Uint8Array);
        } catch (e) {
          assert.ok(code('SCP_RECORD')(e), String(e));
          failed = true;
          break;
        }
      }
      assert.ok(failed, `order ${order.join(',')}`);
      // Even the right next record is refused after a failure.
      await assert.rejects(server.open(frames[0] as Uint8Array), code('SCP_RECORD'));
    }
  });

  test('truncated: a cut record, or a bare frame type, is SCP_RECORD', async () => {
    for (const cut of [1, 16, 17]) {
      const { client, server } = await connected();
      const [f] = (await client.seal(req(1))) as [Uint8Array];
      await assert.rejects(server.open(f.subarray(0, f.length - cut)), code('SCP_RECORD'));
    }
    const { server } = await connected();
    await assert.rejects(server.open(Uint8Array.of(FRAME.RECORD)), code('SCP_RECORD'));
  });

  test('reflected: a record sent back to its sender is SCP_RECORD (both directions)', async () => {
    const { client, server } = await connected();
    const [c] = (await client.seal(req(1))) as [Uint8Array];
    await assert.rejects(client.open(c), code('SCP_RECORD'));
    const [s] = (await server.seal({ type: 'notify', id: 1, json: '1' })) as [Uint8Array];
    await assert.rejects(server.open(s), code('SCP_RECORD'));
  });

  test('a record of another session (same keys world, new handshake) is SCP_RECORD', async () => {
    const world = makeWorld();
    const a = await connected({ world });
    const b = await connected({ world });
    const [f] = (await a.client.seal(req(1))) as [Uint8Array];
    await assert.rejects(b.server.open(f), code('SCP_RECORD'));
  });

  test('handshake frames or unknown frame types inside a session are SCP_RECORD', async () => {
    for (const t of [FRAME.CH, FRAME.ALERT, 0, 7, 255]) {
      const { server } = await connected();
      await assert.rejects(
        server.open(Uint8Array.of(t, ...new Uint8Array(40))),
        code('SCP_RECORD'),
      );
    }
    const { server } = await connected();
    await assert.rejects(server.open(new Uint8Array(0)), code('SCP_PROTOCOL'));
  });

  test('a whole recorded session replayed against a new server handshake is SCP_HANDSHAKE', async () => {
    const world = makeWorld();
    const identity = nobleSigner(randomKey());
    const first = await runHandshake({ world, identity });
    const { CH: ch, CA: ca } = first.frames as Record<Which, Uint8Array>;
    const records = await (first.clientSession as NonNullable<typeof first.clientSession>).seal(
      req(1),
    );
    // The relay replays the client's side of the conversation to a fresh server handshake.
    const server = serverHandshake({
      crypto: webCryptoScp,
      nodeSigner: nobleSigner(world.node),
      serviceKey: world.service.publicKey,
      evidence: world.evidence,
      endorsement: world.endorsement,
    });
    const out = await server.receive(ch);
    assert.equal(out.send.length, 2); // fresh SH, SA: new server ephemeral key and nonce
    await assert.rejects(server.receive(ca), code('SCP_HANDSHAKE'));
    await assert.rejects(server.receive(records[0] as Uint8Array), code('SCP_HANDSHAKE'));
  });

  test('a server with the node key in SA but not its private key: the client refuses, sends no CA', async () => {
    // The relay runs the handshake itself (so it holds the handshake keys and can compute the
    // finished MAC), presenting the real node key, evidence and endorsement.
    const world = makeWorld();
    const forger = nobleSigner(randomKey());
    const server = serverHandshake({
      crypto: webCryptoScp,
      nodeSigner: { publicKey: world.node.publicKey, sign: (d) => forger.sign(d) },
      serviceKey: world.service.publicKey,
      evidence: world.evidence,
      endorsement: world.endorsement,
    });
    const r = await runHandshake({ world, server });
    assert.ok(code('SCP_HANDSHAKE')(r.clientError), String(r.clientError));
    assert.match(
      (r.clientError as Error).message,
      /the server signature over the transcript does not verify/,
    );
    assert.equal(r.frames.CA, undefined);
    assert.equal(r.clientSession, undefined);
  });

  test("a client presenting another client's key without its private key: the server refuses", async () => {
    const victim = randomKey();
    const forger = nobleSigner(randomKey());
    const r = await runHandshake({
      identity: { publicKey: victim.publicKey, sign: (d) => forger.sign(d) },
    });
    assert.ok(code('SCP_HANDSHAKE')(r.serverError), String(r.serverError));
    assert.match(
      (r.serverError as Error).message,
      /the client signature over the transcript does not verify/,
    );
    assert.equal(r.serverSession, undefined);
    assert.equal(r.clientKey, undefined);
  });

  test('a wrong finished MAC under valid handshake encryption is refused, on both sides', async () => {
    // The peer itself alters the last plaintext byte (its finished MAC) before sealing SA or CA:
    // the AEAD verifies, the signature verifies, only the finished check can refuse it.
    const badFinished = (c: ScpCrypto): ScpCrypto => ({
      ...c,
      aeadKey: async (raw) => {
        const k = await c.aeadKey(raw);
        return {
          seal: (iv, aad, pt) => k.seal(iv, aad, altered(pt, pt.length - 1, 1)),
          open: (iv, aad, ct) => k.open(iv, aad, ct),
        };
      },
    });
    const s = await runHandshake({ serverCrypto: badFinished(webCryptoScp) });
    assert.ok(code('SCP_HANDSHAKE')(s.clientError), String(s.clientError));
    assert.match((s.clientError as Error).message, /the server finished MAC does not verify/);
    assert.equal(s.frames.CA, undefined);
    const c = await runHandshake({ clientCrypto: badFinished(webCryptoScp) });
    assert.ok(code('SCP_HANDSHAKE')(c.serverError), String(c.serverError));
    assert.match((c.serverError as Error).message, /the client finished MAC does not verify/);
    assert.equal(c.serverSession, undefined);
    assert.equal(c.clientKey, undefined);
  });

  test('a relay without the node key cannot complete the handshake', async () => {
    // The relay answers CH with a server of its own: another node key, the real evidence.
    const world = makeWorld();
    const impostor = { ...world, node: randomKey() };
    const r = await runHandshake({ world: impostor });
    assert.ok(isCloisterError(r.clientError), String(r.clientError));
    assert.equal(r.frames.CA, undefined);
  });
});
