/**
 * The enclave's entry point, called once by the shim with the enclave's only connection to the
 * host. It adapts the boundary RPC to the ports the enclave state machine is written against:
 * the platform (self report, sealing keys, evidence, counters), the record store (the host's
 * LevelDB through `store.*` calls) and the log (fixed event names only).
 */
import { createEnclaveRpc, type Port } from '@cloister/boundary';
import type { AppRuntime } from './apps/runtime/index.js';
import { createEnclave, type Enclave, type EnclavePlatform } from './enclave.js';
import type { Service } from './log/index.js';
import { SEAL_POLICY_CODE, SEAL_POLICY_SIGNER } from './seal.js';
import { createBoundaryStore } from './store/index.js';

export { createEnclave, type Enclave, type EnclavePlatform } from './enclave.js';

/**
 * TEST ONLY hooks (the shipped shim passes none): test enclaves that wrap the real one
 * (host/test/fixtures) get the running service and may answer `enclave.ping` themselves.
 */
export interface StartEnclaveHooks {
  /** Called once the service runs (after a successful `enclave.start`). */
  readonly onService?: (service: Service) => void;
  /** Answers `enclave.ping` instead of the echo. */
  readonly ping?: (payload: Uint8Array) => Promise<Uint8Array>;
  /** Called once the app runtime exists (after a successful `enclave.start`): tests call apps. */
  readonly onRuntime?: (runtime: AppRuntime) => void;
}

export function startEnclave(port: Port, hooks: StartEnclaveHooks = {}): void {
  // The RPC is created first so the ports can call through it; handlers only run once the host
  // sends a call, by which time `enclave` is assigned.
  let enclave: Enclave | undefined;
  const e = (): Enclave => {
    if (!enclave) throw new Error('enclave not ready');
    return enclave;
  };
  // The host's clock is read at most once per message from the host (a sync call blocks this
  // thread until the host thread answers: one per app call cost ~15 % of a query). Every
  // enclave computation starts from a host message, so the cached value is at most as old as
  // the work it stamps; the time is untrusted anyway and the runtime forces it monotonic.
  let hostTime: number | undefined;
  const clockedPort: Port = {
    post: (bytes) => port.post(bytes),
    callSync: (bytes) => port.callSync(bytes),
    onMessage: (handler) =>
      port.onMessage((bytes) => {
        hostTime = undefined;
        handler(bytes);
      }),
  };
  const rpc = createEnclaveRpc(clockedPort, {
    'enclave.start': async (req) => {
      const r = await e().start(req);
      const service = e().service;
      if (service) hooks.onService?.(service);
      const runtime = e().runtime;
      if (runtime) hooks.onRuntime?.(runtime);
      return r;
    },
    'apps.open': (req) => e().appsOpen(req),
    'apps.deploy': (req) => e().appsDeploy(req),
    'apps.info': (req) => e().appsInfo(req),
    'apps.trace': (req) => e().appsTrace(req),
    'scp.open': () => e().scpOpen(),
    'scp.frame': (req) => e().scpFrame(req),
    'scp.close': (req) => e().scpClose(req),
    'enclave.evidence': (req) => e().evidence(req),
    'enclave.ping': async (req) => {
      const { ping } = hooks;
      return ping ? { payload: await ping(req.payload) } : e().ping(req);
    },
    'enclave.stop': () => e().stop(),
    'service.status': () => e().status(),
    'service.receipt': (req) => e().receipt(req),
    'service.consistency': (req) => e().consistency(req),
    'service.tick': () => e().tick(),
    'service.rotateSecret': () => e().rotateSecret(),
  });
  const platform: EnclavePlatform = {
    self: () => rpc.call('platform.self', {}),
    report: async (reportData) => (await rpc.call('platform.report', { reportData })).evidence,
    sealKey: async (policy, svn, keyId) =>
      (
        await rpc.call('platform.sealKey', {
          policy: policy === 'code' ? SEAL_POLICY_CODE : SEAL_POLICY_SIGNER,
          svn,
          keyId,
        })
      ).key,
    counterRead: async (name) => (await rpc.call('platform.counterRead', { name })).value,
    counterIncrement: async (name) => (await rpc.call('platform.counterIncrement', { name })).value,
  };
  enclave = createEnclave({
    platform,
    store: createBoundaryStore(rpc),
    log: (level, event) => rpc.emit('log', { level, event }),
    persist: async (sealedService) => {
      await rpc.call('service.persist', { sealedService });
    },
    clock: () => {
      hostTime ??= rpc.callSync('host.time', {}).ms;
      return hostTime;
    },
    scpSend: (session, frame) => rpc.emit('scp.send', { session, frame }),
    scpEnd: (session, code) => rpc.emit('scp.end', { session, code }),
    // Sent only once apps.trace enabled it, which the enclave allows on the simulation only.
    appTrace: (app, message) => rpc.emit('app.trace', { app, message }),
  });
}

export * from './log/index.js';
