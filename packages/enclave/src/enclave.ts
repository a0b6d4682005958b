/**
 * The enclave's top level: a small state machine that answers the host's calls (the ecalls of
 * the boundary catalogue) using only what the platform port gives it. It is written against
 * injected ports, not the worker, so tests drive it directly and put a malicious platform or host
 * on the other side.
 *
 * States: 'new' -> (enclave.start) -> 'running' -> (enclave.stop) -> 'stopped'.
 * Invariant: `identity` is set if and only if state === 'running'.
 */
import { CloisterError, computeReportData, InvalidInputError } from '@cloister/core';
import { createNodeState, type NodeIdentity, openNodeState } from './node-state.js';
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
}

/** Fixed event names the enclave may log: never data, keys or identities. */
export type EnclaveEvent =
  | 'enclave.started.new-identity'
  | 'enclave.started.existing-identity'
  | 'enclave.started.upgraded'
  | 'enclave.stopped';

export interface EnclaveOptions {
  readonly platform: EnclavePlatform;
  readonly log?: (level: number, event: EnclaveEvent) => void;
}

export interface Enclave {
  start(req: { nodeId: string; sealedNode: Uint8Array }): Promise<{
    identityPublicKey: Uint8Array;
    sealedNode: Uint8Array;
  }>;
  evidence(req: {
    nonce: Uint8Array;
  }): Promise<{ evidence: Uint8Array; identityPublicKey: Uint8Array }>;
  ping(req: { payload: Uint8Array }): { payload: Uint8Array };
  stop(): Record<string, never>;
}

export class EnclaveStateError extends CloisterError {
  constructor(message: string) {
    super('BOUNDARY', message);
  }
}

const NODE_ID = /^[a-z0-9][a-z0-9-]{0,63}$/;
const MAX_NONCE = 64;
const MAX_PING = 64 * 1024;

export function createEnclave(opts: EnclaveOptions): Enclave {
  const { platform } = opts;
  const log = opts.log ?? (() => {});
  let state: 'new' | 'starting' | 'running' | 'stopped' = 'new';
  let identity: NodeIdentity | undefined;

  function requireRunning(): NodeIdentity {
    if (state !== 'running' || !identity)
      throw new EnclaveStateError(`enclave is ${state}, not running`);
    return identity;
  }

  return {
    async start({ nodeId, sealedNode }) {
      if (state !== 'new') throw new EnclaveStateError(`enclave.start called while ${state}`);
      if (!NODE_ID.test(nodeId)) throw new InvalidInputError('node id must match [a-z0-9-]{1,64}');
      state = 'starting';
      try {
        const self = await platform.self();
        const opened =
          sealedNode.length === 0
            ? await createNodeState(platform, nodeId, self.svn)
            : await openNodeState(platform, nodeId, self.svn, sealedNode);
        identity = opened.identity;
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
        };
      } catch (e) {
        state = 'new';
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

    stop() {
      state = 'stopped';
      identity = undefined;
      log(30, 'enclave.stopped');
      return {};
    },
  };
}
