/**
 * The enclave's SCP server (docs/scp.md), driven directly with core's clientHandshake over the
 * real logchain service, ledger engine and app runtime: the handshake and app.info signed by the
 * node key, query and transact with the checked code id, a request id applied once with the
 * same txid, notifications before the response, status by request id and by txid, receipts
 * whose claims verify, named error responses that keep the session up, and record-layer
 * attacks (altered, replayed, reflected records; a garbage handshake) that end only the
 * session they hit, with a close record or an alert. Plus the session cap and frame order.
 */
import assert from 'node:assert/strict';
import { verify } from 'node:crypto';
import { describe, test } from 'node:test';
import { RemoteError } from '@cloister/boundary';
import {
  appInfoPayload,
  CloisterError,
  claimsRequest,
  clientHandshake,
  decodeAlert,
  FRAME,
  fromHex,
  MAX_FRAME,
  type ScpCrypto,
  type ScpMessage,
  type ScpSession,
  utf8,
  verifyReceipt,
  verifyServerAuth,
  webCryptoScp,
  webCryptoSigner,
} from '@cloister/core';
import { publicKeyFromRaw } from '@cloister/node-crypto';
import { AppNotFoundError, type AppRuntime, createAppRuntime } from '../src/apps/runtime/index.js';
import {
  createScpServer,
  MAX_CONCURRENT,
  MAX_QUEUED_FRAMES,
  nodeScpCrypto,
  nodeScpSigner,
} from '../src/scp/index.js';
import { abiKit, echoBody, putArgsBody, SCRATCH2 } from './app-runtime-wasm.js';
import { CONSTRAINT, genesis } from './log-helpers.js';
import { get, i32 } from './sandbox-wasm.js';

// `long`: an app's own error message that fits the runtime's 1024 bytes but not, under the
// "the app refused the call: CODE: " prefix, SCP's 1024-byte text field.
const LONG_MESSAGE = 'm'.repeat(1020);
const kit = abiKit({ t: 't', k: 'k', E: 'E', long: LONG_MESSAGE, R: '$keys', C: 'not a cursor' });
const c = kit.call;
/** args → t/k, notification = args, result = args. */
const put = putArgsBody(
  kit,
  [...i32(SCRATCH2), ...get(1), ...c('notify')],
  [...i32(SCRATCH2), ...get(1), ...c('result_set')],
);
/** result = args (a query). */
const echo = echoBody(kit);
const APP = kit.module({
  routes: [
    { name: 'put', kind: 'transaction', body: put },
    { name: 'echo', kind: 'query', body: echo },
    { name: 'boom', kind: 'query', body: [...kit.str('E'), ...kit.str('long'), ...c('fail')] },
    // A read of a reserved table: the app's own mistake, named to the caller (not masked).
    {
      name: 'reserved',
      kind: 'query',
      body: [...kit.str('R'), ...kit.str('k'), ...c('ledger_get'), 0x1a],
    },
    // A listing with a cursor the ledger did not issue: named too (LEDGER_CURSOR).
    {
      name: 'badCursor',
      kind: 'query',
      body: [...kit.str('t'), ...kit.str('C'), ...i32(2), ...c('ledger_list'), 0x1a],
    },
  ],
});
const DEPLOY_INDEX = 3;

interface Sink {
  frames: Map<number, Uint8Array[]>;
  ends: Map<number, string>;
}

async function world(
  opts: {
    maxSessions?: number;
    maxRunning?: number;
    maxRunningBytes?: number;
    /** Wraps the runtime's call (to watch or hold calls). */
    call?: (call: AppRuntime['call']) => AppRuntime['call'];
    /** The server's record crypto (default nodeScpCrypto, synchronous). */
    crypto?: ScpCrypto;
  } = {},
) {
  const w = await genesis();
  const runtime = createAppRuntime({ engine: w.service.engine });
  const deployed = await runtime.deploy('demo', APP);
  const codeId = fromHex(deployed.codeId);
  const sink: Sink = { frames: new Map(), ends: new Map() };
  const server = createScpServer({
    crypto: opts.crypto ?? nodeScpCrypto,
    signer: nodeScpSigner(w.node.privateKey, w.node.publicKey),
    service: w.service,
    runtime:
      opts.call === undefined
        ? runtime
        : {
            app: (n) => runtime.app(n),
            requestStatus: (...a) => runtime.requestStatus(...a),
            call: opts.call((...a) => runtime.call(...a)),
          },
    admin: {
      info: (app) => {
        if (app !== 'demo') throw new AppNotFoundError(app);
        return [{ app, history: [{ codeId, index: DEPLOY_INDEX }], loaded: true }];
      },
    },
    send: (s, f) => {
      const list = sink.frames.get(s) ?? [];
      list.push(f);
      sink.frames.set(s, list);
    },
    end: (s, code) => sink.ends.set(s, code),
    ...(opts.maxSessions !== undefined ? { maxSessions: opts.maxSessions } : {}),
    ...(opts.maxRunning !== undefined ? { maxRunning: opts.maxRunning } : {}),
    ...(opts.maxRunningBytes !== undefined ? { maxRunningBytes: opts.maxRunningBytes } : {}),
  });
  return { ...w, runtime, codeId, sink, server };
}

type World = Awaited<ReturnType<typeof world>>;

/** Takes the frames the server sent to session `id` so far. */
function take(sink: Sink, id: number): Uint8Array[] {
  const f = sink.frames.get(id) ?? [];
  sink.frames.set(id, []);
  return f;
}

const tick = () => new Promise((r) => setImmediate(r));

async function identity() {
  const pair = (await crypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, true, [
    'sign',
    'verify',
  ])) as Parameters<typeof webCryptoSigner>[0];
  const pub = new Uint8Array(await crypto.subtle.exportKey('raw', pair.publicKey));
  return webCryptoSigner(pair, pub);
}

interface Client {
  readonly id: number;
  readonly session: ScpSession;
  readonly clientKey: Uint8Array;
  /** All messages the client opened so far (notifications and responses). */
  readonly inbox: ScpMessage[];
  /** Sends a request and waits for its response; returns it and the messages before it. */
  call(op: string, args: Record<string, unknown>): Promise<ScpMessage & { type: 'response' }>;
  /** Opens every frame the server sent since the last pump. */
  pump(): Promise<void>;
}

async function connect(w: World, signer?: Awaited<ReturnType<typeof identity>>): Promise<Client> {
  const id = w.server.open();
  const me = signer ?? (await identity());
  const hs = clientHandshake({
    crypto: webCryptoScp,
    identity: me,
    authorize: async (a) => {
      await verifyServerAuth(a, { constraint: CONSTRAINT });
    },
  });
  await w.server.frame(id, await hs.start());
  const [sh, sa] = take(w.sink, id);
  assert.equal(sh?.[0], FRAME.SH);
  assert.equal(sa?.[0], FRAME.SA);
  await hs.receive(sh!);
  const done = await hs.receive(sa!);
  assert.ok(done.session);
  for (const f of done.send) await w.server.frame(id, f);
  const session = done.session;
  const inbox: ScpMessage[] = [];
  let next = 1;
  const client: Client = {
    id,
    session,
    clientKey: me.publicKey,
    inbox,
    async pump() {
      for (const f of take(w.sink, id)) inbox.push(...(await session.open(f)));
    },
    async call(op, args) {
      const rid = next++;
      for (const f of await session.seal({ type: 'request', id: rid, op, args })) {
        await w.server.frame(id, f);
      }
      for (let i = 0; i < 1000; i++) {
        await client.pump();
        const r = inbox.find((m) => m.type === 'response' && m.id === rid);
        if (r) return r as ScpMessage & { type: 'response' };
        await tick();
      }
      throw new Error(`no response to request ${rid}`);
    },
  };
  return client;
}

function ok(r: ScpMessage & { type: 'response' }): Map<string, unknown> {
  if (!r.ok) assert.fail(`expected ok, got ${r.code}: ${r.message}`);
  return r.result instanceof Map ? r.result : new Map(Object.entries(r.result));
}

function err(r: ScpMessage & { type: 'response' }): string {
  assert.equal(r.ok, false);
  return r.ok ? '' : r.code;
}

describe('scp server: operations', () => {
  test('app.info is signed by the node key over the session hash, app and code id', async () => {
    const w = await world();
    const cl = await connect(w);
    const info = ok(await cl.call('app.info', { app: 'demo' }));
    assert.equal(info.get('app'), 'demo');
    assert.deepEqual(info.get('codeId'), w.codeId);
    assert.equal(info.get('index'), DEPLOY_INDEX);
    const sig = info.get('sig') as Uint8Array;
    const payload = appInfoPayload(cl.session.sessionHash, 'demo', w.codeId);
    const key = { key: publicKeyFromRaw(w.node.publicKey), dsaEncoding: 'ieee-p1363' } as const;
    assert.ok(verify('sha256', payload, key, sig));
    // Bound to this session: another session's hash does not verify.
    const other = await connect(w);
    const p2 = appInfoPayload(other.session.sessionHash, 'demo', w.codeId);
    assert.equal(verify('sha256', p2, key, sig), false);
    assert.equal(err(await cl.call('app.info', { app: 'nope' })), 'APP_NOT_FOUND');
  });

  test('query and transact run only the code id the client checked', async () => {
    const w = await world();
    const cl = await connect(w);
    const q = ok(
      await cl.call('query', { app: 'demo', method: 'echo', args: '[1]', codeId: w.codeId }),
    );
    assert.equal(q.get('result'), '[1]');
    assert.deepEqual(q.get('codeId'), w.codeId);
    const before = w.service.status().index;
    const wrong = new Uint8Array(32).fill(7);
    const args = { app: 'demo', method: 'put', args: '"x"', codeId: wrong };
    const r = await cl.call('transact', { ...args, requestId: 'r0', salt: new Uint8Array(32) });
    assert.equal(err(r), 'APP_CODE_CHANGED');
    assert.equal(w.service.status().index, before, 'nothing ran');
    assert.equal(err(await cl.call('query', { ...args, method: 'echo' })), 'APP_CODE_CHANGED');
    // The whole code id is compared: one differing last byte is another code.
    const near = w.codeId.slice();
    near[31] = (near[31] ?? 0) ^ 1;
    const n = await cl.call('query', { app: 'demo', method: 'echo', args: '1', codeId: near });
    assert.equal(err(n), 'APP_CODE_CHANGED');
  });

  test('a request id is applied once: same txid, repeated, notifications first', async () => {
    const w = await world();
    const cl = await connect(w);
    const salt = new Uint8Array(32).fill(9);
    const args = { app: 'demo', method: 'put', args: '{"v":1}', codeId: w.codeId };
    const first = await cl.call('transact', { ...args, requestId: 'once', salt });
    const r1 = ok(first);
    const at = cl.inbox.indexOf(first);
    const note = cl.inbox[at - 1];
    assert.deepEqual(note, { type: 'notify', id: first.id, json: '{"v":1}' });
    assert.equal(r1.get('repeated'), false);
    const index = w.service.status().index;
    const r2 = ok(await cl.call('transact', { ...args, requestId: 'once', salt }));
    assert.equal(r2.get('repeated'), true);
    assert.equal(r2.get('txid'), r1.get('txid'));
    assert.equal(r2.get('result'), '{"v":1}');
    assert.equal(w.service.status().index, index, 'applied once');

    // status by request id and by txid, then the receipt with its claims.
    const txid = r1.get('txid') as string;
    const byId = ok(await cl.call('status', { app: 'demo', requestId: 'once' }));
    assert.equal(byId.get('state'), 'committed');
    assert.equal(byId.get('txid'), txid);
    const unknown = ok(await cl.call('status', { app: 'demo', requestId: 'never' }));
    assert.equal(unknown.get('state'), 'unknown');
    assert.equal(ok(await cl.call('status', { txid })).get('state'), 'committed');
    assert.equal(err(await cl.call('receipt', { txid })), 'RECEIPT_NOT_READY');
    await w.service.tick();
    assert.equal(ok(await cl.call('status', { txid })).get('state'), 'signed');
    assert.equal(ok(await cl.call('status', { txid: '1.99999' })).get('state'), 'unknown');
    const receipt = ok(await cl.call('receipt', { txid })).get('receipt') as Uint8Array;
    const claims = {
      salt,
      request: claimsRequest('demo', 'put', '{"v":1}', 'once'),
      response: utf8('{"v":1}'),
      codeId: w.codeId,
    };
    const v = await verifyReceipt(receipt, {
      constraint: CONSTRAINT,
      service: w.service.serviceIdentity,
      claims,
    });
    assert.equal(v.txid, txid);
    await assert.rejects(
      verifyReceipt(receipt, {
        constraint: CONSTRAINT,
        claims: { ...claims, response: utf8('2') },
      }),
      (e: Error & { code?: string }) => e.code === 'RECEIPT',
    );
    // Another client's request id of the same text is another request.
    const other = await connect(w);
    const o = ok(await other.call('status', { app: 'demo', requestId: 'once' }));
    assert.equal(o.get('state'), 'unknown');
  });

  test('status by txid is exact at its edges: the last entry, one past it, the last signed one and the next', async () => {
    const w = await world();
    const cl = await connect(w);
    const args = { app: 'demo', method: 'put', args: '1', codeId: w.codeId };
    ok(await cl.call('transact', { ...args, requestId: 'edge', salt: new Uint8Array(32) }));
    const st = w.service.status();
    assert.ok(st.lastSigned >= 1 && st.lastSigned < st.index, 'a committed, unsigned tail');
    const state = async (index: number) =>
      ok(await cl.call('status', { txid: `${st.term}.${index}` })).get('state');
    assert.equal(await state(st.index), 'committed');
    assert.equal(await state(st.index + 1), 'unknown', 'an entry not in the log yet');
    assert.equal(await state(st.lastSigned), 'signed');
    assert.equal(await state(st.lastSigned + 1), 'committed', 'not covered by a signature');
    // Another term's txid names no entry of this log, even at an index this log has signed.
    const other = ok(await cl.call('status', { txid: `${st.term + 1}.${st.lastSigned}` }));
    assert.equal(other.get('state'), 'unknown');
  });

  test('node.status and consistency answer the service', async () => {
    const w = await world();
    const cl = await connect(w);
    const st = ok(await cl.call('node.status', {}));
    assert.equal(st.get('index'), w.service.status().index);
    assert.deepEqual(st.get('serviceIdentity'), w.service.serviceIdentity);
    const signed = st.get('lastSigned') as number;
    const proof = ok(await cl.call('consistency', { from: signed, to: signed }));
    assert.ok(Array.isArray(proof.get('proof')));
  });

  test('malformed fields and unknown ops are named errors; the session stays up', async () => {
    const w = await world();
    const cl = await connect(w);
    const bad: [string, Record<string, unknown>][] = [
      ['nope', {}],
      ['app.info', {}],
      ['app.info', { app: 5 }],
      ['app.info', { app: 'demo', extra: 1 }],
      ['app.info', { app: '../x' }],
      ['query', { app: 'demo', method: 'echo', args: '1', codeId: new Uint8Array(31) }],
      [
        'transact',
        { app: 'demo', method: 'put', args: '1', codeId: w.codeId, salt: new Uint8Array(32) },
      ],
      ['transact', { app: 'demo', method: 'put', args: '1', codeId: w.codeId, requestId: 'a' }],
      [
        'transact',
        {
          app: 'demo',
          method: 'put',
          args: '1',
          codeId: w.codeId,
          requestId: 'x'.repeat(129),
          salt: new Uint8Array(32),
        },
      ],
      ['query', { app: 'demo', method: 'echo', args: 'not json', codeId: w.codeId }],
      ['status', { txid: '1.x' }],
      ['status', { txid: '1.2', app: 'demo' }],
      ['receipt', { txid: 7 }],
      ['consistency', { from: 3, to: 1 }],
      ['consistency', { from: -1, to: 1 }],
      ['node.status', { x: 1 }],
      // Text bounds are in UTF-8 bytes, not UTF-16 units: 100 '€' are 300 bytes, over 256.
      ['query', { app: 'demo', method: '€'.repeat(100), args: '1', codeId: w.codeId }],
      // A code id is exactly 32 bytes: one more (with the right 32 first) is no code id.
      ['query', { app: 'demo', method: 'echo', args: '1', codeId: Uint8Array.of(...w.codeId, 0) }],
    ];
    for (const [op, args] of bad) {
      assert.equal(
        err(await cl.call(op, args)),
        'INVALID_INPUT',
        `${op} ${JSON.stringify(args, (_, v) => (v instanceof Uint8Array ? `bytes${v.length}` : v))}`,
      );
    }
    assert.equal(
      err(await cl.call('query', { app: 'demo', method: 'put', args: '1', codeId: w.codeId })),
      'APP_METHOD_KIND',
    );
    assert.equal(
      err(await cl.call('query', { app: 'demo', method: 'zzz', args: '1', codeId: w.codeId })),
      'APP_METHOD_UNKNOWN',
    );
    assert.equal(w.sink.ends.size, 0);
    ok(await cl.call('query', { app: 'demo', method: 'echo', args: '2', codeId: w.codeId }));
  });

  test("an app error message over SCP's text limit arrives clipped, and the session goes on", async () => {
    const w = await world();
    const cl = await connect(w);
    const r = await cl.call('query', { app: 'demo', method: 'boom', args: '1', codeId: w.codeId });
    assert.equal(err(r), 'APP_ERROR');
    assert.ok(!r.ok);
    const bytes = new TextEncoder().encode(r.message).length;
    assert.ok(bytes <= 1024 && bytes > 1000, `${bytes} bytes`);
    assert.match(r.message, /^the app refused the call: E: m+…$/);
    assert.equal(w.sink.ends.size, 0);
    ok(await cl.call('query', { app: 'demo', method: 'echo', args: '2', codeId: w.codeId }));
  });

  test('an app touching a reserved table is told which one', async () => {
    const w = await world();
    const cl = await connect(w);
    const r = await cl.call('query', {
      app: 'demo',
      method: 'reserved',
      args: '1',
      codeId: w.codeId,
    });
    assert.equal(err(r), 'LEDGER_RESERVED');
    assert.ok(!r.ok && /table '\$keys' is reserved/.test(r.message), !r.ok ? r.message : '');
    // The same for a forged listing cursor: the caller's own input, not "could not answer".
    const b = await cl.call('query', {
      app: 'demo',
      method: 'badCursor',
      args: '1',
      codeId: w.codeId,
    });
    assert.equal(err(b), 'LEDGER_CURSOR');
    assert.ok(!b.ok && !/could not answer/.test(b.message), !b.ok ? b.message : '');
    assert.equal(w.sink.ends.size, 0);
  });

  test('requests of all sessions running at once stay within maxRunning; the rest wait, and a gone session passes its turn on', async () => {
    let active = 0;
    let most = 0;
    const gates: (() => void)[] = [];
    const w = await world({
      maxRunning: 2,
      call:
        (call) =>
        async (...a) => {
          active++;
          most = Math.max(most, active);
          await new Promise<void>((r) => gates.push(r));
          try {
            return await call(...a);
          } finally {
            active--;
          }
        },
    });
    const clients = await Promise.all([connect(w), connect(w), connect(w)]);
    // Each session sends two queries without waiting for an answer.
    const frames: (Promise<void> | undefined)[] = [];
    let n = 0;
    for (const cl of clients) {
      for (let k = 0; k < 2; k++) {
        const args = { app: 'demo', method: 'echo', args: String(++n), codeId: w.codeId };
        for (const f of await cl.session.seal({ type: 'request', id: 100 + k, op: 'query', args }))
          frames.push(w.server.frame(cl.id, f));
      }
    }
    for (let i = 0; i < 20; i++) await tick();
    assert.equal(active, 2, 'two run, four wait');
    assert.ok(
      frames.some((p) => p !== undefined),
      "a waiting request's frame is not processed yet",
    );
    // The third session goes away while it waits: its turn passes on, nothing is stuck.
    w.server.close(clients[2]!.id);
    for (let released = 0; released < 6 && gates.length > 0; released++) {
      gates.shift()!();
      for (let i = 0; i < 20; i++) await tick();
    }
    await Promise.all(frames);
    assert.ok(most <= 2, `at most 2 at once, saw ${most}`);
    // Every request of the two live sessions was answered.
    for (const cl of clients.slice(0, 2)) {
      await cl.pump();
      const answered = cl.inbox.filter((m) => m.type === 'response' && m.ok).length;
      assert.equal(answered, 2);
    }
    assert.equal(active, 0);
  });

  /**
   * A world whose app calls wait at a gate each: `starts` lists the calls in the order they
   * started (by their args, an echo query's label), `open()` lets the oldest running one finish;
   * `running` and `bytes` are what runs now (bytes: the sizes of the records the calls came in,
   * known from `sizes`), `most` and `mostBytes` the most seen at once.
   */
  async function gated(o: { maxRunning: number; maxRunningBytes?: number }) {
    const g = {
      starts: [] as string[],
      sizes: new Map<string, number>(),
      gates: [] as (() => void)[],
      running: 0,
      bytes: 0,
      most: 0,
      mostBytes: 0,
    };
    const w = await world({
      ...o,
      call:
        (call) =>
        async (...a) => {
          const label = JSON.parse(a[0].args) as string;
          g.starts.push(label);
          g.running++;
          g.bytes += g.sizes.get(label) ?? 0;
          g.most = Math.max(g.most, g.running);
          g.mostBytes = Math.max(g.mostBytes, g.bytes);
          await new Promise<void>((r) => g.gates.push(r));
          try {
            return await call(...a);
          } finally {
            g.running--;
            g.bytes -= g.sizes.get(label) ?? 0;
          }
        },
    });
    const settle = async () => {
      for (let i = 0; i < 30; i++) await tick();
    };
    /** Sends echo queries labelled `labels` on `cl` without waiting (padded to `pad` chars). */
    const send = async (cl: Client, labels: string[], pad = 0) => {
      for (const label of labels) {
        const args = {
          app: 'demo',
          method: 'echo',
          args: JSON.stringify(label.padEnd(pad, '.')),
          codeId: w.codeId,
        };
        const frames = await cl.session.seal({
          type: 'request',
          id: g.sizes.size + 1,
          op: 'query',
          args,
        });
        for (const f of frames) {
          g.sizes.set(label.padEnd(pad, '.'), f.length);
          void w.server.frame(cl.id, f);
        }
      }
      await settle();
    };
    /** Lets the oldest running call finish, then lets the server go on. */
    const open = async () => {
      g.gates.shift()?.();
      await settle();
    };
    return { w, g, send, open, settle };
  }

  test('one session runs at most MAX_CONCURRENT requests at once; the next starts as one ends', async () => {
    const { w, g, send, open } = await gated({ maxRunning: 4 * MAX_CONCURRENT });
    const a = await connect(w);
    await send(
      a,
      Array.from({ length: MAX_CONCURRENT + 2 }, (_, i) => `q${i}`),
    );
    assert.equal(g.starts.length, MAX_CONCURRENT);
    await open();
    assert.equal(g.starts.length, MAX_CONCURRENT + 1);
    while (g.gates.length > 0) await open();
    assert.equal(g.most, MAX_CONCURRENT);
    await a.pump();
    const answered = a.inbox.filter((m) => m.type === 'response' && m.ok).length;
    assert.equal(answered, MAX_CONCURRENT + 2);
  });

  test('turns go round the sessions: a lone request starts after at most one turn of each flooding session', async () => {
    const { w, g, send, open } = await gated({ maxRunning: 1 });
    const [a, b, h] = await Promise.all([connect(w), connect(w), connect(w)]);
    // Two sessions flood (four requests each, all sent at once), then one sends a single one.
    await send(a!, ['a1', 'a2', 'a3', 'a4']);
    await send(b!, ['b1', 'b2', 'b3', 'b4']);
    await send(h!, ['h']);
    assert.deepEqual(g.starts, ['a1']);
    while (g.gates.length > 0) await open();
    // a2 and b1 were in line before h; each flooder's next request lines up behind h.
    assert.deepEqual(g.starts, ['a1', 'a2', 'b1', 'h', 'a3', 'b2', 'a4', 'b3', 'b4']);
    assert.equal(g.most, 1);
    for (const cl of [a!, b!, h!]) {
      await cl.pump();
      const answered = cl.inbox.filter((m) => m.type === 'response' && m.ok).length;
      assert.equal(answered, cl === h ? 1 : 4);
    }
  });

  test('a session gone while in line passes its turn; the line goes on', async () => {
    const { w, g, send, open } = await gated({ maxRunning: 1 });
    const [a, b, h] = await Promise.all([connect(w), connect(w), connect(w)]);
    await send(a!, ['a1', 'a2', 'a3']);
    await send(b!, ['b1', 'b2']);
    await send(h!, ['h']);
    w.server.close(b!.id); // b1 waits in line, before h
    while (g.gates.length > 0) await open();
    assert.deepEqual(g.starts, ['a1', 'a2', 'h', 'a3']);
    assert.equal(g.running, 0);
    // Nothing was held up: a new session is served at once.
    const d = await connect(w);
    await send(d, ['d1']);
    assert.deepEqual(g.starts.at(-1), 'd1');
    await open();
  });

  test('the head of the line keeps its place until it fits; nobody passes it, and the byte bound holds', async () => {
    // Room for one large record and one small one at once (bytes), eight requests (count).
    const probe = await gated({ maxRunning: 8 });
    const [p] = await Promise.all([connect(probe.w)]);
    await probe.send(p!, ['s'], 10);
    await probe.send(p!, ['L'], 20_000);
    const small = probe.g.sizes.get('s'.padEnd(10, '.')) as number;
    const large = probe.g.sizes.get('L'.padEnd(20_000, '.')) as number;
    while (probe.g.gates.length > 0) await probe.open();

    const max = large + small;
    const { w, g, send, open } = await gated({ maxRunning: 8, maxRunningBytes: max });
    const [a, b, c, d] = await Promise.all([connect(w), connect(w), connect(w), connect(w)]);
    await send(a!, ['a1', 'a2', 'a3'], 10); // three small ones run
    await send(b!, ['B'], 20_000); // the large one does not fit beside them: first in line
    await send(c!, ['c1'], 10); // would fit, but the large one is first
    await send(d!, ['d1'], 10);
    const label = (l: string) => l.replace(/\.+$/, '');
    assert.deepEqual(g.starts.map(label), ['a1', 'a2', 'a3']);
    await open(); // a1 done: the large one still does not fit, and keeps its place
    assert.deepEqual(g.starts.map(label), ['a1', 'a2', 'a3']);
    await open(); // a2 done: the large one fits beside a3
    assert.deepEqual(g.starts.map(label), ['a1', 'a2', 'a3', 'B']);
    await open(); // a3 done: c1 fits beside the large one, d1 does not
    assert.deepEqual(g.starts.map(label), ['a1', 'a2', 'a3', 'B', 'c1']);
    await open(); // the large one done: d1 goes
    assert.deepEqual(g.starts.map(label), ['a1', 'a2', 'a3', 'B', 'c1', 'd1']);
    while (g.gates.length > 0) await open();
    assert.ok(g.mostBytes <= max, `at most ${max} bytes of records at once, saw ${g.mostBytes}`);
    assert.equal(g.running, 0);
  });

  test("a host's error answer never reaches a client as the enclave's own (code and text)", async () => {
    const w = await world();
    // The host answers a store read inside the call with a client-facing code and its own text.
    const lie = new RemoteError(
      'store.get',
      'INVALID_INPUT',
      'your key was revoked: see evil.example',
    );
    const calls: (() => never)[] = [
      () => {
        throw lie;
      },
      () => {
        throw new CloisterError('NOT_FOUND', 'wrapped', { cause: lie });
      },
    ];
    for (const fail of calls) {
      const server = createScpServer({
        crypto: nodeScpCrypto,
        signer: nodeScpSigner(w.node.privateKey, w.node.publicKey),
        service: w.service,
        runtime: { ...w.runtime, call: async () => fail() },
        admin: {
          info: (app) => [
            { app, history: [{ codeId: w.codeId, index: DEPLOY_INDEX }], loaded: true },
          ],
        },
        send: (id, f) => {
          const list = w.sink.frames.get(id) ?? [];
          list.push(f);
          w.sink.frames.set(id, list);
        },
        end: (id, code) => w.sink.ends.set(id, code),
      });
      const cl = await connect({ ...w, server });
      const r = await cl.call('query', {
        app: 'demo',
        method: 'echo',
        args: '1',
        codeId: w.codeId,
      });
      assert.equal(err(r), 'ENCLAVE_FAILED');
      assert.ok(!r.ok && !/evil|revoked|wrapped/.test(r.message), !r.ok ? r.message : '');
    }
  });

  test("an error that is not about the caller's request reaches it as its code and a fixed text", async () => {
    const detail = 'record 0badc0de of table t failed its hash check';
    const w = await world({
      call: () => async () => {
        throw new CloisterError('LEDGER_INTEGRITY', detail);
      },
    });
    const cl = await connect(w);
    const r = await cl.call('query', { app: 'demo', method: 'echo', args: '1', codeId: w.codeId });
    assert.equal(err(r), 'LEDGER_INTEGRITY');
    assert.equal(r.ok ? '' : r.message, 'the node could not answer this call (LEDGER_INTEGRITY)');
  });

  test('a padded request gets a padded answer; an unpadded one does not', async () => {
    const w = await world();
    const cl = await connect(w);
    const sizes: number[] = [];
    for (const pad of [true, false]) {
      const args = { app: 'demo', method: 'echo', args: '"p"', codeId: w.codeId };
      const [f] = await cl.session.seal(
        { type: 'request', id: 100 + Number(pad), op: 'query', args },
        { pad },
      );
      await w.server.frame(cl.id, f!);
      await tick();
      const out = take(w.sink, cl.id);
      assert.equal(out.length, 1);
      sizes.push(out[0]!.length - 17);
      await cl.session.open(out[0]!);
    }
    assert.equal(sizes[0], 256, 'padded to the first bucket');
    assert.ok(sizes[1]! < 256);
  });

  test('pipelined requests are all answered, in a valid record order', async () => {
    const w = await world();
    const cl = await connect(w);
    const frames: Uint8Array[] = [];
    for (let i = 1; i <= 40; i++) {
      const op = i % 2 ? 'query' : 'transact';
      const args = {
        app: 'demo',
        method: i % 2 ? 'echo' : 'put',
        args: String(i),
        codeId: w.codeId,
      };
      const extra = op === 'transact' ? { requestId: `p${i}`, salt: new Uint8Array(32) } : {};
      frames.push(
        ...(await cl.session.seal({ type: 'request', id: i, op, args: { ...args, ...extra } })),
      );
    }
    // All frames at once, without waiting: the server keeps their order.
    await Promise.all(frames.map((f) => w.server.frame(cl.id, f)));
    for (let i = 0; i < 500 && cl.inbox.filter((m) => m.type === 'response').length < 40; i++) {
      await cl.pump();
      await tick();
    }
    const responses = cl.inbox.filter((m) => m.type === 'response');
    assert.equal(responses.length, 40);
    for (const r of responses) assert.equal(r.type === 'response' && r.ok, true);
  });
});

describe('scp server: attacks end only the session they hit', () => {
  async function expectClosed(w: World, cl: Client, code: string) {
    await tick();
    assert.equal(w.sink.ends.get(cl.id), code);
    const frames = take(w.sink, cl.id);
    assert.equal(frames.length, 1, 'one close record');
    const [m] = await cl.session.open(frames[0]!);
    assert.deepEqual(m && { type: m.type, code: m.type === 'close' ? m.code : '' }, {
      type: 'close',
      code,
    });
  }

  test('an altered record: close record SCP_RECORD, then the end; others keep working', async () => {
    const w = await world();
    const victim = await connect(w);
    const bystander = await connect(w);
    const [f] = await victim.session.seal({ type: 'request', id: 1, op: 'node.status', args: {} });
    const altered = f!.slice();
    altered[altered.length - 1]! ^= 1;
    await w.server.frame(victim.id, altered);
    await expectClosed(w, victim, 'SCP_RECORD');
    // The genuine record after that is ignored: the session is gone.
    await w.server.frame(victim.id, f!);
    assert.equal(take(w.sink, victim.id).length, 0);
    ok(await bystander.call('node.status', {}));
    assert.equal(w.sink.ends.has(bystander.id), false);
  });

  test('on asynchronous record crypto the server answers, and an altered record ends only its session (coverage gap)', async () => {
    // The enclave passes nodeScpCrypto (synchronous records); a server given crypto without
    // aeadKeySync seals and opens through promises, and must refuse the same way.
    const w = await world({ crypto: webCryptoScp });
    const victim = await connect(w);
    const bystander = await connect(w);
    const echo = { app: 'demo', method: 'echo', args: '5', codeId: w.codeId };
    assert.equal(ok(await victim.call('query', echo)).get('result'), '5');
    const [f] = await victim.session.seal({ type: 'request', id: 9, op: 'node.status', args: {} });
    const altered = f!.slice();
    altered[altered.length - 1]! ^= 1;
    await w.server.frame(victim.id, altered);
    await tick();
    await expectClosed(w, victim, 'SCP_RECORD');
    assert.equal(ok(await bystander.call('query', echo)).get('result'), '5');
    assert.equal(w.sink.ends.has(bystander.id), false);
  });

  test('a replayed record and a reflected server record are refused', async () => {
    const w = await world();
    const a = await connect(w);
    const [f] = await a.session.seal({ type: 'request', id: 1, op: 'node.status', args: {} });
    await w.server.frame(a.id, f!);
    for (let i = 0; i < 50 && !a.inbox.length; i++) {
      await a.pump();
      await tick();
    }
    const before = w.service.status().index;
    await w.server.frame(a.id, f!); // replay
    await expectClosed(w, a, 'SCP_RECORD');
    assert.equal(w.service.status().index, before);

    const b = await connect(w);
    const [q] = await b.session.seal({ type: 'request', id: 1, op: 'node.status', args: {} });
    await w.server.frame(b.id, q!);
    await tick();
    const out = take(w.sink, b.id);
    assert.ok(out.length >= 1);
    await w.server.frame(b.id, out[0]!); // the server's own record, reflected
    assert.equal(w.sink.ends.get(b.id), 'SCP_RECORD');
  });

  test('a client message that is not a request is a protocol error; a close ends it OK', async () => {
    const w = await world();
    const a = await connect(w);
    for (const f of await a.session.seal({ type: 'notify', id: 1, json: '1' })) {
      await w.server.frame(a.id, f);
    }
    await expectClosed(w, a, 'SCP_PROTOCOL');
    const b = await connect(w);
    for (const f of await b.session.seal({ type: 'close', code: 'OK', message: 'bye' })) {
      await w.server.frame(b.id, f);
    }
    assert.equal(w.sink.ends.get(b.id), 'OK');
    assert.equal(w.server.size, 0);
  });

  test('a request reusing the id of one in flight is a protocol error; after its answer the id is free', async () => {
    const w = await world();
    const a = await connect(w);
    // Sequential reuse: the first answer is out before the second request arrives.
    const echo = (id: number) =>
      a.session.seal({
        type: 'request',
        id,
        op: 'query',
        args: { app: 'demo', method: 'echo', args: '1', codeId: w.codeId },
      });
    for (let round = 0; round < 2; round++) {
      for (const f of await echo(7)) await w.server.frame(a.id, f);
      for (let i = 0; i < 50 && a.inbox.length <= round; i++) {
        await a.pump();
        await tick();
      }
    }
    assert.equal(a.inbox.filter((m) => m.type === 'response' && m.id === 7 && m.ok).length, 2);
    // Two transactions under one id at once: the second is refused and ends the session.
    const before = w.service.status().index;
    const put = (requestId: string) =>
      a.session.seal({
        type: 'request',
        id: 9,
        op: 'transact',
        args: {
          app: 'demo',
          method: 'put',
          args: '2',
          codeId: w.codeId,
          requestId,
          salt: new Uint8Array(32),
        },
      });
    const frames = [...(await put('x-1')), ...(await put('x-2'))];
    await Promise.all(frames.map((f) => w.server.frame(a.id, f)));
    await expectClosed(w, a, 'SCP_PROTOCOL');
    for (let i = 0; i < 20; i++) await tick();
    assert.ok(w.service.status().index <= before + 1, 'the refused request never ran');
  });

  test('a garbage handshake gets an alert and ends; a record before the handshake too', async () => {
    const w = await world();
    const id = w.server.open();
    await w.server.frame(id, Uint8Array.of(FRAME.CH, 0xff, 0x00));
    const [alert] = take(w.sink, id);
    assert.equal(alert?.[0], FRAME.ALERT);
    const { code } = decodeAlert(alert!);
    assert.match(code, /^SCP_/);
    assert.equal(w.sink.ends.get(id), code);
    const id2 = w.server.open();
    await w.server.frame(id2, Uint8Array.of(FRAME.RECORD, 1, 2, 3));
    assert.equal(take(w.sink, id2)[0]?.[0], FRAME.ALERT);
    assert.ok(w.sink.ends.has(id2));
  });

  test('a host that queues more frames than its relay may, or an oversized frame, ends only that session', async () => {
    const w = await world();
    const bystander = await connect(w);
    // The handshake's first step is asynchronous: everything sent meanwhile waits behind it.
    const id = w.server.open();
    const hs = clientHandshake({
      crypto: webCryptoScp,
      identity: await identity(),
      authorize: async () => {},
    });
    const first = w.server.frame(id, await hs.start());
    const waiting = [];
    for (let i = 0; i < MAX_QUEUED_FRAMES + 8; i++) {
      waiting.push(w.server.frame(id, new Uint8Array(1024).fill(FRAME.RECORD)));
    }
    await Promise.all([first, ...waiting]);
    assert.equal(w.sink.ends.get(id), 'SCP_PROTOCOL');
    const big = await connect(w);
    await w.server.frame(big.id, new Uint8Array(MAX_FRAME + 1).fill(FRAME.RECORD));
    assert.equal(w.sink.ends.get(big.id), 'FRAME_TOO_LARGE');
    // The others are served as before.
    assert.equal(
      ok(
        await bystander.call('query', { app: 'demo', method: 'echo', args: '5', codeId: w.codeId }),
      ).get('result'),
      '5',
    );
  });

  test('an oversized frame behind a waiting one ends the session as it arrives, never processed', async () => {
    const w = await world();
    const id = w.server.open();
    const hs = clientHandshake({
      crypto: webCryptoScp,
      identity: await identity(),
      authorize: async () => {},
    });
    // The CH is handled asynchronously: the oversized frame arrives while it waits.
    const first = w.server.frame(id, await hs.start());
    const big = w.server.frame(id, new Uint8Array(MAX_FRAME + 1).fill(FRAME.RECORD));
    await Promise.all([first, big]);
    assert.equal(w.sink.ends.get(id), 'FRAME_TOO_LARGE');
    // Held and handed to the handshake later, it would have drawn an ALERT.
    assert.deepEqual(
      take(w.sink, id).filter((f) => f[0] === FRAME.ALERT),
      [],
    );
  });

  test('the queue bound is exact: MAX_QUEUED_FRAMES frames may wait on a session, not one more', async () => {
    const w = await world();
    /** How a session ends when `waiting` frames follow its CH before the CH is handled. */
    const endAfter = async (waiting: number) => {
      const id = w.server.open();
      const hs = clientHandshake({
        crypto: webCryptoScp,
        identity: await identity(),
        authorize: async () => {},
      });
      const sent = [w.server.frame(id, await hs.start())];
      for (let i = 0; i < waiting; i++) {
        sent.push(w.server.frame(id, new Uint8Array(1024).fill(FRAME.RECORD)));
      }
      await Promise.all(sent);
      const alert = take(w.sink, id).find((f) => f[0] === FRAME.ALERT);
      return { code: w.sink.ends.get(id), alert: alert && decodeAlert(alert) };
    };
    // The CH and MAX_QUEUED_FRAMES - 1 frames behind it are held: the handshake answers the CH,
    // then refuses the first record with an ALERT.
    const held = await endAfter(MAX_QUEUED_FRAMES - 1);
    assert.ok(held.alert, 'the handshake ran and refused the record');
    assert.equal(held.code, held.alert.code);
    // One more is refused as it arrives: the session ends before its handshake is answered.
    const refused = await endAfter(MAX_QUEUED_FRAMES);
    assert.equal(refused.code, 'SCP_PROTOCOL');
    assert.equal(refused.alert, undefined);
  });

  test('frames of ended sessions are ignored; of sessions never opened, refused', async () => {
    const w = await world();
    const a = await connect(w);
    w.server.close(a.id);
    w.server.close(a.id);
    await w.server.frame(a.id, Uint8Array.of(5, 0));
    assert.equal(take(w.sink, a.id).length, 0);
    await assert.rejects(
      w.server.frame(999, Uint8Array.of(1)) as Promise<void>,
      /no such secure session/,
    );
    // The id the next open() hands out is not a session yet either.
    await assert.rejects(
      w.server.frame(a.id + 1, Uint8Array.of(1)) as Promise<void>,
      /no such secure session/,
    );
    // A frame that is not bytes is refused by name and never reaches the handshake: the
    // session is still open, and a real client handshake completes on it afterwards.
    const b = await connect(w);
    await assert.rejects(
      w.server.frame(b.id, 'hello' as unknown as Uint8Array) as Promise<void>,
      /a frame is bytes/,
    );
    assert.equal(take(w.sink, b.id).length, 0);
    assert.equal(w.sink.ends.has(b.id), false);
    ok(await b.call('node.status', {}));
  });

  test('the session cap refuses by name, and frees a slot when a session ends', async () => {
    const w = await world({ maxSessions: 2 });
    const a = w.server.open();
    w.server.open();
    assert.throws(
      () => w.server.open(),
      (e: Error & { code?: string }) => e.code === 'SCP_SESSIONS',
    );
    w.server.close(a);
    const cl = await connect(w);
    ok(await cl.call('node.status', {}));
  });
});
