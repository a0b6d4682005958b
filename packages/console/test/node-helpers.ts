/**
 * A real node for the console's tests: the CLI from source (`cloister build`, `node start`, `app
 * new/build/deploy`), as packages/client/test/browser.test.ts runs it.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = fileURLToPath(new URL('../../..', import.meta.url));
const CLI = join(ROOT, 'packages/cli/test/fixtures/run.ts');

function cliProcess(args: string[]): ChildProcess {
  return spawn(process.execPath, ['--import', 'tsx', '--conditions=source', CLI, ...args], {
    cwd: ROOT,
    env: { ...process.env, NODE_OPTIONS: '', NODE_TEST_CONTEXT: undefined },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
}

/** Runs the CLI from source; its stdout, or a failure naming the command and its stderr. */
export function cli(args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const p = cliProcess(args);
    let out = '';
    let err = '';
    p.stdout?.on('data', (d) => {
      out += d;
    });
    p.stderr?.on('data', (d) => {
      err += d;
    });
    p.on('close', (code) =>
      code === 0 ? resolve(out) : reject(new Error(`cloister ${args.join(' ')}: ${code} ${err}`)),
    );
  });
}

export interface RunningNode {
  readonly url: string;
  readonly port: number;
  stop(): Promise<void>;
}

/** `cloister node start` on `port` (0: a free one); resolves once it listens. */
export function startNode(home: string, enclave: string, port = 0): Promise<RunningNode> {
  const p = cliProcess([
    '--home',
    home,
    'node',
    'start',
    '--enclave',
    enclave,
    '--port',
    String(port),
    '--sign-interval',
    '50',
    '--log-level',
    'silent',
  ]);
  const stop = async () => {
    if (p.exitCode !== null || p.signalCode !== null) return;
    const exited = new Promise((r) => p.once('close', r));
    p.kill('SIGTERM');
    await exited;
  };
  return new Promise((resolve, reject) => {
    let err = '';
    p.stderr?.on('data', (d) => {
      err += d;
      const m = /listening on (http:\/\/127\.0\.0\.1:(\d+))/.exec(err);
      if (m) resolve({ url: m[1] as string, port: Number(m[2]), stop });
    });
    p.on('close', (code) => reject(new Error(`cloister node start exited ${code}: ${err}`)));
  });
}
