/**
 * SCP end to end against a hostile relay (issue 6, "Must show"): a real node (the enclave built by
 * `buildEnclave`, behind its boundary) with the `cloister app new` counter app deployed, the client
 * SDK (`@cloister/client/node`), and between them a WebSocket man-in-the-middle that, per case,
 * alters handshake frames, drops / reorders / replays / alters / truncates data frames, reflects
 * the server's frames back to it and replays a whole recorded session on a new connection. Each
 * is detected (the client's call or connect rejects with a named error, or the node ends the
 * session) and no app sees a forged request: the counter a case targets, and the log index, do
 * not move (or move exactly once for the one genuine request a replay copies). A constraint
 * mismatch (measurement, `APP:` code id, `SVC:`) is refused before app data leaves the client
 * (asserted on the relay's log of the client's frames). A transaction whose response the relay
 * drops is re-sent by the SDK on a new connection and applied once (same txid, repeated).
 * Every-byte handshake tampering is core's in-memory test (packages/core/test/scp-*.test.ts);
 * here a spread of positions in each handshake frame goes through the real node.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { type Client, type ConnectOptions, connect, generateIdentity } from '@cloister/client/node';
import { type CloisterError, decodeAlert, FRAME, isCloisterError, toHex } from '@cloister/core';
import { WebSocket, WebSocketServer } from 'ws';
import { createLogger } from '../src/node/logger.js';
import { type RunningNode, startNode } from '../src/node/node.js';
import { loadOrCreateOperatorKey } from '../src/node/operator.js';
import { deployApp } from './deploy-helpers.js';
import { tempDir, testBuild } from './helpers.js';

const ROOT = fileURLToPath(new URL('../../..', import.meta.url));
const CLI = join(ROOT, 'packages/cli/test/fixtures/run.ts');
const APP = 'counter';

// ---- the relay ---------------------------------------------------------------------------

type Dir = 'c2s' | 's2c';

/** One proxied connection, as a tamper hook sees it. */
interface Link {
  readonly id: number;
  /** Frames of each direction seen so far on this link (before the hook), this one excluded. */
  readonly seen: { c2s: number; s2c: number };
  /** Data records (type 0x05) of each direction seen so far on this link, this one excluded. */
  readonly records: { c2s: number; s2c: number };
  toServer(frame: Uint8Array): void;
  toClient(frame: Uint8Array): void;
  close(): void;
}

/** Decides what happens to each frame; the default forwards it. */
type Hook = (dir: Dir, frame: Uint8Array, link: Link) => void;

const forward: Hook = (dir, frame, link) =>
  dir === 'c2s' ? link.toServer(frame) : link.toClient(frame);

interface Logged {
  readonly link: number;
  readonly dir: Dir;
  readonly type: number;
  readonly size: number;
}

interface Relay {
  readonly url: string;
  /** Every frame the relay received, before tampering, in arrival order. */
  log: Logged[];
  /** Links whose socket the node closed (not the relay), by id. */
  readonly serverEnded: Set<number>;
  /** The hook for links opened from now on (a link keeps the hook it was opened with). */
  hook: Hook;
  close(): Promise<void>;
}

async function startRelay(upstream: string): Promise<Relay> {
  const http: Server = createServer();
  const wss = new WebSocketServer({ server: http });
  let next = 0;
  const relay: Relay = {
    url: '',
    log: [],
    serverEnded: new Set(),
    hook: forward,
    async close() {
      for (const c of wss.clients) c.terminate();
      await new Promise((r) => wss.close(r));
      await new Promise((r) => http.close(r));
    },
  };
  wss.on('connection', (client) => {
    const id = next++;
    const hook = relay.hook;
    const server = new WebSocket(upstream);
    const pending: Uint8Array[] = [];
    let closed = false;
    const link: Link = {
      id,
      seen: { c2s: 0, s2c: 0 },
      records: { c2s: 0, s2c: 0 },
      toServer(frame) {
        if (server.readyState === WebSocket.OPEN) server.send(frame);
        else if (server.readyState === WebSocket.CONNECTING) pending.push(frame);
      },
      toClient(frame) {
        if (client.readyState === WebSocket.OPEN) client.send(frame);
      },
      close() {
        if (closed) return;
        closed = true;
        client.close();
        server.close();
      },
    };
    const on = (dir: Dir) => (data: Buffer) => {
      const frame = new Uint8Array(data);
      relay.log.push({ link: id, dir, type: frame[0] ?? -1, size: frame.length });
      hook(dir, frame, link);
      link.seen[dir]++;
      if (frame[0] === FRAME.RECORD) link.records[dir]++;
    };
    server.on('open', () => {
      for (const f of pending.splice(0)) server.send(f);
    });
    client.on('message', on('c2s'));
    server.on('message', on('s2c'));
    server.on('close', () => {
      if (!closed) relay.serverEnded.add(id);
      link.close();
    });
    server.on('error', () => link.close());
    // The client gone, the node's socket stays open a moment: a node that ends the session
    // itself (after its close record, which the client may act on first) is still seen doing so.
    const later = (): void => {
      setTimeout(() => link.close(), 1000).unref();
    };
    client.on('close', later);
    client.on('error', later);
  });
  await new Promise<void>((r) => http.listen(0, '127.0.0.1', r));
  return Object.assign(relay, {
    url: `ws://127.0.0.1:${(http.address() as AddressInfo).port}/v1/scp`,
  });
}

// ---- the node and its counter app ---------------------------------------------------------

function cli(args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, ['--import', 'tsx', '--conditions=source', CLI, ...args], {
      cwd: ROOT,
      env: { ...process.env, NODE_OPTIONS: '', NODE_TEST_CONTEXT: undefined },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    p.stdout.on('data', (d) => {
      out += d;
    });
    p.stderr.on('data', (d) => {
      err += d;
    });
    p.on('close', (code) =>
      code === 0 ? resolve(out) : reject(new Error(`cloister ${args[0]}: ${code} ${err}`)),
    );
  });
}

/** Builds the template counter app with the CLI; deploys it with the operator key. */
async function deployCounter(node: RunningNode, operatorPem: string): Promise<Uint8Array> {
  const project = join(tempDir('cloister-scp-app-'), APP);
  await cli(['app', 'new', APP, '--dir', project]);
  await cli(['app', 'build', project]);
  const module = new Uint8Array(readFileSync(join(project, 'build', 'app.wasm')));
  return (await deployApp(node, operatorPem, APP, module)).codeId;
}

// ---- the cases ----------------------------------------------------------------------------

const flip = (b: Uint8Array, at: number): Uint8Array => {
  const c = b.slice();
  c[at] = (c[at] as number) ^ 0x01;
  return c;
};

describe('SCP through a hostile relay, against a real node', () => {
  let node: RunningNode;
  let relay: Relay;
  let constraint: string;
  let measurement: string;
  let codeId: Uint8Array;
  let honest: Client;
  const identity = generateIdentity();

  /** A client through the relay; no reconnect, so a detected attack ends it by name. */
  const viaRelay = async (o: Partial<ConnectOptions> = {}): Promise<Client> =>
    connect(relay.url, { constraint, identity: await identity, reconnect: false, ...o });

  /** The counter `name` as the node has it, read over an untampered connection. */
  const counter = async (name: string): Promise<number> => {
    const r = await honest.app(APP).query('get', { name });
    return Number(r.result);
  };
  const logIndex = async (): Promise<number> =>
    ((await (await fetch(`${node.url}/v1/status`)).json()) as { index: number }).index;

  before(async () => {
    const build = await testBuild();
    measurement = toHex(build.measurement);
    const home = tempDir('cloister-scp-home-');
    const operatorPem = join(home, 'operator.pem');
    node = await startNode({
      dataDir: join(home, 'data'),
      platformDir: join(home, 'platform'),
      enclaveDir: build.outDir,
      port: 0,
      logger: createLogger({ level: 'silent' }),
      // No signature timer: the log index moves only with transactions.
      signIntervalMs: 0,
      operatorPublicKey: loadOrCreateOperatorKey(operatorPem).publicKey,
    });
    codeId = await deployCounter(node, operatorPem);
    constraint = `C:${measurement} SEC:INSECURE APP:${APP}=${toHex(codeId)}`;
    relay = await startRelay(`${node.url.replace(/^http/, 'ws')}/v1/scp`);
    honest = await connect(node.url, { constraint, identity: await identity });
  });
  after(async () => {
    await honest?.close();
    await relay?.close();
    await node?.close();
  });

  /** Waits until `p` holds (polling), or fails naming `what`. */
  const until = async (p: () => boolean | Promise<boolean>, what: string): Promise<void> => {
    for (let i = 0; i < 400; i++) {
      if (await p()) return;
      await new Promise((r) => setTimeout(r, 25));
    }
    assert.fail(`timed out waiting for ${what}`);
  };

  /** The client's calls fail by name; a later call fails with the same (final) error. */
  const refused = async (p: Promise<unknown>, codes: readonly string[]): Promise<string> => {
    const e = await p.then(
      () => assert.fail('the tampered call succeeded'),
      (x: unknown) => x,
    );
    assert.ok(isCloisterError(e), `not a named error: ${e}`);
    assert.ok(codes.includes((e as CloisterError).code), `${(e as CloisterError).code}: ${e}`);
    return (e as CloisterError).code;
  };

  /**
   * The node refused the client's CA: its (unauthenticated) ALERT reaches the client as the
   * alert's code, marked as reported by the peer — on connect when it arrives before connect
   * resolves, else on the first call (the protocol has no server record to wait for).
   */
  const refusedCa = async (c: Client | unknown): Promise<void> => {
    const e = isCloisterError(c)
      ? c
      : await (c as Client)
          .app(APP)
          .query('get', { name: 'x' })
          .then(
            () => assert.fail('a call after a refused CA succeeded'),
            (x: unknown) => x,
          );
    assert.ok(isCloisterError(e), `not a named error: ${e}`);
    assert.equal((e as CloisterError).code, 'SCP_HANDSHAKE', String(e));
    assert.equal((e as { reportedByPeer?: boolean }).reportedByPeer, true, String(e));
    assert.match((e as Error).message, /not authenticated/);
    if (!isCloisterError(c)) await (c as Client).close();
  };

  /**
   * One data-phase attack on the c2s records after a warm-up query (records 0 and 1: app.info,
   * the query); records from index 2 on are transactions on counter `name`.
   */
  async function dataAttack(
    name: string,
    hook: Hook,
    calls: number,
  ): Promise<{ errors: unknown[]; link: number }> {
    relay.hook = hook;
    const at = relay.log.length;
    const c = await viaRelay();
    relay.hook = forward;
    await c.app(APP).query('get', { name });
    const link = relay.log[at]?.link as number;
    const txs = Array.from({ length: calls }, () =>
      c
        .app(APP)
        .transact('increment', { name })
        .then(
          () => undefined,
          (e: unknown) => e,
        ),
    );
    // A transaction that went out before its session failed is OUTCOME_UNKNOWN to the client
    // (it cannot tell a refusal from a lost answer); the cause names the failure.
    const errors = (await Promise.all(txs)).map((e) =>
      isCloisterError(e, 'OUTCOME_UNKNOWN') ? (e as Error).cause : e,
    );
    await c.close();
    return { errors, link };
  }

  it('passes honest traffic through the relay', async () => {
    relay.hook = forward;
    const c = await viaRelay();
    const r = await c.app(APP).transact('increment', { name: 'honest' });
    assert.equal((r.result as { value: number }).value, 1);
    assert.equal(r.repeated, false);
    assert.equal(await counter('honest'), 1);
    await c.close();
  });

  const c2sAttacks: [string, (hold: Uint8Array[]) => Hook, number][] = [
    [
      'alter',
      () => (dir, f, l) =>
        dir === 'c2s' && f[0] === FRAME.RECORD && l.records.c2s === 2
          ? l.toServer(flip(f, f.length - 20))
          : forward(dir, f, l),
      1,
    ],
    [
      'truncate',
      () => (dir, f, l) =>
        dir === 'c2s' && f[0] === FRAME.RECORD && l.records.c2s === 2
          ? l.toServer(f.subarray(0, f.length - 1))
          : forward(dir, f, l),
      1,
    ],
    [
      'drop',
      () => (dir, f, l) =>
        dir === 'c2s' && f[0] === FRAME.RECORD && l.records.c2s === 2
          ? undefined
          : forward(dir, f, l),
      2,
    ],
    [
      'reorder',
      (hold) => (dir, f, l) => {
        if (dir === 'c2s' && f[0] === FRAME.RECORD && l.records.c2s === 2) hold.push(f);
        else if (dir === 'c2s' && f[0] === FRAME.RECORD && l.records.c2s === 3) {
          l.toServer(f);
          for (const h of hold.splice(0)) l.toServer(h);
        } else forward(dir, f, l);
      },
      2,
    ],
  ];
  for (const [what, make, calls] of c2sAttacks) {
    it(`detects a client data frame ${what === 'drop' ? 'dropped' : `${what}${what.endsWith('e') ? 'd' : 'ed'}`}: the node ends the session, no app sees it`, async () => {
      const name = `c2s-${what}`;
      const before = await logIndex();
      const { errors, link } = await dataAttack(name, make([]), calls);
      for (const e of errors) {
        assert.ok(isCloisterError(e), `not refused by name: ${e}`);
        assert.ok(
          ['SCP_RECORD', 'SCP_SEQUENCE', 'NETWORK', 'SCP_CLOSED'].includes(
            (e as CloisterError).code,
          ),
          String(e),
        );
      }
      assert.ok(
        errors.some((e) => isCloisterError(e, 'SCP_RECORD')),
        `the node named the failure: ${errors}`,
      );
      await until(() => relay.serverEnded.has(link), 'the node to end the session');
      assert.equal(await counter(name), 0);
      assert.equal(await logIndex(), before);
    });
  }

  it('detects a client data frame replayed: applied once, then the session ends', async () => {
    const name = 'c2s-replay';
    const before = await logIndex();
    const { errors, link } = await dataAttack(
      name,
      (dir, f, l) => {
        forward(dir, f, l);
        if (dir === 'c2s' && f[0] === FRAME.RECORD && l.records.c2s === 2) l.toServer(f);
      },
      1,
    );
    await until(() => relay.serverEnded.has(link), 'the node to end the session');
    // The genuine request ran once; its copy was refused (its answer may be lost with the session).
    // The session ends at the copy while the genuine transaction may still be committing (a
    // running call finishes unanswered): wait for its commit before reading the counter.
    await until(async () => (await logIndex()) > before, 'the genuine transaction to commit');
    assert.equal(await counter(name), 1);
    assert.equal(await logIndex(), before + 1);
    if (errors[0] !== undefined)
      await refused(Promise.reject(errors[0]), ['SCP_RECORD', 'NETWORK']);
  });

  it("detects the node's data frames altered, truncated, dropped, replayed: the client ends the session", async () => {
    const attacks: [string, Hook][] = [
      [
        'alter',
        (dir, f, l) =>
          dir === 's2c' && f[0] === FRAME.RECORD && l.records.s2c === 2
            ? l.toClient(flip(f, 5))
            : forward(dir, f, l),
      ],
      [
        'truncate',
        (dir, f, l) =>
          dir === 's2c' && f[0] === FRAME.RECORD && l.records.s2c === 2
            ? l.toClient(f.subarray(0, 30))
            : forward(dir, f, l),
      ],
      [
        'drop',
        (dir, f, l) =>
          dir === 's2c' && f[0] === FRAME.RECORD && l.records.s2c === 2
            ? undefined
            : forward(dir, f, l),
      ],
      [
        'replay',
        (dir, f, l) => {
          forward(dir, f, l);
          if (dir === 's2c' && f[0] === FRAME.RECORD && l.records.s2c === 1) l.toClient(f);
        },
      ],
    ];
    for (const [what, hook] of attacks) {
      const { errors } = await dataAttack(`s2c-${what}`, hook, 1);
      await refused(Promise.reject(errors[0] ?? new Error(`${what}: the call succeeded`)), [
        'SCP_RECORD',
      ]);
    }
  });

  it("detects the node's frames reflected back to it, in the handshake and after", async () => {
    // SH and SA sent back to the node instead of CA.
    relay.hook = (dir, f, l) => {
      forward(dir, f, l);
      if (dir === 's2c') l.toServer(f);
    };
    const at = relay.log.length;
    // The client is done once it sent CA, so its connect may resolve; the node's ALERT then
    // fails its first call with the alert's code.
    await refusedCa(await viaRelay().catch((e: unknown) => e));
    const link = relay.log[at]?.link as number;
    await until(() => relay.serverEnded.has(link), 'the node to end the handshake');
    const alert = relay.log.find(
      (x) => x.link === link && x.dir === 's2c' && x.type === FRAME.ALERT,
    );
    assert.ok(alert, 'the node answered with an alert');
    // A response record reflected: the node cannot open it with the client's key.
    const name = 'reflect';
    const { link: l2 } = await dataAttack(
      name,
      (dir, f, l) => {
        forward(dir, f, l);
        if (dir === 's2c' && f[0] === FRAME.RECORD && l.records.s2c === 1) l.toServer(f);
      },
      1,
    );
    await until(() => relay.serverEnded.has(l2), 'the node to end the session');
    assert.equal(await counter(name), 0);
  });

  it('refuses a whole recorded session replayed on a new connection', async () => {
    const recorded: Uint8Array[] = [];
    relay.hook = (dir, f, l) => {
      if (dir === 'c2s') recorded.push(f);
      forward(dir, f, l);
    };
    const c = await viaRelay();
    relay.hook = forward;
    await c.app(APP).transact('increment', { name: 'replayed-session' });
    await c.close();
    assert.equal(await counter('replayed-session'), 1);
    const before = await logIndex();

    const ws = new WebSocket(`${node.url.replace(/^http/, 'ws')}/v1/scp`);
    const got: Uint8Array[] = [];
    ws.on('message', (d: Buffer) => got.push(new Uint8Array(d)));
    const closed = new Promise<void>((r) => ws.on('close', () => r()));
    await new Promise((r) => ws.on('open', r));
    ws.send(recorded[0] as Uint8Array); // CH
    await until(() => got.length >= 2, 'SH and SA');
    for (const f of recorded.slice(1)) ws.send(f); // CA, then the records
    await closed;
    const alert = got.find((f) => f[0] === FRAME.ALERT);
    assert.ok(alert, 'the node sent an alert');
    assert.equal(decodeAlert(alert).code, 'SCP_HANDSHAKE');
    assert.equal(got.filter((f) => f[0] === FRAME.RECORD).length, 0);
    assert.equal(await counter('replayed-session'), 1);
    assert.equal(await logIndex(), before);
  });

  it('detects a byte altered in each handshake frame (a spread of positions)', async () => {
    const before = await logIndex();
    for (const [dir, type] of [
      ['c2s', FRAME.CH],
      ['s2c', FRAME.SH],
      ['s2c', FRAME.SA],
      ['c2s', FRAME.CA],
    ] as const) {
      const size = relay.log.find((x) => x.dir === dir && x.type === type)?.size as number;
      const positions = new Set([0, 1, size - 1]);
      for (let k = 1; k < 12; k++) positions.add(Math.floor((k * size) / 12));
      for (const at of positions) {
        relay.hook = (d, f, l) =>
          d === dir && f[0] === type
            ? d === 'c2s'
              ? l.toServer(flip(f, at))
              : l.toClient(flip(f, at))
            : forward(d, f, l);
        const start = relay.log.length;
        const c = await viaRelay({ handshakeTimeoutMs: 3000 }).catch((e: unknown) => e);
        relay.hook = forward;
        // Only CA is checked by the node, after the client considers itself connected: the
        // node's ALERT fails connect or the first call with its code.
        if (type === FRAME.CA) await refusedCa(c);
        else assert.ok(isCloisterError(c), `byte ${at} of frame ${type} went unnoticed`);
        const link = relay.log[start]?.link as number;
        assert.deepEqual(
          relay.log.filter((x) => x.link === link && x.dir === 's2c' && x.type === FRAME.RECORD),
          [],
          `the node answered a record after byte ${at} of frame ${type} was altered`,
        );
      }
    }
    assert.equal(await logIndex(), before);
  });

  it('refuses a constraint mismatch before any app data leaves the client', async () => {
    const wrong = toHex(new Uint8Array(32).fill(7));
    const cases: [string, string, string][] = [
      ['measurement', `C:${wrong} SEC:INSECURE`, 'CONSTRAINT_MISMATCH'],
      ['SVC:', `${constraint} SVC:${wrong}`, 'CONSTRAINT_MISMATCH'],
    ];
    for (const [what, bad, code] of cases) {
      const at = relay.log.length;
      const e = await viaRelay({ constraint: bad }).catch((x: unknown) => x);
      assert.ok(isCloisterError(e), `${what}: connected`);
      assert.equal((e as CloisterError).code, code, `${what}: ${e}`);
      const sent = relay.log
        .slice(at)
        .filter((x) => x.dir === 'c2s')
        .map((x) => x.type);
      assert.deepEqual(sent, [FRAME.CH], `${what}: only CH left the client (not even CA)`);
    }
    // APP: the code id is read (signed) over the session before any argument is sealed: one
    // record (app.info) leaves, then the call is refused; the refusal holds for the session, so
    // the second call sends nothing.
    const at = relay.log.length;
    const c = await viaRelay({ constraint: `C:${measurement} SEC:INSECURE APP:${APP}=${wrong}` });
    await refused(c.app(APP).transact('increment', { name: 'app-clause' }), ['APP_CODE_MISMATCH']);
    await refused(c.app(APP).query('get', { name: 'app-clause' }), ['APP_CODE_MISMATCH']);
    // The relay logged app.info before the node's answer came back through it.
    const records = relay.log.slice(at).filter((x) => x.dir === 'c2s' && x.type === FRAME.RECORD);
    assert.equal(records.length, 1, 'exactly one app.info record; no query, no transact');
    await c.close();
    assert.equal(await counter('app-clause'), 0);
  });

  it('applies a transaction once when the relay drops its response and the SDK re-sends it', async () => {
    const name = 'retry';
    let victim: Link | undefined;
    relay.hook = (dir, f, l) => {
      if (victim === undefined && dir === 'c2s' && f[0] === FRAME.RECORD && l.records.c2s === 2)
        victim = l;
      if (victim === l && dir === 's2c') return; // every answer after the transaction is lost
      forward(dir, f, l);
    };
    const c = await connect(relay.url, { constraint, identity: await identity });
    await c.app(APP).query('get', { name });
    const tx = c.app(APP).transact('increment', { name }, { requestId: 'retry-1' });
    await until(async () => (await counter(name)) === 1, 'the transaction to commit');
    relay.hook = forward;
    (victim as Link).close(); // the connection drops; the SDK reconnects and re-sends
    const r = await tx;
    assert.equal(r.repeated, true);
    assert.equal(r.requestId, 'retry-1');
    assert.equal((r.result as { value: number }).value, 1);
    assert.equal(await counter(name), 1);
    const st = await c.status({ app: APP, requestId: 'retry-1' });
    assert.deepEqual(st, { state: 'committed', txid: r.txid });
    // By hand, the same request id again: the stored answer, not a second increment.
    const again = await c.app(APP).transact('increment', { name }, { requestId: 'retry-1' });
    assert.equal(again.repeated, true);
    assert.equal(again.txid, r.txid);
    assert.equal(await counter(name), 1);
    await c.close();
  });
});
