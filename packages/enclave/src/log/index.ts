/** The logchain service (docs/logchain.md). */
export { ReceiptNotReadyError, StoreFormatError, UnknownTransactionError } from './errors.js';
export {
  CHECKPOINT_LABEL,
  createLogchain,
  DEFAULT_SIGN_EVERY,
  decodeCheckpoint,
  encodeCheckpoint,
  type LogCheckpoint,
  type Logchain,
  type LogchainOptions,
  type LogStore,
  logStoreKey,
  STORE_NAMESPACE_LOG,
  signCose,
  WRITE_SET_AAD_LABEL,
  WRITE_SET_KEY_LABEL,
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
