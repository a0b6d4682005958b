export {
  type BuildResult,
  buildEnclave,
  measureBuild,
  readBuild,
  readEnclaveConfig,
} from './build/build.js';
export { DEFAULT_HTTP_LIMITS, type HttpLimits, MAX_NONCE_BYTES } from './node/http.js';
export { createLogger, type Logger, type LoggerOptions } from './node/logger.js';
export { createNodeMetrics, type NodeMetrics } from './node/metrics.js';
export {
  EnclaveBuildMissingError,
  type NodeOptions,
  PortInUseError,
  type RunningNode,
  startNode,
} from './node/node.js';
export type { EnclaveIdentity, SimulationPlatform } from './platform/index.js';
export { defaultPlatformDir, openSimulationPlatform } from './platform/index.js';
