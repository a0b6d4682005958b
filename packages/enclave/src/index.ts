/**
 * The enclave's entry point, called once by the shim with the enclave's only connection to the
 * host. It adapts the boundary RPC to the ports the enclave state machine is written against:
 * the platform (self report, sealing keys, evidence, counters), the record store (the host's
 * LevelDB through `store.*` calls) and the log (fixed event names only).
 */
import { BoundaryError, createEnclaveRpc, type Port } from '@cloister/boundary';
import { PLATFORM_NAME } from '@cloister/core';
import type { AppRuntime } from './apps/runtime/index.js';
import { createEnclave, type Enclave, type EnclavePlatform } from './enclave.js';
import type { Service } from './log/index.js';
import { SEAL_KEY_BYTES, SEAL_POLICY_CODE, SEAL_POLICY_SIGNER } from './seal.js';
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

/** The host's clock as the enclave reads it (createHostClock). */
export interface HostClock {
  /** A host message arrived (each frame of a batch counts); call before it is handled. */
  arrived(): void;
  /**
   * The message being handled carried the host's time (`scp.frame`'s `ms`): the value until the
   * next message, as fresh as a read asked for now, so handling it needs no synchronous read.
   */
  told(ms: number): void;
  /** The host's time in ms: the cached value, or a synchronous read when there is none. */
  read(): number;
}

/**
 * The host's clock (`host.time`: untrusted; the app runtime forces it monotonic). A synchronous
 * read blocks this thread until the host thread answers, which under load cost more of this
 * thread than the queries themselves (docs/performance.md, "The SCP benchmark"), so the value is
 * kept fresh by asynchronous reads (`ask`) instead. Rule: a value is used only while a read asked
 * for after it arrived is on its way, or until the next host message, so it is at most about one
 * boundary round trip old; a host message that arrives with no read on its way (the node may have
 * been idle for any time) drops it, and the next read is synchronous (`askSync`), as before. An
 * answer asks again at once only when the clock was read and other host messages arrived
 * meanwhile (the node is busy; the ask then leaves with the answers to that work); an idle node
 * stops asking. A message that carries the host's time (`told`) sets the value itself: it is as
 * fresh as the message.
 */
export function createHostClock(ask: () => Promise<number>, askSync: () => number): HostClock {
  let value: number | undefined;
  let asking = false;
  let readSince = false;
  /** Host messages arrived, and that count when the last ask left. */
  let arrivals = 0;
  let arrivalsAtAsk = 0;
  const refresh = (): void => {
    asking = true;
    readSince = false;
    arrivalsAtAsk = arrivals;
    ask().then(
      (ms) => {
        value = ms;
        asking = false;
        // More than the answer itself arrived: busy, so keep one read on its way.
        if (readSince && arrivals - arrivalsAtAsk > 1) refresh();
      },
      () => {
        value = undefined; // the next read asks synchronously
        asking = false;
      },
    );
  };
  return {
    arrived() {
      arrivals += 1;
      if (!asking) value = undefined;
    },
    told(ms) {
      value = ms;
    },
    read() {
      value ??= askSync();
      readSince = true;
      if (!asking) refresh();
      return value;
    },
  };
}

export function startEnclave(port: Port, hooks: StartEnclaveHooks = {}): void {
  // The RPC is created first so the ports can call through it; handlers only run once the host
  // sends a call, by which time `enclave` is assigned.
  let enclave: Enclave | undefined;
  const e = (): Enclave => {
    if (!enclave) throw new Error('enclave not ready');
    return enclave;
  };
  // The host's clock, kept fresh asynchronously (createHostClock); every host message is counted
  // before it is handled. `rpc` is assigned before any message or read can arrive.
  const clock = createHostClock(
    () => rpc.call('host.time', {}).then((r) => r.ms),
    () => rpc.callSync('host.time', {}).ms,
  );
  const clockedPort: Port = {
    post: (bytes) => port.post(bytes),
    callSync: (bytes) => port.callSync(bytes),
    onMessage: (handler) =>
      port.onMessage((bytes) => {
        clock.arrived();
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
    'scp.frame': (req) => {
      clock.told(req.ms);
      return e().scpFrame(req);
    },
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
    self: async () => {
      const self = await rpc.call('platform.self', {});
      // The host's answer, held to evidence's own forms (docs/evidence.md §2): the name selects
      // the app-trace gate and is repeated in messages, so a 100,000-character one went into
      // every refusal that names the platform.
      if (!PLATFORM_NAME.test(self.platform)) {
        throw new BoundaryError(
          `platform.self reply names the platform with ${self.platform.length} characters that are not 1-32 of a-z, 0-9 and - (the platform, or the host relaying it, answered wrongly)`,
        );
      }
      if (self.measurement.length !== 32 || self.signer.length !== 32) {
        throw new BoundaryError(
          `platform.self reply holds a ${self.measurement.length}-byte measurement and a ${self.signer.length}-byte signer; each is 32 bytes (the platform, or the host relaying it, answered wrongly)`,
        );
      }
      return self;
    },
    report: async (reportData) => (await rpc.call('platform.report', { reportData })).evidence,
    sealKey: async (policy, svn, keyId) => {
      const { key } = await rpc.call('platform.sealKey', {
        policy: policy === 'code' ? SEAL_POLICY_CODE : SEAL_POLICY_SIGNER,
        svn,
        keyId,
      });
      // The host's answer: a key of another length failed inside AES-GCM as an unnamed error
      // ("the handler failed"), so enclave.start was refused without saying why.
      if (key.length !== SEAL_KEY_BYTES) {
        throw new BoundaryError(
          `platform.sealKey reply holds a ${key.length}-byte key; a sealing key is ${SEAL_KEY_BYTES} bytes (the platform, or the host relaying it, answered wrongly)`,
        );
      }
      return key;
    },
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
    clock: () => clock.read(),
    scpSend: (session, frame) => rpc.emit('scp.send', { session, frame }),
    scpEnd: (session, code) => rpc.emit('scp.end', { session, code }),
    // Sent only once apps.trace enabled it, which the enclave allows on the simulation only.
    appTrace: (app, message) => rpc.emit('app.trace', { app, message }),
  });
}

export * from './log/index.js';
