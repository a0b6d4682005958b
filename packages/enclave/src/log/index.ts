/** The logchain service (docs/logchain.md). */

export {
  CHECKPOINT_LABEL,
  decodeCheckpoint,
  encodeCheckpoint,
  type LogCheckpoint,
} from './checkpoint.js';
export { ReceiptNotReadyError, StoreFormatError, UnknownTransactionError } from './errors.js';
export { signCose } from './log-crypto.js';
export { type LogStore, logStoreKey, READ_RANGE, STORE_NAMESPACE_LOG } from './log-store.js';
export {
  createLogchain,
  DEFAULT_SIGN_EVERY,
  type Logchain,
  type LogchainOptions,
} from './logchain.js';
export {
  createRootSeal,
  endorseService,
  type RotationResult,
  type Service,
  type ServiceEvent,
  type ServicePlatform,
  type ServiceStatus,
  type ServiceStore,
  STORE_FORMAT,
  STORE_FORMAT_KEY,
  type StartServiceOptions,
  startService,
} from './service.js';
export {
  EPOCH_COUNTER_PREFIX,
  newServiceState,
  openServiceState,
  SERVICE_STATE_PURPOSE,
  type ServiceState,
  sealServiceState,
  serviceStateOwner,
  withNewSecret,
} from './service-state.js';
export { WRITE_SET_AAD_LABEL, WRITE_SET_KEY_LABEL } from './write-set.js';
