/**
 * The enclave's top level: a small state machine that answers the host's calls (the ecalls of
 * the boundary catalogue) using only what the platform and store ports give it. It is written
 * against injected ports, not the worker, so tests drive it directly and put a malicious
 * platform or host on the other side.
 *
 * States: 'new' -> (enclave.start) -> 'starting' -> 'running' -> (enclave.stop) -> 'stopped'; a
 * failed start goes back to 'new'; enclave.stop in any state leads to 'stopped', which is final.
 * Invariant: `identity` and `service` are set if and only if state === 'running'.
 *
 * `enclave.start` opens the node identity, then the logchain service (startService: genesis on
 * an empty store, else the stored log verified from the sealed checkpoint and the platform
 * counter). Any failure of either fails the start with its named error (it crosses the boundary
 * with its code): the node refuses to serve rather than serve a wrong state.
 */
import { CloisterError, computeReportData, InvalidInputError } from '@cloister/core';
import {
  type AppAdmin,
  createAppAdmin,
  encodeAppRecords,
  recordedCode,
} from './apps/deploy/index.js';
import { type AppRuntime, createAppRuntime } from './apps/runtime/index.js';
import { type Service, type ServiceStore, startService } from './log/index.js';
import { createNodeState, type NodeIdentity, openNodeState } from './node-state.js';
import { createScpServer, nodeScpCrypto, nodeScpSigner, type ScpServer } from './scp/index.js';
import type { SealKeySource } from './seal.js';

/** What the enclave knows about itself, as the platform measured it at launch. */
export interface SelfReport {
  readonly platform: string;
  readonly measurement: Uint8Array;
  readonly signer: Uint8Array;
  readonly product: number;
  readonly svn: number;
}

/** The platform as the enclave sees it (through the boundary). */
export interface EnclavePlatform extends SealKeySource {
  /** The identity the platform measured and verified when it launched this enclave. */
  self(): Promise<SelfReport>;
  /** Signed evidence carrying this enclave's identity and `reportData` (64 bytes). */
  report(reportData: Uint8Array): Promise<Uint8Array>;
  /** The platform's increment-only counters (rollback detection of the whole data directory). */
  counterRead(name: string): Promise<number>;
  counterIncrement(name: string): Promise<number>;
}

/** Fixed event names the enclave may log: never data, keys or identities. */
export type EnclaveEvent =
  | 'enclave.started.new-identity'
  | 'enclave.started.existing-identity'
  | 'enclave.started.upgraded'
  | 'enclave.start-refused'
  | 'enclave.stopped'
  | 'service.secret-rotated'
  | 'apps.reload-failed'
  | 'apps.deployed'
  | 'apps.operator-recorded'
  | 'scp.session-failed'
  | 'scp.handshake-failed'
  | 'scp.sessions-full';

export interface EnclaveOptions {
  readonly platform: EnclavePlatform;
  /** The host's record store, through the boundary (createBoundaryStore). */
  readonly store: ServiceStore;
  /** Fixed event names only (the enclave's own and the service's); the boundary checks them. */
  readonly log?: (level: number, event: string) => void;
  /** A signature entry after this many unsigned entries (startService's default when unset). */
  readonly signEvery?: number;
  /**
   * Has the host write the sealed service state durably (`service.persist`); awaited during a
   * secret rotation before the rotation entry commits.
   */
  readonly persist: (sealedService: Uint8Array) => Promise<void>;
  /**
   * The host's clock in ms (`host.time`, untrusted); the app runtime reads it once per call and
   * forces it monotonic. Without it apps see time 0.
   */
  readonly clock?: () => number;
  /** `scp.send`: a frame for a secure session's socket, in order. Without it sessions are refused. */
  readonly scpSend?: (session: number, frame: Uint8Array) => void;
  /** `scp.end`: the session ended; the host closes its socket after the frames sent before. */
  readonly scpEnd?: (session: number, code: string) => void;
  /** Secure sessions at most (default DEFAULT_MAX_SESSIONS). */
  readonly maxScpSessions?: number;
  /**
   * `app.trace`: one line of an app's debug output (AssemblyScript `trace`). App DATA: called only
   * after `appsTrace({ enable: true })`, which only the simulation platform accepts.
   */
  readonly appTrace?: (app: string, message: string) => void;
}

/** The logchain service's public status (`service.status`). */
export interface ServiceStatusReply {
  index: number;
  term: number;
  lastSigned: number;
  stateHash: Uint8Array;
  treeRoot: Uint8Array;
  serviceIdentity: Uint8Array;
  servicePublicKey: Uint8Array;
  epoch: number;
  generation: number;
}

export interface Enclave {
  start(req: { nodeId: string; sealedNode: Uint8Array; sealedService: Uint8Array }): Promise<{
    identityPublicKey: Uint8Array;
    sealedNode: Uint8Array;
    sealedService: Uint8Array;
  }>;
  evidence(req: {
    nonce: Uint8Array;
  }): Promise<{ evidence: Uint8Array; identityPublicKey: Uint8Array }>;
  ping(req: { payload: Uint8Array }): { payload: Uint8Array };
  status(): ServiceStatusReply;
  receipt(req: { txid: string }): { receipt: Uint8Array };
  consistency(req: { from: number; to: number }): { proof: Uint8Array[] };
  tick(): Promise<Record<string, never>>;
  rotateSecret(): Promise<{ sealedService: Uint8Array; txid: string; generation: number }>;
  /**
   * Records the operator key at its first start (65 bytes; empty = none given), refuses another
   * one (OPERATOR_KEY_MISMATCH), reloads every recorded app into the runtime.
   */
  appsOpen(req: { operatorKey: Uint8Array }): Promise<{ apps: number; txid: string }>;
  /** Deploy or upgrade (docs/node-api.md "Apps"): one logged transaction of `$admin`. */
  appsDeploy(req: { request: Uint8Array; module: Uint8Array }): Promise<{
    txid: string;
    app: string;
    codeId: Uint8Array;
    index: number;
    migrated: boolean;
  }>;
  /** Public code history, CBOR (encodeAppRecords); app '' = every app. */
  appsInfo(req: { app: string }): { info: Uint8Array };
  /**
   * Turns the apps' debug output on or off (`apps.trace`). Refused with INVALID_INPUT unless this
   * enclave's platform is the simulation: trace text is app data, sent to the host in the clear.
   */
  appsTrace(req: { enable: boolean }): { enabled: boolean };
  /** A new secure session (docs/scp.md); SCP_SESSIONS when the table is full. */
  scpOpen(): { session: number };
  /**
   * One frame of a session, processed after its earlier frames: `{}` when it was processed in
   * the call, else a promise resolving once it is processed.
   */
  scpFrame(req: {
    session: number;
    frame: Uint8Array;
  }): Record<string, never> | Promise<Record<string, never>>;
  /** The session's socket is gone: forget it. */
  scpClose(req: { session: number }): Record<string, never>;
  stop(): Record<string, never>;
  /** The running service (tests drive its engine directly); undefined unless running. */
  readonly service: Service | undefined;
  /** The app runtime over the service's engine (tests call apps with it); undefined unless running. */
  readonly runtime: AppRuntime | undefined;
}

export class EnclaveStateError extends CloisterError {
  constructor(message: string) {
    super('BOUNDARY', message);
  }
}

const NODE_ID = /^[a-z0-9][a-z0-9-]{0,63}$/;
const MAX_NONCE = 64;
const MAX_PING = 64 * 1024;
/** `term.index`: two numbers of at most 16 digits and the dot. */
const MAX_TXID = 33;

/** The one platform on which apps' debug output may leave the enclave (it protects nothing). */
const SIMULATION_PLATFORM = 'simulation';

/** `trace("msg", n, a0, ...)` as one line: the message, then the values AssemblyScript passed. */
function formatTrace(message: string, values: readonly number[]): string {
  return values.length === 0 ? message : `${message} ${values.join(', ')}`;
}

export function createEnclave(opts: EnclaveOptions): Enclave {
  const { platform, store } = opts;
  const log = opts.log ?? (() => {});
  let state: 'new' | 'starting' | 'running' | 'stopped' = 'new';
  let identity: NodeIdentity | undefined;
  let service: Service | undefined;
  let runtime: AppRuntime | undefined;
  let admin: AppAdmin | undefined;
  let scp: ScpServer | undefined;
  // Invariant: true only while running on a platform whose self report (read at start) says
  // 'simulation', and only after the host asked for it (appsTrace).
  let tracing = false;
  let selfPlatform: string | undefined;

  /** Read through a call: `state` is narrowed to 'starting' across start's awaits otherwise. */
  function stoppedMeanwhile(): boolean {
    return state === 'stopped';
  }

  function requireScp(): ScpServer {
    if (state !== 'running' || !scp)
      throw new EnclaveStateError(`enclave is ${state}, not running`);
    return scp;
  }

  function requireAdmin(): AppAdmin {
    if (state !== 'running' || !admin)
      throw new EnclaveStateError(`enclave is ${state}, not running`);
    return admin;
  }

  function requireRunning(): NodeIdentity {
    if (state !== 'running' || !identity)
      throw new EnclaveStateError(`enclave is ${state}, not running`);
    return identity;
  }

  function requireService(): Service {
    if (state !== 'running' || !service)
      throw new EnclaveStateError(`enclave is ${state}, not running`);
    return service;
  }

  return {
    get service() {
      return state === 'running' ? service : undefined;
    },

    get runtime() {
      return state === 'running' ? runtime : undefined;
    },

    async start({ nodeId, sealedNode, sealedService }) {
      if (state !== 'new') throw new EnclaveStateError(`enclave.start called while ${state}`);
      if (!NODE_ID.test(nodeId)) throw new InvalidInputError('node id must match [a-z0-9-]{1,64}');
      state = 'starting';
      try {
        const self = await platform.self();
        selfPlatform = self.platform;
        const opened =
          sealedNode.length === 0
            ? await createNodeState(platform, nodeId, self.svn)
            : await openNodeState(platform, nodeId, self.svn, sealedNode);
        const started = await startService({
          platform,
          store,
          node: opened.identity,
          svn: self.svn,
          sealedService,
          ...(opts.signEvery !== undefined ? { signEvery: opts.signEvery } : {}),
          log,
        });
        // enclave.stop arrived while this start waited on the host: 'stopped' is final. (The start
        // went on to run the enclave after stop had answered, or a failing one reset it to 'new'.)
        if (stoppedMeanwhile()) {
          started.service.close();
          throw new EnclaveStateError('enclave.stop arrived during enclave.start: stays stopped');
        }
        identity = opened.identity;
        service = started.service;
        const { appTrace } = opts;
        runtime = createAppRuntime({
          engine: started.service.engine,
          currentCode: recordedCode,
          ...(opts.clock ? { now: opts.clock } : {}),
          ...(appTrace
            ? {
                trace: (app: string, message: string, values: readonly number[]) => {
                  if (tracing) appTrace(app, formatTrace(message, values));
                },
              }
            : {}),
        });
        admin = createAppAdmin({
          engine: started.service.engine,
          runtime,
          serviceIdentity: started.service.serviceIdentity,
          appDataToHost: () => tracing,
          log,
        });
        const { scpSend, scpEnd } = opts;
        if (scpSend && scpEnd) {
          scp = createScpServer({
            crypto: nodeScpCrypto,
            signer: nodeScpSigner(opened.identity.privateKey, opened.identity.publicKey),
            service: started.service,
            runtime,
            admin,
            send: scpSend,
            end: scpEnd,
            log,
            ...(opts.maxScpSessions !== undefined ? { maxSessions: opts.maxScpSessions } : {}),
          });
        }
        state = 'running';
        log(
          30,
          sealedNode.length === 0
            ? 'enclave.started.new-identity'
            : opened.resealed
              ? 'enclave.started.upgraded'
              : 'enclave.started.existing-identity',
        );
        return {
          identityPublicKey: identity.publicKey,
          sealedNode: opened.resealed ?? new Uint8Array(0),
          sealedService: started.sealedService,
        };
      } catch (e) {
        if (!stoppedMeanwhile()) state = 'new';
        identity = undefined;
        service = undefined;
        runtime = undefined;
        admin = undefined;
        scp = undefined;
        log(50, 'enclave.start-refused');
        throw e;
      }
    },

    async evidence({ nonce }) {
      const id = requireRunning();
      if (nonce.length > MAX_NONCE) {
        throw new InvalidInputError(`nonce is ${nonce.length} bytes; at most ${MAX_NONCE} allowed`);
      }
      const evidence = await platform.report(computeReportData(id.publicKey, nonce));
      return { evidence, identityPublicKey: id.publicKey };
    },

    ping({ payload }) {
      if (payload.length > MAX_PING) throw new InvalidInputError('ping payload too large');
      return { payload };
    },

    status() {
      const svc = requireService();
      const st = svc.status();
      return {
        index: st.index,
        term: st.term,
        lastSigned: st.lastSigned,
        stateHash: st.stateHash,
        treeRoot: st.treeRoot,
        serviceIdentity: svc.serviceIdentity,
        servicePublicKey: svc.servicePublicKey,
        epoch: st.epoch,
        generation: st.generation,
      };
    },

    receipt({ txid }) {
      const svc = requireService();
      if (txid.length > MAX_TXID) {
        throw new InvalidInputError('txid must be term.index, e.g. 1.5');
      }
      return { receipt: svc.receipt(txid) };
    },

    consistency({ from, to }) {
      return { proof: requireService().consistency(from, to) };
    },

    async tick() {
      await requireService().tick();
      return {};
    },

    async rotateSecret() {
      // The service logs 'service.secret-rotated' itself once the rotation entry commits.
      const r = await requireService().rotateSecret(opts.persist);
      return { sealedService: r.sealedService, txid: r.txid, generation: r.generation };
    },

    async appsOpen({ operatorKey }) {
      const r = await requireAdmin().open(operatorKey);
      if (r.txid !== '') log(30, 'apps.operator-recorded');
      return r;
    },

    appsDeploy({ request, module }) {
      return requireAdmin().deploy(request, module);
    },

    appsInfo({ app }) {
      return { info: encodeAppRecords(requireAdmin().info(app)) };
    },

    appsTrace({ enable }) {
      requireRunning();
      if (enable && selfPlatform !== SIMULATION_PLATFORM) {
        throw new InvalidInputError(
          `app trace output is refused on the ${selfPlatform} platform: it would send app data to the host in the clear (simulation only)`,
        );
      }
      tracing = enable && opts.appTrace !== undefined;
      return { enabled: tracing };
    },

    scpOpen() {
      return { session: requireScp().open() };
    },

    scpFrame({ session, frame }) {
      // Processed in the call (the usual case): answered at once, without a promise per frame.
      const done = requireScp().frame(session, frame);
      return done === undefined ? {} : done.then(() => ({}));
    },

    scpClose({ session }) {
      requireScp().close(session);
      return {};
    },

    stop() {
      state = 'stopped';
      tracing = false;
      identity = undefined;
      runtime = undefined;
      admin = undefined;
      scp = undefined;
      const svc = service;
      service = undefined;
      svc?.close();
      log(30, 'enclave.stopped');
      return {};
    },
  };
}
