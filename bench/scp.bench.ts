/**
 * The SCP benchmark (issue 6): the secure connection protocol (docs/scp.md) in the configuration
 * that ships — a real node in its own process (`cloister build` then `cloister node start`, from
 * source: the host, its `/v1/scp` WebSocket relay, the real enclave behind its boundary in a worker
 * thread, LevelDB underneath) with the `cloister app new` counter app built and deployed by the
 * CLI's code paths, and clients using the client SDK (`@cloister/client/node`'s `connect`: its
 * record layer on node:crypto, `nodeScpCrypto`)
 * in this process's main thread. Every figure is the median of three runs (bench/lib.ts); each
 * ratio's two sides run interleaved (which side goes first alternates).
 *
 * Baselines, in this process (their servers in a worker thread, their clients in the main thread
 * like the SDK's):
 *   (a) full TLS 1.3 handshakes per second: node:https on 127.0.0.1 with a P-256 certificate made
 *       by `openssl` at bench time, TLS 1.3 only, no resumption (an agent with
 *       `maxCachedSessions: 0`, no keep-alive; every handshake is checked not to be resumed),
 *       each handshake completing one tiny GET, HS_CONCURRENCY in flight;
 *   (b) a WebSocket echo (`ws`) over 32 connections where both ends do AES-256-GCM with SCP's
 *       nonces and frame type byte (node:crypto on both ends, as the SDK's "./node" entry), on plaintexts of the exact size of the SCP query request and response (taken
 *       from a logged SCP session): calls per second, p50 and p99.
 * SCP: handshakes per second with `connect` (a new WebSocket, the handshake with the node's
 * evidence and endorsement verified against the constraint, then a close), HS_CONCURRENCY in
 * flight; calls per second over 32 sessions, one call in flight on each: the app's `get` query;
 * `increment` transactions as info. Targets: SCP handshakes >= 0.5x TLS 1.3; SCP queries over 32
 * connections >= 0.5x the AES echo; the queries' p99 <= 5x their p50. Info: frame sizes (what
 * the host sees), and where the CPU goes: per query and per echo call, the CPU time of each
 * thread (Linux /proc: the node's host thread, its enclave worker, this process's main thread),
 * and the kernel's share of it (`.system`).
 * `--smoke`: tiny sizes (CI). `--node-cpu-prof DIR`: the node process writes a CPU profile of
 * its host thread; with `CLOISTER_ENCLAVE_CPU_PROF=DIR` in the environment (inherited by the
 * node), the node also profiles its enclave worker (simulation only: LaunchOptions.cpuProfileDir).
 * Progress lines go to stderr.
 */
import { execFileSync, spawn } from 'node:child_process';
import { createCipheriv, createDecipheriv, createSecretKey, type KeyObject } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { createServer as createHttpServer } from 'node:http';
import { Agent, createServer as createHttpsServer, get as httpsGet } from 'node:https';
import type { AddressInfo } from 'node:net';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import type { TLSSocket } from 'node:tls';
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';
import {
  type Client,
  connect,
  generateIdentity,
  type Transport,
  wsTransport,
} from '@cloister/client/node';
import { FRAME } from '@cloister/core';
import { WebSocket, WebSocketServer } from 'ws';
import { buildApp } from '../packages/cli/src/commands/app-build.js';
import { createApp } from '../packages/cli/src/commands/app-new.js';
import {
  benchOptions,
  info,
  interleaved,
  type LatencyRun,
  laneOpsPerSecond,
  median,
  percentile,
  target,
} from './lib.js';

const SMOKE = benchOptions().smoke;
/** `--node-cpu-prof DIR`: the node process writes a CPU profile of its host thread into DIR. */
const NODE_PROFILE = ((i) => (i < 0 ? undefined : process.argv[i + 1]))(
  process.argv.indexOf('--node-cpu-prof'),
);
/** Handshakes in flight at once, both sides. */
const HS_CONCURRENCY = 8;
const HANDSHAKES = SMOKE ? 40 : 600;
/** Connections (sessions) of the call runs, one call in flight on each. */
const CONNECTIONS = 32;
const CALLS = SMOKE ? 200 : 6_000;
const WARM_CALLS = SMOKE ? 64 : 1_000;
const TX_CALLS = SMOKE ? 64 : 1_500;

// ---- the baseline servers (worker thread) ------------------------------------------------

interface BaselineConfig {
  readonly role: 'baselines';
  readonly cert: string;
  readonly key: string;
  /** c2s key ‖ c2s iv ‖ s2c key ‖ s2c iv (32 + 12 + 32 + 12 bytes). */
  readonly secrets: Uint8Array;
  /** Plaintext bytes of each echo response. */
  readonly responseBytes: number;
}

/** `iv XOR u96be(seq)`: SCP's record nonce (docs/scp.md). */
function nonce(iv: Uint8Array, seq: number): Uint8Array<ArrayBuffer> {
  const n = new Uint8Array(iv);
  let s = seq;
  for (let i = 11; i >= 4 && s > 0; i--) {
    n[i] = (n[i] as number) ^ (s & 0xff);
    s = Math.floor(s / 256);
  }
  return n;
}

const AAD = new Uint8Array([0x05]);

function split(secrets: Uint8Array) {
  return {
    c2sKey: secrets.slice(0, 32),
    c2sIv: secrets.slice(32, 44),
    s2cKey: secrets.slice(44, 76),
    s2cIv: secrets.slice(76, 88),
  };
}

/** The TLS 1.3 server and the AES-GCM WebSocket echo server; posts their ports. */
async function serveBaselines(c: BaselineConfig): Promise<void> {
  const tls = createHttpsServer(
    { cert: c.cert, key: c.key, minVersion: 'TLSv1.3', maxVersion: 'TLSv1.3' },
    (_req, res) => {
      res.writeHead(200, { 'content-type': 'text/plain', connection: 'close' }).end('ok');
    },
  );
  await new Promise<void>((resolve) => tls.listen(0, '127.0.0.1', resolve));

  const s = split(c.secrets);
  const c2s: KeyObject = createSecretKey(s.c2sKey);
  const s2c: KeyObject = createSecretKey(s.s2cKey);
  const response = new Uint8Array(c.responseBytes).fill(0x61);
  const http = createHttpServer();
  const wss = new WebSocketServer({ server: http, path: '/echo' });
  wss.on('connection', (ws) => {
    let inSeq = 0;
    let outSeq = 0;
    ws.on('message', (data: Buffer, isBinary) => {
      if (!isBinary || data[0] !== 0x05 || data.length < 17) {
        ws.close(1002);
        return;
      }
      const d = createDecipheriv('aes-256-gcm', c2s, nonce(s.c2sIv, inSeq++));
      d.setAAD(AAD);
      d.setAuthTag(data.subarray(data.length - 16));
      d.update(data.subarray(1, data.length - 16));
      d.final();
      const e = createCipheriv('aes-256-gcm', s2c, nonce(s.s2cIv, outSeq++));
      e.setAAD(AAD);
      const body = e.update(response);
      e.final();
      ws.send(Buffer.concat([AAD, body, e.getAuthTag()]));
    });
  });
  await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
  parentPort?.postMessage({
    tls: (tls.address() as AddressInfo).port,
    ws: (http.address() as AddressInfo).port,
  });
}

/** Starts the baseline servers in a worker thread (tsx registered there too). */
async function startBaselines(
  c: Omit<BaselineConfig, 'role'>,
): Promise<{ tls: number; ws: number; stop(): Promise<void> }> {
  const src = `import('tsx/esm/api').then((t) => { t.register(); return import(${JSON.stringify(import.meta.url)}); })`;
  const w = new Worker(src, { eval: true, workerData: { role: 'baselines', ...c } });
  const ports = await new Promise<{ tls: number; ws: number }>((resolve, reject) => {
    w.once('message', resolve);
    w.once('error', reject);
  });
  return {
    ...ports,
    async stop() {
      await w.terminate();
    },
  };
}

// ---- (a) TLS 1.3 handshakes --------------------------------------------------------------

/** A fresh P-256 certificate for 127.0.0.1, made by openssl in `dir`. */
function makeCertificate(dir: string): { cert: string; key: string } {
  const keyFile = join(dir, 'key.pem');
  const certFile = join(dir, 'cert.pem');
  try {
    execFileSync(
      'openssl',
      [
        'req',
        '-x509',
        '-newkey',
        'ec',
        '-pkeyopt',
        'ec_paramgen_curve:prime256v1',
        '-nodes',
        '-keyout',
        keyFile,
        '-out',
        certFile,
        '-days',
        '1',
        '-subj',
        '/CN=127.0.0.1',
        '-addext',
        'subjectAltName=IP:127.0.0.1',
      ],
      { stdio: 'pipe' },
    );
  } catch (e) {
    throw new Error(
      `the TLS baseline needs openssl to make its certificate (${(e as Error).message}); install openssl`,
    );
  }
  return { cert: readFileSync(certFile, 'utf8'), key: readFileSync(keyFile, 'utf8') };
}

/** TLS 1.3 handshakes per second, each a new connection with one GET, none resumed. */
async function tlsHandshakes(port: number, ca: string, n: number): Promise<LatencyRun> {
  const agent = new Agent({ keepAlive: false, maxCachedSessions: 0 });
  let resumed = 0;
  const one = () =>
    new Promise<void>((resolve, reject) => {
      const req = httpsGet(
        {
          host: '127.0.0.1',
          port,
          path: '/',
          agent,
          ca,
          minVersion: 'TLSv1.3',
          maxVersion: 'TLSv1.3',
        },
        (res) => {
          const socket = res.socket as TLSSocket;
          if (socket.isSessionReused()) resumed++;
          if (socket.getProtocol() !== 'TLSv1.3') reject(new Error('not TLS 1.3'));
          res.resume();
          res.on('end', resolve);
        },
      );
      req.on('error', reject);
    });
  const run = await laneOpsPerSecond(n, HS_CONCURRENCY, one);
  agent.destroy();
  if (resumed)
    throw new Error(`${resumed} TLS sessions were resumed: the baseline must not resume`);
  return run;
}

// ---- (b) WebSocket echo with AES-256-GCM on both ends --------------------------------------

interface EchoClient {
  call(): Promise<void>;
  close(): void;
}

/**
 * One echo connection. Its AES-256-GCM is node:crypto, the same implementation the SDK's
 * "./node" entry ships (`nodeScpCrypto`), so the baseline is no slower than what it is compared
 * with. (A WebCrypto echo client is about 2x slower: docs/performance.md "The SCP benchmark".)
 */
async function echoClient(port: number, secrets: Uint8Array, request: Uint8Array<ArrayBuffer>) {
  const s = split(secrets);
  const c2s: KeyObject = createSecretKey(s.c2sKey);
  const s2c: KeyObject = createSecretKey(s.s2cKey);
  const ws = new WebSocket(`ws://127.0.0.1:${port}/echo`);
  ws.binaryType = 'nodebuffer';
  await new Promise<void>((resolve, reject) => {
    ws.once('open', resolve);
    ws.once('error', reject);
  });
  let outSeq = 0;
  let inSeq = 0;
  let waiting: ((b: Buffer) => void) | undefined;
  ws.on('message', (data: Buffer) => waiting?.(data));
  return {
    async call() {
      const e = createCipheriv('aes-256-gcm', c2s, nonce(s.c2sIv, outSeq++));
      e.setAAD(AAD);
      const body = e.update(request);
      e.final();
      const frame = Buffer.concat([AAD, body, e.getAuthTag()]);
      const reply = new Promise<Buffer>((resolve) => {
        waiting = resolve;
      });
      ws.send(frame);
      const data = await reply;
      const d = createDecipheriv('aes-256-gcm', s2c, nonce(s.s2cIv, inSeq++));
      d.setAAD(AAD);
      d.setAuthTag(data.subarray(data.length - 16));
      d.update(data.subarray(1, data.length - 16));
      d.final();
    },
    close() {
      ws.close();
    },
  } satisfies EchoClient;
}

// ---- SCP: a real node with the counter app ---------------------------------------------

const APP = 'counter';
/** The counter the queries read (fixed, so every query request has the same size). */
const QUERY_ARGS = { name: 'bench' };

const CLI = 'packages/cli/test/fixtures/run.ts';

/** Runs the CLI from source; its stdout (or a failure with its stderr). */
function cli(args: string[]): string {
  return execFileSync(process.execPath, ['--import', 'tsx', '--conditions=source', CLI, ...args], {
    env: { ...process.env, NODE_OPTIONS: '' },
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
  });
}

interface ScpNode {
  readonly url: string;
  readonly pid: number;
  readonly constraint: string;
  stop(): Promise<void>;
}

/**
 * The node as it ships, in its own process: `cloister build` (the real enclave, signed),
 * `cloister node start` (host + relay, the enclave behind its boundary in a worker thread, LevelDB),
 * the template counter app built and deployed with the CLI's code paths; its constraint.
 */
async function startScpNode(root: string): Promise<ScpNode> {
  const home = join(root, 'home');
  const enclave = join(root, 'enclave');
  const measurement = cli(['--home', home, 'build', '--out', enclave, '--quiet']).trim();
  const p = spawn(
    process.execPath,
    [
      ...(NODE_PROFILE === undefined ? [] : ['--cpu-prof', `--cpu-prof-dir=${NODE_PROFILE}`]),
      ...['--import', 'tsx', '--conditions=source', CLI, '--home', home, 'node', 'start'],
      ...['--enclave', enclave, '--port', '0', '--log-level', 'silent'],
    ],
    { env: { ...process.env, NODE_OPTIONS: '' }, stdio: ['ignore', 'ignore', 'pipe'] },
  );
  const url = await new Promise<string>((resolve, reject) => {
    let err = '';
    p.stderr.on('data', (d) => {
      err += d;
      const m = /listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(err);
      if (m) resolve(m[1] as string);
    });
    p.once('close', (code) => reject(new Error(`cloister node start exited ${code}: ${err}`)));
  });
  const stop = async (): Promise<void> => {
    if (p.exitCode !== null) return;
    const exited = new Promise((r) => p.once('close', r));
    p.kill('SIGTERM');
    await exited;
  };
  try {
    const project = join(root, APP);
    createApp(APP, { dir: project });
    const built = await buildApp(project);
    const d = JSON.parse(
      cli([
        '--home',
        home,
        'app',
        'deploy',
        built.wasmPath,
        '--name',
        APP,
        '--node',
        url,
        '--json',
      ]),
    ) as { codeId: string };
    return {
      url,
      pid: p.pid as number,
      constraint: `C:${measurement} SEC:INSECURE APP:${APP}=${d.codeId}`,
      stop,
    };
  } catch (e) {
    await stop();
    throw e;
  }
}

// ---- where the CPU goes (Linux /proc) -----------------------------------------------------

/** CPU ticks of each thread of process `pid`: user + system, and system; empty where /proc is absent. */
function threadTicks(pid: number): Map<number, { all: number; system: number }> {
  const out = new Map<number, { all: number; system: number }>();
  const dir = `/proc/${pid}/task`;
  if (!existsSync(dir)) return out;
  for (const tid of readdirSync(dir)) {
    try {
      const stat = readFileSync(`${dir}/${tid}/stat`, 'utf8');
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      // utime, stime (fields 14, 15)
      const system = Number(f[12]);
      out.set(Number(tid), { all: Number(f[11]) + system, system });
    } catch {
      // the thread ended
    }
  }
  return out;
}

/**
 * CPU per call, in µs, while `run` makes `calls` calls: the node's host thread, its busiest other
 * thread (the enclave worker), its other threads, this process's main thread (the clients) and its
 * other threads (the baseline server's worker, libuv's pool running WebCrypto jobs).
 */
async function cpuPerCall(
  nodePid: number,
  calls: number,
  run: () => Promise<unknown>,
): Promise<{ all: Record<string, number>; system: Record<string, number> }> {
  const a = { node: threadTicks(nodePid), self: threadTicks(process.pid) };
  await run();
  const b = { node: threadTicks(nodePid), self: threadTicks(process.pid) };
  type Ticks = Map<number, { all: number; system: number }>;
  const tick = 1e6 / 100; // µs per clock tick (USER_HZ 100)
  const delta = (x: Ticks, y: Ticks, k: 'all' | 'system') =>
    [...y].map(([tid, t]) => ({ tid, d: (t[k] - (x.get(tid)?.[k] ?? 0)) * tick }));
  // The enclave worker: the node's busiest thread but its main one, by all CPU.
  const workerTid = delta(a.node, b.node, 'all')
    .filter((t) => t.tid !== nodePid)
    .sort((p, q) => q.d - p.d)[0]?.tid;
  const split = (k: 'all' | 'system') => {
    const node = delta(a.node, b.node, k);
    const self = delta(a.self, b.self, k);
    const of = (xs: { tid: number; d: number }[], tid: number | undefined) =>
      xs.find((t) => t.tid === tid)?.d ?? 0;
    const host = of(node, nodePid);
    const worker = of(node, workerTid);
    const all = (xs: { d: number }[]) => xs.reduce((n, t) => n + t.d, 0);
    const main = of(self, process.pid);
    return {
      'node-host': host / calls,
      'node-enclave': worker / calls,
      'node-other': (all(node) - host - worker) / calls,
      'bench-main': main / calls,
      'bench-other': (all(self) - main) / calls,
    };
  };
  return { all: split('all'), system: split('system') };
}

function cpuInfo(name: string, c: Record<string, number>): void {
  info(
    name,
    Object.entries(c)
      .map(([k, v]) => `${k} ${v.toFixed(0)}`)
      .join(' '),
  );
}

interface Framed {
  readonly sent: { type: number; size: number }[];
  readonly received: { type: number; size: number }[];
}

/** The ws transport, logging the type and size of every frame (what the host sees). */
function loggingTransport(log: Framed): Transport {
  const inner = wsTransport();
  return async (url) => {
    const s = await inner(url);
    let handler: ((f: Uint8Array) => void) | undefined;
    return {
      send(f: Uint8Array) {
        log.sent.push({ type: f[0] as number, size: f.length });
        s.send(f);
      },
      close: () => s.close(),
      get onmessage() {
        return handler;
      },
      set onmessage(h) {
        handler = h;
        s.onmessage =
          h === undefined
            ? undefined
            : (f) => {
                log.received.push({ type: f[0] as number, size: f.length });
                h(f);
              };
      },
      get onclose() {
        return s.onclose;
      },
      set onclose(h) {
        s.onclose = h;
      },
    };
  };
}

/** Frame sizes of one session: the handshake, a query, a transaction. */
async function frameSizes(
  url: string,
  o: { constraint: string; identity: Awaited<ReturnType<typeof generateIdentity>> },
) {
  const log: Framed = { sent: [], received: [] };
  const c = await connect(url, { ...o, reconnect: false, transport: loggingTransport(log) });
  const size = (xs: Framed['sent'], type: number) => xs.find((f) => f.type === type)?.size ?? 0;
  const hs = {
    ch: size(log.sent, FRAME.CH),
    sh: size(log.received, FRAME.SH),
    sa: size(log.received, FRAME.SA),
    ca: size(log.sent, FRAME.CA),
  };
  await c.app(APP).query('get', QUERY_ARGS); // app.info first, then the query
  const mark = { sent: log.sent.length, received: log.received.length };
  await c.app(APP).query('get', QUERY_ARGS);
  const query = {
    request: log.sent.slice(mark.sent).map((f) => f.size),
    response: log.received.slice(mark.received).map((f) => f.size),
  };
  const mark2 = { sent: log.sent.length, received: log.received.length };
  await c.app(APP).transact('increment', { name: 'frames' });
  const tx = {
    request: log.sent.slice(mark2.sent).map((f) => f.size),
    response: log.received.slice(mark2.received).map((f) => f.size),
  };
  await c.close();
  if (query.request.length !== 1 || query.response.length !== 1) {
    throw new Error(`a query took ${query.request.length} and ${query.response.length} frames`);
  }
  return { hs, query: { request: query.request[0]!, response: query.response[0]! }, tx };
}

// ---- main --------------------------------------------------------------------------------

const t0 = performance.now();
const elapsed = (): string => `${((performance.now() - t0) / 1000).toFixed(1)}`;
function progress(what: string): void {
  console.error(`# ${elapsed()} s: ${what}`);
}

function latencyInfo(name: string, runs: LatencyRun[]): void {
  info(`${name}-per-s`, median(runs.map((r) => r.perSecond)));
  info(`${name}.p50-ms`, median(runs.map((r) => percentile(r.latencies, 50))));
  info(`${name}.p99-ms`, median(runs.map((r) => percentile(r.latencies, 99))));
}

async function main(): Promise<void> {
  const root = mkdtempSync(join(tmpdir(), 'cloister-bench-scp-'));
  let node: ScpNode | undefined;
  let base: Awaited<ReturnType<typeof startBaselines>> | undefined;
  const clients: Client[] = [];
  const echoes: EchoClient[] = [];
  try {
    info('scp.load-average-start', loadavg()[0] as number);
    node = await startScpNode(root);
    const { constraint, url } = node;
    const identity = await generateIdentity();
    progress('node started (real enclave), counter app built and deployed');

    // What the host sees of a session, and the plaintext sizes the echo baseline uses.
    const sizes = await frameSizes(url, { constraint, identity });
    info(
      'scp.frame-bytes.handshake',
      `CH ${sizes.hs.ch} SH ${sizes.hs.sh} SA ${sizes.hs.sa} CA ${sizes.hs.ca}`,
    );
    info(
      'scp.frame-bytes.query',
      `request ${sizes.query.request} response ${sizes.query.response}`,
    );
    info(
      'scp.frame-bytes.transact',
      `request ${sizes.tx.request.join('+')} response ${sizes.tx.response.join('+')}`,
    );
    // A record is the type byte, the AES-GCM ciphertext of the plaintext, the 16-byte tag.
    const requestBytes = sizes.query.request - 17;
    const responseBytes = sizes.query.response - 17;

    const { cert, key } = makeCertificate(root);
    const secrets = globalThis.crypto.getRandomValues(new Uint8Array(88));
    base = await startBaselines({ cert, key, secrets, responseBytes });
    const b = base;

    // (a) handshakes: TLS 1.3 (one GET each) against SCP connects (then a close).
    const scpHandshakes = async (n: number): Promise<LatencyRun> =>
      laneOpsPerSecond(n, HS_CONCURRENCY, async () => {
        const c = await connect(url, { constraint, identity, reconnect: false });
        await c.close();
      });
    await tlsHandshakes(b.tls, cert, Math.min(HANDSHAKES, 50));
    await scpHandshakes(Math.min(HANDSHAKES, 50));
    const hs = await interleaved(
      () => tlsHandshakes(b.tls, cert, HANDSHAKES),
      () => scpHandshakes(HANDSHAKES),
    );
    progress('handshakes');
    latencyInfo('scp.baseline.tls13-handshakes', hs.a);
    latencyInfo('scp.handshakes', hs.b);
    info(
      'scp.handshakes-vs-tls13.runs',
      hs.a.map((t, i) => ((hs.b[i] as LatencyRun).perSecond / t.perSecond).toFixed(2)).join(','),
    );

    // (b) calls over 32 connections: the AES-GCM echo against SCP queries.
    const request = new Uint8Array(requestBytes).fill(0x62);
    for (let l = 0; l < CONNECTIONS; l++) {
      echoes.push(await echoClient(b.ws, secrets, request));
      clients.push(await connect(url, { constraint, identity, reconnect: false }));
    }
    const echo = (n: number) =>
      laneOpsPerSecond(n, CONNECTIONS, (l) => (echoes[l] as EchoClient).call());
    const query = (n: number) =>
      laneOpsPerSecond(n, CONNECTIONS, (l) =>
        (clients[l] as Client).app(APP).query('get', QUERY_ARGS),
      );
    await echo(WARM_CALLS);
    await query(WARM_CALLS);
    const calls = await interleaved(
      () => echo(CALLS),
      () => query(CALLS),
    );
    progress('calls');
    latencyInfo('scp.baseline.aes-ws-echo-calls', calls.a);
    latencyInfo('scp.query-calls', calls.b);
    info(
      'scp.calls-vs-echo.runs',
      calls.a
        .map((e, i) => ((calls.b[i] as LatencyRun).perSecond / e.perSecond).toFixed(2))
        .join(','),
    );

    // Where the CPU goes, per call (a separate run of each, after the measured ones).
    if (node.pid !== undefined) {
      const q = await cpuPerCall(node.pid, CALLS, () => query(CALLS));
      const e = await cpuPerCall(node.pid, CALLS, () => echo(CALLS));
      cpuInfo('scp.cpu-us-per-query', q.all);
      cpuInfo('scp.cpu-us-per-echo', e.all);
      // The kernel's share of the above (syscalls: socket writes, thread wake-ups).
      cpuInfo('scp.cpu-us-per-query.system', q.system);
      cpuInfo('scp.cpu-us-per-echo.system', e.system);
    }

    // Transactions (info): increments of one counter per connection, group commit underneath.
    let txn = 0;
    const transact = (n: number) =>
      laneOpsPerSecond(n, CONNECTIONS, (l) =>
        (clients[l] as Client).app(APP).transact('increment', { name: `c${l}`, n: txn++ }),
      );
    await transact(Math.min(TX_CALLS, 200));
    const tx: LatencyRun[] = [];
    for (let r = 0; r < 3; r++) tx.push(await transact(TX_CALLS));
    progress('transactions');
    latencyInfo('scp.transact-calls', tx);

    target(
      'scp.handshakes-vs-tls13',
      median(hs.b.map((s) => s.perSecond)) / median(hs.a.map((t) => t.perSecond)),
      '>=0.5',
    );
    target(
      'scp.calls-32-connections-vs-aes-ws-echo',
      median(calls.b.map((s) => s.perSecond)) / median(calls.a.map((e) => e.perSecond)),
      '>=0.5',
    );
    target(
      'scp.calls-p99-over-p50',
      median(calls.b.map((r) => percentile(r.latencies, 99) / percentile(r.latencies, 50))),
      '<=5',
    );
    info('scp.load-average-end', loadavg()[0] as number);
    info('scp.bench-seconds', Number(elapsed()));
  } finally {
    for (const e of echoes) e.close();
    await Promise.all(clients.map((c) => c.close()));
    await base?.stop();
    await node?.stop();
    rmSync(root, { recursive: true, force: true });
  }
}

if (isMainThread) await main();
else await serveBaselines(workerData as BaselineConfig);
