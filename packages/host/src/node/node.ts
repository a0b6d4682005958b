/**
 * A Cloister node: the untrusted host process around one enclave (DESIGN.md §3).
 *
 * Start order: lock the data directory -> open the record store (`<data>/store`, LevelDB) ->
 * open the platform -> read the enclave build once -> the platform admits it (verifies the
 * manifest, measures these exact bytes) -> launch the worker from the same bytes, serving it the
 * platform and the store -> `enclave.start` with the sealed node state -> persist a re-sealed
 * state -> listen. On shutdown the store closes after the enclave has stopped. Any failure before listening undoes what was done and throws a named error; the
 * node never starts with a silently fresh identity over a sealed file it could not open.
 */
import { readFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { join, resolve, sep } from 'node:path';
import type { HostCallHandlers } from '@cloister/boundary';
import { CloisterError } from '@cloister/core';
import { BUNDLE_FILE, MANIFEST_FILE } from '../build/build.js';
import { DirectoryError } from '../fs/index.js';
import { type EnclaveWorker, launchEnclaveWorker } from '../launcher/index.js';
import { openSimulationPlatform, type SimulationPlatform } from '../platform/index.js';
import {
  openLevelStore,
  STORE_CALLS,
  type StoreCall,
  type StoreServiceLimits,
  storeOcalls,
} from '../store/index.js';
import { openDataDir } from './data-dir.js';
import { createHttpServer, type HttpLimits } from './http.js';
import { createLogger, type Logger } from './logger.js';
import { createNodeMetrics, type NodeMetrics } from './metrics.js';

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
}

export interface RunningNode {
  readonly url: string;
  readonly nodeId: string;
  readonly identityPublicKey: Uint8Array;
  readonly metrics: NodeMetrics;
  /**
   * Settles once the node has stopped: 'closed' after close(), 'enclave-failed' when the enclave
   * stopped on its own (the node then closes itself: it never serves without its enclave).
   */
  readonly stopped: Promise<'closed' | 'enclave-failed'>;
  /** Stops serving, stops the enclave and releases the directories. Idempotent. */
  close(): Promise<void>;
}

export class PortInUseError extends CloisterError {
  constructor(host: string, port: number) {
    super('PORT_IN_USE', `port ${port} on ${host} is already in use`);
  }
}

export class EnclaveBuildMissingError extends CloisterError {
  constructor(dir: string) {
    super('MANIFEST_INVALID', `no enclave build in ${dir}: run \`cloister build\` first`);
  }
}

/** The platform directory must sit outside every data directory (DESIGN.md §2, issue 2). */
function assertSeparate(dataDir: string, platformDir: string): void {
  const data = resolve(dataDir);
  const platform = resolve(platformDir);
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
    'platform.sealKey': (req: { policy: number; svn: number; keyId: Uint8Array }) => ({
      key: platform.sealKey(identity, req.policy === 1 ? 'code' : 'signer', req.svn, req.keyId),
    }),
    'platform.report': async (req: { reportData: Uint8Array }) => ({
      evidence: await platform.report(identity, req.reportData),
    }),
    'platform.counterRead': (req: { name: string }) => ({ value: platform.counterRead(req.name) }),
    'platform.counterIncrement': (req: { name: string }) => ({
      value: platform.counterIncrement(req.name),
    }),
    'host.ping': (req: { payload: Uint8Array }) => ({ payload: req.payload }),
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

function listen(server: ReturnType<typeof createHttpServer>, host: string, port: number) {
  return new Promise<AddressInfo>((resolve, reject) => {
    server.once('error', (e: NodeJS.ErrnoException) => {
      reject(e.code === 'EADDRINUSE' ? new PortInUseError(host, port) : e);
    });
    server.listen(port, host, () => resolve(server.address() as AddressInfo));
  });
}

/** Starts a node; resolves once it is listening. */
export async function startNode(opts: NodeOptions): Promise<RunningNode> {
  const log = opts.logger ?? createLogger();
  const host = opts.host ?? '127.0.0.1';
  const metrics = createNodeMetrics();
  const cleanup: (() => unknown)[] = [];
  const undo = async () => {
    for (const f of cleanup.reverse()) await Promise.resolve(f()).catch(() => {});
  };
  try {
    assertSeparate(opts.dataDir, opts.platformDir);
    const data = openDataDir(opts.dataDir);
    cleanup.push(() => data.close());
    const store = await openLevelStore(join(opts.dataDir, 'store'));
    cleanup.push(() => store.close());
    const platform = openSimulationPlatform({ dir: opts.platformDir });
    cleanup.push(() => platform.close());
    const { bundle, manifest } = readBuild(opts.enclaveDir);
    const identity = platform.admit(bundle, manifest);
    let stopping = false;
    let failed = false;
    let closeNode: () => Promise<void> = async () => {};
    const worker: EnclaveWorker = await launchEnclaveWorker({
      code: bundle,
      ocalls: enclaveOcalls(
        platform,
        identity,
        countStoreCalls(storeOcalls(store, opts.storeLimits), (call) =>
          metrics.storeCalls.inc({ call }),
        ),
      ),
      onProtocolError: () => log.warn({ event: 'boundary.malformed' }, 'dropped a malformed frame'),
      onLog: (level: number, event: string) => log[levelName(level)]({ event }, 'enclave'),
      onExit: () => {
        if (stopping) return;
        failed = true;
        log.fatal(
          { event: 'enclave.exited' },
          'the enclave stopped unexpectedly; stopping the node',
        );
        void closeNode();
      },
      onOutputDropped: (bytes: number) => metrics.enclaveOutputDropped.inc(bytes),
    });
    cleanup.push(() => worker.terminate());
    const started = await worker.call('enclave.start', {
      nodeId: data.nodeId,
      sealedNode: data.readSealedNode(),
    });
    if (started.sealedNode.length > 0) data.writeSealedNode(started.sealedNode);
    const server = createHttpServer({
      metrics,
      log,
      ...(opts.httpLimits ? { limits: opts.httpLimits } : {}),
      health: () => ({ status: stopping ? 'stopping' : 'ok', platform: identity.platform }),
      evidence: async (nonce) => {
        const r = await worker.call('enclave.evidence', { nonce });
        metrics.enclaveCalls.inc({ call: 'enclave.evidence', outcome: 'ok' });
        return r;
      },
    });
    const address = await listen(server, host, opts.port);
    cleanup.push(() => new Promise<void>((r) => server.close(() => r())));
    const url = `http://${host.includes(':') ? `[${host}]` : host}:${address.port}`;
    log.info(
      { event: 'node.listening', url, nodeId: data.nodeId, platform: identity.platform },
      'node started',
    );
    let closed: Promise<void> | undefined;
    let settle: (why: 'closed' | 'enclave-failed') => void = () => {};
    const stopped = new Promise<'closed' | 'enclave-failed'>((r) => {
      settle = r;
    });
    closeNode = () => {
      closed ??= (async () => {
        stopping = true;
        server.closeIdleConnections?.();
        if (!failed) await worker.call('enclave.stop', {}).catch(() => {});
        await undo();
        log.info({ event: 'node.stopped' }, 'node stopped');
        settle(failed ? 'enclave-failed' : 'closed');
      })();
      return closed;
    };
    return {
      url,
      nodeId: data.nodeId,
      identityPublicKey: started.identityPublicKey,
      metrics,
      stopped,
      close: closeNode,
    };
  } catch (e) {
    await undo();
    throw e;
  }
}

function levelName(level: number): 'trace' | 'debug' | 'info' | 'warn' | 'error' | 'fatal' {
  if (level >= 60) return 'fatal';
  if (level >= 50) return 'error';
  if (level >= 40) return 'warn';
  if (level >= 30) return 'info';
  if (level >= 20) return 'debug';
  return 'trace';
}
