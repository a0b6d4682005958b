/**
 * The enclave's entry point, called once by the shim with the enclave's only connection to the
 * host. It adapts the boundary RPC to the ports the enclave state machine is written against:
 * the platform (self report, sealing keys, evidence) and the log (fixed event names only).
 */
import { createEnclaveRpc, type Port } from '@cloister/boundary';
import { createEnclave, type EnclavePlatform } from './enclave.js';
import { SEAL_POLICY_CODE, SEAL_POLICY_SIGNER } from './seal.js';

export { createEnclave, type Enclave, type EnclavePlatform } from './enclave.js';

export function startEnclave(port: Port): void {
  // The RPC is created first so the platform port can call through it; handlers only run once
  // the host sends a call, by which time `rpc` is assigned.
  let rpc: ReturnType<typeof createEnclaveRpc> | undefined;
  const host = () => {
    if (!rpc) throw new Error('boundary not ready');
    return rpc;
  };
  const platform: EnclavePlatform = {
    self: () => host().call('platform.self', {}),
    report: async (reportData) => (await host().call('platform.report', { reportData })).evidence,
    sealKey: async (policy, svn, keyId) =>
      (
        await host().call('platform.sealKey', {
          policy: policy === 'code' ? SEAL_POLICY_CODE : SEAL_POLICY_SIGNER,
          svn,
          keyId,
        })
      ).key,
  };
  const enclave = createEnclave({
    platform,
    log: (level, event) => host().emit('log', { level, event }),
  });
  rpc = createEnclaveRpc(port, {
    'enclave.start': (req) => enclave.start(req),
    'enclave.evidence': (req) => enclave.evidence(req),
    'enclave.ping': (req) => enclave.ping(req),
    'enclave.stop': () => enclave.stop(),
  });
}
