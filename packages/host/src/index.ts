export {
  type BuildResult,
  buildEnclave,
  measureBuild,
  readBuild,
  readEnclaveConfig,
} from './build/build.js';
export { PUBLIC_FILE_MODE, writeFileAtomic } from './fs/index.js';
export {
  DEFAULT_HTTP_LIMITS,
  DEFAULT_MAX_DEPLOY_BYTES,
  DEPLOY_REQUEST_HEADER,
  type DeployReply,
  type HttpLimits,
  MAX_NONCE_BYTES,
  type ServiceStatus,
} from './node/http.js';
export { createLogger, type Logger, type LoggerOptions } from './node/logger.js';
export { createNodeMetrics, type NodeMetrics } from './node/metrics.js';
export {
  DEFAULT_SIGN_INTERVAL_MS,
  EnclaveBuildMissingError,
  type NodeDirs,
  type NodeOptions,
  NodeRunningError,
  PortInUseError,
  type RotatedSecret,
  type RunningNode,
  rotateServiceSecret,
  startNode,
} from './node/node.js';
export {
  type DeployRequestFields,
  encodeDeployBody,
  loadOperatorKey,
  loadOrCreateOperatorKey,
  type OperatorKey,
  signDeployRequest,
} from './node/operator.js';
export {
  DEFAULT_SCP_RELAY_LIMITS,
  SCP_PATH,
  type ScpRelayLimits,
} from './node/scp-relay.js';
export { loadTlsFiles, TlsConfigError, type TlsFiles } from './node/tls.js';
export type { EnclaveIdentity, SimulationPlatform } from './platform/index.js';
export { defaultPlatformDir, openSimulationPlatform } from './platform/index.js';
export { type LevelStore, openLevelStore } from './store/index.js';
