/**
 * `cloister console [NODE_URL] [--port N] [--constraint C] [--open]`: serves the console page from
 * this installation on 127.0.0.1 (never from the node: a page the host serves would let it ship
 * the verifier; localhost is a secure context, so the page has WebCrypto), prints its URL and runs
 * until interrupted. Without --constraint the page says none was given and asks for one.
 */
import { spawn } from 'node:child_process';
import { startConsole } from '@cloister/console';
import { fetchNode } from '../node-http.js';
import { exitCodeOf, printError } from '../output.js';
import { cloisterHome } from '../paths.js';
import { DEFAULT_NODE_URL } from './app-deploy.js';

export interface ConsoleCommandOptions {
  /** The Cloister home: the page's pins and signed roots are kept in its client-state.json. */
  readonly home?: string;
  readonly port?: number;
  readonly constraint?: string;
  readonly open?: boolean;
}

/** Opens `url` in the desktop's browser when there is one; says what to do when there is not. */
function openBrowser(url: string): void {
  const cmd =
    process.platform === 'darwin' ? 'open' : process.platform === 'win32' ? 'explorer' : 'xdg-open';
  const p = spawn(cmd, [url], { stdio: 'ignore', detached: true });
  p.on('error', () =>
    process.stderr.write(`could not open a browser (${cmd} failed): open ${url} yourself\n`),
  );
  p.unref();
}

export async function consoleCommand(
  nodeUrl: string | undefined,
  o: ConsoleCommandOptions,
): Promise<number> {
  let server: Awaited<ReturnType<typeof startConsole>>;
  const url = nodeUrl ?? DEFAULT_NODE_URL;
  try {
    server = await startConsole({
      nodeUrl: url,
      ...(o.port === undefined ? {} : { port: o.port }),
      ...(o.constraint === undefined ? {} : { constraint: o.constraint }),
      stateDir: cloisterHome(o.home),
    });
  } catch (e) {
    printError(e);
    return exitCodeOf(e);
  }
  process.stdout.write(
    `console for ${url}: ${server.url}\n` +
      (o.constraint === undefined
        ? '  no --constraint given: the page will ask for one (nothing is accepted without it)\n'
        : '') +
      '  served by this installation on localhost only; press Ctrl-C to stop\n',
  );
  // Not a reason to stop (the node may start later), but a reason to say so now.
  try {
    await fetchNode(new URL('/v1/health', url), 3000);
  } catch (e) {
    process.stderr.write(`  note: ${(e as Error).message}; the page connects when you ask it to\n`);
  }
  if (o.open === true) openBrowser(server.url);
  await new Promise<void>((resolve) => {
    process.once('SIGINT', resolve);
    process.once('SIGTERM', resolve);
  });
  await server.close();
  return 0;
}
