/**
 * The `cloister` command line (commander). Each action returns an exit code; errors print what went
 * wrong and the next step, never a stack trace.
 */
import { readFileSync } from 'node:fs';
import { DEFAULT_CONSOLE_PORT } from '@cloister/console';
import { InvalidInputError } from '@cloister/core';
import { Command, InvalidArgumentError } from 'commander';
import { appBuild } from './commands/app-build.js';
import { appDeploy } from './commands/app-deploy.js';
import { appNew } from './commands/app-new.js';
import { appTypes } from './commands/app-types.js';
import { attest } from './commands/attest.js';
import { build, measure } from './commands/build.js';
import { call, query } from './commands/call.js';
import { consoleCommand } from './commands/console.js';
import { dev } from './commands/dev.js';
import { keysNew } from './commands/keys.js';
import { rotateSecret } from './commands/ledger.js';
import { logAudit } from './commands/log.js';
import { nodeStart } from './commands/node.js';
import { quickstart } from './commands/quickstart.js';
import { receiptGet, receiptVerify } from './commands/receipt.js';
import { jsonError, printError, printErrorsAsJson } from './output.js';

function intOption(min: number, max: number) {
  return (value: string): number => {
    const n = Number(value);
    if (!/^\d+$/.test(value) || n < min || n > max) {
      throw new InvalidArgumentError(`expected a whole number from ${min} to ${max}`);
    }
    return n;
  };
}

/** This package's version: its package.json is above src/ (tsx) or dist/src/ (compiled). */
function packageVersion(): string {
  for (const rel of ['../package.json', '../../package.json']) {
    try {
      const p = JSON.parse(readFileSync(new URL(rel, import.meta.url), 'utf8')) as {
        name?: string;
        version?: string;
      };
      if (p.name === 'cloister' && typeof p.version === 'string') return p.version;
    } catch {
      // not at this level
    }
  }
  return 'unknown';
}

export function createProgram(setExit: (code: number) => void): Command {
  // Set before any subcommand is added: commander copies it to each one when it is created, so a
  // usage error in any of them throws to `main` (exit 2), not process.exit(1).
  const program = new Command('cloister')
    .exitOverride()
    .description(
      'Cloister: trustless apps whose operator can neither read their data nor change what they do',
    )
    .option(
      '--home <dir>',
      'Cloister home: platform dir, signer key, default data (env CLOISTER_HOME; default ~/.cloister)',
    )
    .version(packageVersion(), '-V, --version', 'print the version')
    .showHelpAfterError('(run with --help for usage)')
    // Every command with --json prints its errors as JSON on stdout too (printError).
    .hook('preAction', (_program, action) => printErrorsAsJson(action.opts().json === true));

  program
    .command('build')
    .description('bundle the enclave and sign its manifest with your signer key')
    .option('--out <dir>', 'output directory (default: <install>/build/enclave)')
    .option(
      '--signer-key <file>',
      'signer private key (default: <home>/signer.pem, created on first use; a given file must exist)',
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
    .option(
      '--sign-interval <ms>',
      'sign the log every <ms> milliseconds when unsigned entries exist (0 disables the timer)',
      intOption(0, 86_400_000),
      1000,
    )
    .option(
      '--operator-key <file>',
      'operator key whose public half the node records (default: <home>/operator.pem, created on first use)',
    )
    .option('--tls-cert <file>', 'serve HTTPS and WSS with this PEM certificate (with --tls-key)')
    .option('--tls-key <file>', 'the PEM private key of --tls-cert')
    .option(
      '--app-trace',
      "log the apps' trace output: app data, so simulation only (docs/node-api.md)",
    )
    .option(
      '--scp-share-by <what>',
      'fair share of the enclave under load: address (each client address a turn, its sockets in turn) or socket (each socket a turn: for many users behind one NAT)',
      'address',
    )
    .action(async (o, cmd: Command) =>
      setExit(await nodeStart({ ...o, home: cmd.optsWithGlobals().home })),
    );

  // `npm start`: a local node with the examples deployed and the console (issue 8).
  program
    .command('quickstart')
    .description(
      'start a local simulation node with the example apps deployed (unchanged ones skipped, changed ones upgraded) and the console',
    )
    .option(
      '--data <dir>',
      'data directory (default: <home>/quickstart/<measurement prefix>: one per enclave build)',
    )
    .option('--platform-dir <dir>', 'simulation platform directory (default: <home>/platform)')
    .option(
      '--enclave <dir>',
      'enclave build from `cloister build` (default: <install>/build/enclave)',
    )
    .option('--host <addr>', 'address to listen on', '127.0.0.1')
    .option('--port <n>', 'port to listen on (0 picks a free port)', intOption(0, 65535), 7410)
    .option('--log-level <level>', 'fatal, error, warn, info, debug, trace or silent', 'warn')
    .option(
      '--operator-key <file>',
      'operator key (default: <home>/operator.pem, created on first use)',
    )
    .option('--no-console', 'do not serve the console; print the command that does')
    .option(
      '--console-port <n>',
      'port of the console on 127.0.0.1 (0: a free port; the page keeps its identities and pins per port)',
      intOption(0, 65535),
      DEFAULT_CONSOLE_PORT,
    )
    .action(async (o, cmd: Command) =>
      setExit(await quickstart({ ...o, home: cmd.optsWithGlobals().home })),
    );

  const receipt = program.command('receipt').description('transaction receipts (docs/receipts.md)');
  receipt
    .command('get')
    .description(
      "fetch a transaction's receipt from a node into a file (verify it with `receipt verify`)",
    )
    .argument('<url>', 'the node URL, e.g. http://127.0.0.1:7410')
    .argument('<txid>', 'the transaction id, term.index, e.g. 1.5')
    .option('-o, --out <file>', 'where to write the receipt (default: ./receipt-<txid>.cbor)')
    .action(async (url: string, txid: string, o) => setExit(await receiptGet(url, txid, o)));
  receipt
    .command('verify')
    .description('verify a receipt offline: evidence, endorsement, signature, inclusion')
    .argument('<file>', 'the receipt file')
    .requiredOption(
      '--constraint <text>',
      'what code you accept, e.g. "C:<measurement> SEC:INSECURE" (`cloister measure`; docs/constraints.md)',
    )
    .option('--service <hex>', 'the service identity you expect (SHA-256 of its public key)')
    .action(async (file: string, o) => setExit(await receiptVerify(file, o)));

  program
    .command('log')
    .description("audit a node's log")
    .command('audit')
    .description('check a copy of a log with no secrets: chain, signatures, roots, consistency')
    .argument('<dir>', "a copy of a node's home, data directory or store folder")
    .option('--trusted-size <n>', 'a tree size you already trust', intOption(0, 2 ** 53 - 1))
    .option('--trusted-root <hex>', 'the root you trust at that size')
    .option('--constraint <text>', 'also check the genesis evidence against this constraint')
    .option('--json', 'print JSON')
    .action(async (dir: string, o) => setExit(await logAudit(dir, o)));

  program
    .command('ledger')
    .description('operator actions on a stopped node')
    .command('rotate-secret')
    .description(
      'rotate the ledger secret of a STOPPED node (new entries use it; older stay readable)',
    )
    .option('--data <dir>', 'data directory (default: <home>/data)')
    .option('--platform-dir <dir>', 'simulation platform directory (default: <home>/platform)')
    .option(
      '--enclave <dir>',
      'enclave build from `cloister build` (default: <install>/build/enclave)',
    )
    .option('--log-level <level>', 'fatal, error, warn, info, debug, trace or silent', 'warn')
    .option('--json', 'print JSON')
    .action(async (o, cmd: Command) =>
      setExit(await rotateSecret({ ...o, home: cmd.optsWithGlobals().home })),
    );

  const app = program.command('app').description('write apps in AssemblyScript (docs/app-abi.md)');
  app
    .command('new')
    .description('scaffold an app project: an example query and transaction, tests, README')
    .argument('<name>', 'the app name (lowercase letters, digits, ".", "_", "-")')
    .option('--dir <dir>', 'where to create it (default: ./<name>)')
    .action((name: string, o) => setExit(appNew(name, o)));
  app
    .command('build')
    .description('compile an app into build/app.wasm and build/app.manifest.json (its methods)')
    .argument('[dir]', 'the project folder', '.')
    .option('--json', 'print the manifest as JSON')
    .action(async (dir: string, o) => setExit(await appBuild(dir, o)));
  app
    .command('deploy')
    .description(
      'deploy (or --upgrade) a module on a node: a request signed by the operator key, logged and receipted',
    )
    .argument('<file>', 'the module, e.g. build/app.wasm')
    .requiredOption('--name <name>', 'the app id')
    .option('--node <url>', 'the node URL', 'http://127.0.0.1:7410')
    .option('--upgrade', "replace the app's code, keep its ledger, run its cloister_migrate")
    .option('--operator-key <file>', 'operator private key (default: <home>/operator.pem)')
    .option(
      '--service <hex>',
      'the service identity the request is for: a node reporting another is refused before signing',
    )
    .option('--json', 'print JSON')
    .action(async (file: string, o, cmd: Command) =>
      setExit(await appDeploy(file, { ...o, home: cmd.optsWithGlobals().home })),
    );

  // Typed client stubs from an app's manifest (issue 8).
  app
    .command('types')
    .description(
      'write TypeScript client stubs (a typed wrapper over client.app(name)) from build/app.manifest.json',
    )
    .argument('[dir]', 'the project folder, built with `cloister app build`', '.')
    .option(
      '--name <name>',
      'the app id it is deployed under (default: the name in the project package.json, else the folder name)',
    )
    .option('--out <file>', 'write the stubs here (default: print them)')
    .option('--import-from <spec>', 'the module the client types come from', '@cloister/client')
    .action(async (dir: string, o) => setExit(await appTypes(dir, o)));

  // The app developer's loop (issue 8).
  program
    .command('dev')
    .description(
      'watch an app: rebuild and upgrade it on a local simulation node on every save, and print its trace output',
    )
    .argument('[dir]', 'the app project folder', '.')
    .option('--node <url>', 'deploy on this running node (simulation only) instead of starting one')
    .option(
      '--name <name>',
      'the app id (default: the name in the project package.json, else the folder name)',
    )
    .option('--platform-dir <dir>', 'simulation platform directory (default: <home>/platform)')
    .option(
      '--enclave <dir>',
      'enclave build from `cloister build` (default: <install>/build/enclave)',
    )
    .option('--port <n>', "the started node's port (0 picks a free port)", intOption(0, 65535), 0)
    .option('--log-level <level>', "the started node's log level", 'warn')
    .option('--operator-key <file>', 'operator key (default: <home>/operator.pem)')
    .action(async (dir: string, o, cmd: Command) =>
      setExit(await dev(dir, { ...o, home: cmd.optsWithGlobals().home })),
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

  program
    .command('console')
    .description(
      'serve the console page on 127.0.0.1: verify a node in your browser and call its apps',
    )
    .argument('[url]', 'the node URL (default http://127.0.0.1:7410)')
    .option(
      '--port <n>',
      `port on 127.0.0.1 (0: a free port). The page keeps identities, pins and signed roots in the browser per console address: another port starts with none`,
      intOption(0, 65535),
      DEFAULT_CONSOLE_PORT,
    )
    .option(
      '--constraint <text>',
      'what you accept, e.g. "C:<measurement> SEC:INSECURE" (without it the page asks)',
    )
    .option('--open', 'open the console in your browser')
    .action(async (url: string | undefined, o, cmd: Command) =>
      setExit(await consoleCommand(url, { ...o, home: cmd.optsWithGlobals().home })),
    );

  const keys = program
    .command('keys')
    .description('client identities for `cloister call` and `query`');
  keys
    .command('new')
    .description(
      'create a client identity: a P-256 key in a PEM file of mode 0600 (never overwrites)',
    )
    .argument('<file>', 'the file to create, e.g. ./me.pem')
    .option('--json', 'print JSON')
    .action(async (file: string, o) => setExit(await keysNew(file, o)));

  for (const kind of ['call', 'query'] as const) {
    const c = program
      .command(kind)
      .description(
        kind === 'call'
          ? 'run a transaction of an app over a verified secure connection (docs/scp.md)'
          : 'run a query of an app over a verified secure connection (nothing is written)',
      )
      .argument('<url>', 'the node URL, e.g. http://127.0.0.1:7410')
      .argument('<app>', 'the app id')
      .argument('<method>', 'the method name')
      .argument(
        '[json]',
        'the arguments, one JSON value, e.g. \'{"amount": 5}\'; - reads them from standard input',
        '{}',
      )
      .requiredOption(
        '--constraint <text>',
        'what you accept, e.g. "C:<measurement> SEC:INSECURE APP:<app>=<code id>" (docs/constraints.md)',
      )
      .option(
        '--identity <file>',
        'your identity key (default: <home>/identity.pem, created on first use)',
      )
      .option(
        '--accept-service <hex>',
        'the service identity you expect (from the operator): any other is refused, also on first use; it replaces another pinned service',
      );
    if (kind === 'call') {
      c.option(
        '--request-id <id>',
        'idempotency key (default: a new one, printed): a retry with the same id applies once',
      ).option('--receipt <file>', 'wait for the signed receipt, verify it and write it here');
    }
    c.option('--json', 'print JSON').action(
      async (url: string, app: string, method: string, json: string, o, cmd: Command) => {
        const run = kind === 'call' ? call : query;
        setExit(await run(url, app, method, json, { ...o, home: cmd.optsWithGlobals().home }));
      },
    );
  }

  return program;
}

/** Runs the CLI on `argv` (as process.argv) and returns the exit code. */
export async function main(argv: readonly string[]): Promise<number> {
  let code = 0;
  const program = createProgram((c) => {
    code = c;
  });
  try {
    await program.parseAsync(argv as string[]);
    return code;
  } catch (e) {
    const ce = e as { code?: string; exitCode?: number };
    if (typeof ce.code === 'string' && ce.code.startsWith('commander.')) {
      if (ce.code === 'commander.helpDisplayed' || ce.code === 'commander.version') return 0;
      // `cloister help <command>` ends in commander.help, exit code 0 when help was asked for.
      if (ce.code === 'commander.help') return ce.exitCode === 0 ? 0 : 2;
      // A usage error (commander wrote it to stderr): with --json also the documented
      // {"error": …} line on stdout, so a script reading stdout learns what was wrong.
      if (argv.includes('--json')) {
        const message = String((e as Error).message ?? '').replace(/^error: /, '');
        const usage = new InvalidInputError(`${message} (run with --help for usage)`);
        process.stdout.write(`${JSON.stringify({ error: jsonError(usage) })}\n`);
      }
      return 2;
    }
    printError(e);
    return 1;
  }
}
