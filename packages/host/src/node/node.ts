/**
 * A Cloister node: the untrusted host process around one enclave (DESIGN.md §3).
 *
 * Start order: lock the data directory -> open the record store (`<data>/store`, LevelDB) ->
 * open the platform -> read the enclave build once -> the platform admits it (verifies the
 * manifest, measures these exact bytes) -> launch the worker from the same bytes, serving it the
 * platform and the store -> `enclave.start` with the sealed node state and the sealed service
 * state (the enclave opens its logchain service: genesis on an empty store, else it verifies the
 * stored log from its sealed checkpoint and the platform counter) -> persist a re-sealed node
 * state and a new or re-sealed service state (atomic, durable) before any other call -> start
 * the signature timer (`service.tick` every `signIntervalMs`) -> listen. On shutdown the timer
 * stops, then the enclave, then the store closes. Any failure before listening undoes what was
 * done and throws a named error; the node never starts with a silently fresh identity over a
 * sealed file it could not open, nor serves a log the enclave refused.
 */
import { existsSync, readFileSync, realpathSync, renameSync } from 'node:fs';
import { type AddressInfo, createServer as createNetServer, type Server } from 'node:net';
import { basename, dirname, join, resolve, sep } from 'node:path';
import type {
  CallRequest,
  CallResponse,
  HostCallHandlers,
  HostToEnclaveCall,
} from '@cloister/boundary';
import { CloisterError, InvalidInputError, logStoreKey, STORE_NAMESPACE_LOG } from '@cloister/core';
import { BUNDLE_FILE, MANIFEST_FILE, NO_BUILD_HINT } from '../build/build.js';
import { DirectoryError, DirectoryLockedError } from '../fs/index.js';
import {
  ENCLAVE_CPU_PROF_ENV,
  type EnclaveWorker,
  launchEnclaveWorker,
} from '../launcher/index.js';
import { openSimulationPlatform, type SimulationPlatform } from '../platform/index.js';
import {
  openLevelStore,
  STORE_CALLS,
  type Store,
  type StoreCall,
  type StoreServiceLimits,
  storeOcalls,
} from '../store/index.js';
import { type DataDir, openDataDir } from './data-dir.js';
import { enclaveEventText } from './enclave-events.js';
import { createHttpServer, type HttpLimits } from './http.js';
import { createLogger, type Logger } from './logger.js';
import { createNodeMetrics, type NodeMetrics } from './metrics.js';
import { attachScpRelay, type ScpRelay, type ScpRelayLimits } from './scp-relay.js';
import { loadTlsFiles } from './tls.js';

export interface NodeOptions {
  /** Data directory (created on first use). */
  readonly dataDir: string;
  /** Simulation platform directory, outside every data directory. */
  readonly platformDir: string;
  /** Directory holding `enclave.js` and `enclave.manifest` from `cloister build`. */
  readonly enclaveDir: string;
  /** Listening address; default 127.0.0.1. */
  readonly host?: string;
  /** Listening port; 0 picks a free one. */
  readonly port: number;
  readonly logger?: Logger;
  readonly httpLimits?: HttpLimits;
  /** Caps on the enclave's store calls; unset fields keep STORE_SERVICE_LIMITS. */
  readonly storeLimits?: Partial<StoreServiceLimits>;
  /** Tests only: wraps the opened store (store/faulty.ts injects failures), never in the CLI. */
  readonly wrapStore?: (store: Store) => Store;
  /**
   * Milliseconds between `service.tick` calls (a signature entry when unsigned entries exist);
   * default DEFAULT_SIGN_INTERVAL_MS, 0 disables the timer.
   */
  readonly signIntervalMs?: number;
  /**
   * The operator's 65-byte P-256 public key (`<home>/operator.pem`, loadOrCreateOperatorKey):
   * recorded by the enclave at the first start that gives one; a start with another key than the
   * recorded one is refused (OPERATOR_KEY_MISMATCH). Unset: nothing is recorded, and deploys are
   * refused until a start gives one (OPERATOR_KEY_MISSING).
   */
  readonly operatorPublicKey?: Uint8Array;
  /**
   * Serve HTTPS and WSS with this PEM certificate chain and private key (`--tls-cert`,
   * `--tls-key`); the URL is then https://. An unreadable or mismatched pair fails the start
   * (TlsConfigError) before anything is opened.
   */
  readonly tls?: { readonly certFile: string; readonly keyFile: string };
  /** Limits of the `/v1/scp` relay; unset fields keep DEFAULT_SCP_RELAY_LIMITS. */
  readonly scpLimits?: Partial<ScpRelayLimits>;
  /**
   * The apps' debug output (AssemblyScript `trace`), for development on the SIMULATION platform
   * only: it carries app data out of the enclave by design (docs/node-api.md "App trace"). A
   * function receives each line; `true` logs them (event `app.trace`, level info). On any other
   * platform the start fails (INVALID_INPUT) — the host refuses, and so does the enclave.
   */
  readonly appTrace?: boolean | ((app: string, message: string) => void);
}

/** Default `signIntervalMs`: the longest a committed transaction waits for its receipt. */
export const DEFAULT_SIGN_INTERVAL_MS = 1000;

export interface RunningNode {
  readonly url: string;
  readonly nodeId: string;
  readonly identityPublicKey: Uint8Array;
  /** The logchain service's public key (SEC1, 65 bytes) and identity hash (SHA-256 of it). */
  readonly servicePublicKey: Uint8Array;
  readonly serviceIdentity: Uint8Array;
  readonly metrics: NodeMetrics;
  /** `enclave.ping` (an echo; test enclaves answer commands with it). */
  ping(payload: Uint8Array): Promise<Uint8Array>;
  /**
   * Settles once the node has stopped: 'closed' after close(), 'enclave-failed' when the enclave
   * stopped on its own (the node then closes itself: it never serves without its enclave),
   * 'data-dir-lock-lost' when its data directory's lock was taken from it (it closes itself too).
   */
  readonly stopped: Promise<NodeStopReason>;
  /** Stops serving, stops the enclave and releases the directories. Idempotent. */
  close(): Promise<void>;
}

function lockLostError(dataDir: string): DirectoryLockedError {
  return new DirectoryLockedError(
    'data',
    resolve(dataDir),
    `the lock on the data directory ${resolve(dataDir)} was lost while the node started (another start on it while this one was paused); it did not start. Start it again once no other node uses that directory.`,
  );
}

/** Why a node stopped (`Node.stopped`). */
export type NodeStopReason = 'closed' | 'enclave-failed' | 'data-dir-lock-lost' | 'ledger-stopped';

export class PortInUseError extends CloisterError {
  constructor(host: string, port: number) {
    super('PORT_IN_USE', `port ${port} on ${host} is already in use`);
  }
}

export class EnclaveBuildMissingError extends CloisterError {
  constructor(dir: string) {
    super('MANIFEST_INVALID', `no enclave build in ${dir}: run \`cloister build\` first`, {
      hint: NO_BUILD_HINT,
    });
  }
}

/** `path` with every symlink of its nearest existing ancestor resolved (the rest as given). */
function realPath(path: string): string {
  let existing = path;
  const rest: string[] = [];
  for (;;) {
    try {
      return join(realpathSync(existing), ...rest.reverse());
    } catch {
      const up = dirname(existing);
      if (up === existing) return path;
      rest.push(basename(existing));
      existing = up;
    }
  }
}

/** The platform directory must sit outside every data directory (DESIGN.md §2, issue 2). */
function assertSeparate(dataDir: string, platformDir: string): void {
  // Compared where they really are: a symlink must not put the platform inside a data directory.
  const data = realPath(resolve(dataDir));
  const platform = realPath(resolve(platformDir));
  const inside = (a: string, b: string) => a === b || a.startsWith(b + sep);
  if (inside(platform, data) || inside(data, platform)) {
    throw new DirectoryError(
      'platform',
      platform,
      `the platform directory ${platform} and the data directory ${data} overlap; the platform directory must be outside every data directory: pass another --platform-dir or --data`,
    );
  }
}

function readBuild(dir: string): { bundle: Uint8Array; manifest: Uint8Array } {
  try {
    return {
      bundle: new Uint8Array(readFileSync(join(dir, BUNDLE_FILE))),
      manifest: new Uint8Array(readFileSync(join(dir, MANIFEST_FILE))),
    };
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') throw new EnclaveBuildMissingError(dir);
    throw e;
  }
}

/**
 * The host's answers to the enclave's calls: the platform, bound to the identity it admitted,
 * merged with `extra` (the node passes the record store's handlers, from storeOcalls).
 */
export function enclaveOcalls(
  platform: SimulationPlatform,
  identity: ReturnType<SimulationPlatform['admit']>,
  extra: HostCallHandlers = {},
): HostCallHandlers {
  return {
    ...extra,
    'platform.self': () => ({
      platform: identity.platform,
      measurement: identity.measurement,
      signer: identity.signer,
      product: identity.product,
      svn: identity.svn,
    }),
    'platform.sealKey': (req: { policy: number; svn: number; keyId: Uint8Array }) => {
      // 1 code, 2 signer (docs/boundary.md); anything else is not a policy, not "signer".
      if (req.policy !== 1 && req.policy !== 2) {
        throw new InvalidInputError(
          `sealing policy ${req.policy} is neither 1 (code) nor 2 (signer)`,
        );
      }
      return {
        key: platform.sealKey(identity, req.policy === 1 ? 'code' : 'signer', req.svn, req.keyId),
      };
    },
    'platform.report': async (req: { reportData: Uint8Array }) => ({
      evidence: await platform.report(identity, req.reportData),
    }),
    'platform.counterRead': (req: { name: string }) => ({ value: platform.counterRead(req.name) }),
    'platform.counterIncrement': (req: { name: string }) => ({
      value: platform.counterIncrement(req.name),
    }),
    'host.ping': (req: { payload: Uint8Array }) => ({ payload: req.payload }),
    // Untrusted by design: the enclave forces it monotonic and apps never decide on time alone.
    'host.time': () => ({ ms: Date.now() }),
  };
}

/** `handlers` with each store call counted by its catalogue name (nothing else is recorded). */
export function countStoreCalls(
  handlers: HostCallHandlers,
  count: (call: StoreCall) => void,
): HostCallHandlers {
  const out: Record<string, unknown> = { ...handlers };
  for (const name of STORE_CALLS) {
    const h = handlers[name] as ((req: never) => unknown) | undefined;
    if (h === undefined) continue;
    out[name] = (req: never) => {
      count(name);
      return h(req);
    };
  }
  return out as HostCallHandlers;
}

/**
 * `handlers` with a failed `store.write` logged by the host (event `store.write-failed`, the
 * store's message: its directory and the cause, a full disk named; the host's own words, no
 * enclave data): the enclave answers it with LEDGER_STATE and logs only `ledger.stopped`, so
 * without this line the operator would never learn why the node stopped.
 */
function logStoreWriteFailures(handlers: HostCallHandlers, log: Logger): HostCallHandlers {
  const write = handlers['store.write'];
  if (write === undefined) return handlers;
  return {
    ...handlers,
    'store.write': async (req) => {
      try {
        return await write(req);
      } catch (e) {
        if (e instanceof CloisterError && e.code === 'STORE') {
          log.error({ event: 'store.write-failed', hint: e.hint }, e.message);
        }
        throw e;
      }
    },
  };
}

function listen(server: Server, host: string, port: number) {
  return new Promise<AddressInfo>((resolve, reject) => {
    server.once('error', (e: NodeJS.ErrnoException) => {
      if (e.code === 'EADDRINUSE') reject(new PortInUseError(host, port));
      else if (e.code === 'ENOTFOUND' || e.code === 'EADDRNOTAVAIL' || e.code === 'EAI_AGAIN') {
        reject(
          new InvalidInputError(
            `cannot listen on ${host}: no such address on this machine (${e.code}); give --host an address of one of its interfaces, such as 127.0.0.1 or 0.0.0.0`,
          ),
        );
      } else reject(e);
    });
    server.listen(port, host, () => resolve(server.address() as AddressInfo));
  });
}

/** Where the enclave's node runs from: the directories of NodeOptions. */
export interface NodeDirs {
  readonly dataDir: string;
  readonly platformDir: string;
  readonly enclaveDir: string;
  readonly storeLimits?: Partial<StoreServiceLimits>;
  /** Tests only: wraps the opened store (store/faulty.ts injects failures), never in the CLI. */
  readonly wrapStore?: (store: Store) => Store;
}

type Call = <N extends HostToEnclaveCall>(name: N, req: CallRequest<N>) => Promise<CallResponse<N>>;

interface Booted {
  readonly data: DataDir;
  readonly worker: EnclaveWorker;
  readonly platformName: string;
  readonly started: CallResponse<'enclave.start'>;
  /** Calls the enclave, counting the call by catalogue name and outcome. */
  readonly call: Call;
}

/**
 * The data directory's store, checked against its sealed service state. A store without
 * service.sealed beside it is either a first start that was killed before it finished (its log
 * holds at most the genesis entry and its signature, indexes 1 and 2: no client was ever
 * answered, since the node serves only after service.sealed is written): set aside as
 * `store.interrupted-<ms>`, and a new store opened; or a lost service.sealed: refused, naming both.
 */
async function openStoreOf(
  opts: NodeDirs,
  data: DataDir,
  storeDir: string,
  log: Logger,
): Promise<Store> {
  const wrap = (s: Store): Store => (opts.wrapStore ? opts.wrapStore(s) : s);
  const sealed = data.readSealedService().length > 0;
  if (sealed && !existsSync(storeDir)) {
    throw new DirectoryError(
      'data',
      opts.dataDir,
      `${storeDir} is missing but ${join(opts.dataDir, 'sealed', 'service.sealed')} is there: restore the store directory that goes with it (from the same backup); a new node needs a new data directory`,
    );
  }
  const store = await openLevelStore(storeDir);
  let empty = true;
  for await (const _ of store.iterate({ limit: 1 })) empty = false;
  if (sealed) {
    if (!empty) return wrap(store);
    await store.close();
    throw new DirectoryError(
      'data',
      opts.dataDir,
      `${storeDir} is empty but ${join(opts.dataDir, 'sealed', 'service.sealed')} is there: restore the store directory that goes with it (from the same backup); a new node needs a new data directory`,
    );
  }
  if (empty) return wrap(store);
  let served = false;
  const after = { gte: logStoreKey(3), lt: Uint8Array.of(STORE_NAMESPACE_LOG + 1), limit: 1 };
  for await (const _ of store.iterate(after)) served = true;
  if (served) {
    await store.close();
    throw new DirectoryError(
      'data',
      opts.dataDir,
      `${join(opts.dataDir, 'sealed', 'service.sealed')} is missing but ${storeDir} holds a service's log: restore service.sealed from backup (the log cannot be opened without it)`,
    );
  }
  await store.close();
  const aside = `${storeDir}.interrupted-${Date.now()}`;
  renameSync(storeDir, aside);
  log.warn(
    { event: 'node.interrupted-start-set-aside' },
    `the first start of this data directory was interrupted before it finished (nothing was served): its store was set aside as ${aside} and a new one is made`,
  );
  return wrap(await openLevelStore(storeDir));
}

/**
 * Locks the data directory, opens the store and the platform, launches the admitted enclave and
 * starts it with the sealed states; persists what it returns before anything else happens.
 * Everything opened is pushed on `cleanup` (undone in reverse order by the caller).
 */
async function boot(
  opts: NodeDirs,
  log: Logger,
  metrics: NodeMetrics,
  cleanup: (() => unknown)[],
  onExit: () => void,
  relay: () => ScpRelay | undefined = () => undefined,
  onAppTrace?: (app: string, message: string) => void,
  onLockLost?: (error: Error) => void,
  onLedgerStopped?: () => void,
): Promise<Booted> {
  assertSeparate(opts.dataDir, opts.platformDir);
  const data = openDataDir(opts.dataDir, onLockLost);
  cleanup.push(() => data.close());
  const storeDir = join(opts.dataDir, 'store');
  const store = await openStoreOf(opts, data, storeDir, log);
  cleanup.push(() => store.close());
  // Holding its service's counter keeps a copy of this data directory from starting beside it.
  const platform = openSimulationPlatform({ dir: opts.platformDir, holdCounters: true });
  cleanup.push(() => platform.close());
  const { bundle, manifest } = readBuild(opts.enclaveDir);
  const identity = platform.admit(bundle, manifest);
  const worker: EnclaveWorker = await launchEnclaveWorker({
    code: bundle,
    ocalls: enclaveOcalls(platform, identity, {
      ...countStoreCalls(logStoreWriteFailures(storeOcalls(store, opts.storeLimits), log), (call) =>
        metrics.storeCalls.inc({ call }),
      ),
      // The enclave's rotation waits for this answer before its rotation entry commits.
      'service.persist': (req: { sealedService: Uint8Array }) => {
        if (req.sealedService.length === 0) {
          throw new InvalidInputError('service.persist needs a non-empty sealed state');
        }
        data.writeSealedService(req.sealedService);
        log.info({ event: 'service.persisted' }, 'sealed service state written');
        return {};
      },
    }),
    onProtocolError: () => log.warn({ event: 'boundary.malformed' }, 'dropped a malformed frame'),
    onLog: (level: number, event: string) => {
      log[levelName(level)]({ event }, enclaveEventText(event));
      if (event === 'ledger.stopped') onLedgerStopped?.();
    },
    // Frames of secure connections, for the relay (none before it exists: no socket yet).
    events: {
      'scp.send': (f) => relay()?.send(f.session, f.frame),
      'scp.end': (f) => relay()?.end(f.session, f.code),
      // Only after apps.trace, which the node sends on the simulation platform only.
      'app.trace': (f) => onAppTrace?.(f.app, f.message),
    },
    onExit,
    // Benchmarks: the simulation platform (the only one this node opens) may profile its worker.
    cpuProfileDir: process.env[ENCLAVE_CPU_PROF_ENV] || undefined,
    onOutputDropped: (bytes: number) => metrics.enclaveOutputDropped.inc(bytes),
  });
  cleanup.push(() => worker.terminate());
  const call: Call = async (name, req) => {
    try {
      const r = await worker.call(name, req);
      metrics.enclaveCalls.inc({ call: name, outcome: 'ok' });
      return r;
    } catch (e) {
      metrics.enclaveCalls.inc({ call: name, outcome: 'error' });
      throw e;
    }
  };
  const started = await call('enclave.start', {
    nodeId: data.nodeId,
    sealedNode: data.readSealedNode(),
    sealedService: data.readSealedService(),
  }).catch((e: unknown) => {
    // The registry's next step for ROLLBACK_DETECTED speaks to a client; at a start it is the
    // operator's data directory that is older than the platform (or the log) says.
    if (e instanceof CloisterError && e.code === 'ROLLBACK_DETECTED') {
      throw new CloisterError('ROLLBACK_DETECTED', e.message, {
        cause: e,
        hint: `This data directory (${resolve(opts.dataDir)}) holds an older state than this platform last saw: it was restored from an older backup, or it is a copy of a node that ran on. Start the node on its latest data directory; an older copy never starts, by design (docs/logchain.md).`,
      });
    }
    throw e;
  });
  // Durable before the enclave is asked anything else (docs/node-api.md, "Sealed files").
  if (started.sealedNode.length > 0) data.writeSealedNode(started.sealedNode);
  if (started.sealedService.length > 0) data.writeSealedService(started.sealedService);
  return { data, worker, platformName: identity.platform, started, call };
}

/** Starts a node; resolves once it is listening. */
export async function startNode(opts: NodeOptions): Promise<RunningNode> {
  const log = opts.logger ?? createLogger();
  const host = opts.host ?? '127.0.0.1';
  const signIntervalMs = opts.signIntervalMs ?? DEFAULT_SIGN_INTERVAL_MS;
  if (!Number.isSafeInteger(signIntervalMs) || signIntervalMs < 0) {
    throw new InvalidInputError('the sign interval must be a whole number of milliseconds >= 0');
  }
  // Before anything is opened: a wrong certificate or key fails the start by name.
  const tls = opts.tls ? loadTlsFiles(opts.tls.certFile, opts.tls.keyFile) : undefined;
  const metrics = createNodeMetrics();
  const cleanup: (() => unknown)[] = [];
  const undo = async () => {
    for (const f of cleanup.reverse()) await Promise.resolve(f()).catch(() => {});
  };
  let stopping = false;
  try {
    // The address is held before anything is created: a port in use or a --host that is not
    // this machine's fails the start here, before boot writes a new service into an empty data
    // directory (a start that then failed to listen left a service no one had been told about).
    // Released just before the node's own server binds the same address and port (libuv binds
    // with SO_REUSEADDR), so only that instant is open to another process. A connection made
    // meanwhile is closed at once: close() waits for every accepted connection, so one held
    // open by a peer would hold the start (or its failure) for as long as the peer liked.
    const reservation = createNetServer({ pauseOnConnect: true }, (socket) => socket.destroy());
    const reserved = await listen(reservation, host, opts.port);
    const release = () => new Promise<void>((r) => reservation.close(() => r()));
    cleanup.push(release);
    // Why the node stops on its own, once it must (undefined: it runs, or close() was called).
    let fault: Exclude<NodeStopReason, 'closed'> | undefined;
    let closeNode: () => Promise<void> = async () => {};
    let relay: ScpRelay | undefined;
    /** A failure the node stops for: logged once, by fixed event name, then the node closes. */
    const fatal = (why: typeof fault, event: string, message: string) => (): void => {
      if (stopping) return;
      fault = why;
      log.fatal({ event }, message);
      void closeNode();
    };
    const { data, started, platformName, call } = await boot(
      opts,
      log,
      metrics,
      cleanup,
      fatal(
        'enclave-failed',
        'enclave.exited',
        'the enclave stopped unexpectedly; stopping the node',
      ),
      () => relay,
      appTraceSink(opts.appTrace, log),
      fatal(
        'data-dir-lock-lost',
        'node.data-dir-lock-lost',
        'the lock on the data directory was lost while held (another process took it over while this one was paused); stopping the node',
      ),
      // Every commit would fail from now on (LEDGER_STATE) while /v1/health said ok: a node
      // that cannot commit stops, so its supervisor (or operator) starts it again.
      fatal(
        'ledger-stopped',
        'node.ledger-stopped',
        'the store failed a write and the ledger stopped; stopping the node: the store.write-failed line before this one says why (most often the disk: free space, open-file limit); mend it and start the node again (it verifies its log and resumes)',
      ),
    );
    if (opts.appTrace !== undefined && opts.appTrace !== false) {
      if (platformName !== 'simulation') {
        throw new InvalidInputError(
          `app trace output is refused on the ${platformName} platform: it would send app data to the host in the clear; turn it off (simulation only)`,
        );
      }
      await call('apps.trace', { enable: true });
      log.warn(
        { event: 'node.app-trace-on' },
        "apps' trace output is on: app data leaves the enclave (simulation platform, development only)",
      );
    }
    const opened = await call('apps.open', {
      operatorKey: opts.operatorPublicKey ?? new Uint8Array(0),
    });
    if (opened.txid !== '') {
      log.info({ event: 'apps.operator-recorded', txid: opened.txid }, 'operator key recorded');
    }
    const status = await call('service.status', {});
    log.info(
      {
        event: 'node.service-ready',
        index: status.index,
        lastSigned: status.lastSigned,
        apps: opened.apps,
      },
      'logchain service open',
    );
    // The signature timer: one tick at a time, never keeps the process alive, errors logged.
    let ticking: Promise<void> | undefined;
    const timer =
      signIntervalMs > 0
        ? setInterval(() => {
            if (ticking || stopping) return;
            ticking = call('service.tick', {})
              .then(
                () => {},
                (e: unknown) => {
                  log.error(
                    { event: 'service.tick-failed', code: (e as CloisterError).code ?? 'unknown' },
                    'signature tick failed',
                  );
                },
              )
              .finally(() => {
                ticking = undefined;
              });
          }, signIntervalMs)
        : undefined;
    timer?.unref();
    cleanup.push(() => clearInterval(timer));
    const server = createHttpServer({
      metrics,
      log,
      ...(opts.operatorPublicKey ? { operatorPublicKey: opts.operatorPublicKey } : {}),
      ...(opts.httpLimits ? { limits: opts.httpLimits } : {}),
      health: () => ({ status: stopping ? 'stopping' : 'ok', platform: platformName }),
      evidence: (nonce) => call('enclave.evidence', { nonce }),
      status: () => call('service.status', {}),
      receipt: async (txid) => (await call('service.receipt', { txid })).receipt,
      consistency: async (from, to) => (await call('service.consistency', { from, to })).proof,
      deploy: async (request, module) => {
        const r = await call('apps.deploy', { request, module });
        log.info({ event: 'apps.deployed', txid: r.txid }, 'app deployed');
        return r;
      },
      apps: async (app) => (await call('apps.info', { app })).info,
      ...(tls ? { tls } : {}),
    });
    relay = attachScpRelay(server, {
      metrics,
      log,
      ...(opts.scpLimits ? { limits: opts.scpLimits } : {}),
      enclave: {
        open: async () => (await call('scp.open', {})).session,
        frame: async (session, frame) => {
          await call('scp.frame', { session, frame, ms: Date.now() });
        },
        close: async (session) => {
          await call('scp.close', { session });
        },
      },
    });
    // The lock was lost while starting (its callback could not close a node not yet made): do
    // not start serving a data directory another process may own now.
    // (A call, not a test of `fault`: the callbacks set it, which narrowing cannot see.)
    const lockLost = (): boolean => fault === 'data-dir-lock-lost';
    if (lockLost()) throw lockLostError(opts.dataDir);
    await release();
    // The address the reservation resolved to, not `host` again: a name could resolve anew.
    const address = await listen(server, reserved.address, reserved.port);
    cleanup.push(() => new Promise<void>((r) => server.close(() => r())));
    if (lockLost()) throw lockLostError(opts.dataDir);
    cleanup.push(() => relay?.close());
    const scheme = tls ? 'https' : 'http';
    const url = `${scheme}://${host.includes(':') ? `[${host}]` : host}:${address.port}`;
    log.info(
      { event: 'node.listening', url, nodeId: data.nodeId, platform: platformName },
      'node started',
    );
    let closed: Promise<void> | undefined;
    let settle: (why: NodeStopReason) => void = () => {};
    const stopped = new Promise<NodeStopReason>((r) => {
      settle = r;
    });
    closeNode = () => {
      closed ??= (async () => {
        stopping = true;
        clearInterval(timer);
        relay?.close();
        server.closeIdleConnections?.();
        await ticking;
        if (fault !== 'enclave-failed') await call('enclave.stop', {}).catch(() => {});
        await undo();
        log.info({ event: 'node.stopped' }, 'node stopped');
        settle(fault ?? 'closed');
      })();
      return closed;
    };
    // A fault during the start (the ledger stopped, say: its callback could not close a node not
    // yet made) closes it now, so `stopped` says why instead of serving a dead ledger.
    const faulted = (): boolean => fault !== undefined;
    if (faulted()) void closeNode();
    return {
      url,
      nodeId: data.nodeId,
      identityPublicKey: started.identityPublicKey,
      servicePublicKey: status.servicePublicKey,
      serviceIdentity: status.serviceIdentity,
      metrics,
      ping: async (payload) => (await call('enclave.ping', { payload })).payload,
      stopped,
      close: closeNode,
    };
  } catch (e) {
    // A start that failed stops what it started: the enclave's exit is not a fault to report.
    stopping = true;
    await undo();
    throw e;
  }
}

/** The data directory is held by a running node: rotation needs it stopped. */
export class NodeRunningError extends CloisterError {
  constructor(dir: string) {
    super(
      'DATA_DIR_LOCKED',
      `a running node holds the data directory ${dir}: stop the node first (rotate-secret is an operator action on a stopped node), then run it again`,
    );
  }
}

export interface RotatedSecret {
  /** Transaction id of the rotation entry in the log. */
  readonly txid: string;
  /** The new ledger secret generation (new entries use it; older ones stay readable). */
  readonly generation: number;
  readonly serviceIdentity: Uint8Array;
}

/**
 * `cloister ledger rotate-secret`: on a STOPPED node, takes the data directory lock, starts the
 * enclave (which verifies the log as on every start), asks it to rotate the ledger secret (the
 * enclave has the host write the new sealed service state through `service.persist`, atomic and
 * durable, before its rotation entry commits), signs the rotation entry, logs the action
 * (`ledger.secret-rotated`), stops. The rotation entry in the log records it too.
 */
export async function rotateServiceSecret(
  opts: NodeDirs & { readonly logger?: Logger },
): Promise<RotatedSecret> {
  const log = opts.logger ?? createLogger();
  if (!existsSync(join(opts.dataDir, 'sealed', 'service.sealed'))) {
    throw new DirectoryError(
      'data',
      resolve(opts.dataDir),
      `no service in ${resolve(opts.dataDir)}: start the node once (its genesis creates the ledger secret), stop it, then rotate`,
    );
  }
  const metrics = createNodeMetrics();
  const cleanup: (() => unknown)[] = [];
  let stopping = false;
  try {
    let booted: Booted;
    try {
      booted = await boot(opts, log, metrics, cleanup, () => {
        if (!stopping) log.fatal({ event: 'enclave.exited' }, 'the enclave stopped unexpectedly');
      });
    } catch (e) {
      if (e instanceof DirectoryLockedError && e.code === 'DATA_DIR_LOCKED') {
        throw new NodeRunningError(resolve(opts.dataDir));
      }
      throw e;
    }
    // The enclave had the host persist the new state (service.persist) before the rotation
    // entry committed; the response repeats the same blob, written again (idempotent).
    const r = await booted.call('service.rotateSecret', {});
    booted.data.writeSealedService(r.sealedService);
    await booted.call('service.tick', {}); // sign the rotation entry now: its receipt is ready
    const status = await booted.call('service.status', {});
    log.info(
      { event: 'ledger.secret-rotated', txid: r.txid, generation: r.generation },
      'ledger secret rotated (operator action)',
    );
    stopping = true;
    await booted.call('enclave.stop', {});
    return { txid: r.txid, generation: r.generation, serviceIdentity: status.serviceIdentity };
  } finally {
    stopping = true;
    for (const f of cleanup.reverse()) await Promise.resolve(f()).catch(() => {});
  }
}

/** Where app.trace lines go: the caller's function, the log (`true`), or nowhere. */
function appTraceSink(
  appTrace: NodeOptions['appTrace'],
  log: Logger,
): ((app: string, message: string) => void) | undefined {
  if (typeof appTrace === 'function') return appTrace;
  if (appTrace !== true) return undefined;
  return (app, message) => log.info({ event: 'app.trace', app }, message);
}

function levelName(level: number): 'trace' | 'debug' | 'info' | 'warn' | 'error' | 'fatal' {
  if (level >= 60) return 'fatal';
  if (level >= 50) return 'error';
  if (level >= 40) return 'warn';
  if (level >= 30) return 'info';
  if (level >= 20) return 'debug';
  return 'trace';
}
