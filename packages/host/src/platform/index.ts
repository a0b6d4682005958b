export { COUNTERS_FILE, type CounterStore } from './counters.js';
export { CounterError, ManifestError, PlatformStateError, SealPolicyError } from './errors.js';
export { FORMAT_FILE, KEY_FILE, PLATFORM_FORMAT, PLATFORM_VERSION, SECRET_FILE } from './files.js';
export {
  generateP256,
  privateKeyFromPem,
  privateKeyToPem,
  publicKeyBytes,
  publicKeyFromBytes,
  signEs256,
  verifyEs256Sync,
} from './p256.js';
export {
  deriveSealingKey,
  KEY_ID_LENGTH,
  SEAL_LABEL_CODE,
  SEAL_LABEL_SIGNER,
  SEAL_SALT,
  type SealingIdentity,
} from './sealing.js';
export {
  defaultPlatformDir,
  type OpenSimulationPlatformOptions,
  openSimulationPlatform,
} from './simulation.js';
export type { EnclaveIdentity, SealPolicy, SimulationPlatform } from './types.js';
