/**
 * `cloister quickstart` (what `npm start` runs after `cloister build`): starts a local node on the
 * simulation platform, builds the example apps (examples/) with the pinned compiler and deploys
 * them with the operator key as `cloister app deploy` does — an app already deployed with the
 * same code id is left alone, a changed one is upgraded —, serves the console from this
 * installation on localhost, and prints the node URL, the constraint a client should use and the
 * console URL. It opens no browser. Ctrl-C (or SIGTERM) stops the console and the node.
 *
 * The constraint is derived, not taken from the node: the measurement comes from the signed
 * enclave build in this installation, the node's evidence is checked against it in this process
 * (a fresh nonce) before its platform key is pinned with `SIM:`, and the `APP:` clauses are the
 * code ids this process compiled.
 */
import { createHash } from 'node:crypto';
import {
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { fileState, scpUrl } from '@cloister/client/node';
import { consolePortInUse, DEFAULT_CONSOLE_PORT, startConsole } from '@cloister/console';
import {
  CloisterError,
  fromBase64,
  fromHex,
  InvalidInputError,
  parseConstraint,
  sha256,
  toHex,
  verifyEvidence,
} from '@cloister/core';
import { createLogger, type RunningNode, readBuild, startNode } from '@cloister/host';
import {
  exitCodeOf,
  line,
  nodeStoppedMessage,
  printError,
  stderrForLogs,
  step,
} from '../output.js';
import { cloisterHome, defaultEnclaveDir, defaultPaths, installRoot } from '../paths.js';
import { AppCompileError, buildApp, formatDiagnostic, sdkDir } from './app-build.js';
import { deployApp, operatorKeyForStart } from './app-deploy.js';

/** The example apps `npm start` deploys, in the order examples/README.md presents them. */
export const QUICKSTART_EXAMPLES = [
  'token',
  'auction',
  'poll',
  'salary-benchmark',
  'age-check',
] as const;

export interface QuickstartOptions {
  readonly home?: string;
  readonly data?: string;
  readonly platformDir?: string;
  readonly enclave?: string;
  readonly host: string;
  readonly port: number;
  readonly logLevel: string;
  readonly operatorKey?: string;
  /** False with --no-console: print the `cloister console` command instead of serving it. */
  readonly console?: boolean;
  /** The console's port (default DEFAULT_CONSOLE_PORT; 0 picks a free one). */
  readonly consolePort?: number;
}

/** What happened to one example on this start. */
export type DeployOutcome = 'deployed' | 'upgraded' | 'unchanged';

function files(dir: string, out: string[] = []): string[] {
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    if (['build', 'test', 'node_modules'].includes(e.name)) continue;
    const p = join(dir, e.name);
    if (e.isDirectory()) files(p, out);
    else out.push(p);
  }
  return out.sort();
}

/**
 * SHA-256 over everything the build of examples/`name` under `root` reads (its sources and
 * examples/common, the SDK, the compiler's version; not build/, test/ or node_modules/): a
 * changed input is a new key. Exported for its test.
 */
export function buildKey(root: string, name: string): string {
  const h = createHash('sha256');
  const asc = JSON.parse(
    readFileSync(join(root, 'node_modules', 'assemblyscript', 'package.json'), 'utf8'),
  ) as { version: string };
  h.update(`assemblyscript ${asc.version}\0`);
  const sdk = sdkDir();
  const inputs = [
    ...files(join(root, 'examples', name)),
    ...files(join(root, 'examples', 'common')),
    ...files(join(sdk, 'assembly')),
    ...files(join(sdk, 'transform')),
    join(sdk, 'compiler', 'worker.js'),
  ];
  for (const f of inputs) {
    h.update(`${relative(root, f)}\0`);
    h.update(readFileSync(f));
    h.update('\0');
  }
  return h.digest('hex');
}

/**
 * Compiles examples/`name` in a temporary copy (the checkout gets no build/ folder) and keeps the
 * module in `<home>/examples-cache`, a folder of this user's, under the key of its inputs: the
 * next start with unchanged sources reuses it instead of compiling again.
 */
function cachedModule(home: string, name: string): string {
  return join(home, 'examples-cache', `${name}-${buildKey(installRoot(), name)}.wasm`);
}

async function buildExampleModule(home: string, name: string): Promise<string> {
  const root = installRoot();
  const cache = join(home, 'examples-cache');
  mkdirSync(cache, { recursive: true, mode: 0o700 });
  const cached = cachedModule(home, name);
  if (existsSync(cached)) return cached;
  const tmp = mkdtempSync(join(tmpdir(), `cloister-quickstart-${name}-`));
  try {
    const skip = (src: string): boolean => !/[/\\](build|test|node_modules)$/.test(src);
    cpSync(join(root, 'examples', 'common'), join(tmp, 'common'), {
      recursive: true,
      filter: skip,
    });
    cpSync(join(root, 'examples', name), join(tmp, name), { recursive: true, filter: skip });
    const built = await buildApp(join(tmp, name));
    // Written beside, then renamed: a concurrent start never reads half a module.
    const part = `${cached}.${process.pid}.part`;
    writeFileSync(part, readFileSync(built.wasmPath));
    renameSync(part, cached);
    return cached;
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}

/** The code id the node reports for `app`, or undefined when it has no such app. */
async function currentCodeId(nodeUrl: string, app: string): Promise<string | undefined> {
  const res = await fetch(new URL(`/v1/apps/${encodeURIComponent(app)}`, nodeUrl), {
    signal: AbortSignal.timeout(30_000),
  });
  if (res.status === 404) return undefined;
  if (!res.ok) {
    throw new CloisterError('NETWORK', `the node answered ${res.status} for app ${app}`);
  }
  return String(((await res.json()) as { codeId?: unknown }).codeId);
}

/**
 * Deploys `wasmPath` as `app` unless the node already runs that code id; upgrades it when the node
 * runs another. The node's word on the current code id only decides what to send: a wrong answer
 * makes the deploy request stale, and the enclave refuses it.
 */
export async function deployIfChanged(
  nodeUrl: string,
  app: string,
  wasmPath: string,
  o: {
    readonly home?: string;
    readonly operatorKey?: string;
    /** The service the node must be (the one this process started); unchecked when absent. */
    readonly service?: Uint8Array;
  },
): Promise<{ outcome: DeployOutcome; codeId: string }> {
  const codeId = createHash('sha256').update(readFileSync(wasmPath)).digest('hex');
  const current = await currentCodeId(nodeUrl, app);
  if (current === codeId) return { outcome: 'unchanged', codeId };
  await deployApp(wasmPath, {
    name: app,
    node: nodeUrl,
    upgrade: current !== undefined,
    ...(o.home === undefined ? {} : { home: o.home }),
    ...(o.operatorKey === undefined ? {} : { operatorKey: o.operatorKey }),
    ...(o.service === undefined ? { note: () => {} } : { service: o.service }),
  });
  return { outcome: current === undefined ? 'deployed' : 'upgraded', codeId };
}

/**
 * `C:<measurement> SEC:INSECURE SIM:<platform key hash>`: the measurement of the build in
 * `enclaveDir`; the node's evidence for a fresh nonce must satisfy it before its platform key is
 * taken (a node on another platform or running other code fails here, not later in a client).
 */
export async function localConstraint(nodeUrl: string, measurement: Uint8Array): Promise<string> {
  const base = `C:${toHex(measurement)} SEC:INSECURE`;
  const nonce = crypto.getRandomValues(new Uint8Array(32));
  const url = new URL('/v1/evidence', nodeUrl);
  url.searchParams.set('nonce', toHex(nonce));
  const res = await fetch(url, { signal: AbortSignal.timeout(30_000) });
  const body = (await res.json()) as { evidence?: unknown; identityPublicKey?: unknown };
  if (!res.ok || typeof body.evidence !== 'string' || typeof body.identityPublicKey !== 'string') {
    throw new CloisterError('NETWORK', `the node did not return evidence (HTTP ${res.status})`);
  }
  const v = await verifyEvidence(fromBase64(body.evidence, 'evidence'), {
    nonce,
    identityPublicKey: fromHex(body.identityPublicKey, 'identity public key'),
    constraint: parseConstraint(base),
  });
  return `${base} SIM:${toHex(sha256(v.platformKey))}`;
}

/** `<home>/quickstart/<measurement, 16 hex digits>`: the default data directory of quickstart. */
export function quickstartDataDir(home: string, measurement: Uint8Array): string {
  return join(home, 'quickstart', toHex(measurement).slice(0, 16));
}

/**
 * Holds 127.0.0.1:`port` (a plain socket) from before the node starts until the console takes it:
 * a port in use fails the start at once, naming --console-port, instead of after the node started
 * and every example was deployed. Port 0 holds nothing (any free port will do).
 */
async function holdConsolePort(port: number): Promise<Server | undefined> {
  if (port === 0) return undefined;
  // Connections while it is held (a console tab of an earlier run polls every few seconds) are
  // closed at once: an open one would keep close() from calling back, and the start would hang.
  const held = createServer({ pauseOnConnect: true }, (socket) => socket.destroy());
  await new Promise<void>((resolve, reject) => {
    held.once('error', (e: NodeJS.ErrnoException) =>
      reject(e.code === 'EADDRINUSE' ? consolePortInUse(port, '--console-port') : e),
    );
    held.listen(port, '127.0.0.1', () => resolve());
  });
  return held;
}

function release(held: Server | undefined): Promise<void> {
  return new Promise((resolve) => (held === undefined ? resolve() : held.close(() => resolve())));
}

/**
 * The service pinned for the node at `url` in `<home>/client-state.json` (the state `cloister
 * call`, `query` and the console keep), read with the client SDK's own state; undefined when
 * none is pinned or the file cannot be read (then there is nothing to compare with).
 */
export async function pinnedService(home: string, url: string): Promise<Uint8Array | undefined> {
  try {
    return await fileState(home).pins.get(scpUrl(url));
  } catch {
    return undefined;
  }
}

/**
 * SIGINT and SIGTERM from the moment the command starts: a Ctrl-C while the examples compile
 * stops what was started (the node releases its data directory) instead of killing the process.
 */
function signals(): { readonly received: () => boolean; wait(): Promise<void>; off(): void } {
  let received = false;
  let wake: (() => void) | undefined;
  const on = (signal: NodeJS.Signals) => {
    if (received) return;
    received = true;
    process.stderr.write(`${signal}: stopping...\n`);
    wake?.();
  };
  process.on('SIGINT', on);
  process.on('SIGTERM', on);
  return {
    received: () => received,
    wait: () =>
      new Promise<void>((resolve) => {
        wake = resolve;
        if (received) resolve();
      }),
    off: () => {
      process.off('SIGINT', on);
      process.off('SIGTERM', on);
    },
  };
}

export async function quickstart(o: QuickstartOptions): Promise<number> {
  const home = cloisterHome(o.home);
  const d = defaultPaths(home);
  const enclaveDir = o.enclave ?? defaultEnclaveDir();
  let node: RunningNode | undefined;
  let consoleServer: { url: string; close(): Promise<void> } | undefined;
  let consolePortHeld: Server | undefined;
  const stop = signals();
  const stopAll = async (): Promise<void> => {
    stop.off();
    await release(consolePortHeld);
    consolePortHeld = undefined;
    await consoleServer?.close();
    await node?.close();
  };
  const consolePort = o.consolePort ?? DEFAULT_CONSOLE_PORT;
  try {
    const build = readBuild(enclaveDir);
    if (o.console !== false) {
      if (consolePort !== 0 && consolePort === o.port) {
        throw new InvalidInputError(
          `the node and the console cannot both listen on port ${consolePort}: give one of them another (--port for the node, --console-port for the console)`,
        );
      }
      // Before anything is created or started: the console's port is known now.
      consolePortHeld = await holdConsolePort(consolePort);
    }
    const operator = operatorKeyForStart(o.home, o.operatorKey);
    // One data directory per enclave measurement: a rebuilt enclave (after an update) starts a new
    // node and service instead of opening the last one's (its sealed state, under the signer
    // policy, would open; but a quickstart is a fresh demo of the code that is built now).
    const dataDir = o.data ?? quickstartDataDir(home, build.measurement);
    // A new build with earlier quickstart data beside: a new node and service on the same URL.
    const earlier =
      o.data === undefined && !existsSync(dataDir)
        ? (() => {
            try {
              return readdirSync(join(home, 'quickstart'));
            } catch {
              return [];
            }
          })()
        : [];
    const started = await step('starting the node', false, () =>
      startNode({
        operatorPublicKey: operator.publicKey,
        dataDir,
        platformDir: o.platformDir ?? d.platformDir,
        enclaveDir,
        host: o.host,
        port: o.port,
        logger: createLogger({ level: o.logLevel, destination: stderrForLogs }),
      }),
    );
    node = started;
    if (stop.received()) return await stopAll().then(() => 0);
    const base = await step('checking the node against this build', false, () =>
      localConstraint(started.url, build.measurement),
    );
    const apps: string[] = [];
    for (const name of QUICKSTART_EXAMPLES) {
      const fresh = !existsSync(cachedModule(home, name));
      const wasm = await step(
        fresh
          ? `building example ${name}`
          : `example ${name}: sources unchanged, using the module built before`,
        false,
        () => buildExampleModule(home, name),
      );
      const r = await step(`deploying ${name}`, false, () =>
        deployIfChanged(started.url, name, wasm, {
          home,
          service: started.serviceIdentity,
          ...(o.operatorKey === undefined ? {} : { operatorKey: o.operatorKey }),
        }),
      );
      process.stderr.write(
        `  ${name}: ${r.outcome === 'unchanged' ? 'unchanged (same code id), skipped' : r.outcome} ${r.codeId}\n`,
      );
      apps.push(`APP:${name}=${r.codeId}`);
      if (stop.received()) return await stopAll().then(() => 0);
    }
    const constraint = `${base} ${apps.join(' ')}`;
    let consoleLine = `console: run \`npx cloister console ${started.url} --constraint "${constraint}"\``;
    if (o.console !== false) {
      // Released only once the page is bundled, for the console to take it at once.
      const held = consolePortHeld;
      consoleServer = await step('starting the console', false, () =>
        startConsole({
          nodeUrl: started.url,
          constraint,
          port: consolePort,
          portOption: '--console-port',
          stateDir: home,
          beforeListen: async () => {
            consolePortHeld = undefined;
            await release(held);
          },
        }),
      );
      consoleLine = `console: ${consoleServer.url} (served by this installation on localhost)`;
    }
    process.stdout.write(
      `node: ${started.url} (simulation platform: NOT secure, for development only)\n` +
        `data: ${dataDir}\n` +
        `constraint: ${constraint}\n` +
        `${consoleLine}\n` +
        'try it, from this repository (elsewhere: <repository>/node_modules/.bin/cloister):\n' +
        line(
          'query',
          `npx cloister query ${started.url} token whoami --constraint "${constraint}"`,
        ) +
        'press Ctrl-C to stop\n',
    );
    const service = toHex(started.serviceIdentity);
    // Read only when no earlier build's note already says the service is new.
    const pinned = earlier.length > 0 ? undefined : await pinnedService(home, started.url);
    if (earlier.length > 0) {
      process.stderr.write(
        `note: this enclave build is new, so this is a new node and service (${service}) with an empty ledger; the data of the earlier build stays in ${join(home, 'quickstart')}. Clients that pinned the earlier service for ${started.url} will report SERVICE_CHANGED: check it, then accept it once with --accept-service ${service}\n`,
      );
    } else if (pinned !== undefined && toHex(pinned) !== service) {
      // Back to an earlier build's data directory (or another --data) on the same URL: every
      // client that pinned the service of the last start is refused until it accepts this one.
      process.stderr.write(
        `note: this node's service (${service}, kept in ${dataDir}) is not the one pinned for ${started.url} in ${join(home, 'client-state.json')} (${toHex(pinned)}): an earlier start on this URL ran another data directory (another enclave build, or --data), so \`cloister call\`, \`query\` and the console report SERVICE_CHANGED. Check it, then accept it once with --accept-service ${service}\n`,
      );
    }
    const why = await Promise.race([stop.wait().then(() => 'signal' as const), started.stopped]);
    await stopAll();
    const said = nodeStoppedMessage(why, 'npm start');
    if (said !== undefined) {
      process.stderr.write(said);
      return 1;
    }
    return 0;
  } catch (e) {
    if (e instanceof AppCompileError) {
      for (const diag of e.diagnostics) {
        if (diag.severity === 'error') process.stderr.write(`${formatDiagnostic(diag)}\n`);
      }
      process.stderr.write(
        `error: an example app did not compile: ${e.message}\n` +
          '  next step: fix the file named above (examples/), or restore it from the repository\n',
      );
    } else {
      printError(e);
    }
    await stopAll().catch(printError);
    return e instanceof AppCompileError ? 1 : exitCodeOf(e);
  }
}
