export { EnclaveFailedError } from './errors.js';
export { createWorkerHostPort, type WorkerHostPort } from './host-port.js';
export {
  DEFAULT_RESOURCE_LIMITS,
  ENCLAVE_CPU_PROF_ENV,
  type EnclaveWorker,
  type LaunchOptions,
  launchEnclaveWorker,
} from './launcher.js';
