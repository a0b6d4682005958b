/**
 * The `cloister` command line (commander). Each action returns an exit code; errors print what went
 * wrong and the next step, never a stack trace.
 */
import { Command, InvalidArgumentError } from 'commander';
import { attest } from './commands/attest.js';
import { build, measure } from './commands/build.js';
import { nodeStart } from './commands/node.js';
import { printError } from './output.js';

function intOption(min: number, max: number) {
  return (value: string): number => {
    const n = Number(value);
    if (!/^\d+$/.test(value) || n < min || n > max) {
      throw new InvalidArgumentError(`expected a whole number from ${min} to ${max}`);
    }
    return n;
  };
}

export function createProgram(setExit: (code: number) => void): Command {
  const program = new Command('cloister')
    .description(
      'Cloister: trustless apps whose operator can neither read their data nor change what they do',
    )
    .option(
      '--home <dir>',
      'Cloister home: platform dir, signer key, default data (env CLOISTER_HOME; default ~/.cloister)',
    )
    .showHelpAfterError('(run with --help for usage)');

  program
    .command('build')
    .description('bundle the enclave and sign its manifest with your signer key')
    .option('--out <dir>', 'output directory (default: <install>/build/enclave)')
    .option(
      '--signer-key <file>',
      'signer private key, created on first use (default: <home>/signer.pem)',
    )
    .option(
      '--svn <n>',
      'security version (default: from packages/enclave/package.json)',
      intOption(0, 0xffffffff),
    )
    .option('--quiet', 'print only the measurement')
    .action(async (o, cmd: Command) =>
      setExit(await build({ ...o, home: cmd.optsWithGlobals().home })),
    );

  program
    .command('measure')
    .description(
      'build the enclave from source in memory and print its measurement (the C: clause)',
    )
    .option('--json', 'print JSON')
    .option(
      '--svn <n>',
      'security version (default: from packages/enclave/package.json)',
      intOption(0, 0xffffffff),
    )
    .action(async (o) => setExit(await measure(o)));

  const node = program.command('node').description('run a node');
  node
    .command('start')
    .description('start a node on the simulation platform')
    .option('--data <dir>', 'data directory (default: <home>/data)')
    .option('--platform-dir <dir>', 'simulation platform directory (default: <home>/platform)')
    .option(
      '--enclave <dir>',
      'enclave build from `cloister build` (default: <install>/build/enclave)',
    )
    .option('--host <addr>', 'address to listen on', '127.0.0.1')
    .option('--port <n>', 'port to listen on (0 picks a free port)', intOption(0, 65535), 7410)
    .option('--log-level <level>', 'fatal, error, warn, info, debug, trace or silent', 'info')
    .action(async (o, cmd: Command) =>
      setExit(await nodeStart({ ...o, home: cmd.optsWithGlobals().home })),
    );

  program
    .command('attest')
    .description("fetch a node's evidence for a fresh nonce and verify it against a constraint")
    .argument('<url>', 'the node URL, e.g. http://127.0.0.1:7410')
    .requiredOption(
      '--constraint <text>',
      'what you accept, e.g. "C:<measurement> SEC:INSECURE" (docs/constraints.md)',
    )
    .option('--json', 'print JSON')
    .action(async (url: string, o) => setExit(await attest(url, o)));

  return program;
}

/** Runs the CLI on `argv` (as process.argv) and returns the exit code. */
export async function main(argv: readonly string[]): Promise<number> {
  let code = 0;
  const program = createProgram((c) => {
    code = c;
  });
  program.exitOverride();
  try {
    await program.parseAsync(argv as string[]);
    return code;
  } catch (e) {
    const ce = e as { code?: string; exitCode?: number };
    if (typeof ce.code === 'string' && ce.code.startsWith('commander.')) {
      return ce.code === 'commander.helpDisplayed' || ce.code === 'commander.version' ? 0 : 2;
    }
    printError(e);
    return 1;
  }
}
