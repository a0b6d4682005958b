/**
 * @cloister/console: the console page and the local server that serves it on 127.0.0.1
 * (`cloister console`). The page verifies the node in the browser; see src/server.ts.
 */
export {
  bundlePage,
  type ConsoleOptions,
  type ConsoleServer,
  consolePortInUse,
  DEFAULT_CONSOLE_PORT,
  MAX_PROXIED_BYTES,
  PROXIED,
  startConsole,
} from './server.js';
