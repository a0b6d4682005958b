/**
 * `cloister dev [DIR] [--node URL]`: the app developer's loop. Builds the app, deploys it (or
 * upgrades it, keeping its ledger) on a local node, then watches its assembly/ sources and does
 * it again on every save: each round prints its timing and the new code id; a compile error
 * prints the compiler's messages and keeps watching.
 *
 * Without --node it starts its own node (simulation platform, a temporary data directory removed
 * at exit) with the apps' debug output on: every AssemblyScript `trace(...)` of the app is printed
 * as `[trace APP] message`. That output is app data leaving the enclave, which is why only the
 * simulation platform allows it (node option `appTrace`; docs/node-api.md "App trace"). With
 * --node it refuses a node whose evidence or health names any platform but the simulation, and
 * the trace lines (if that node was started with them) stay in that node's own log.
 */
import {
  type Dirent,
  existsSync,
  type FSWatcher,
  mkdtempSync,
  readdirSync,
  rmSync,
  watch,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import {
  CloisterError,
  decodeEvidencePayload,
  decodeSign1,
  fromBase64,
  InvalidInputError,
  toHex,
} from '@cloister/core';
import { createLogger, type RunningNode, readBuild, startNode } from '@cloister/host';
import { fetchNode } from '../node-http.js';
import {
  exitCodeOf,
  formatDuration,
  nodeStoppedMessage,
  printError,
  stderrForLogs,
  step,
} from '../output.js';
import { cloisterHome, defaultEnclaveDir, defaultPaths } from '../paths.js';
import { AppCompileError, buildApp, formatDiagnostic, projectAppName } from './app-build.js';
import { operatorKeyForStart } from './app-deploy.js';
import { deployIfChanged, localConstraint, pinnedService } from './quickstart.js';

export interface DevOptions {
  readonly home?: string;
  /** A running node to deploy on (simulation only); default: start one. */
  readonly node?: string;
  /** The app id (default: the project folder's name). */
  readonly name?: string;
  readonly platformDir?: string;
  readonly enclave?: string;
  readonly port: number;
  readonly logLevel: string;
  readonly operatorKey?: string;
  /** Quiet period after a change before rebuilding, ms (editors write a file in several steps). */
  readonly debounceMs?: number;
}

class NotSimulationError extends CloisterError {
  constructor(url: string, platform: string) {
    super(
      'INVALID_INPUT',
      `${url} runs on the ${platform} platform: \`cloister dev\` upgrades apps on the simulation platform only; deploy to it with \`cloister app deploy --upgrade\``,
    );
  }
}

/**
 * Refuses a node that says, in its health answer or in its evidence's claims, that it runs on any
 * platform but the simulation. Claims only, unverified: a node claiming a secure platform is
 * taken at its word (refusing is the safe side), and a secure node claiming to be a simulation
 * still cannot emit trace output (its enclave refuses apps.trace).
 */
export async function assertSimulation(url: string): Promise<void> {
  let base: URL;
  try {
    base = new URL(url);
    if (base.protocol !== 'http:' && base.protocol !== 'https:') throw new Error('not http(s)');
  } catch {
    throw new InvalidInputError(
      `--node ${JSON.stringify(url)} is not an http(s) URL: give the node's URL, e.g. http://127.0.0.1:7410`,
    );
  }
  /** The JSON answer of `u`, or NETWORK naming why there is none (not a Cloister node, say). */
  const ask = async (u: URL): Promise<Record<string, unknown>> => {
    const r = await fetchNode(u, 10_000);
    try {
      return (await r.json()) as Record<string, unknown>;
    } catch {
      throw new CloisterError(
        'NETWORK',
        `${base.origin} answered ${u.pathname} with HTTP ${r.status} and no JSON: is it a Cloister node?`,
      );
    }
  };
  const health = await ask(new URL('/v1/health', base));
  const e = new URL('/v1/evidence', base);
  e.searchParams.set('nonce', toHex(crypto.getRandomValues(new Uint8Array(32))));
  const evidence = await ask(e);
  if (health.platform !== 'simulation') throw new NotSimulationError(url, String(health.platform));
  if (typeof evidence.evidence !== 'string') {
    throw new CloisterError('NETWORK', `${url} did not return evidence`);
  }
  const claims = decodeEvidencePayload(
    decodeSign1(fromBase64(evidence.evidence, 'evidence')).payload,
  );
  if (claims.platform !== 'simulation') throw new NotSimulationError(url, claims.platform);
}

/** Calls `f` after `ms` of quiet following the last `poke()`. */
function debounce(ms: number, f: () => void): { poke(): void; cancel(): void } {
  let timer: NodeJS.Timeout | undefined;
  return {
    poke() {
      clearTimeout(timer);
      timer = setTimeout(f, ms);
    },
    cancel() {
      clearTimeout(timer);
    },
  };
}

/**
 * Watches folder `root` and every folder below it, calling `onChange` on any change. One
 * non-recursive watch per folder: Node 20's recursive mode on Linux stops reporting a file once an
 * editor saved it by renaming a temporary file over it (vim, JetBrains' safe write), so every
 * later save went unnoticed. A folder's watch is on the folder and survives such saves; folders
 * made or removed later are picked up at the next change. Throws when `root` cannot be watched.
 */
export function watchTree(root: string, onChange: () => void): { close(): void } {
  const watchers = new Map<string, FSWatcher>();
  const rescan = (): void => {
    const seen = new Set<string>();
    const walk = (d: string): void => {
      seen.add(d);
      if (!watchers.has(d)) {
        try {
          const w = watch(d, changed);
          w.on('error', () => {
            w.close();
            watchers.delete(d);
          });
          watchers.set(d, w);
        } catch {
          return; // gone meanwhile
        }
      }
      let entries: Dirent[];
      try {
        entries = readdirSync(d, { withFileTypes: true });
      } catch {
        return;
      }
      for (const e of entries) if (e.isDirectory()) walk(join(d, e.name));
    };
    walk(root);
    for (const [d, w] of watchers) {
      if (!seen.has(d)) {
        w.close();
        watchers.delete(d);
      }
    }
  };
  const changed = (): void => {
    rescan();
    onChange();
  };
  watchers.set(root, watch(root, changed)); // throws for a missing root: the caller reports it
  rescan();
  return {
    close() {
      for (const w of watchers.values()) w.close();
      watchers.clear();
    },
  };
}

export async function dev(dirArg: string | undefined, o: DevOptions): Promise<number> {
  const dir = resolve(dirArg ?? '.');
  const name = o.name ?? projectAppName(dir);
  const home = cloisterHome(o.home);
  const keyOptions = {
    home,
    ...(o.operatorKey === undefined ? {} : { operatorKey: o.operatorKey }),
  };
  let node: RunningNode | undefined;
  let tmpData: string | undefined;
  let watcher: { close(): void } | undefined;
  const cleanup = async () => {
    watcher?.close();
    await node?.close();
    if (tmpData !== undefined) rmSync(tmpData, { recursive: true, force: true });
  };

  let url: string;
  let base: string | undefined;
  try {
    if (!existsSync(join(dir, 'assembly'))) {
      throw new InvalidInputError(
        `no assembly/ folder in ${dir}: give an app project (\`cloister app new NAME\` starts one)`,
      );
    }
    if (o.node !== undefined) {
      url = o.node;
      await step(`checking that ${url} is a simulation node`, false, () => assertSimulation(url));
      // That node is not this process's: its trace lines and its measurement are not known here.
      process.stderr.write(
        `note: ${url} is not started by dev: \`trace\` output appears in that node's own log, and only if it runs with --app-trace; for its constraint, attest it (\`cloister measure\`, then \`cloister attest ${url} --constraint "C:<measurement> SEC:INSECURE"\`) and add APP:${name}=<code id> below\n`,
      );
    } else {
      const enclaveDir = o.enclave ?? defaultEnclaveDir();
      const build = readBuild(enclaveDir);
      tmpData = mkdtempSync(join(tmpdir(), 'cloister-dev-'));
      const dataDir = tmpData;
      const operator = operatorKeyForStart(o.home, o.operatorKey);
      const started = await step('starting a node with app trace output on', false, () =>
        startNode({
          operatorPublicKey: operator.publicKey,
          dataDir,
          platformDir: o.platformDir ?? defaultPaths(home).platformDir,
          enclaveDir,
          port: o.port,
          logger: createLogger({ level: o.logLevel, destination: stderrForLogs }),
          appTrace: (app, message) => process.stderr.write(`[trace ${app}] ${message}\n`),
        }),
      ).catch((e: unknown) => {
        if (e instanceof CloisterError && e.code === 'BOUNDARY') {
          throw new CloisterError(
            'MANIFEST_INVALID',
            `the enclave in ${enclaveDir} does not know app trace output (${e.message}); rebuild it with \`npx cloister build\``,
          );
        }
        throw e;
      });
      node = started;
      url = started.url;
      base = await localConstraint(url, build.measurement);
      process.stdout.write(
        `node: ${url} (simulation platform, temporary data: it is gone when dev stops)\n`,
      );
      // Each dev run is a new service: on a URL a client pinned before (a fixed --port run
      // again), calls are refused SERVICE_CHANGED until it is accepted. Said once, here.
      const service = toHex(started.serviceIdentity);
      const pinned = await pinnedService(home, url);
      if (pinned !== undefined && toHex(pinned) !== service) {
        process.stderr.write(
          `note: this dev node is a new service (${service}); ${url} is pinned to an earlier one (${toHex(pinned)}) in ${join(home, 'client-state.json')}, so \`cloister call\` and \`query\` there report SERVICE_CHANGED: accept it once with --accept-service ${service}\n`,
        );
      }
    }
  } catch (e) {
    printError(e);
    await cleanup().catch(printError);
    return exitCodeOf(e);
  }

  // One round at a time: a change during a round asks for one more round after it.
  let running: Promise<void> | undefined;
  let again = false;
  const round = async (): Promise<void> => {
    const t0 = performance.now();
    try {
      const built = await buildApp(dir, (d) => process.stderr.write(`${formatDiagnostic(d)}\n`));
      const t1 = performance.now();
      const r = await deployIfChanged(url, name, built.wasmPath, {
        ...keyOptions,
        // The node this process started: its identity is known, not the node's word.
        ...(node === undefined ? {} : { service: node.serviceIdentity }),
      });
      const t2 = performance.now();
      const what =
        r.outcome === 'unchanged'
          ? 'unchanged (same code id): nothing deployed'
          : `${r.outcome} ${name}`;
      process.stdout.write(
        `built in ${formatDuration(t1 - t0)}, deployed in ${formatDuration(t2 - t1)}: ${what}\n` +
          `  code id      ${r.codeId}\n` +
          (base === undefined ? '' : `  constraint   ${base} APP:${name}=${r.codeId}\n`),
      );
    } catch (e) {
      if (e instanceof AppCompileError) {
        for (const d of e.diagnostics) {
          if (d.severity === 'error') process.stderr.write(`${formatDiagnostic(d)}\n`);
        }
        process.stderr.write(
          `error: ${e.message} after ${formatDuration(performance.now() - t0)}\n` +
            '  next step: fix it and save; the running app is unchanged\n',
        );
      } else {
        printError(e);
      }
    }
    process.stderr.write(`watching ${join(dir, 'assembly')} (Ctrl-C to stop)\n`);
  };
  const schedule = (): void => {
    if (running !== undefined) {
      again = true;
      return;
    }
    running = (async () => {
      do {
        again = false;
        await round();
      } while (again);
    })().finally(() => {
      running = undefined;
    });
  };

  const changed = debounce(o.debounceMs ?? 150, schedule);
  try {
    watcher = watchTree(join(dir, 'assembly'), () => changed.poke());
  } catch (e) {
    printError(e);
    await cleanup().catch(printError);
    return exitCodeOf(e);
  }
  schedule();

  const why = await new Promise<string>((resolveStop) => {
    process.once('SIGINT', () => resolveStop('signal'));
    process.once('SIGTERM', () => resolveStop('signal'));
    void node?.stopped.then((s) => {
      if (s !== 'closed') resolveStop(s);
    });
  });
  process.stderr.write('stopping...\n');
  changed.cancel();
  watcher.close();
  await running;
  await cleanup().catch(printError);
  const said = nodeStoppedMessage(why, 'cloister dev');
  if (said !== undefined) {
    process.stderr.write(said);
    return 1;
  }
  return 0;
}
