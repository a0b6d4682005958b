/**
 * The client SDK against an in-process node (fake-node.ts: core's serverHandshake and records, a
 * real log kit): what is verified before anything is sent (evidence, SVC:, the pinned service,
 * APP: clauses — asserted on the frames the node saw), calls and notifications, receipts with the
 * rollback check, and reconnects: a transaction whose response was lost is re-sent with the same
 * request id and salt and applies once.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  type CloisterError,
  encodeAlert,
  isCloisterError,
  MAX_FRAME,
  memorySignedRootStore,
  ReceiptError,
  sha256,
  toHex,
  utf8,
  webCryptoScp,
} from '@cloister/core';
import { nodeScpCrypto } from '@cloister/node-crypto';
import { KitService } from '../../core/test/log-kit.js';
import { type Client, type ConnectOptions, connect } from '../src/client.js';
import {
  HandshakeRefusedError,
  nodeError,
  OutcomeUnknownError,
  RepeatedRequestCodeError,
  UnexpectedServiceError,
} from '../src/errors.js';
import { generateIdentity } from '../src/identity.js';
import {
  type ClientState,
  memoryPinStore,
  memoryState,
  type Socket,
  type Transport,
} from '../src/ports.js';
import { CONSTRAINT, FakeNode, FRAME, frameTypes, SECURE_CONSTRAINT } from './fake-node.js';

const URL = 'http://node.test:7410';
const CODE = sha256(utf8('shop module v1'));
const CODE2 = sha256(utf8('shop module v2'));
const FAST = { attempts: 4, initialMs: 1, maxMs: 5 };

/**
 * `count` queries of `c` held by `n` past their 500 ms deadline (each rejects NETWORK), then
 * released: their answers arrive late, after the client gave them up.
 */
async function givenUpThenAnswered(
  n: FakeNode,
  c: Awaited<ReturnType<typeof connect>>,
  count: number,
  prefix: string,
): Promise<void> {
  let release = () => {};
  n.holdQueries = new Promise<void>((r) => {
    release = r;
  });
  const given = Array.from({ length: count }, (_, i) =>
    c.app('shop').query(`${prefix}-${i}`, {}, { timeoutMs: 500 }),
  );
  for (const q of given) await assert.rejects(q, code('NETWORK'));
  n.holdQueries = undefined;
  release();
}

function node(): FakeNode {
  const n = new FakeNode();
  n.apps.set('shop', { codeId: CODE });
  return n;
}

async function openWith(n: FakeNode, o: Partial<ConnectOptions> = {}) {
  return connect(URL, {
    constraint: CONSTRAINT,
    identity: await generateIdentity(),
    transport: n.transport,
    reconnect: FAST,
    ...o,
  });
}

const code = (c: string) => (e: unknown) => {
  assert.ok(isCloisterError(e), `expected a CloisterError, got ${String(e)}`);
  assert.equal(e.code, c, e.message);
  return true;
};

const ops = (n: FakeNode) => n.requests.map((r) => r.op);

type Pass = (frame: Uint8Array) => void;

/** A host between client and node: `up`/`down` see each frame and decide what passes. */
function relay(
  t: Transport,
  hooks: { up?: (f: Uint8Array, pass: Pass) => void; down?: (f: Uint8Array, pass: Pass) => void },
): Transport {
  return async (url) => {
    const inner = await t(url);
    const outer: Socket = {
      send: (f) => (hooks.up ?? ((g, pass) => pass(g)))(f, (g) => inner.send(g)),
      close: () => inner.close(),
      onmessage: undefined,
      onclose: undefined,
    };
    inner.onmessage = (f) => (hooks.down ?? ((g, pass) => pass(g)))(f, (g) => outer.onmessage?.(g));
    inner.onclose = (why) => outer.onclose?.(why);
    return outer;
  };
}

/** Waits (a turn at a time) until the client has no current session. */
async function sessionGone(c: Client): Promise<void> {
  for (let i = 0; i < 1000 && c.session !== undefined; i++) {
    await new Promise((r) => setImmediate(r));
  }
  assert.equal(c.session, undefined, 'the session ended');
}

/** The host replaces the node's second record (the first query's answer) with a forged alert. */
function forgedAlertAfterRecord(n: FakeNode): Transport {
  let records = 0;
  return relay(n.transport, {
    down: (f, pass) => {
      if (f[0] === FRAME.RECORD && ++records === 2) pass(encodeAlert('SCP_HANDSHAKE', 'forged'));
      else pass(f);
    },
  });
}

describe('connect: options named by what is wrong with them', () => {
  it('a path for an identity, a hex string for acceptServiceChange, no transport', async () => {
    const n = node();
    const refused = (o: unknown, re: RegExp) =>
      assert.rejects(
        connect(URL, o as ConnectOptions),
        (e: unknown) => isCloisterError(e, 'INVALID_INPUT') && re.test((e as Error).message),
      );
    // These reached the handshake (a CBOR encoding error) or were ignored (the change refused).
    await refused(
      { constraint: CONSTRAINT, identity: 'me.pem', transport: n.transport },
      /not a path: load it first \(loadIdentity\("me\.pem"\)/,
    );
    await refused({ constraint: CONSTRAINT, transport: n.transport }, /needs an identity/);
    const identity = await generateIdentity();
    await refused(
      { constraint: CONSTRAINT, identity, transport: n.transport, acceptServiceChange: 'ab12' },
      /acceptServiceChange is true or the 32-byte service identity \(for the hex .*fromHex\("ab12"\)/,
    );
    await refused({ constraint: CONSTRAINT, identity }, /needs a transport: import connect from/);
    // Bytes, but not an identity's 32: refused as the option, not tried against the service.
    for (const length of [31, 33]) {
      await refused(
        {
          constraint: CONSTRAINT,
          identity,
          transport: n.transport,
          acceptServiceChange: new Uint8Array(length),
        },
        /^acceptServiceChange is true or the 32-byte service identity$/,
      );
    }
    assert.equal(n.connections, 0, 'nothing was sent');
  });

  it('an identity without sign(), an empty app name, a status of neither kind (coverage gap)', async () => {
    const n = node();
    await assert.rejects(
      connect(URL, {
        constraint: CONSTRAINT,
        identity: { publicKey: new Uint8Array(65) } as never,
        transport: n.transport,
      }),
      (e: unknown) =>
        isCloisterError(e, 'INVALID_INPUT') &&
        (e as Error).message === 'identity must have a sign() method (an Identity from this SDK)',
    );
    assert.equal(n.connections, 0, 'nothing was sent');
    const c = await connect(URL, {
      constraint: CONSTRAINT,
      identity: await generateIdentity(),
      transport: n.transport,
    });
    for (const name of ['', 7]) {
      assert.throws(() => c.app(name as string), {
        code: 'INVALID_INPUT',
        message: 'an app name must be a non-empty string',
      });
    }
    for (const q of [{}, null, 'x', { requestId: 'r' }]) {
      await assert.rejects(c.status(q as never), {
        code: 'INVALID_INPUT',
        message: 'status takes { txid } or { app, requestId }',
      });
    }
    // A txid that is not term.index is the caller's, refused before it is sent (mutation round
    // 15: K27).
    for (const txid of ['abc', '0.1', '1.0', '1', 7]) {
      await assert.rejects(c.status({ txid } as never), code('INVALID_INPUT'));
    }
    assert.ok(!ops(n).includes('status'), 'nothing asked');
    await c.close();
  });

  it('a node URL with a user name, password or query string (kept in state and errors) is refused', async () => {
    const n = node();
    const identity = await generateIdentity();
    const o = { constraint: CONSTRAINT, identity, transport: n.transport };
    await assert.rejects(connect('https://alice:s3cret@node.test:7410', o), (e: unknown) => {
      assert.ok(isCloisterError(e, 'INVALID_INPUT'));
      assert.match((e as Error).message, /carries no user name or password/);
      assert.doesNotMatch((e as Error).message, /s3cret|alice/);
      return true;
    });
    // A password without a user name is still a credential in the URL.
    await assert.rejects(connect('https://:s3cret@node.test:7410', o), (e: unknown) => {
      assert.ok(isCloisterError(e, 'INVALID_INPUT'));
      assert.match((e as Error).message, /carries no user name or password/);
      assert.doesNotMatch((e as Error).message, /s3cret/);
      return true;
    });
    await assert.rejects(connect('https://node.test:7410/?token=abc', o), (e: unknown) => {
      assert.ok(isCloisterError(e, 'INVALID_INPUT'));
      assert.match((e as Error).message, /query string/);
      assert.doesNotMatch((e as Error).message, /abc/);
      return true;
    });
    assert.equal(n.connections, 0);
  });

  it('generateIdentity makes its private key non-extractable (mutation round 15: I1)', async () => {
    const subtle = globalThis.crypto.subtle;
    const original = subtle.generateKey.bind(subtle);
    const made: boolean[] = [];
    subtle.generateKey = ((alg: unknown, extractable: boolean, usages: unknown) => {
      made.push(extractable);
      return (original as (...a: unknown[]) => Promise<unknown>)(alg, extractable, usages);
    }) as typeof subtle.generateKey;
    try {
      await generateIdentity();
    } finally {
      subtle.generateKey = original;
    }
    assert.deepEqual(made, [false]);
  });

  it("a node's error code named like an Object.prototype member is outside the registry: SCP_PROTOCOL (mutation round 15: E1)", () => {
    for (const c of ['toString', 'constructor', '__proto__', 'hasOwnProperty', 'valueOf']) {
      const e = nodeError(c, 'from the node');
      assert.equal(e.code, 'SCP_PROTOCOL', c);
      assert.match(e.message, /^the node answered with an unknown error code /);
    }
    assert.equal(nodeError('APP_NOT_FOUND', 'no app x').code, 'APP_NOT_FOUND');
  });
});

describe('a crypto provider that fails', () => {
  it("a record the provider cannot seal fails the calls with NETWORK, naming the provider's error; the next call opens a new session (mutation round 15: N16)", async () => {
    let armed = false;
    const crypto = {
      ...webCryptoScp,
      aeadKey: async (raw: Uint8Array) => {
        const key = await webCryptoScp.aeadKey(raw);
        return {
          seal: (iv: Uint8Array, aad: Uint8Array, pt: Uint8Array) => {
            if (!armed) return key.seal(iv, aad, pt);
            armed = false;
            return Promise.reject(new Error('the provider lost its key'));
          },
          open: (iv: Uint8Array, aad: Uint8Array, ct: Uint8Array) => key.open(iv, aad, ct),
        };
      },
    };
    const n = node();
    const c = await openWith(n, { crypto });
    await c.app('shop').info();
    armed = true;
    await assert.rejects(c.app('shop').query('a', {}), (e: unknown) => {
      code('NETWORK')(e);
      assert.equal((e as Error).message, 'the connection failed: the provider lost its key');
      return true;
    });
    const r = await c.app('shop').query('b', {});
    assert.deepEqual(r.result, { method: 'b', args: '{}' });
    assert.equal(n.connections, 2);
    await c.close();
  });
});

// Every test runs twice: on "."'s WebCrypto (asynchronous records) and on the "./node" entry's
// node:crypto, whose sessions seal and open synchronously (sealSync/openSync, another code path
// in connection.ts).
for (const [label, crypto] of [
  ['WebCrypto', undefined],
  ['node:crypto, synchronous records', nodeScpCrypto],
] as const) {
  const open = (n: FakeNode, o: Partial<ConnectOptions> = {}) =>
    openWith(n, { ...(crypto === undefined ? {} : { crypto }), ...o });

  /** connect, then one query: whichever rejects first (the refusal may come after connect resolved). */
  const connectAndQuery = async (n: FakeNode, o: Partial<ConnectOptions>): Promise<Client> => {
    const c = await open(n, o);
    await c.app('shop').query('balance', { who: 'ann' });
    return c;
  };

  describe(`client SDK (${label})`, () => {
    describe('the handshake verifies before the client says who it is', () => {
      it('connects, exposes the verified service and pins it on first use', async () => {
        const n = node();
        const state = memoryState();
        const c = await open(n, { state });
        assert.deepEqual(c.service.identity, n.serviceIdentity);
        assert.deepEqual(c.service.nodeKey, n.kit.node.publicKey);
        assert.equal(c.service.evidence.platform, 'simulation');
        assert.equal(c.url, 'ws://node.test:7410/v1/scp');
        assert.deepEqual(await state.pins.get(c.url), n.serviceIdentity);
        assert.deepEqual(frameTypes(n.frames), [FRAME.CH, FRAME.CA]);
        await c.close();
      });

      it('a host flooding frames while the handshake is checked is refused, not buffered', async () => {
        const n = node();
        // The host answers CH with the node's frames plus a flood of 1 MiB frames.
        const flooding: Transport = async (url) => {
          const s = await n.transport(url);
          const send = s.send.bind(s);
          s.send = (frame) => {
            send(frame);
            if (frame[0] !== FRAME.CH) return;
            setImmediate(() => {
              for (let i = 0; i < 50; i++)
                s.onmessage?.(new Uint8Array(1 << 20).fill(FRAME.RECORD));
            });
          };
          return s;
        };
        await assert.rejects(open(n, { transport: flooding, reconnect: false }), (e) => {
          code('SCP_PROTOCOL')(e);
          assert.match((e as Error).message, /more than 8 frames before the handshake completed/);
          return true;
        });
      });

      it('the handshake holds SA and 7 frames more while it checks, not 8 (mutation round 15: N19)', async () => {
        // The host sends `extra` frames while the client checks SA (its pin store is read then):
        // SA and up to 7 more may wait; one more is a flood.
        const attempt = async (extra: number): Promise<unknown> => {
          const n = node();
          let inject: Pass | undefined;
          const transport = relay(n.transport, {
            down: (f, pass) => {
              inject = pass;
              pass(f);
            },
          });
          const inner = memoryState();
          const state: ClientState = {
            roots: inner.roots,
            pins: {
              get: async (u) => {
                for (let i = 0; i < extra; i++) inject?.(new Uint8Array(64).fill(FRAME.RECORD));
                await new Promise((r) => setImmediate(r));
                return inner.pins.get(u);
              },
              put: (u, v, previous) => inner.pins.put(u, v, previous),
            },
          };
          try {
            const c = await open(n, { transport, state, reconnect: false });
            await c.close();
            return undefined;
          } catch (e) {
            return e;
          }
        };
        const flood = /more than 8 frames before the handshake completed/;
        const eight = await attempt(8);
        code('SCP_PROTOCOL')(eight);
        assert.match((eight as Error).message, flood);
        const seven = await attempt(7);
        assert.ok(
          seven === undefined || !flood.test((seven as Error).message),
          `7 frames are not a flood: ${String(seven)}`,
        );
      });

      it('a different service at a pinned URL raises SERVICE_CHANGED; no CA is sent', async () => {
        const n = node();
        const state: ClientState = { pins: memoryPinStore(), roots: memorySignedRootStore() };
        const other = sha256(utf8('another service'));
        await state.pins.put('ws://node.test:7410/v1/scp', other);
        await assert.rejects(open(n, { state }), (e) => {
          code('SERVICE_CHANGED')(e);
          assert.match((e as Error).message, new RegExp(toHex(other)));
          // The pin may come from an accepted change, not only from first use: worded neutrally.
          assert.match((e as Error).message, new RegExp(`${toHex(other)} was pinned for it$`));
          assert.doesNotMatch((e as Error).message, /first use/);
          return true;
        });
        assert.deepEqual(frameTypes(n.frames), [FRAME.CH], 'the client never authenticated');
        // Accepting one named service does not accept another.
        const third = sha256(utf8('a third service'));
        await assert.rejects(
          open(n, { state, acceptServiceChange: third }),
          code('SERVICE_CHANGED'),
        );
        assert.deepEqual(await state.pins.get('ws://node.test:7410/v1/scp'), other, 'pin kept');
        // A deliberate re-pin of exactly the service shown, as the operator confirmed it.
        const c = await open(n, { state, acceptServiceChange: n.serviceIdentity });
        assert.deepEqual(await state.pins.get(c.url), n.serviceIdentity);
        assert.deepEqual(c.pin, { how: 'replaced', previous: other });
        await c.close();
        // And the blanket form.
        await state.pins.put(c.url, other);
        const c2 = await open(n, { state, acceptServiceChange: true });
        assert.deepEqual(await state.pins.get(c2.url), n.serviceIdentity);
        assert.deepEqual(c2.pin, { how: 'replaced', previous: other });
        await c2.close();
      });

      it('client.pin says whether connect pinned on first use or kept the pin', async () => {
        const n = node();
        const state = memoryState();
        const c = await open(n, { state });
        assert.deepEqual(c.pin, { how: 'first-use' });
        await c.close();
        const again = await open(n, { state });
        assert.deepEqual(again.pin, { how: 'kept' });
        await again.close();
        // The service the operator gave, shown on first use: pinned, as first use.
        const fresh = memoryState();
        const named = await open(n, { state: fresh, acceptServiceChange: n.serviceIdentity });
        assert.deepEqual(named.pin, { how: 'first-use' });
        assert.deepEqual(await fresh.pins.get(named.url), n.serviceIdentity);
        await named.close();
      });

      it('acceptServiceChange naming another service: refused on first use and under a matching pin, before any app data leaves', async () => {
        const n = node();
        const expected = sha256(utf8('the service the operator named'));
        const refused = (pinned: boolean) => (e: unknown) => {
          code('CONSTRAINT_MISMATCH')(e);
          assert.ok(e instanceof UnexpectedServiceError, String(e));
          assert.deepEqual(e.expected, expected);
          assert.deepEqual(e.shown, n.serviceIdentity);
          const m = (e as Error).message;
          // Both values, where they come from, and what to do.
          assert.ok(
            m.startsWith(
              `${URL} shows service ${toHex(n.serviceIdentity)}${pinned ? ', the one pinned for it,' : ','} not ${toHex(expected)} that --accept-service (acceptServiceChange) names: refused before your identity or any app data was sent`,
            ),
            m,
          );
          assert.match(m, pinned ? /the pin is unchanged/ : /nothing was pinned/);
          assert.match(m, /check the (URL and the )?service identity with the operator/);
          assert.match(e.hint, /--accept-service, acceptServiceChange/);
          return true;
        };
        // First use: the node's real service was pinned and the query went out (it was ignored).
        const state = memoryState();
        await assert.rejects(
          connectAndQuery(n, { state, acceptServiceChange: expected }),
          refused(false),
        );
        assert.equal(await state.pins.get('ws://node.test:7410/v1/scp'), undefined, 'not pinned');
        // Refused before the client said who it is: the node saw CH only.
        assert.deepEqual(frameTypes(n.frames), [FRAME.CH], 'the client never authenticated');
        // The pin is the service shown: the named one is still required (it was ignored).
        const c = await open(n, { state });
        await c.close();
        const framesBefore = n.frames.length;
        await assert.rejects(
          connectAndQuery(n, { state, acceptServiceChange: expected }),
          refused(true),
        );
        assert.deepEqual(await state.pins.get(c.url), n.serviceIdentity, 'pin unchanged');
        assert.deepEqual(frameTypes(n.frames.slice(framesBefore)), [FRAME.CH], 'CH only');
        assert.deepEqual(ops(n), [], 'no request reached the node');
        assert.equal(n.connections, 3, 'no retry');
      });

      it('an enclave the constraint refuses: refused, no CA sent, no retry', async () => {
        const n = node();
        await assert.rejects(open(n, { constraint: SECURE_CONSTRAINT }), code('INSECURE_PLATFORM'));
        await assert.rejects(
          open(n, { constraint: `${CONSTRAINT.replace(/C:[0-9a-f]{6}/, 'C:000000')}` }),
          code('CONSTRAINT_MISMATCH'),
        );
        assert.deepEqual(frameTypes(n.frames), [FRAME.CH, FRAME.CH]);
        assert.equal(n.connections, 2);
      });

      it('an SVC: clause naming another service is refused', async () => {
        const n = node();
        const svc = toHex(sha256(utf8('not this one')));
        await assert.rejects(
          open(n, { constraint: `${CONSTRAINT} SVC:${svc}` }),
          code('CONSTRAINT_MISMATCH'),
        );
        const ok = await open(n, { constraint: `${CONSTRAINT} SVC:${toHex(n.serviceIdentity)}` });
        await ok.close();
      });

      it("the node refuses the client's CA: connect or the first call rejects with the alert's code", async () => {
        const n = node();
        // The host flips a bit of CA: the node cannot open it, sends ALERT SCP_HANDSHAKE and closes.
        const transport = relay(n.transport, {
          up: (f, pass) => pass(f[0] === FRAME.CA ? f.map((b, i) => (i === 9 ? b ^ 1 : b)) : f),
        });
        const refusal = (e: unknown): boolean => {
          code('SCP_HANDSHAKE')(e);
          assert.ok(e instanceof HandshakeRefusedError, String(e));
          assert.equal(e.reportedByPeer, true);
          assert.equal(e.alertCode, 'SCP_HANDSHAKE');
          assert.match(e.message, /refused the handshake .*not authenticated/);
          return true;
        };
        let client: Client | undefined;
        await assert.rejects(
          (async () => {
            client = await open(n, { transport });
            await client.app('shop').query('balance', { who: 'ann' });
          })(),
          refusal,
        );
        // Refused before the node ever accepted this client: final, like a failed connect.
        if (client !== undefined) await assert.rejects(client.app('shop').query('b', {}), refusal);
        assert.deepEqual(ops(n), [], 'the node decrypted nothing');
        assert.equal(n.connections, 1, 'not retried');
      });

      it('an ALERT with a code a node never sends is still a refusal, named SCP_HANDSHAKE', async () => {
        const n = node();
        let inject: Pass | undefined;
        // The host answers CA itself with a made-up alert (it is unauthenticated: anyone can).
        const transport = relay(n.transport, {
          up: (f, pass) => {
            if (f[0] !== FRAME.CA) return pass(f);
            // CA never reaches the node: the host's alert is the only answer
            void Promise.resolve().then(() => inject?.(encodeAlert('NO_SUCH_CODE', 'go away')));
          },
          down: (f, pass) => {
            inject = pass;
            pass(f);
          },
        });
        await assert.rejects(connectAndQuery(n, { transport }), (e) => {
          code('SCP_HANDSHAKE')(e);
          assert.ok(e instanceof HandshakeRefusedError);
          assert.equal(e.alertCode, 'NO_SUCH_CODE');
          assert.match(e.message, /NO_SUCH_CODE: go away\); this alert is not authenticated/);
          return true;
        });
        assert.deepEqual(ops(n), []);
      });

      it('a refusal for a full node (ALERT SCP_SESSIONS) keeps its code (mutation round 15: E2)', async () => {
        const n = node();
        let inject: Pass | undefined;
        const transport = relay(n.transport, {
          up: (f, pass) => {
            if (f[0] !== FRAME.CA) return pass(f);
            void Promise.resolve().then(() =>
              inject?.(encodeAlert('SCP_SESSIONS', 'this node holds as many sessions as it can')),
            );
          },
          down: (f, pass) => {
            inject = pass;
            pass(f);
          },
        });
        await assert.rejects(connectAndQuery(n, { transport }), (e) => {
          code('SCP_SESSIONS')(e);
          assert.ok(e instanceof HandshakeRefusedError);
          assert.equal(e.alertCode, 'SCP_SESSIONS');
          return true;
        });
        assert.deepEqual(ops(n), []);
      });

      it('an ALERT after an authenticated record is SCP_PROTOCOL and closes the session', async () => {
        const n = node();
        const transport = forgedAlertAfterRecord(n);
        const c = await open(n, { transport, reconnect: false });
        const injected = (e: unknown): boolean => {
          code('SCP_PROTOCOL')(e);
          assert.ok(!(e instanceof HandshakeRefusedError), 'not taken for a refusal');
          assert.match((e as Error).message, /ALERT arrived after .* injected/);
          return true;
        };
        await assert.rejects(c.app('shop').query('a', {}), injected);
        assert.equal(c.session, undefined, 'the session is closed');
        await assert.rejects(c.app('shop').query('b', {}), injected);
        assert.deepEqual(ops(n), ['app.info', 'query']);
      });

      it('an ALERT after a record, with reconnect on: the call is re-sent on a new session', async () => {
        const n = node();
        const transport = forgedAlertAfterRecord(n);
        const c = await open(n, { transport });
        const r = await c.app('shop').query('a', {});
        assert.deepEqual(r.result, { method: 'a', args: '{}' });
        assert.equal(n.connections, 2);
        await c.close();
      });

      it("a request from the node under a waiting call's id is SCP_PROTOCOL, never that call's answer", async () => {
        const n = node();
        const c = await open(n, { reconnect: false });
        await c.app('shop').info();
        n.requestInsteadOfAnswer = 1;
        await assert.rejects(c.app('shop').query('a', {}), (e) => {
          code('SCP_PROTOCOL')(e);
          assert.match((e as Error).message, /the node sent a request/);
          return true;
        });
        assert.equal(c.session, undefined, 'the session is closed');
      });

      it('an unreachable node is a NETWORK error naming the URL', async () => {
        const n = node();
        n.down = true;
        await assert.rejects(open(n), (e) => {
          code('NETWORK')(e);
          assert.match((e as Error).message, /ws:\/\/node\.test:7410\/v1\/scp/);
          return true;
        });
      });

      it('a TLS certificate refused says why and what to do, not "is the node running"', async () => {
        const n = node();
        const failing =
          (tlsCode: string): Transport =>
          () =>
            Promise.reject(Object.assign(new Error('certificate refused'), { code: tlsCode }));
        const cases = [
          ['CERT_HAS_EXPIRED', /TLS certificate has expired \(CERT_HAS_EXPIRED\)/, /renew/],
          [
            'CERT_NOT_YET_VALID',
            /certificate is not valid yet \(CERT_NOT_YET_VALID;/,
            /not valid yet/,
          ],
          ['DEPTH_ZERO_SELF_SIGNED_CERT', /not one this machine trusts/, /NODE_EXTRA_CA_CERTS=/],
        ] as const;
        for (const [tlsCode, message, hint] of cases) {
          await assert.rejects(open(n, { transport: failing(tlsCode), reconnect: false }), (e) => {
            code('NETWORK')(e);
            assert.match((e as Error).message, message);
            assert.match((e as CloisterError).hint, hint);
            assert.doesNotMatch((e as CloisterError).hint, /running/);
            return true;
          });
        }
      });
    });

    describe('apps: the code id is checked before any app data leaves', () => {
      it('an answer naming another code id than the one checked is refused, even one no clause names', async () => {
        const n = node();
        n.apps.set('shop', { codeId: CODE, answerCodeId: CODE2 });
        const c = await open(n);
        await assert.rejects(c.app('shop').query('balance', { who: 'ann' }), (e: unknown) => {
          assert.ok(code('SCP_PROTOCOL')(e), String(e));
          assert.match((e as Error).message, /the node ran another code id than the one checked/);
          return true;
        });
        await c.close();
      });

      it('an app.info answer for another app, with a code id not of 32 bytes, an index below 1 or a short sig: refused by name', async () => {
        const n = node();
        const c = await open(n);
        const refused = async (answer: Record<string, unknown>, message: RegExp) => {
          n.infoAnswer = answer;
          await assert.rejects(c.app('shop').query('balance', {}), (e: unknown) => {
            assert.ok(code('SCP_PROTOCOL')(e), `${String(e)} for ${JSON.stringify(answer)}`);
            assert.match((e as Error).message, message, JSON.stringify(answer));
            return true;
          });
        };
        await refused({ app: 'other' }, /app.info for another app/);
        await refused({ codeId: CODE.subarray(0, 31) }, /app.info codeId must be 32 bytes/);
        await refused({ index: 0 }, /app.info index must be a positive integer/);
        await refused({ sig: new Uint8Array(63) }, /app.info sig must be 64 bytes/);
        assert.deepEqual(
          ops(n).filter((o) => o !== 'app.info'),
          [],
          'no call was sent on any of these answers',
        );
        n.infoAnswer = undefined;
        assert.deepEqual(
          (await c.app('shop').query('balance', {})).codeId,
          CODE,
          'then a good one',
        );
        await c.close();
      });

      it('a transact answer whose txid is not term.index, or without repeated, is a protocol fault', async () => {
        const n = node();
        n.transactAnswer = { txid: '1.x' };
        const c = await open(n);
        // The node's fault, not the caller's input: SCP_PROTOCOL (it was INVALID_INPUT).
        await assert.rejects(c.app('shop').transact('pay', { amount: 1 }), (e: unknown) => {
          assert.ok(code('SCP_PROTOCOL')(e), `a txid of 1.x: ${String(e)}`);
          assert.match((e as Error).message, /txid that is not "term.index"/, 'named');
          return true;
        });
        n.transactAnswer = { repeated: 'no' };
        await assert.rejects(c.app('shop').transact('pay', { amount: 2 }), (e: unknown) => {
          assert.ok(code('SCP_PROTOCOL')(e), `repeated of "no": ${String(e)}`);
          assert.match((e as Error).message, /without repeated/, 'named');
          return true;
        });
        await c.close();
      });

      it('a new transaction answered with another code id than the one checked is refused, even one the constraint admits (mutation round 15: A8)', async () => {
        const n = node();
        // Not a repeat: the node ran other code than the client checked and sent its arguments
        // to. Only a repeat's stored outcome may name earlier code (the constraint admitting it).
        n.transactAnswer = { codeId: CODE2 };
        const c = await open(n);
        await assert.rejects(c.app('shop').transact('pay', { amount: 1 }), (e: unknown) => {
          assert.ok(code('SCP_PROTOCOL')(e), String(e));
          assert.equal((e as Error).message, 'the node ran another code id than the one checked');
          return true;
        });
        await c.close();
      });

      it('a call whose deadline passed before it went out is not sent (mutation round 15: A10)', async () => {
        const n = node();
        const c = await open(n);
        await c.app('shop').info();
        // The clock jumps past the deadline between setting it and sending the call (the time
        // spent reading app.info, or an earlier attempt, would do the same).
        const clock = performance.now;
        let reads = 0;
        performance.now = () => clock.call(performance) + (++reads >= 2 ? 60_000 : 0);
        let late: Promise<unknown>;
        try {
          late = c.app('shop').query('late', {}, { timeoutMs: 5_000 });
        } finally {
          performance.now = clock;
        }
        await assert.rejects(late, (e: unknown) => {
          code('NETWORK')(e);
          assert.equal((e as Error).message, 'no answer to query late of app shop within 5000 ms');
          return true;
        });
        // Answers come in order: once this one is here, anything sent before was read.
        await c.app('shop').query('after', {});
        assert.deepEqual(
          n.requests.filter((r) => r.op === 'query').map((r) => r.args.get('method')),
          ['after'],
        );
        await c.close();
      });

      it('a request id of 1 to 128 bytes and a salt of 32: others are refused before anything is sent', async () => {
        const n = node();
        const c = await open(n);
        for (const requestId of ['', 'x'.repeat(129), 'é'.repeat(65)]) {
          await assert.rejects(
            c.app('shop').transact('pay', {}, { requestId }),
            code('INVALID_INPUT'),
            `request id of ${new TextEncoder().encode(requestId).length} bytes`,
          );
        }
        for (const salt of [new Uint8Array(31), new Uint8Array(33)]) {
          await assert.rejects(
            c.app('shop').transact('pay', {}, { salt }),
            code('INVALID_INPUT'),
            `a claims salt of ${salt.length} bytes`,
          );
        }
        assert.deepEqual(ops(n), [], 'nothing was sent');
        const t = await c.app('shop').transact('pay', {}, { requestId: 'x'.repeat(128) });
        assert.equal(t.requestId, 'x'.repeat(128), '128 bytes is accepted');
        await c.close();
      });

      it('an APP: clause refusing the code: rejected after app.info, nothing else sent', async () => {
        const n = node();
        const c = await open(n, { constraint: `${CONSTRAINT} APP:shop=${toHex(CODE2)}` });
        const secret = { card: '4111 1111 1111 1111' };
        await assert.rejects(c.app('shop').transact('pay', secret), code('APP_CODE_MISMATCH'));
        await assert.rejects(c.app('shop').query('balance', secret), code('APP_CODE_MISMATCH'));
        // The refusal is remembered for the session: the second call sent no frame at all.
        assert.deepEqual(ops(n), ['app.info']);
        assert.deepEqual(frameTypes(n.frames), [FRAME.CH, FRAME.CA, FRAME.RECORD]);
        // A new session checks again (the node may have deployed other code meanwhile).
        n.dropAll();
        await sessionGone(c);
        await assert.rejects(c.app('shop').query('balance', secret), code('APP_CODE_MISMATCH'));
        assert.deepEqual(ops(n), ['app.info', 'app.info']);
        n.apps.set('shop', { codeId: CODE2 });
        n.dropAll();
        await sessionGone(c);
        const r = await c.app('shop').query('balance', { who: 'ann' });
        assert.deepEqual(r.codeId, CODE2);
        assert.deepEqual(ops(n), ['app.info', 'app.info', 'app.info', 'query']);
        await c.close();
      });

      it('query and transact under an admitting APP: clause; notifications reach the listener', async () => {
        const n = node();
        n.apps.set('shop', { codeId: CODE, notify: ['{"step":1}', '{"step":2}'] });
        const c = await open(n, {
          constraint: `${CONSTRAINT} APP:shop=${toHex(CODE2)} APP:shop=${toHex(CODE)}`,
        });
        const heard: unknown[] = [];
        const q = await c
          .app('shop')
          .query('balance', { who: 'ann' }, { onNotification: (v) => heard.push(v) });
        assert.deepEqual(q.result, { method: 'balance', args: '{"who":"ann"}' });
        assert.deepEqual(q.notifications, [{ step: 1 }, { step: 2 }]);
        assert.deepEqual(heard, [{ step: 1 }, { step: 2 }]);
        assert.deepEqual(q.codeId, CODE);
        const t = await c.app('shop').transact('pay', { amount: 5 }, { requestId: 'order-1' });
        assert.equal(t.requestId, 'order-1');
        assert.equal(t.repeated, false);
        assert.match(t.txid, /^1\.\d+$/);
        assert.deepEqual(ops(n), ['app.info', 'query', 'transact'], 'app.info is read once');
        const sent = n.requests[2]?.args;
        assert.equal(sent?.get('requestId'), 'order-1');
        assert.deepEqual(sent?.get('codeId'), CODE);
        assert.deepEqual(sent?.get('salt'), t.claims.salt);
        await c.close();
      });

      it('what client.service and app.info() hand out are copies: changing them changes no check', async () => {
        const n = node();
        const c = await open(n, { constraint: `${CONSTRAINT} APP:shop=${toHex(CODE)}` });
        const service = c.service;
        const identity = service.identity.slice();
        service.identity.fill(0);
        service.key.fill(0);
        service.nodeKey.fill(0);
        assert.deepEqual(
          c.service.identity,
          identity,
          'the service the client pinned is unchanged',
        );
        const info = await c.app('shop').info();
        assert.deepEqual(info.codeId, CODE);
        info.codeId.fill(0);
        assert.deepEqual((await c.app('shop').info()).codeId, CODE);
        // The code id sent with the call (and checked against the APP: clause) is still the one
        // the node signed, and a new session still verifies against the same pinned service.
        const r = await c.app('shop').query('balance', { who: 'ann' });
        assert.deepEqual(r.codeId, CODE);
        assert.deepEqual(n.requests.at(-1)?.args.get('codeId'), CODE);
        n.dropAll();
        await sessionGone(c);
        await c.app('shop').query('balance', { who: 'bob' });
        assert.deepEqual(c.service.identity, identity);
        await c.close();
      });

      it('an app.info signature that does not verify: refused, no app data sent', async () => {
        const n = node();
        n.badInfoSignature = true;
        const c = await open(n);
        await assert.rejects(c.app('shop').transact('pay', { amount: 1 }), (e) => {
          code('SCP_PROTOCOL')(e);
          assert.match((e as Error).message, /signature on the code id of app shop/);
          return true;
        });
        await assert.rejects(c.app('shop').query('balance', {}), code('SCP_PROTOCOL'));
        assert.deepEqual(ops(n), ['app.info'], 'app.info is not asked again on the same session');
        await c.close();
      });

      it('padding: every record the node receives has a bucket size', async () => {
        const n = node();
        const c = await open(n, { padding: true });
        await c.app('shop').query('balance', { who: 'x'.repeat(300) });
        const records = n.frames.filter((f) => f[0] === FRAME.RECORD);
        assert.equal(records.length, 2);
        // type byte + padded plaintext + 16-byte tag
        assert.deepEqual(
          records.map((f) => f.length - 17),
          [256, 1024],
        );
        await c.close(); // the close record too: its size must not tell it apart
        for (let i = 0; i < 100 && n.frames.filter((f) => f[0] === FRAME.RECORD).length < 3; i++) {
          await new Promise((r) => setTimeout(r, 10));
        }
        assert.deepEqual(
          n.frames.filter((f) => f[0] === FRAME.RECORD).map((f) => f.length - 17),
          [256, 1024, 256],
        );
      });

      it('a missing app is named', async () => {
        const n = node();
        const c = await open(n);
        await assert.rejects(c.app('nope').query('x', {}), code('APP_NOT_FOUND'));
        await c.close();
      });

      it('APP_CODE_CHANGED: the client re-reads and re-checks app.info, then retries once', async () => {
        const n = node();
        const c = await open(n);
        await c.app('shop').query('a', {});
        n.apps.set('shop', { codeId: CODE2 });
        const r = await c.app('shop').query('b', {});
        assert.deepEqual(r.codeId, CODE2);
        assert.deepEqual(ops(n), ['app.info', 'query', 'query', 'app.info', 'query']);
        await c.close();
      });

      it('a node answering APP_CODE_CHANGED again after the re-check: the error stands, nothing is sent a third time (mutation round 15: A6)', async () => {
        const n = node();
        const c = await open(n);
        n.codeChangedAlways = true;
        // A deadline so that a client retrying without end fails here by name, not by hanging.
        await assert.rejects(
          c.app('shop').query('a', {}, { timeoutMs: 10_000 }),
          code('APP_CODE_CHANGED'),
        );
        assert.deepEqual(ops(n), ['app.info', 'query', 'app.info', 'query']);
        await c.close();
      });

      it('APP_CODE_CHANGED to code the constraint refuses: no second call is sent', async () => {
        const n = node();
        const c = await open(n, { constraint: `${CONSTRAINT} APP:shop=${toHex(CODE)}` });
        await c.app('shop').transact('a', {});
        n.apps.set('shop', { codeId: CODE2 });
        await assert.rejects(c.app('shop').transact('b', { secret: 1 }), code('APP_CODE_MISMATCH'));
        assert.deepEqual(ops(n), ['app.info', 'transact', 'transact', 'app.info']);
        assert.equal(n.effects, 1);
        await c.close();
      });
    });

    describe('receipts', () => {
      it('a wait that runs out while the node says not yet ends with RECEIPT_NOT_READY; waitMs is checked', async () => {
        const n = node();
        // 20 ms each way: a poll sent with a few ms left would time out, and blame the network.
        const slow: Transport = async (url) => {
          const s = await n.transport(url);
          const send = s.send.bind(s);
          s.send = (f) => void setTimeout(() => send(f), 20);
          const deliver = () => s.onmessage;
          const wrapped = { ...s } as typeof s;
          Object.defineProperty(wrapped, 'onmessage', {
            get: () => deliver(),
            set: (h: ((f: Uint8Array) => void) | undefined) => {
              s.onmessage = h === undefined ? undefined : (f) => void setTimeout(() => h(f), 20);
            },
          });
          return wrapped;
        };
        const c = await open(n, { transport: slow });
        const t = await c.app('shop').transact('pay', {});
        n.signAfterPolls = 1000;
        for (let i = 0; i < 3; i++) {
          await assert.rejects(
            c.receipt(t.txid, { wait: true, waitMs: 400, claims: t.claims }),
            code('RECEIPT_NOT_READY'),
          );
        }
        for (const waitMs of [0, -1, 1.5, Number.POSITIVE_INFINITY, 2 ** 31]) {
          await assert.rejects(c.receipt(t.txid, { wait: true, waitMs }), code('INVALID_INPUT'));
        }
        n.signAfterPolls = 0;
        await c.close();
      });

      it('waitMs bounds the whole wait, the requests included', async () => {
        const n = node();
        const c = await open(n);
        const t = await c.app('shop').transact('pay', {});
        n.stallAnswers = true;
        await assert.rejects(
          c.receipt(t.txid, { wait: true, waitMs: 150, claims: t.claims }),
          (e) => {
            code('NETWORK')(e);
            assert.match((e as Error).message, /did not send the receipt of 1\.\d+ within 150 ms/);
            return true;
          },
        );
        n.stallAnswers = false;
        await c.close();
      });

      it('a consistency proof the node never sends fails the receipt and is forgotten, not re-sent', async () => {
        const n = node();
        const state = memoryState();
        const c = await open(n, { state });
        const t1 = await c.app('shop').transact('pay', { a: 1 });
        await c.receipt(t1.txid, { wait: true, claims: t1.claims });
        const t2 = await c.app('shop').transact('pay', { a: 2 });
        n.stallConsistency = true;
        await assert.rejects(c.receipt(t2.txid, { wait: true, claims: t2.claims }), (e) => {
          code('NETWORK')(e);
          assert.match((e as Error).message, /did not send the consistency proof/);
          return true;
        });
        const from = n.requests.length;
        // A drop and a new session: the abandoned request is not sent again. The new session's
        // root check (a root is stored) asks node.status, the receipt of the last signed entry
        // and the consistency proof from the stored root: the only consistency request.
        n.stallConsistency = false;
        n.dropAll();
        await c.app('shop').query('after', {});
        assert.deepEqual(
          n.requests.slice(from).map((r) => r.op),
          ['node.status', 'receipt', 'consistency', 'query'],
        );
        await c.close();
      });

      it('waits for the signature, verifies claims and pinned service, then checks consistency', async () => {
        const n = node();
        const state = memoryState();
        const c = await open(n, { state });
        const t1 = await c.app('shop').transact('pay', { amount: 1 });
        n.signAfterPolls = 2;
        await assert.rejects(c.receipt(t1.txid), code('RECEIPT_NOT_READY'));
        const r1 = await c.receipt(t1.txid, { wait: true, claims: t1.claims });
        assert.equal(r1.verified.txid, t1.txid);
        assert.deepEqual(r1.verified.service, n.serviceIdentity);
        assert.equal((await state.roots.get(n.serviceIdentity))?.size, r1.verified.size);
        assert.equal(
          ops(n).filter((o) => o === 'consistency').length,
          0,
          'first root: nothing to prove',
        );
        const t2 = await c.app('shop').transact('pay', { amount: 2 });
        const r2 = await c.receipt(t2.txid, { wait: true, claims: t2.claims });
        assert.ok(r2.verified.size > r1.verified.size);
        assert.deepEqual(
          ops(n).filter((o) => o === 'consistency'),
          ['consistency'],
        );
        assert.equal((await state.roots.get(n.serviceIdentity))?.size, r2.verified.size);
        const st = await c.status({ app: 'shop', requestId: t2.requestId });
        assert.deepEqual(st, { state: 'committed', txid: t2.txid });
        assert.deepEqual(await c.status({ txid: t2.txid }), { state: 'signed' });
        await c.close();
      });

      it("an earlier transaction's receipt after a later one's verifies (its root proven a prefix)", async () => {
        const n = node();
        const state = memoryState();
        const c = await open(n, { state });
        // t1 signed, then t2 signed at a later size: t1's receipt stays at its own signature.
        const t1 = await c.app('shop').transact('pay', { amount: 1 });
        await c.receipt(t1.txid, { wait: true, claims: t1.claims });
        const t2 = await c.app('shop').transact('pay', { amount: 2 });
        const r2 = await c.receipt(t2.txid, { wait: true, claims: t2.claims });
        // Then t1's again, as `cloister call --request-id` re-run with the same id does.
        const r1 = await c.receipt(t1.txid, { wait: true, claims: t1.claims });
        assert.ok(r1.verified.size < r2.verified.size, 'signed at an earlier size');
        assert.equal((await state.roots.get(n.serviceIdentity))?.size, r2.verified.size);
        const asked = n.requests.filter((r) => r.op === 'consistency').at(-1)?.args;
        assert.deepEqual(
          [asked?.get('from'), asked?.get('to')],
          [r1.verified.size, r2.verified.size],
        );
        await c.close();
      });

      it("a node's passing failure to answer consistency is that failure, not a rollback", async () => {
        const n = node();
        const c = await open(n, { state: memoryState() });
        const t1 = await c.app('shop').transact('pay', { amount: 1 });
        await c.receipt(t1.txid, { wait: true, claims: t1.claims });
        const t2 = await c.app('shop').transact('pay', { amount: 2 });
        n.failConsistency = 1;
        await assert.rejects(
          c.receipt(t2.txid, { wait: true, claims: t2.claims }),
          code('ENCLAVE_FAILED'),
        );
        // The same node, the same log: it verifies once the node answers.
        const r = await c.receipt(t2.txid, { wait: true, claims: t2.claims });
        assert.equal(r.verified.txid, t2.txid);
        await c.close();
      });

      it('a consistency answer without a proof of hashes is SCP_PROTOCOL, not a rollback', async () => {
        const n = node();
        const c = await open(n, { state: memoryState() });
        const t1 = await c.app('shop').transact('pay', { amount: 1 });
        await c.receipt(t1.txid, { wait: true, claims: t1.claims });
        const t2 = await c.app('shop').transact('pay', { amount: 2 });
        for (const answer of [{}, { proof: 'hashes' }, { proof: ['ab'.repeat(32)] }]) {
          n.consistencyAnswer = answer;
          await assert.rejects(
            c.receipt(t2.txid, { wait: true, claims: t2.claims }),
            code('SCP_PROTOCOL'),
          );
        }
        n.consistencyAnswer = undefined;
        const r = await c.receipt(t2.txid, { wait: true, claims: t2.claims });
        assert.equal(r.verified.txid, t2.txid);
        await c.close();
      });

      it('connect checks the newest signed root against the one stored: an extension moves it on; nothing is asked without one', async () => {
        const n = node();
        const state = memoryState();
        const c = await open(n, { state });
        const t1 = await c.app('shop').transact('pay', { amount: 1 });
        const r1 = await c.receipt(t1.txid, { wait: true, claims: t1.claims });
        await c.app('shop').transact('pay', { amount: 2 });
        n.kit.sign();
        await c.close();
        const asked = () => n.requests.filter((r) => r.op === 'node.status').length;
        assert.equal(asked(), 0, 'the first connect had no root to check');
        const again = await open(n, { state });
        assert.equal(asked(), 1);
        const stored = await state.roots.get(n.serviceIdentity);
        assert.ok(stored && stored.size > r1.verified.size, 'the newer signed root is stored');
        assert.equal(stored.size, n.kit.size - 1);
        await again.close();
        const fresh = await open(n, { state: memoryState() });
        assert.equal(asked(), 1, 'a state with no root of the service asks nothing');
        await fresh.close();
      });

      it('connect refuses a node whose signed log is behind or beside the root stored, and closes', async () => {
        const n = node();
        const state = memoryState();
        const c = await open(n, { state });
        const t1 = await c.app('shop').transact('pay', { amount: 1 });
        await c.receipt(t1.txid, { wait: true, claims: t1.claims });
        await c.close();
        const stored = await state.roots.get(n.serviceIdentity);
        assert.ok(stored);
        // Restored to before that signature: its newest signed root is older than the one seen.
        n.statusLastSigned = 1;
        await assert.rejects(open(n, { state }), (e: unknown) => {
          assert.ok(code('ROLLBACK_DETECTED')(e), String(e));
          assert.match((e as Error).message, /older than the size \d+ root/);
          return true;
        });
        assert.equal(n.open, 0, 'the refused connection is closed');
        // No signed entry at all.
        n.statusLastSigned = 0;
        await assert.rejects(open(n, { state }), (e: unknown) => {
          assert.ok(code('ROLLBACK_DETECTED')(e), String(e));
          assert.match((e as Error).message, /shows no signed entry/);
          return true;
        });
        // A fork of the same size: another root where this client saw one.
        n.statusLastSigned = undefined;
        await state.roots.put(
          { service: n.serviceIdentity, size: stored.size, root: new Uint8Array(32) },
          stored,
        );
        await assert.rejects(open(n, { state }), code('ROLLBACK_DETECTED'));
        assert.deepEqual(
          (await state.roots.get(n.serviceIdentity))?.root,
          new Uint8Array(32),
          'a refused root replaces nothing',
        );
      });

      it('a node.status without a usable lastSigned, or a receipt answer without bytes, is SCP_PROTOCOL (coverage gap)', async () => {
        const n = node();
        const state = memoryState();
        const c = await open(n, { state });
        const t1 = await c.app('shop').transact('pay', { amount: 1 });
        await c.receipt(t1.txid, { wait: true, claims: t1.claims });
        await c.close();
        for (const lastSigned of [-1, 1.5]) {
          n.statusLastSigned = lastSigned;
          await assert.rejects(open(n, { state }), (e: unknown) => {
            assert.ok(code('SCP_PROTOCOL')(e));
            assert.equal(
              (e as Error).message,
              'the node answered node.status without term and lastSigned',
            );
            return true;
          });
          assert.equal(n.open, 0, 'the refused connection is closed');
        }
        n.statusLastSigned = undefined;
        // Terms count from 1: a term of 0 is the node's fault, never the caller's txid.
        for (const term of [0, -1, 1.5]) {
          n.statusTerm = term;
          await assert.rejects(open(n, { state }), (e: unknown) => {
            assert.ok(code('SCP_PROTOCOL')(e));
            assert.equal(
              (e as Error).message,
              'the node answered node.status without term and lastSigned',
            );
            return true;
          });
        }
        n.statusTerm = undefined;
        const again = await open(n, { state });
        n.receiptAnswer = { receipt: 'not bytes' };
        await assert.rejects(again.receipt(t1.txid), (e: unknown) => {
          assert.ok(code('SCP_PROTOCOL')(e));
          assert.equal((e as Error).message, 'the node answered receipt without receipt bytes');
          return true;
        });
        await again.close();
      });

      it('a reconnect checks the root too, on the new session, before the calls waiting go out again', async () => {
        const n = node();
        const state = memoryState();
        const c = await open(n, { state });
        const t1 = await c.app('shop').transact('pay', { amount: 1 });
        await c.receipt(t1.txid, { wait: true, claims: t1.claims });
        // An honest reconnect: the check passes and the call is answered.
        n.dropAll();
        await sessionGone(c);
        const asked = () => n.requests.filter((r) => r.op === 'node.status').length;
        const before = asked();
        assert.equal((await c.app('shop').query('balance', { who: 'ann' })).codeId.length, 32);
        assert.equal(asked(), before + 1, 'the re-opened session was checked');
        // The host routes the next reconnect to a copy behind the root seen: the call waiting is
        // refused with ROLLBACK_DETECTED and never reaches it.
        n.statusLastSigned = 1;
        n.dropAll();
        await sessionGone(c);
        const queries = n.requests.filter((r) => r.op === 'query').length;
        await assert.rejects(
          c.app('shop').query('balance', { who: 'bob' }),
          code('ROLLBACK_DETECTED'),
        );
        assert.equal(
          n.requests.filter((r) => r.op === 'query').length,
          queries,
          'nothing was sent',
        );
        assert.equal(n.open, 0, 'the refused session is closed');
        await c.close();
      });

      it('an answer on a re-opened session to a call not sent on it is refused, never taken as its outcome', async () => {
        const n = node();
        const c = await open(n, { state: memoryState() });
        const t1 = await c.app('shop').transact('pay', { amount: 1 });
        await c.receipt(t1.txid, { wait: true, claims: t1.claims });
        // The answer is lost with its session. On the new one, while the root is checked and
        // before the call goes out again, the node answers the call's id: never sent there.
        n.loseResponses = 1;
        n.answerUnsentOnStatus = 1;
        const t = await c.app('shop').transact('pay', { amount: 7 });
        assert.notEqual(t.txid, '1.999', 'the answer to a call not sent was taken');
        assert.equal(t.repeated, true, 'the outcome is the answer to the call sent again');
        assert.equal(n.effects, 2, 'applied once');
        assert.equal(n.connections, 3, 'the session that answered it was dropped');
        await c.close();
      });

      it('a receipt wait ends at the first answer that is not RECEIPT_NOT_READY: another error is not polled again (mutation round 15: K11)', async () => {
        const n = node();
        const c = await open(n);
        const t = await c.app('shop').transact('pay', {});
        n.receiptError = { code: 'INVALID_INPUT', message: 'no transaction 1.99 in this log' };
        await assert.rejects(
          c.receipt(t.txid, { wait: true, waitMs: 10_000 }),
          code('INVALID_INPUT'),
        );
        assert.equal(ops(n).filter((o) => o === 'receipt').length, 1, 'asked once');
        n.receiptError = undefined;
        await c.close();
      });

      it("every pin and signed-root write runs inside the state's lock (mutation round 15: K15)", async () => {
        const inner = memoryState();
        let held = false;
        const writes: { what: string; held: boolean }[] = [];
        const state: ClientState = {
          lock: async (f) => {
            const was = held;
            held = true;
            try {
              return await f();
            } finally {
              held = was;
            }
          },
          pins: {
            get: (u) => inner.pins.get(u),
            put: (u, v, previous) => {
              writes.push({ what: 'pin', held });
              return inner.pins.put(u, v, previous);
            },
          },
          roots: {
            get: (svc) => inner.roots.get(svc),
            put: (r, previous) => {
              writes.push({ what: `root ${r.size}`, held });
              return inner.roots.put(r, previous);
            },
          },
        };
        const n = node();
        const c = await open(n, { state });
        const t1 = await c.app('shop').transact('pay', { amount: 1 });
        const r1 = await c.receipt(t1.txid, { wait: true, claims: t1.claims });
        const t2 = await c.app('shop').transact('pay', { amount: 2 });
        const r2 = await c.receipt(t2.txid, { wait: true, claims: t2.claims });
        assert.deepEqual(writes, [
          { what: 'pin', held: true },
          { what: `root ${r1.verified.size}`, held: true },
          { what: `root ${r2.verified.size}`, held: true },
        ]);
        await c.close();
      });

      it('claims of another transaction, or a root older than one seen, are refused', async () => {
        const n = node();
        const state = memoryState();
        const c = await open(n, { state });
        const t1 = await c.app('shop').transact('pay', { amount: 1 });
        const t2 = await c.app('shop').transact('pay', { amount: 2 });
        await assert.rejects(
          c.receipt(t1.txid, { wait: true, claims: t2.claims }),
          code('RECEIPT'),
        );
        await state.roots.put({ service: n.serviceIdentity, size: 1000, root: new Uint8Array(32) });
        await assert.rejects(c.receipt(t1.txid, { claims: t1.claims }), code('ROLLBACK_DETECTED'));
        await c.close();
      });
    });

    describe("a node answering with another transaction's receipt", () => {
      it('is named as such, before its claims are checked (not as a salt mix-up)', async () => {
        const n = node();
        const c = await open(n);
        const t1 = await c.app('shop').transact('pay', { amount: 1 });
        const t2 = await c.app('shop').transact('pay', { amount: 2 });
        n.receiptOf = Number(t1.txid.split('.')[1]);
        await assert.rejects(
          c.receipt(t2.txid, { wait: true, claims: t2.claims }),
          (e: unknown) =>
            e instanceof ReceiptError &&
            e.reason === 'format' &&
            e.message.includes(`the node sent the receipt of ${t1.txid}, not ${t2.txid}`),
        );
        await c.close();
      });

      it('is refused when no claims are checked too (the receipt verifies, for another entry)', async () => {
        const n = node();
        const c = await open(n);
        const t1 = await c.app('shop').transact('pay', { amount: 1 });
        const t2 = await c.app('shop').transact('pay', { amount: 2 });
        n.receiptOf = Number(t1.txid.split('.')[1]);
        await assert.rejects(
          c.receipt(t2.txid, { wait: true }),
          (e: unknown) =>
            e instanceof ReceiptError &&
            e.reason === 'format' &&
            e.message.includes(`the node sent the receipt of ${t1.txid}, not ${t2.txid}`),
        );
        await c.close();
      });
    });

    describe("a node answering with another service's receipt", () => {
      it('is refused as not the pinned service, even without claims to check', async () => {
        const n = node();
        const c = await open(n);
        const t = await c.app('shop').transact('pay', { amount: 1 });
        // Another service's genuine log, signed at least as far: a receipt for the same txid.
        const other = new KitService();
        while (other.size < Number(t.txid.split('.')[1])) other.tx();
        other.sign();
        n.receiptsFrom = other;
        await assert.rejects(
          c.receipt(t.txid, { wait: true }),
          (e: unknown) =>
            e instanceof ReceiptError &&
            e.reason === 'service' &&
            /signed by another service than the one expected/.test(e.message),
        );
        await c.close();
      });
    });

    describe('a repeat across an app upgrade', () => {
      it('answers the first outcome with its code id; its claims check; refused if the constraint does not admit it', async () => {
        const n = node();
        const c = await open(n);
        const first = await c.app('shop').transact('pay', { amount: 3 }, { requestId: 'up-1' });
        n.apps.set('shop', { codeId: CODE2 }); // upgraded
        n.dropAll();
        await sessionGone(c);
        const again = await c
          .app('shop')
          .transact('pay', { amount: 3 }, { requestId: 'up-1', salt: first.claims.salt });
        assert.equal(again.repeated, true);
        assert.equal(again.txid, first.txid);
        assert.deepEqual(again.codeId, CODE, 'the code that produced the stored outcome');
        assert.deepEqual(again.claims.codeId, CODE);
        const r = await c.receipt(again.txid, { wait: true, claims: again.claims });
        assert.equal(r.verified.txid, first.txid);
        // Without the first salt the repeat's claims cannot match: refused, and the message says
        // why (it read as forgery: "the claims do not match the entry").
        const unsalted = await c.app('shop').transact('pay', { amount: 3 }, { requestId: 'up-1' });
        assert.equal(unsalted.repeated, true);
        await assert.rejects(
          c.receipt(unsalted.txid, { wait: true, claims: unsalted.claims }),
          (e: unknown) =>
            e instanceof ReceiptError &&
            e.reason === 'claims' &&
            /^receipt refused \(claims\): the claims do not match the entry; if this transaction repeated a request id .*first attempt's claims salt/.test(
              e.message,
            ),
        );
        await c.close();
        // A client whose constraint admits only the new code refuses the old code's answer.
        const strict = await open(n, { constraint: `${CONSTRAINT} APP:shop=${toHex(CODE2)}` });
        await assert.rejects(
          strict.app('shop').transact('pay', { amount: 3 }, { requestId: 'up-1' }),
          code('APP_CODE_MISMATCH'),
        );
        await strict.close();
      });

      it('a refused stored outcome is named as the earlier code of a repeated request id, not a downgrade', async () => {
        const n = node();
        const c = await open(n);
        const first = await c.app('shop').transact('pay', { amount: 3 }, { requestId: 'order-17' });
        await c.close();
        n.apps.set('shop', { codeId: CODE2 }); // upgraded
        const strict = await open(n, { constraint: `${CONSTRAINT} APP:shop=${toHex(CODE2)}` });
        await assert.rejects(
          strict.app('shop').transact('pay', { amount: 3 }, { requestId: 'order-17' }),
          (e: unknown) => {
            code('APP_CODE_MISMATCH')(e);
            assert.ok(e instanceof RepeatedRequestCodeError, String(e));
            assert.equal(e.requestId, 'order-17');
            assert.equal(e.txid, first.txid);
            assert.equal(e.seen, toHex(CODE));
            assert.equal(e.clause, `APP:shop=${toHex(CODE2)}`);
            assert.equal(
              e.message,
              `request id "order-17" of app "shop" was already applied at ${first.txid} by earlier code ${toHex(CODE)}; a retry answers that stored outcome, which is not from code your constraint admits (APP:shop=${toHex(CODE2)}), so it is refused (nothing ran again): add APP:shop=${toHex(CODE)} to the constraint to accept it, or check the transaction without it: status({ app, requestId }), or its receipt (client.receipt("${first.txid}"), \`cloister receipt get <url> ${first.txid}\`)`,
            );
            assert.doesNotMatch(e.hint, /trust the new code/);
            assert.match(e.hint, /applied by earlier code/);
            return true;
          },
        );
        // What the message says to do works: with the earlier code admitted, the stored outcome.
        const both = await open(n, {
          constraint: `${CONSTRAINT} APP:shop=${toHex(CODE2)} APP:shop=${toHex(CODE)}`,
        });
        const again = await both
          .app('shop')
          .transact('pay', { amount: 3 }, { requestId: 'order-17', salt: first.claims.salt });
        assert.equal(again.repeated, true);
        assert.equal(again.txid, first.txid);
        assert.deepEqual(again.codeId, CODE);
        assert.deepEqual(await strict.status({ app: 'shop', requestId: 'order-17' }), {
          state: 'committed',
          txid: first.txid,
        });
        await both.close();
        await strict.close();
      });
    });

    describe('reconnect', () => {
      it('a transaction whose response was lost is re-sent (same request id and salt) and applies once', async () => {
        const n = node();
        const c = await open(n);
        await c.app('shop').info();
        n.loseResponses = 1;
        const t = await c.app('shop').transact('pay', { amount: 7 });
        assert.equal(n.connections, 2, 'the client reconnected');
        assert.equal(n.effects, 1, 'applied once');
        assert.equal(t.repeated, true);
        const sent = n.requests.filter((r) => r.op === 'transact');
        assert.equal(sent.length, 2);
        assert.equal(sent[0]?.args.get('requestId'), sent[1]?.args.get('requestId'));
        assert.deepEqual(sent[0]?.args.get('salt'), sent[1]?.args.get('salt'));
        // The claims still match what was committed: the first attempt's salt was kept.
        const r = await c.receipt(t.txid, { wait: true, claims: t.claims });
        assert.equal(r.verified.txid, t.txid);
        await c.close();
      });

      it('calls made while the socket is down wait for the new session', async () => {
        const n = node();
        const c = await open(n);
        n.dropAll();
        const [a, b] = await Promise.all([
          c.app('shop').query('a', 1),
          c.app('shop').query('b', 2),
        ]);
        assert.deepEqual(
          [a.result, b.result],
          [
            { method: 'a', args: '1' },
            { method: 'b', args: '2' },
          ],
        );
        assert.equal(n.connections, 2);
        await c.close();
      });

      it('two processes (two state objects over one store) first-connecting: the state lock orders them', async () => {
        // Each "process" has its own state object over one shared store (a file, IndexedDB), so
        // core's exclusive does not order them; ClientState.lock (a lock file, a Web Lock) does.
        const inner = memoryState();
        const later = () => new Promise((r) => setImmediate(r));
        let tail: Promise<unknown> = Promise.resolve();
        const inLock: boolean[] = [];
        let held = false;
        const lock = <T>(f: () => Promise<T>): Promise<T> => {
          const run = tail.then(async () => {
            held = true;
            try {
              return await f();
            } finally {
              held = false;
            }
          });
          tail = run.catch(() => undefined);
          return run;
        };
        const view = (): ClientState => ({
          lock,
          roots: inner.roots,
          pins: {
            get: async (u) => {
              inLock.push(held);
              await later();
              return inner.pins.get(u);
            },
            put: async (u, v) => {
              inLock.push(held);
              await later();
              return inner.pins.put(u, v);
            },
          },
        });
        const x = node();
        const y = node();
        const settled = await Promise.allSettled([
          open(x, { state: view() }),
          open(y, { state: view() }),
        ]);
        const won = settled.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
        const lost = settled.flatMap((r) => (r.status === 'rejected' ? [r.reason] : []));
        assert.equal(won.length, 1, 'exactly one connects');
        code('SERVICE_CHANGED')(lost[0]);
        assert.ok(
          inLock.length >= 3 && inLock.every(Boolean),
          'every pin read and write held the lock',
        );
        await won[0]?.close();
      });

      it('two first connects to one URL sharing a state: one pins, the other service is refused', async () => {
        // A pin store whose calls finish on a later task, as IndexedDB's do, and whose reads
        // wait for each other (up to 50 ms): unserialised, both connects read "no pin" before
        // either wrote, and each client stayed on its own service.
        const inner = memoryState();
        const later = () => new Promise((r) => setImmediate(r));
        let reading = 0;
        let release: () => void = () => {};
        const both = new Promise<void>((r) => {
          release = r;
        });
        const state = {
          roots: inner.roots,
          pins: {
            get: async (u: string) => {
              if (++reading === 2) release();
              await Promise.race([both, new Promise((r) => setTimeout(r, 50))]);
              return inner.pins.get(u);
            },
            put: async (u: string, v: Uint8Array) => {
              await later();
              return inner.pins.put(u, v);
            },
          },
        };
        const x = node();
        const y = node();
        const settled = await Promise.allSettled([open(x, { state }), open(y, { state })]);
        const won = settled.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
        const lost = settled.flatMap((r) => (r.status === 'rejected' ? [r.reason] : []));
        assert.equal(won.length, 1, 'exactly one connects');
        code('SERVICE_CHANGED')(lost[0]);
        // The pin is the service the connected client talks to.
        assert.deepEqual(await inner.pins.get(won[0]?.url ?? ''), won[0]?.service.identity);
        await won[0]?.close();
      });

      it('a pin another tab writes between the read and the write: the write is refused and the pin read again (mutation round 15: K19, K20)', async () => {
        // A state with no lock (a browser without Web Locks): only the pin store's own
        // compare-and-set stands between two tabs taking "first use" of one URL.
        const sharing = (other: () => Uint8Array) => {
          const inner = memoryState();
          let first = true;
          const state: ClientState = {
            roots: inner.roots,
            pins: {
              get: (u) => inner.pins.get(u),
              put: async (u, v, previous) => {
                if (first) {
                  first = false;
                  await inner.pins.put(u, other(), null); // the other tab, just before
                }
                return inner.pins.put(u, v, previous);
              },
            },
          };
          return { inner, state };
        };
        // The other tab pinned another service: refused, and its pin stands.
        const n = node();
        const elsewhere = new KitService();
        const a = sharing(() => sha256(elsewhere.service.publicKey));
        await assert.rejects(open(n, { state: a.state }), code('SERVICE_CHANGED'));
        assert.deepEqual(
          await a.inner.pins.get('ws://node.test:7410/v1/scp'),
          sha256(elsewhere.service.publicKey),
        );
        assert.deepEqual(frameTypes(n.frames), [FRAME.CH], 'no CA was sent');
        // The other tab pinned the same service: kept.
        const b = sharing(() => n.serviceIdentity);
        const c = await open(n, { state: b.state });
        assert.deepEqual(c.pin, { how: 'kept' });
        assert.deepEqual(await b.inner.pins.get(c.url), n.serviceIdentity);
        await c.close();
      });

      it('a reconnect that reaches another service fails the waiting calls with SERVICE_CHANGED', async () => {
        const first = node();
        const second = node();
        let current = first;
        const transport: Transport = (url) => current.transport(url);
        const c = await open(first, { transport });
        await c.app('shop').info();
        current = second;
        first.dropAll();
        // The transaction went out on the socket being dropped: its outcome is unknown, and the
        // error says so with its request id; the cause is the impostor's service.
        await assert.rejects(c.app('shop').transact('pay', { amount: 1 }), (e) => {
          code('OUTCOME_UNKNOWN')(e);
          assert.ok(e instanceof OutcomeUnknownError);
          assert.equal(e.app, 'shop');
          assert.match(e.requestId, /^[0-9a-f-]{36}$/);
          assert.equal((e.cause as { code?: string }).code, 'SERVICE_CHANGED');
          return true;
        });
        assert.deepEqual(
          frameTypes(second.frames),
          [FRAME.CH],
          'nothing but CH reached the impostor',
        );
        await assert.rejects(c.app('shop').query('x', {}), code('SERVICE_CHANGED'));
        // The impostor gone, the same client works again: an unauthenticated failure does not
        // end it for good.
        current = first;
        const r = await c.app('shop').query('y', {});
        assert.equal(JSON.parse(r.json).method, 'y');
        await c.close();
      });

      it('gives up after the configured attempts with NETWORK, and recovers on a later call', async () => {
        const n = node();
        let tries = 0;
        const c = await open(n, {
          transport: (url) => {
            if (n.down) tries++;
            return n.transport(url);
          },
        });
        n.down = true;
        n.dropAll();
        await assert.rejects(c.app('shop').query('a', {}), (e) => {
          code('NETWORK')(e);
          assert.match((e as Error).message, /after 4 attempts/);
          return true;
        });
        assert.equal(tries, 4, 'exactly the configured attempts, no more');
        n.down = false;
        const r = await c.app('shop').query('b', {});
        assert.deepEqual(r.result, { method: 'b', args: '{}' });
        await c.close();
      });

      it('close() while a re-open backs off: no further attempt reaches the node', async () => {
        const n = node();
        let c: Client | undefined;
        let afterClose = 0;
        let closed = false;
        // The first failed re-open attempt closes the client, then fails (the node is down).
        const transport: Transport = (url) => {
          if (closed) afterClose++;
          else if (n.down) {
            closed = true;
            void c?.close();
          }
          return n.transport(url);
        };
        c = await open(n, { transport });
        n.down = true;
        n.dropAll();
        await assert.rejects(c.app('shop').query('a', {}), code('SCP_CLOSED'));
        await new Promise((r) => setTimeout(r, 100)); // the back-off (at most 5 ms) has ended
        assert.equal(afterClose, 0, 'the closed client stopped re-opening');
      });

      it('a call whose every session ends before its answer fails with NETWORK after its re-send budget', async () => {
        const n = node();
        // A host (or a node) that ends the connection whenever this one call's record passes:
        // without a budget the client re-sent it on a new session for ever.
        const transport = relay(n.transport, {
          up: (f, pass) => (f[0] === FRAME.RECORD && f.length > 3000 ? n.dropAll() : pass(f)),
        });
        const c = await open(n, { transport });
        await c.app('shop').info();
        const before = n.connections;
        await assert.rejects(c.app('shop').query('big', { pad: 'x'.repeat(4000) }), (e) => {
          code('NETWORK')(e);
          assert.match(
            (e as Error).message,
            /sent on 5 connections and each ended before its answer/,
          );
          return true;
        });
        // Sent on 1 + attempts (4) sessions; the last re-open found the budget spent.
        assert.equal(n.connections - before, 5);
        // The client itself goes on.
        const r = await c.app('shop').query('small', { a: 1 });
        assert.deepEqual(r.result, { method: 'small', args: '{"a":1}' });
        await c.close();
      });

      it('a status question whose every session ends is NETWORK: only a transaction is OUTCOME_UNKNOWN', async () => {
        const n = node();
        // status names an app and a request id too, but asks; it changes nothing.
        let armed = false;
        const transport = relay(n.transport, {
          up: (f, pass) => (armed && f[0] === FRAME.RECORD ? n.dropAll() : pass(f)),
        });
        const c = await open(n, { transport });
        await c.app('shop').info();
        armed = true;
        await assert.rejects(c.status({ app: 'shop', requestId: 'order-1' }), (e) => {
          code('NETWORK')(e);
          assert.match((e as Error).message, /each ended before its answer/);
          return true;
        });
        await c.close();
      });

      it('a call too large for a frame fails alone; the session and the other calls go on', async () => {
        const n = node();
        const c = await open(n);
        await c.app('shop').info();
        const session = c.session;
        const other = c.app('shop').query('other', { b: 2 });
        await assert.rejects(
          c.app('shop').query('huge', { pad: 'x'.repeat(MAX_FRAME) }),
          code('FRAME_TOO_LARGE'),
        );
        assert.deepEqual((await other).result, { method: 'other', args: '{"b":2}' });
        // A transaction too large never left: its own error, not OUTCOME_UNKNOWN.
        await assert.rejects(
          c.app('shop').transact('huge', { pad: 'x'.repeat(MAX_FRAME) }),
          code('FRAME_TOO_LARGE'),
        );
        assert.equal(
          ops(n).filter((o) => o === 'transact').length,
          0,
          'the node saw no transaction',
        );
        const after = await c.app('shop').transact('pay', { amount: 1 });
        assert.equal(after.repeated, false);
        assert.equal(c.session, session, 'the same session');
        assert.equal(n.connections, 1);
        await c.close();
      });

      it("a committed transaction's answer withheld behind a forged ALERT is OUTCOME_UNKNOWN, never a refusal", async () => {
        const n = node();
        const c = await open(n);
        await c.app('shop').info();
        // The next session's first record is the transaction: a host lets it commit, withholds
        // the answer and forges an ALERT, which looks like the node refusing the handshake.
        n.dropAll();
        n.alertInsteadOfAnswer = 1;
        const e = await c
          .app('shop')
          .transact('pay', { amount: 5 })
          .then(
            () => assert.fail('the transaction must not look answered'),
            (err: unknown) => err,
          );
        assert.ok(e instanceof OutcomeUnknownError, String(e));
        assert.equal(n.effects, 1, 'it was committed');
        // The error names what to look up and how to retry: at most once.
        const st = await c.status({ app: 'shop', requestId: e.requestId });
        assert.equal(st.state, 'committed');
        const again = await c
          .app('shop')
          .transact('pay', { amount: 5 }, { requestId: e.requestId });
        assert.equal(again.repeated, true);
        assert.equal(n.effects, 1);
      });

      it('timeoutMs: a query gives up with NETWORK, a transaction with OUTCOME_UNKNOWN; neither is sent again', async () => {
        const n = node();
        const c = await open(n);
        await c.app('shop').info();
        n.stallAnswers = true;
        await assert.rejects(c.app('shop').query('slow', {}, { timeoutMs: 100 }), (e) => {
          code('NETWORK')(e);
          assert.match((e as Error).message, /no answer to query slow of app shop within 100 ms/);
          return true;
        });
        await assert.rejects(c.app('shop').transact('pay', {}, { timeoutMs: 100 }), (e) => {
          assert.ok(e instanceof OutcomeUnknownError, String(e));
          assert.equal(n.effects, 1, 'it committed: only the answer was withheld');
          return true;
        });
        // Bounds of a timer (mutation round 15: A4): 2^31 ms would fire at once.
        for (const timeoutMs of [0, 1.5, 2 ** 31]) {
          await assert.rejects(c.app('shop').query('x', {}, { timeoutMs }), code('INVALID_INPUT'));
        }
        n.stallAnswers = false;
        const sent = n.requests.length;
        n.dropAll(); // a new session re-sends only what still waits: nothing
        await c.app('shop').query('after', {});
        assert.equal(n.requests.length, sent + 1);
        await c.close();
      });

      it('a record the host altered ends the session: the call is sent again on a new one and answered (mutation round 15: N2)', async () => {
        const n = node();
        let records = 0;
        // The node's second record (the query's answer) with one bit flipped on the way.
        const transport = relay(n.transport, {
          down: (f, pass) => {
            if (f[0] === FRAME.RECORD && ++records === 2) {
              pass(f.map((b, i) => (i === f.length - 1 ? b ^ 1 : b)));
            } else pass(f);
          },
        });
        const c = await open(n, { transport });
        const r = await c.app('shop').query('a', {});
        assert.deepEqual(r.result, { method: 'a', args: '{}' });
        assert.equal(n.connections, 2);
        assert.deepEqual(ops(n), ['app.info', 'query', 'query']);
        await c.close();
      });

      it('a session that ends while its root check finishes is not used: the calls go out on the next one (mutation round 15: N5)', async () => {
        const n = node();
        const state = memoryState();
        let opened = 0;
        let cutSession = 0;
        // On the session numbered cutSession, the host closes the connection right after the
        // node's second record (node.status, then the receipt of the root check), while the
        // client is still verifying that receipt.
        const transport: Transport = async (url) => {
          const k = ++opened;
          let records = 0;
          const inner = await n.transport(url);
          const outer: Socket = {
            send: (f) => inner.send(f),
            close: () => inner.close(),
            onmessage: undefined,
            onclose: undefined,
          };
          inner.onmessage = (f) => {
            outer.onmessage?.(f);
            if (k === cutSession && f[0] === FRAME.RECORD && ++records === 2) inner.close();
          };
          inner.onclose = (why) => outer.onclose?.(why);
          return outer;
        };
        const c = await open(n, { state, transport });
        const t1 = await c.app('shop').transact('pay', { amount: 1 });
        await c.receipt(t1.txid, { wait: true, claims: t1.claims });
        n.dropAll();
        await sessionGone(c);
        cutSession = opened + 1;
        // A deadline so that a call stuck on a dead session fails here by name.
        const r = await c.app('shop').query('balance', {}, { timeoutMs: 10_000 });
        assert.deepEqual(r.result, { method: 'balance', args: '{}' });
        assert.equal(opened, cutSession + 1, 'one more session after the cut one');
        assert.equal(ops(n).filter((o) => o === 'query').length, 1, 'sent once');
        await c.close();
      });

      it('a call given up whose notifications and answer come late: all dropped, the session goes on (mutation round 15: N11)', async () => {
        const n = node();
        n.apps.set('shop', { codeId: CODE, notify: ['{"step":1}', '{"step":2}'] });
        const c = await open(n, { reconnect: false });
        await c.app('shop').info();
        await givenUpThenAnswered(n, c, 1, 'late');
        const r = await c.app('shop').query('next', {});
        assert.equal(JSON.parse(r.json).method, 'next');
        assert.deepEqual(r.notifications, [{ step: 1 }, { step: 2 }]);
        assert.equal(n.connections, 1, 'the same session');
        await c.close();
      });

      it('a late answer to a call given up at its deadline is dropped; the session goes on', async () => {
        const n = node();
        const c = await open(n, { reconnect: false });
        await c.app('shop').info();
        n.delayQueriesMs = 150;
        await assert.rejects(c.app('shop').query('slow', {}, { timeoutMs: 30 }), code('NETWORK'));
        await new Promise((r) => setTimeout(r, 250)); // its answer arrives now
        n.delayQueriesMs = 0;
        const r = await c.app('shop').query('next', {});
        assert.equal(JSON.parse(r.json).method, 'next');
        assert.equal(n.connections, 1, 'the same session');
        await c.close();
      });

      it('late answers to calls given up are forgotten once answered: they do not count toward a new session', async () => {
        const n = node();
        const c = await open(n, { reconnect: false });
        await c.app('shop').info();
        // 64 calls (the most a session may leave unanswered) given up, then answered late. Their
        // deadline leaves them time to be sealed and sent (a call given up before it is sent is
        // not waiting on the session).
        await givenUpThenAnswered(n, c, 64, 'late');
        // Answers come in order: once this one is here, the 64 late ones were read.
        await c.app('shop').query('after', {});
        // One more given up: 1 unanswered, not 65 (which would end the session).
        await givenUpThenAnswered(n, c, 1, 'one');
        const r = await c.app('shop').query('next', {});
        assert.equal(JSON.parse(r.json).method, 'next');
        assert.equal(n.connections, 1, 'the same session');
        await c.close();
      });

      it('a session that leaves more than 64 calls given up unanswered is replaced by a new one (coverage gap)', async () => {
        const n = node();
        const c = await open(n);
        await c.app('shop').info();
        // A host holding the node's records back: 65 calls given up on one session.
        await givenUpThenAnswered(n, c, 65, 'held');
        const r = await c.app('shop').query('next', {});
        assert.equal(JSON.parse(r.json).method, 'next');
        assert.equal(n.connections, 2, 'the wedged session was replaced');
        await c.close();
      });

      it('a status answer with an unknown state or a txid that is not term.index is refused (SCP_PROTOCOL)', async () => {
        const n = node();
        const c = await open(n);
        for (const answer of [
          { state: 'applied' },
          { state: 'committed', txid: 7 },
          { state: 'committed', txid: 'soon' },
          { state: 'signed', txid: '0.5' },
          { state: 'signed', txid: '1.5.1' },
        ]) {
          n.statusAnswer = answer;
          await assert.rejects(
            c.status({ app: 'shop', requestId: 'order-1' }),
            code('SCP_PROTOCOL'),
          );
        }
        n.statusAnswer = { state: 'committed', txid: '1.5' };
        assert.deepEqual(await c.status({ app: 'shop', requestId: 'order-1' }), {
          state: 'committed',
          txid: '1.5',
        });
        await c.close();
      });

      it('timeoutMs covers reading app.info; nothing of the call is sent', async () => {
        const n = node();
        const c = await open(n);
        n.stallInfo = true;
        await assert.rejects(c.app('shop').transact('pay', {}, { timeoutMs: 100 }), (e) => {
          code('NETWORK')(e);
          assert.match((e as Error).message, /app\.info of app shop/);
          return true;
        });
        assert.equal(n.effects, 0);
        assert.deepEqual(ops(n), ['app.info']);
        await c.close();
      });

      it("a node's close with another code fails the waiting calls, and the next call reconnects", async () => {
        const n = node();
        const c = await open(n);
        await c.app('shop').info();
        n.closeWith = 'ENCLAVE_FAILED';
        await assert.rejects(c.app('shop').query('a', {}), code('ENCLAVE_FAILED'));
        const r = await c.app('shop').query('b', {});
        assert.equal(JSON.parse(r.json).method, 'b');
        assert.equal(n.connections, 2);
        // FRAME_TOO_LARGE from the node is about a frame a host can inject: the call is sent
        // again on a new session, as after a cut connection.
        n.closeWith = 'FRAME_TOO_LARGE';
        const again = await c.app('shop').query('c', {});
        assert.equal(JSON.parse(again.json).method, 'c');
        assert.equal(n.connections, 3);
        await c.close();
      });

      it('a transaction given up while still waiting to be sealed is NETWORK (never sent), not OUTCOME_UNKNOWN', async () => {
        const n = node();
        const c = await open(n);
        await c.app('shop').info();
        // Large queries ahead of it in the sealing queue (WebCrypto seals asynchronously; the
        // synchronous path seals at once, where this cannot happen).
        const big = 'x'.repeat(200_000);
        const ahead = Array.from({ length: 40 }, () => c.app('shop').query('big', { big }));
        const late = c
          .app('shop')
          .transact('pay', {}, { timeoutMs: 1 })
          .then(
            () => assert.fail('answered'),
            (e: unknown) => e,
          );
        await Promise.all(ahead);
        const e = await late;
        if (crypto === undefined) {
          code('NETWORK')(e);
          assert.equal(n.effects, 0, 'it never reached the node');
        } else {
          // Sealed at once: it went out, so its outcome is unknown (it may have committed).
          assert.ok(
            isCloisterError(e, 'NETWORK') || isCloisterError(e, 'OUTCOME_UNKNOWN'),
            String(e),
          );
        }
        await c.close();
      });

      it('reconnect: false fails the waiting calls and closes', async () => {
        const n = node();
        const c = await open(n, { reconnect: false });
        await c.app('shop').info();
        assert.equal(c.ended, undefined);
        n.loseResponses = 1;
        await assert.rejects(c.app('shop').transact('pay', {}), (e) => {
          code('OUTCOME_UNKNOWN')(e);
          assert.equal((e as Error & { cause: { code: string } }).cause.code, 'NETWORK');
          return true;
        });
        // The client says it ended, and why: what a page shows instead of "connected".
        code('NETWORK')(c.ended);
        await assert.rejects(c.app('shop').query('a', {}), code('NETWORK'));
        assert.equal(n.connections, 1);
      });

      it('close() fails pending and later calls with SCP_CLOSED', async () => {
        const n = node();
        const c = await open(n);
        const pending = assert.rejects(c.app('shop').query('a', {}), code('SCP_CLOSED'));
        assert.equal(c.ended, undefined);
        await c.close();
        code('SCP_CLOSED')(c.ended);
        await pending;
        await assert.rejects(c.app('shop').query('b', {}), code('SCP_CLOSED'));
      });

      it('with reconnect on, a dropped socket does not end the client', async () => {
        const n = node();
        const c = await open(n);
        await c.app('shop').info();
        n.loseResponses = 1;
        // Applied, its answer lost with the socket: sent again on a new session, applied once.
        const t = await c.app('shop').transact('pay', { amount: 1 });
        assert.equal(t.repeated, true);
        assert.equal(n.effects, 1);
        assert.equal(n.connections, 2);
        assert.equal(c.ended, undefined);
        await c.close();
      });
    });
  });
}
