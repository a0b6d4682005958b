/**
 * The app runtime: ABI v1 (docs/app-abi.md) on top of the sandbox (docs/sandbox.md) and the
 * ledger engine. `createAppRuntime({ engine })` deploys modules and runs queries and transactions.
 */
export {
  ABI_VERSION,
  type AbiLimits,
  ALLOWED_IMPORTS,
  DEFAULT_ABI_LIMITS,
  EXPORTS,
  FUEL_PER_ENTRY,
  FUEL_PER_KEY_WRITTEN,
  HOST_CHARGED_BASE,
  IMPORT_MODULE,
  IMPORTS,
  type ImportSpec,
  JSON_FUEL_PER_BYTE,
  KEY_KIND,
  KEYS_TABLE,
  KIND,
  MAX_TRACE_LINES,
  REQUESTS_TABLE,
  STATUS,
  SUPPORTED_ABI_VERSIONS,
} from './abi.js';
export {
  AbiError,
  AbiVersionError,
  AppAbortError,
  AppCodeChangedError,
  AppError,
  AppNotFoundError,
  MethodKindError,
  MethodUnknownError,
  QueryWriteError,
  RequestIdReusedError,
  ResultInvalidError,
} from './errors.js';
export { type CallKind, encodeHistory, encodePage } from './host.js';
export {
  type AppCall,
  type AppCallResult,
  type AppRuntime,
  type AppRuntimeOptions,
  callerIdOf,
  checkAppId,
  createAppRuntime,
  DEFAULT_INSTANCE_POOL,
  type DeployedApp,
  type PreparedApp,
  type RequestStatus,
  type RouteInfo,
} from './runtime.js';
