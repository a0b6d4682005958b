/**
 * The console's local server: serves the page (bundled with esbuild when the server starts) and
 * proxies the node's public HTTP endpoints the page reads, so the page is same-origin with them.
 * It listens on 127.0.0.1 only: the page must come from the user's own installation (a page served
 * by the host would let the adversary ship the verifier), and localhost is a secure context, so
 * WebCrypto is available to the page. The proxy is not trusted either: everything the page shows
 * as verified it checks itself (evidence, receipts); the rest is labelled as the node's claim.
 *
 * The page's secure connection (SCP WebSocket) goes straight from the page to the node's /v1/scp:
 * SCP is end-to-end between the page and the enclave, so relaying it here would add nothing but a
 * hop, and the pin is then kept under the node's own URL, as every other client keeps it.
 */
import { existsSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import { type ClientState, scpUrl } from '@cloister/client';
import { fileState } from '@cloister/client/node';
import {
  CloisterError,
  fromHex,
  InvalidInputError,
  isAppId,
  parseConstraint,
  toHex,
} from '@cloister/core';
import { build } from 'esbuild';
import { CONSOLE_ERROR_HEADER } from './headers.js';
import { pageHtml } from './html.js';

/** The node endpoints the page reads (GET only); everything else is not proxied. */
export const PROXIED = [
  '/v1/status',
  '/v1/evidence',
  '/v1/apps',
  '/v1/receipt',
  '/v1/log/consistency',
] as const;

/**
 * The console's port when the command line names none. Fixed on purpose: the page keeps its
 * identities, service pins and signed roots in the browser under its origin, which includes the
 * port, so a console on a new port each run would start with no pins and no roots every time
 * and a swapped service would pass as first use.
 */
export const DEFAULT_CONSOLE_PORT = 7411;

/**
 * The most the console passes on of one answer of the node: its public answers (status, evidence,
 * apps, a receipt, a consistency proof) are kilobytes; a hostile node must not make this process
 * or the page hold gigabytes.
 */
export const MAX_PROXIED_BYTES = 4 * 1024 * 1024;

export interface ConsoleOptions {
  /** The node's URL (http or https), e.g. http://127.0.0.1:7410. */
  readonly nodeUrl: string;
  /** Port on 127.0.0.1 (0: a free port; the CLI defaults to DEFAULT_CONSOLE_PORT). */
  readonly port?: number;
  /** The constraint given on the command line; undefined: the page asks for one. */
  readonly constraint?: string;
  /**
   * Where the page keeps service pins and signed roots: the Cloister home, whose
   * client-state.json the CLI uses too (the CLI passes it). Then they outlive the browser's
   * origin (another port, another browser) and are one with `cloister call`'s. Undefined: the
   * page keeps them in the browser's IndexedDB, per origin.
   */
  readonly stateDir?: string;
  /**
   * The command-line option that sets `port`, named in the error when the port is in use
   * (default `--port`, as `cloister console` takes it; quickstart's is `--console-port`).
   */
  readonly portOption?: string;
  /**
   * Called once the page is bundled, right before the server listens: a caller holding `port`
   * meanwhile (quickstart) lets it go here, so no other program can take it during the bundling.
   */
  readonly beforeListen?: () => Promise<void>;
  /**
   * Test hook (not exposed by the CLI): alter one byte of the evidence the page receives, as a
   * host or network adversary would. The page must then show a red verdict and refuse to connect.
   */
  readonly alterEvidence?: boolean;
}

export interface ConsoleServer {
  /** The console's URL, http://127.0.0.1:<port>/. */
  readonly url: string;
  /** The bundled page script (what the page runs). */
  readonly script: string;
  /** Every input esbuild bundled into the page (DESIGN §10: no Node built-in may be among them). */
  readonly bundledInputs: readonly string[];
  close(): Promise<void>;
}

/** The page entry: the TypeScript source, next to this file or (from dist) in the package's src. */
function pageEntry(): string {
  const beside = fileURLToPath(new URL('./page/main.ts', import.meta.url));
  if (existsSync(beside)) return beside;
  return fileURLToPath(new URL('../../src/page/main.ts', import.meta.url));
}

/** Bundles the page for the browser; its inputs are returned so a test can check them. */
export async function bundlePage(): Promise<{ script: string; inputs: string[] }> {
  const out = await build({
    entryPoints: [pageEntry()],
    bundle: true,
    platform: 'browser',
    format: 'esm',
    conditions: ['source'],
    write: false,
    metafile: true,
    logLevel: 'silent',
  });
  return { script: out.outputFiles[0]?.text ?? '', inputs: Object.keys(out.metafile.inputs) };
}

/**
 * PORT_IN_USE for the console's port, naming the option that changes it (`--port` for
 * `cloister console`, `--console-port` for quickstart and `npm start`): the registry's next step
 * names the node's --port.
 */
export function consolePortInUse(port: number, option = '--port'): CloisterError {
  return new CloisterError(
    'PORT_IN_USE',
    `port ${port} on 127.0.0.1 is in use (another console, or another program): stop it, or give another port (\`cloister console --port\`, \`quickstart --console-port\`); the page keeps its identities and pins per port, so another port starts without them`,
    {
      hint: `Choose another port for the console with ${option}, or stop the process that uses it.`,
    },
  );
}

function normalizeNodeUrl(url: string): string {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new InvalidInputError(
      `not a URL: ${url}; give the node's URL, e.g. http://127.0.0.1:7410`,
    );
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') {
    throw new InvalidInputError(`${url} is not an http(s) URL; give the node's URL`);
  }
  return u.origin;
}

/** One byte of the evidence altered (the last: inside the platform signature). */
function alter(body: string): string {
  const j = JSON.parse(body) as { evidence: string };
  const bytes = Buffer.from(j.evidence, 'base64');
  bytes[bytes.length - 1] = (bytes[bytes.length - 1] as number) ^ 0x01;
  return JSON.stringify({ ...j, evidence: bytes.toString('base64') });
}

/** Why a fetch failed, by its system cause where there is one ("fetch failed" says nothing). */
function reason(e: unknown): string {
  const cause = (e as { cause?: { code?: unknown } }).cause?.code;
  if (cause === 'ECONNREFUSED') return 'nothing listens there (ECONNREFUSED)';
  if (typeof cause === 'string') return cause;
  return e instanceof Error ? e.message : String(e);
}

/** The body of `r`, or undefined (and the rest not read) once it passes `max` bytes. */
async function capped(r: Response, max: number): Promise<Uint8Array | undefined> {
  const declared = Number(r.headers.get('content-length') ?? '0');
  if (declared > max) {
    await r.body?.cancel();
    return undefined;
  }
  if (r.body === null) return new Uint8Array(0);
  const chunks: Uint8Array[] = [];
  let size = 0;
  const reader = r.body.getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > max) {
      await reader.cancel();
      return undefined;
    }
    chunks.push(value);
  }
  return Buffer.concat(chunks, size);
}

/** The JSON body of a state change, at most 4 KiB. */
async function jsonBody(req: IncomingMessage): Promise<Record<string, unknown>> {
  if (!/^application\/json\b/i.test(req.headers['content-type'] ?? '')) {
    throw new InvalidInputError('a state change is JSON (content-type: application/json)');
  }
  // Bytes counted and decoded once at the end: a character split across two chunks is not
  // garbled, and the cap is in bytes, as it says.
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > 4096) throw new InvalidInputError('a state change is at most 4 KiB');
    chunks.push(chunk as Buffer);
  }
  let v: unknown;
  try {
    v = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(Buffer.concat(chunks)));
  } catch {
    throw new InvalidInputError('a state change is a JSON object in UTF-8');
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) {
    throw new InvalidInputError('a state change is a JSON object');
  }
  return v as Record<string, unknown>;
}

const hex64 = (v: unknown, what: string): Uint8Array => {
  if (typeof v !== 'string' || !/^[0-9a-f]{64}$/.test(v)) {
    throw new InvalidInputError(`${what} is 64 lowercase hex digits`);
  }
  return fromHex(v);
};

/**
 * The page's pins and signed roots, kept in the Cloister home (`fileState`, the CLI's own):
 * `GET /state/pin?url=` → `{pin}` (hex or null); `POST /state/pin` `{url, pin, previous}`;
 * `GET /state/root?service=` → `{size, root}` or `{}`; `POST /state/root` `{service, size,
 * root, previous}`. `previous` (null: none; absent: any) makes a write a compare-and-set: 409
 * CLIENT_STATE_LOCKED when the state moved meanwhile. Same origin only (the Fetch Metadata check
 * runs first): another site can neither read nor write them.
 */
async function serveState(
  state: ClientState,
  req: IncomingMessage,
  res: ServerResponse,
  u: URL,
): Promise<void> {
  const ok = (v: unknown) => send(res, 200, 'application/json', JSON.stringify(v), DATA_POLICY);
  if (u.pathname === '/state/pin' && req.method === 'GET') {
    const url = u.searchParams.get('url') ?? '';
    const pin = await state.pins.get(url);
    return ok({ pin: pin === undefined ? null : toHex(pin) });
  }
  if (u.pathname === '/state/pin' && req.method === 'POST') {
    const b = await jsonBody(req);
    if (typeof b.url !== 'string' || b.url.length > 2048)
      throw new InvalidInputError('url is text of at most 2048 characters');
    const previous =
      b.previous === undefined
        ? undefined
        : b.previous === null
          ? null
          : hex64(b.previous, 'previous');
    await state.pins.put(b.url, hex64(b.pin, 'pin'), previous);
    return ok({});
  }
  if (u.pathname === '/state/root' && req.method === 'GET') {
    const r = await state.roots.get(hex64(u.searchParams.get('service'), 'service'));
    return ok(r === undefined ? {} : { size: r.size, root: toHex(r.root) });
  }
  if (u.pathname === '/state/root' && req.method === 'POST') {
    const b = await jsonBody(req);
    const service = hex64(b.service, 'service');
    const size = b.size;
    if (typeof size !== 'number' || !Number.isSafeInteger(size) || size < 0) {
      throw new InvalidInputError('size is a whole number');
    }
    const p = b.previous as { size?: unknown; root?: unknown } | null | undefined;
    const previous =
      p === undefined
        ? undefined
        : p === null
          ? null
          : { service, size: Number(p.size), root: hex64(p.root, 'previous root') };
    await state.roots.put({ service, size, root: hex64(b.root, 'root') }, previous);
    return ok({});
  }
  throw new InvalidInputError(`no such state request: ${req.method} ${u.pathname}`);
}

/** True for the node endpoints the page reads: PROXIED, and `/v1/apps/<app id>`. */
function proxied(path: string): boolean {
  if ((PROXIED as readonly string[]).includes(path)) return true;
  return path.startsWith('/v1/apps/') && isAppId(path.slice('/v1/apps/'.length));
}

/**
 * The content types the console passes on for `path`, by their essence: JSON everywhere, CBOR for
 * a receipt. The answer goes out with the console's own type string, never the node's.
 */
function allowedType(path: string, nodeType: string): string | undefined {
  const essence = nodeType.split(';', 1)[0]?.trim().toLowerCase();
  if (essence === 'application/json') return 'application/json';
  if (essence === 'application/cbor' && path === '/v1/receipt') return 'application/cbor';
  return undefined;
}

/**
 * The page's policy: it runs only its own bundled script and talks only to itself and to the
 * node's SCP origin (`connect`, the ws: or wss: origin of the node URL).
 */
function pagePolicy(connect: string): string {
  return `default-src 'none'; script-src 'self'; style-src 'unsafe-inline'; connect-src 'self' ${connect}; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'`;
}

/**
 * What the node's answers carry: data, never a document. A browser that opens one (a link a
 * hostile node or page sent the user to) neither renders nor runs it on the console's origin.
 */
const DATA_POLICY = "default-src 'none'; sandbox; frame-ancestors 'none'";

function send(
  res: ServerResponse,
  status: number,
  type: string,
  body: string | Uint8Array,
  policy: string,
  extra: Record<string, string> = {},
) {
  res.writeHead(status, {
    'content-type': type,
    'cache-control': 'no-store',
    'x-content-type-options': 'nosniff',
    'content-security-policy': policy,
    'referrer-policy': 'no-referrer',
    // No other origin may load what the console serves, nor share a browsing context with it.
    'cross-origin-resource-policy': 'same-origin',
    'cross-origin-opener-policy': 'same-origin',
    ...extra,
  });
  res.end(body);
}

function sendError(res: ServerResponse, status: number, code: string, message: string) {
  send(res, status, 'application/json', JSON.stringify({ error: { code, message } }), DATA_POLICY, {
    [CONSOLE_ERROR_HEADER]: code,
  });
}

/** Starts the console on 127.0.0.1; resolves once it listens. */
export async function startConsole(o: ConsoleOptions): Promise<ConsoleServer> {
  const nodeUrl = normalizeNodeUrl(o.nodeUrl);
  // The page would refuse a malformed constraint too, but only once someone opened it.
  if (o.constraint !== undefined) parseConstraint(o.constraint);
  const { script, inputs } = await bundlePage();
  const config = JSON.stringify({
    nodeUrl,
    ...(o.constraint === undefined ? {} : { constraint: o.constraint }),
    ...(o.stateDir === undefined ? {} : { sharedState: true }),
  });
  const state = o.stateDir === undefined ? undefined : fileState(o.stateDir);
  let origin = '';
  const page = pagePolicy(new URL(scpUrl(nodeUrl)).origin);
  // Answers of the node are data for the page's fetch(), never a page of their own.
  const asData = { 'content-disposition': 'attachment' };

  async function proxy(res: ServerResponse, path: string, search: string) {
    let r: Response;
    try {
      // A redirect is not followed: the node would choose what this machine fetches, from where.
      r = await fetch(`${nodeUrl}${path}${search}`, {
        signal: AbortSignal.timeout(15_000),
        redirect: 'manual',
      });
    } catch (e) {
      sendError(res, 502, 'NETWORK', `could not reach the node at ${nodeUrl}: ${reason(e)}`);
      return;
    }
    if (r.status >= 300 && r.status < 400) {
      sendError(
        res,
        502,
        'NETWORK',
        `the node answered ${path} with a redirect, which is not followed`,
      );
      return;
    }
    const type = allowedType(path, r.headers.get('content-type') ?? '');
    if (type === undefined) {
      sendError(
        res,
        502,
        'NETWORK',
        `the node answered ${path} with content of type ${JSON.stringify(r.headers.get('content-type'))}, not the JSON (or CBOR receipt) its API gives`,
      );
      return;
    }
    const body = await capped(r, MAX_PROXIED_BYTES);
    if (body === undefined) {
      sendError(
        res,
        502,
        'NETWORK',
        `the node's answer to ${path} is larger than ${MAX_PROXIED_BYTES} bytes, which no public answer is; it was cut`,
      );
      return;
    }
    if (path === '/v1/evidence' && o.alterEvidence === true && r.ok) {
      send(res, r.status, type, alter(new TextDecoder().decode(body)), DATA_POLICY, asData);
      return;
    }
    send(res, r.status, type, body, DATA_POLICY, asData);
  }

  const server: Server = createServer((req, res) => {
    // DNS rebinding: only requests addressed to this very origin are served.
    if (req.headers.host !== origin.slice('http://'.length)) {
      sendError(
        res,
        421,
        'INVALID_INPUT',
        `the console answers only at its own address: open ${origin}/ (another name for this machine, such as localhost, is refused so that no other site can reach it by DNS tricks)`,
      );
      return;
    }
    // Another site may neither embed, fetch nor link into the console: a link could hand the
    // page a query string, a fetch would make this machine ask the node on that site's behalf.
    // Browsers send Sec-Fetch-Site; a request without it (curl, a script) is not a browser's.
    const site = req.headers['sec-fetch-site'];
    if (site !== undefined && site !== 'same-origin' && site !== 'none') {
      sendError(
        res,
        403,
        'INVALID_INPUT',
        `the console answers only its own page and addresses typed in (this request came from a ${site} page): open ${origin}/ yourself`,
      );
      return;
    }
    const u = new URL(req.url ?? '/', origin);
    if (state !== undefined && u.pathname.startsWith('/state/')) {
      serveState(state, req, res, u).catch((e: unknown) => {
        const c = e instanceof CloisterError ? e : undefined;
        const status = c?.code === 'CLIENT_STATE_LOCKED' ? 409 : c ? 400 : 500;
        if (!res.headersSent)
          sendError(res, status, c?.code ?? 'UNEXPECTED', String((e as Error).message));
        else res.destroy();
      });
      return;
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      sendError(res, 405, 'INVALID_INPUT', 'the console answers GET only');
      return;
    }
    if (u.pathname === '/') send(res, 200, 'text/html; charset=utf-8', pageHtml, page);
    else if (u.pathname === '/console.js') send(res, 200, 'text/javascript', script, page);
    else if (u.pathname === '/config.json') send(res, 200, 'application/json', config, DATA_POLICY);
    else if (proxied(u.pathname))
      proxy(res, u.pathname, u.search).catch((e: unknown) => {
        // The node failed mid-answer: say so when nothing was sent yet, else cut the answer.
        if (!res.headersSent)
          sendError(res, 502, 'NETWORK', `the node's answer failed: ${String(e)}`);
        else res.destroy();
      });
    else sendError(res, 404, 'INVALID_INPUT', `no such console page: ${u.pathname}`);
  });
  await o.beforeListen?.();
  await new Promise<void>((resolve, reject) => {
    server.once('error', (e: NodeJS.ErrnoException) => {
      reject(e.code === 'EADDRINUSE' ? consolePortInUse(o.port ?? 0, o.portOption) : e);
    });
    server.listen(o.port ?? 0, '127.0.0.1', () => resolve());
  });
  origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    url: `${origin}/`,
    script,
    bundledInputs: inputs,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
