/**
 * `cloister call URL APP METHOD 'JSON'` (a transaction) and `cloister query URL APP METHOD 'JSON'`:
 * connect over the secure connection protocol with @cloister/client — the node's evidence, the
 * service (`SVC:`, and the pin kept in `<home>/client-state.json`) and the app's code id (`APP:`)
 * are checked against `--constraint` before the arguments leave this process —, run the method
 * and print its result. `--receipt FILE` waits for the signed receipt, verifies it (claims and
 * the rollback check included) and writes it. Exit codes: 0 done, 1 refused or failed, 2 could not
 * run (bad input, unreachable node).
 */
import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import {
  type Client,
  claimsSaltFor,
  connect,
  createIdentityFile,
  fileState,
  type Identity,
  loadIdentity,
  OutcomeUnknownError,
  type QueryResult,
  RepeatedRequestCodeError,
  type TransactResult,
} from '@cloister/client/node';
import {
  CloisterError,
  callerId,
  InvalidInputError,
  parseConstraint,
  ReceiptError,
  toHex,
} from '@cloister/core';
import { serviceIdentityArg } from '../args.js';
import { exitCodeOf, jsonError, line, printError } from '../output.js';
import { checkOutputFile, RECEIPT_FILE, writeOutputFile } from '../output-file.js';
import { cloisterHome } from '../paths.js';

export interface CallOptions {
  readonly constraint: string;
  /** Identity PEM file (default `<home>/identity.pem`, created on first use). */
  readonly identity?: string;
  readonly requestId?: string;
  /** Write the verified receipt here (transactions only). */
  readonly receipt?: string;
  readonly json?: boolean;
  readonly home?: string;
  /**
   * Hex of the service identity you expect (from the operator): it replaces another pin for this
   * URL, and any other service is refused — SERVICE_CHANGED where another one was pinned, else
   * CONSTRAINT_MISMATCH, also on first use (acceptServiceChange of the client SDK).
   */
  readonly acceptService?: string;
}

/**
 * Offset of the first character that makes `s` invalid JSON (RFC 8259), or -1 when it is valid:
 * V8's messages name the position only for some errors, and a user fixing a shell-quoted
 * argument needs it every time. Only used to word the error.
 */
export function jsonErrorPosition(s: string): number {
  let i = 0;
  const fail = (): never => {
    throw i;
  };
  const ws = (): void => {
    while (i < s.length && ' \t\n\r'.includes(s[i] as string)) i++;
  };
  const str = (): void => {
    i++;
    while (i < s.length) {
      const c = s[i] as string;
      if (c === '"') {
        i++;
        return;
      }
      if (c < ' ') fail();
      if (c === '\\') {
        i++;
        if (s[i] === 'u' && /^[0-9a-fA-F]{4}$/.test(s.slice(i + 1, i + 5))) i += 4;
        else if (!'"\\/bfnrt'.includes(s[i] ?? 'x')) fail();
      }
      i++;
    }
    fail();
  };
  const items = (close: string, item: () => void): void => {
    i++;
    ws();
    if (s[i] === close) {
      i++;
      return;
    }
    for (;;) {
      item();
      ws();
      if (s[i] === close) {
        i++;
        return;
      }
      if (s[i] !== ',') fail();
      i++;
    }
  };
  const value = (): void => {
    ws();
    const c = s[i];
    if (c === '{') {
      items('}', () => {
        ws();
        if (s[i] !== '"') fail();
        str();
        ws();
        if (s[i] !== ':') fail();
        i++;
        value();
      });
    } else if (c === '[') items(']', value);
    else if (c === '"') str();
    else {
      const m = /^(true|false|null|-?(0|[1-9]\d*)(\.\d+)?([eE][+-]?\d+)?)/.exec(s.slice(i));
      if (m === null) fail();
      else i += (m[0] as string).length;
    }
  };
  try {
    value();
    ws();
    if (i < s.length) fail();
    return -1;
  } catch (at) {
    return at as number;
  }
}

function parseArgs(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch (e) {
    const at = jsonErrorPosition(text);
    const where =
      at < 0
        ? ''
        : ` at position ${at} (${at < text.length ? JSON.stringify(text[at]) : 'the end'})`;
    throw new InvalidInputError(
      `the arguments are not valid JSON${where}: ${(e as Error).message}; give one JSON value, quoted for the shell, e.g. '{"amount": 5}'`,
    );
  }
}

/**
 * The JSON argument as given, or, when it is `-`, standard input (arguments larger than a
 * command line holds: about 128 KiB): `cloister call URL APP METHOD - < args.json`.
 */
function argsText(text: string): string {
  if (text !== '-') return text;
  try {
    return readFileSync(0, 'utf8');
  } catch (e) {
    throw new InvalidInputError(
      `cannot read the arguments from standard input (${(e as NodeJS.ErrnoException).code ?? (e as Error).message}): pipe them in, e.g. \`… - < args.json\``,
    );
  }
}

function isTransact(r: QueryResult): r is TransactResult {
  return 'txid' in r;
}

/** The identity file and its identity: --identity, else <home>/identity.pem (made on first use). */
async function identityFor(o: CallOptions): Promise<{ path: string; identity: Identity }> {
  if (o.identity !== undefined) {
    const path = resolve(o.identity);
    return { path, identity: await loadIdentity(path) };
  }
  const path = join(cloisterHome(o.home), 'identity.pem');
  if (existsSync(path)) return { path, identity: await loadIdentity(path) };
  const identity = await createIdentityFile(path);
  process.stderr.write(
    `note: created your client identity ${path} (mode 0600); apps know you by an id derived from it\n`,
  );
  return { path, identity };
}

/**
 * APP_METHOD_KIND with the command that fits as its next step: the registry's hint is the SDK's
 * too (either API or command), and on the command line the next step is the other command.
 */
function withCommandHint(e: unknown, kind: 'transact' | 'query'): unknown {
  if (!(e instanceof CloisterError) || e.code !== 'APP_METHOD_KIND') return e;
  return new CloisterError('APP_METHOD_KIND', e.message, {
    cause: e,
    hint:
      kind === 'query'
        ? 'The method is a transaction: run it with `cloister call` (same arguments), not `cloister query`.'
        : 'The method is a query: run it with `cloister query` (same arguments), not `cloister call`.',
  });
}

/** `s` as one shell word: as it is when it needs no quoting, else in single quotes. */
function shellWord(s: string): string {
  return /^[A-Za-z0-9_@%+=:,./-]+$/.test(s) ? s : `'${s.replaceAll("'", `'\\''`)}'`;
}

/** What `cloister call` was run with: enough to print the command that retries it. */
export interface CallRun {
  readonly url: string;
  readonly app: string;
  readonly method: string;
  /** The JSON argument as given (`-`: read from standard input). */
  readonly argsJson: string;
  readonly requestId: string;
  readonly o: CallOptions;
}

/** Arguments longer than this are not repeated in a retry command (it would bury the message). */
const MAX_SHOWN_ARGS = 1000;

/**
 * The `cloister call` command that runs `run` again with the same request id (applied at most
 * once: a retry of a committed transaction answers its stored outcome), `constraint` in place of
 * the run's when given. Options that decide what a retry is (the identity: request ids are per
 * client; the home, where the identity and pins are; --receipt) are kept.
 */
export function retryCommand(run: CallRun, constraint = run.o.constraint): string {
  const { o } = run;
  const args =
    run.argsJson === '-'
      ? '- < <the same arguments>'
      : run.argsJson.length > MAX_SHOWN_ARGS || /\p{Cc}/u.test(run.argsJson)
        ? "'<the same JSON arguments>'"
        : shellWord(run.argsJson);
  return [
    'cloister',
    ...(o.home === undefined ? [] : ['--home', shellWord(o.home)]),
    'call',
    shellWord(run.url),
    shellWord(run.app),
    shellWord(run.method),
    args,
    '--constraint',
    shellWord(constraint),
    ...(o.identity === undefined ? [] : ['--identity', shellWord(o.identity)]),
    ...(o.receipt === undefined ? [] : ['--receipt', shellWord(o.receipt)]),
    '--request-id',
    shellWord(run.requestId),
  ].join(' ');
}

/**
 * OUTCOME_UNKNOWN on the command line: the SDK's message and hint name `status({ app, requestId
 * })`, an SDK call; here the next step is the command that retries with the same request id.
 * `requestId` is kept for --json (jsonError).
 */
export class CallOutcomeUnknownError extends CloisterError {
  readonly requestId: string;
  constructor(e: OutcomeUnknownError, run: CallRun) {
    const cause = e.cause instanceof Error ? e.cause.message : String(e.cause);
    const retry = retryCommand(run);
    super(
      'OUTCOME_UNKNOWN',
      `transaction ${JSON.stringify(e.requestId)} of app ${JSON.stringify(e.app)} was sent but its answer was lost (${cause}); it may have been committed. To find out, retry it with the same request id (applied at most once; a committed one answers its stored result): ${retry}`,
      {
        cause: e,
        hint: 'Run the `cloister call` command the message ends with: the same request id applies the transaction at most once, and if it was committed answers its stored result. Never retry with a new request id: it could apply twice.',
      },
    );
    this.requestId = e.requestId;
  }
}

/**
 * APP_CODE_MISMATCH for a retried request id applied by earlier code (RepeatedRequestCodeError),
 * on the command line: the SDK's message names `status({ app, requestId })` and `client.receipt`;
 * here the commands that accept the stored outcome or fetch its receipt.
 */
export class CallRepeatedRequestCodeError extends CloisterError {
  readonly requestId: string;
  constructor(e: RepeatedRequestCodeError, run: CallRun) {
    const accept = retryCommand(run, `${run.o.constraint} APP:${e.app}=${e.seen}`);
    const receipt = `cloister receipt get ${shellWord(run.url)} ${e.txid}`;
    super(
      'APP_CODE_MISMATCH',
      `request id ${JSON.stringify(e.requestId)} of app ${JSON.stringify(e.app)} was already applied at ${e.txid} by earlier code ${e.seen}; a retry answers that stored outcome, which is not from code your constraint admits (${e.clause}), so it is refused (nothing ran again). To accept it, only if you trust that code: ${accept}. To check the transaction without it, fetch its receipt: ${receipt}`,
      {
        cause: e,
        hint: `The request id was applied by earlier code than your constraint admits, before the app was upgraded; nothing ran again. Accept its stored outcome with APP:${e.app}=${e.seen} added to --constraint (the command is in the message), only if you trust that code, or fetch its receipt: \`${receipt}\`.`,
      },
    );
    this.requestId = e.requestId;
  }
}

/**
 * The SDK's errors in command-line words: APP_METHOD_KIND names the other command, and the
 * errors whose next step is an SDK call (OUTCOME_UNKNOWN, a repeated request id refused after
 * an upgrade) give the exact `cloister call` to run instead.
 */
export function forTheCommandLine(e: unknown, kind: 'transact' | 'query', run?: CallRun): unknown {
  if (run !== undefined && e instanceof RepeatedRequestCodeError) {
    return new CallRepeatedRequestCodeError(e, run);
  }
  if (run !== undefined && e instanceof OutcomeUnknownError) {
    return new CallOutcomeUnknownError(e, run);
  }
  return withCommandHint(e, kind);
}

/**
 * Says on stderr when this run pinned the URL's service (first use) or replaced its pin: later
 * runs refuse any other service there, so the user should know which one was taken.
 */
function notePin(client: Client, url: string, named: boolean): void {
  const pin = client.pin;
  const service = toHex(client.service.identity);
  if (pin.how === 'first-use') {
    process.stderr.write(
      `note: pinned service ${service} for ${url} (first use${named ? ', the one --accept-service names' : ''}): later runs refuse another service there (SERVICE_CHANGED)\n`,
    );
  } else if (pin.how === 'replaced') {
    process.stderr.write(
      `note: pinned service ${service} for ${url}, replacing ${toHex(pin.previous)} (--accept-service)\n`,
    );
  }
}

async function run(
  kind: 'transact' | 'query',
  url: string,
  app: string,
  method: string,
  argsJson: string,
  o: CallOptions,
): Promise<number> {
  let client: Client | undefined;
  // Set once the request id is chosen: what an error's retry command repeats.
  let retry: CallRun | undefined;
  try {
    const constraint = parseConstraint(o.constraint);
    const args = parseArgs(argsText(argsJson));
    if (kind === 'query' && (o.requestId !== undefined || o.receipt !== undefined)) {
      throw new InvalidInputError('--request-id and --receipt apply to `cloister call` only');
    }
    const accept =
      o.acceptService === undefined
        ? undefined
        : serviceIdentityArg(
            o.acceptService,
            '--accept-service',
            'the one the SERVICE_CHANGED message names, after you checked it with the operator',
          );
    // Before anything is sent: a transaction cannot be taken back if its receipt has nowhere to go.
    const receiptFile =
      o.receipt === undefined ? undefined : checkOutputFile(o.receipt, RECEIPT_FILE, '--receipt');
    const { path: identityPath, identity } = await identityFor(o);
    client = await connect(url, {
      constraint,
      identity,
      ...(accept === undefined ? {} : { acceptServiceChange: accept }),
      state: fileState(cloisterHome(o.home)),
      // The SDK's default budget (6 attempts, about 6 s): a node restarting (about 1-2 s) is
      // waited for, also by --receipt's wait (3 attempts gave up within a second).
      reconnect: { attempts: 6 },
    });
    notePin(client, url, accept !== undefined);
    const handle = client.app(app);
    // A transaction's request id is chosen here when not given, and its claims salt is always
    // derived from it (claimsSaltFor), never random: a run retrying a request id — after
    // OUTCOME_UNKNOWN, say — then sends the first run's salt, so the repeat's receipt checks.
    const requestId = o.requestId ?? globalThis.crypto.randomUUID();
    if (kind === 'transact') retry = { url, app, method, argsJson, requestId, o };
    const r =
      kind === 'query'
        ? await handle.query(method, args)
        : await handle.transact(method, args, {
            requestId,
            salt: claimsSaltFor(identityPath, client.service.identity, app, requestId),
          });
    // An app the constraint names no code for runs whatever the operator deployed under its
    // name: said with the code id, as the console does, so a missing APP: clause is not missed.
    const facts: Facts = {
      codeChecked: constraint.apps?.has(app) === true,
      callerId: toHex(callerId(app, identity.publicKey)),
    };
    if (receiptFile !== undefined && isTransact(r)) {
      return await withReceipt(client, url, app, method, r, receiptFile, o.json === true, facts);
    }
    print(client, app, method, r, undefined, o.json === true, undefined, facts);
    return 0;
  } catch (e) {
    // With --json, printError also writes {"error": …} on stdout (the request id of an
    // OUTCOME_UNKNOWN included: what to retry with).
    printError(forTheCommandLine(e, kind, retry), { json: o.json === true });
    return exitCodeOf(e);
  } finally {
    await client?.close();
  }
}

type ReceiptLine = { file: string; treeSize: number; claims: boolean };

/** What the output says of the call besides the node's answer. */
interface Facts {
  /** Whether the constraint names code for the app (an APP: clause). */
  readonly codeChecked: boolean;
  /** The caller's id in the app (hex), as the app sees it (docs/app-abi.md §5.1). */
  readonly callerId: string;
}

/**
 * The receipt of committed `r`, waited for and written to `file`. The transaction is committed
 * whatever happens next, so its result is never lost: in text the result is printed before the
 * wait and the receipt line after it; in JSON the one object carries `receipt`, or `receiptError`
 * when the wait failed or was interrupted (Ctrl-C: exit 130, the object printed first).
 */
async function withReceipt(
  client: Client,
  url: string,
  app: string,
  method: string,
  r: TransactResult,
  file: string,
  json: boolean,
  facts: Facts,
): Promise<number> {
  const later = `\`cloister receipt get ${url} ${r.txid}\` fetches it`;
  if (!json) print(client, app, method, r, undefined, false, undefined, facts);
  // A node signs its log on a timer (--sign-interval, 1 s by default): said once the wait is
  // longer than that, so a long one (a slow or never-signing node) is not a silent hang.
  const waiting = setTimeout(() => {
    process.stderr.write(
      `committed as ${r.txid}; waiting up to ${RECEIPT_WAIT_MS / 1000} s for the node to sign it (a node started with --sign-interval 0 signs only every 1000 entries); Ctrl-C stops waiting, and ${later} later\n`,
    );
  }, 3000);
  const interrupted = () => {
    if (json) {
      const e = new CloisterError(
        'RECEIPT_NOT_READY',
        `interrupted while waiting for the receipt of ${r.txid}`,
      );
      print(client, app, method, r, undefined, true, e, facts);
    }
    process.stderr.write(
      `\n  interrupted: the transaction is committed (${r.txid}); its receipt was not written: ${later}\n`,
    );
    process.exit(130);
  };
  process.once('SIGINT', interrupted);
  let receipt: ReceiptLine;
  try {
    const got = await receiptOf(client, r);
    receipt = {
      file: writeOutputFile(file, got.receipt, RECEIPT_FILE, '--receipt'),
      treeSize: got.verified.size,
      claims: true,
    };
  } catch (e) {
    if (json) print(client, app, method, r, undefined, true, e, facts);
    printError(e, { json: false });
    process.stderr.write(
      `  the transaction is committed (${r.txid}); its receipt was not written: ${later}\n`,
    );
    return exitCodeOf(e);
  } finally {
    clearTimeout(waiting);
    process.off('SIGINT', interrupted);
  }
  if (json) print(client, app, method, r, receipt, true, undefined, facts);
  else process.stdout.write(receiptLine(receipt));
  return 0;
}

function receiptLine(receipt: ReceiptLine): string {
  return line(
    'receipt',
    `${receipt.file} (verified, claims included; signed tree size ${receipt.treeSize})`,
  );
}

/** How long `--receipt` waits for the node's next signature. */
const RECEIPT_WAIT_MS = 60_000;

/** The receipt of committed `r`, waited for, with its claims checked. */
async function receiptOf(
  client: Client,
  r: TransactResult,
): Promise<Awaited<ReturnType<Client['receipt']>>> {
  try {
    return await client.receipt(r.txid, {
      wait: true,
      waitMs: RECEIPT_WAIT_MS,
      claims: r.claims,
    });
  } catch (e) {
    if (r.repeated && e instanceof ReceiptError && e.reason === 'claims') {
      throw new InvalidInputError(
        `request id '${r.requestId}' was first applied with other arguments, or by another tool or identity with another claims salt: the result shown is that first request's (${r.txid}), and its receipt does not commit to this call's method, arguments and salt. A retry of that same request needs nothing more (it is applied once); a different request needs its own request id`,
      );
    }
    throw e;
  }
}

function print(
  client: Client,
  app: string,
  method: string,
  r: QueryResult,
  receipt: ReceiptLine | undefined,
  json: boolean,
  receiptError: unknown,
  facts: Facts,
): void {
  const { codeChecked } = facts;
  const t = isTransact(r) ? r : undefined;
  if (json) {
    process.stdout.write(
      `${JSON.stringify({
        app,
        method,
        result: r.result,
        notifications: r.notifications,
        codeId: toHex(r.codeId),
        codeChecked,
        callerId: facts.callerId,
        service: toHex(client.service.identity),
        ...(t ? { txid: t.txid, requestId: t.requestId, repeated: t.repeated } : {}),
        ...(receipt ? { receipt } : {}),
        ...(receiptError === undefined ? {} : { receiptError: jsonError(receiptError) }),
      })}\n`,
    );
    return;
  }
  let out = line('result', r.json);
  for (const n of r.notifications) out += line('notification', JSON.stringify(n));
  if (t) {
    out += line('txid', t.txid) + line('request id', t.requestId);
    if (t.repeated) out += '  (this request id was already applied: the stored result is shown)\n';
  }
  out += line(
    'app code id',
    codeChecked
      ? toHex(r.codeId)
      : `${toHex(r.codeId)} (NOT checked: the constraint has no APP:${app} clause, so any code the operator deploys as ${app} answers)`,
  );
  out += line('caller id', `${facts.callerId} (yours in app ${app})`);
  out += line('service', toHex(client.service.identity));
  if (receipt) out += receiptLine(receipt);
  process.stdout.write(out);
}

/** `cloister call`: runs a transaction. */
export function call(
  url: string,
  app: string,
  method: string,
  args: string,
  o: CallOptions,
): Promise<number> {
  return run('transact', url, app, method, args, o);
}

/** `cloister query`: runs a query (nothing is written, no receipt). */
export function query(
  url: string,
  app: string,
  method: string,
  args: string,
  o: CallOptions,
): Promise<number> {
  return run('query', url, app, method, args, o);
}
