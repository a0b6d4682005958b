/**
 * The enclave's entry point, called once by the shim with the enclave's only connection to the
 * host. Placeholder: answers `enclave.ping`; the enclave proper replaces this body.
 */
import { createEnclaveRpc, type Port } from '@cloister/boundary';

export function startEnclave(port: Port): void {
  createEnclaveRpc(port, {
    'enclave.ping': (req) => ({ payload: req.payload }),
  });
}
