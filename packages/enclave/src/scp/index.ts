/**
 * The enclave's side of the secure connection protocol (docs/scp.md): node:crypto primitives, the
 * node key as signer, the session server and its operations.
 */
export { nodeScpCrypto, nodeScpSigner } from '@cloister/node-crypto';
export { AppCodeChangedError } from '../apps/runtime/index.js';
export { createScpOps, type OpContext, type ScpOpsDeps } from './ops.js';
export {
  createScpServer,
  DEFAULT_MAX_SESSIONS,
  MAX_CONCURRENT,
  MAX_QUEUED_FRAMES,
  type ScpServer,
  type ScpServerOptions,
} from './server.js';
