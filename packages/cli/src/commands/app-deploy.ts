/**
 * `cloister app deploy FILE.wasm --name NAME [--node URL] [--upgrade]` (issue 5 item 5): signs a
 * deploy request with the operator key (`<home>/operator.pem`) and uploads it with the module to
 * `POST /v1/apps`. The request names the service (from `/v1/status`) and the app's current code
 * id and index (from `/v1/apps/NAME`), so the node refuses it if replayed or stale. The node is
 * not trusted: the receipt of the deploy transaction (after the next signature) is the proof.
 * Exit codes: 0 deployed, 1 refused or failed, 2 could not run (output.ts exitCodeOf).
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import {
  bytesEqual,
  CloisterError,
  fromHex,
  InvalidInputError,
  toBase64,
  toHex,
} from '@cloister/core';
import {
  DEPLOY_REQUEST_HEADER,
  encodeDeployBody,
  loadOperatorKey,
  loadOrCreateOperatorKey,
  type OperatorKey,
  signDeployRequest,
} from '@cloister/host';
import { serviceIdentityArg } from '../args.js';
import { fetchNode, NetworkError, nodeAnswerError } from '../node-http.js';
import { exitCodeOf, line, printError, stderrLines, step } from '../output.js';
import { cloisterHome, installRoot } from '../paths.js';

/**
 * A deploy the node would refuse for the state the app is in (deployed already without
 * --upgrade, --upgrade of an app not deployed, the module it already runs): the enclave's code
 * for it, said before anything is signed, with the next step that fits.
 */
export class DeployRefusedError extends CloisterError {
  constructor(code: 'APP_DEPLOY_STALE' | 'APP_NOT_FOUND', message: string, hint: string) {
    super(code, message, { hint });
  }
}

export const DEFAULT_NODE_URL = 'http://127.0.0.1:7410';

export interface AppDeployOptions {
  readonly name: string;
  readonly node?: string;
  readonly upgrade?: boolean;
  readonly operatorKey?: string;
  readonly home?: string;
  readonly json?: boolean;
  readonly timeoutMs?: number;
  /**
   * The service identity (hex, or bytes) the request must be for. The node's `/v1/status` is its
   * own word: a node claiming another service would get a request signed for that one, valid
   * there. When given, a node reporting another identity is refused before anything is signed;
   * when not (the `app deploy` command without --service), the identity signed for is printed.
   */
  readonly service?: string | Uint8Array;
  /** Where the "signing for service" note goes (default stderr; quiet: nowhere). */
  readonly note?: (text: string) => void;
}

export interface AppDeployResult {
  readonly app: string;
  readonly codeId: string;
  readonly txid: string;
  readonly index: number;
  readonly migrated: boolean;
  /** The salt of the receipt's claims digest and the signed request (hex): keep them to check it. */
  readonly salt: string;
  readonly request: string;
}

export function operatorKeyPath(home?: string, flag?: string): string {
  return resolve(flag ?? join(cloisterHome(home), 'operator.pem'));
}

/**
 * The operator key a node starts with: created on first use at the default path only; a file
 * named with --operator-key must exist (a typo must not make the node's operator someone new).
 */
export function operatorKeyForStart(home?: string, flag?: string): OperatorKey {
  if (flag === undefined) return loadOrCreateOperatorKey(operatorKeyPath(home));
  return loadOperatorKey(
    operatorKeyPath(home, flag),
    `give the path of an existing operator key (\`cloister keys new FILE\` makes a new one), or leave --operator-key out to use ${operatorKeyPath(home)} (created on first use)`,
  );
}

/** The JSON body of a node's answer; NETWORK naming the URL when it is not JSON (not a node). */
async function jsonOf<T>(res: Response): Promise<T> {
  try {
    return (await res.json()) as T;
  } catch {
    throw new NetworkError(
      `${res.url} did not answer with JSON: is it a Cloister node? Give --node the node's URL`,
    );
  }
}

/** The node's JSON error as a CloisterError with its code (the node is not trusted for more). */
async function nodeError(res: Response): Promise<CloisterError> {
  return nodeAnswerError(res.status, await res.text().catch(() => ''), res.url);
}

/** Deploys (or upgrades) `file` as app `o.name`; throws the node's named error. */
export async function deployApp(file: string, o: AppDeployOptions): Promise<AppDeployResult> {
  const timeoutMs = o.timeoutMs ?? 60_000;
  let base: URL;
  try {
    base = new URL(o.node ?? DEFAULT_NODE_URL);
  } catch {
    throw new InvalidInputError(
      `not a URL: ${o.node}; give the node's URL, e.g. ${DEFAULT_NODE_URL}`,
    );
  }
  // Checked before anything is read or sent.
  const expected =
    o.service === undefined
      ? undefined
      : typeof o.service === 'string'
        ? serviceIdentityArg(
            o.service,
            '--service',
            '`cloister attest URL --constraint "…"` prints it, verified: `service` in its output',
          )
        : o.service;
  let module: Uint8Array;
  try {
    module = new Uint8Array(readFileSync(file));
  } catch (e) {
    throw new InvalidInputError(`cannot read ${file} (${(e as NodeJS.ErrnoException).code ?? e})`);
  }
  // Never created here: a new key could not deploy (the node knows the one it started with).
  const key = loadOperatorKey(
    operatorKeyPath(o.home, o.operatorKey),
    o.operatorKey === undefined
      ? 'a node takes its operator key when it first starts (`npm start` and `cloister node start` create this file then): deploy from the home the node was started with (--home), or give --operator-key the key it was started with'
      : `give the operator key the node was started with, or leave --operator-key out to use ${operatorKeyPath(o.home)}`,
  );

  const st = await fetchNode(new URL('/v1/status', base), timeoutMs);
  if (!st.ok) throw await nodeError(st);
  const service = fromHex(
    String((await jsonOf<{ serviceIdentity?: unknown }>(st)).serviceIdentity),
  );
  if (expected !== undefined) {
    if (!bytesEqual(expected, service)) {
      // CONSTRAINT_MISMATCH, as an SVC: clause that does not match (SERVICE_CHANGED's next step
      // is about a client's pin, which a deploy has none of).
      throw new CloisterError(
        'CONSTRAINT_MISMATCH',
        `${base.origin} reports service ${toHex(service)}, not ${toHex(expected)}: nothing was signed; check the node's URL (\`cloister attest ${base.origin} --constraint "…"\` prints its service) or the --service you gave`,
        {
          hint: 'Check that --node is the node you mean and that --service is its service identity (`cloister attest <node URL> --constraint "…"` prints it, verified against the node\'s evidence); a node now reporting another service is a new service, with none of the old one’s apps or data.',
        },
      );
    }
  } else {
    (o.note ?? stderrLines)(
      `signing for service ${toHex(service)}, as ${base.origin} reports it (check it: \`cloister attest ${base.origin} --constraint "…"\` prints the service it verified; then pass --service to require it)\n`,
    );
  }

  const cur = await fetchNode(new URL(`/v1/apps/${encodeURIComponent(o.name)}`, base), timeoutMs);
  let prev: Uint8Array = new Uint8Array(0);
  let prevIndex = 0;
  if (cur.ok) {
    const a = await jsonOf<{ codeId: string; index: number }>(cur);
    prev = fromHex(a.codeId);
    prevIndex = a.index;
  } else if (cur.status !== 404) {
    throw await nodeError(cur);
  }
  const codeId = createHash('sha256').update(module).digest('hex');
  // The enclave refuses these three too, under the same codes (APP_DEPLOY_STALE, APP_NOT_FOUND;
  // exit 1, refused by the node's state), with a next step about replayed requests: said here
  // first, on the node's word (which only spares a request the enclave would refuse), with the
  // one that fits.
  if (cur.ok && toHex(prev) === codeId) {
    throw new DeployRefusedError(
      'APP_DEPLOY_STALE',
      `app '${o.name}' already runs this module (code id ${codeId}): nothing to ${o.upgrade ? 'upgrade' : 'deploy'}; change the code and build again`,
      'The app already runs this code: change the code, build it again (`cloister app build`), then deploy it with --upgrade.',
    );
  }
  if (cur.ok && o.upgrade !== true) {
    throw new DeployRefusedError(
      'APP_DEPLOY_STALE',
      `app '${o.name}' is deployed already (code id ${toHex(prev)}): to replace its code, keeping its data, pass --upgrade`,
      "Run the same `cloister app deploy` with --upgrade to replace the app's code (its data is kept), or deploy under another --name.",
    );
  }
  if (!cur.ok && o.upgrade === true) {
    throw new DeployRefusedError(
      'APP_NOT_FOUND',
      `app '${o.name}' is not deployed on ${base.origin}: there is nothing to upgrade; deploy it first (without --upgrade)`,
      'Deploy the app first: the same `cloister app deploy` without --upgrade (or check --name and --node).',
    );
  }

  const signed = signDeployRequest(key.privateKey, {
    app: o.name,
    module,
    upgrade: o.upgrade === true,
    prev,
    prevIndex,
    service,
  });
  let res: Response;
  try {
    res = await fetchNode(new URL('/v1/apps', base), timeoutMs, {
      method: 'POST',
      headers: {
        'content-type': 'application/cbor',
        // The signed request ahead of the body: the node gives it the operator's upload slot.
        [DEPLOY_REQUEST_HEADER]: toBase64(signed.request),
      },
      body: encodeDeployBody(signed.request, module),
    });
  } catch (e) {
    // Refused or no such host: nothing was sent.
    const code = ((e as { cause?: { cause?: { code?: unknown } } }).cause?.cause?.code ??
      '') as string;
    if (['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN'].includes(code)) throw e;
    // Else the request may have reached the node before the connection failed: the deploy may
    // be committed. Said so, not "could not reach" (a review saw one committed after a NETWORK).
    const cause = e instanceof Error ? e.message : String(e);
    throw new CloisterError(
      'OUTCOME_UNKNOWN',
      `the deploy of ${o.name} (code id ${toHex(signed.codeId)}) was sent, but no answer came (${cause}): it may have been applied`,
      {
        cause: e,
        hint: `See what the node runs: \`GET ${new URL(`/v1/apps/${o.name}`, base)}\` (or run the same deploy again: it says "already runs this module" if it was applied; a deploy request is applied at most once).`,
      },
    );
  }
  if (res.status !== 201) throw await nodeError(res);
  const r = await jsonOf<{
    app: string;
    codeId: string;
    txid: string;
    index: number;
    migrated: boolean;
  }>(res);
  if (r.codeId !== toHex(signed.codeId) || r.app !== o.name) {
    throw new CloisterError('NETWORK', 'the node answered for another app or code id');
  }
  return { ...r, salt: toHex(signed.salt), request: toHex(signed.request) };
}

/**
 * How to run this CLI from where the user is: `npx cloister` in this installation, else the full
 * path (an app project's `npx cloister` would look the name up on the npm registry).
 */
function cloisterCommand(): string {
  const bin = join(installRoot(), 'packages', 'cli', 'bin', 'cloister.js');
  return resolve(process.cwd()) === installRoot() ? 'npx cloister' : `node ${bin}`;
}

export async function appDeploy(file: string, o: AppDeployOptions): Promise<number> {
  try {
    const r = await step(
      `${o.upgrade ? 'upgrading' : 'deploying'} ${o.name} on ${o.node ?? DEFAULT_NODE_URL}`,
      false,
      () => deployApp(file, o),
    );
    if (o.json) {
      process.stdout.write(`${JSON.stringify(r, null, 2)}\n`);
    } else {
      process.stdout.write(
        `${o.upgrade ? 'upgraded' : 'deployed'} app ${r.app}\n` +
          line('code id', r.codeId) +
          line('txid', r.txid) +
          (r.migrated ? line('migration', 'cloister_migrate ran') : '') +
          `receipt (after the next signature):\n  ${cloisterCommand()} receipt get ${o.node ?? DEFAULT_NODE_URL} ${r.txid}\n`,
      );
    }
    return 0;
  } catch (e) {
    printError(e);
    return exitCodeOf(e);
  }
}
