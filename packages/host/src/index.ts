export { type Logger, type LoggerOptions, createLogger } from './node/logger.js';
export { type NodeMetrics, createNodeMetrics } from './node/metrics.js';
export { DEFAULT_HTTP_LIMITS, type HttpLimits, MAX_NONCE_BYTES } from './node/http.js';
export {
  EnclaveBuildMissingError,
  type NodeOptions,
  PortInUseError,
  type RunningNode,
  startNode,
} from './node/node.js';
