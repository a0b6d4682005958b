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
import { createServer, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import { InvalidInputError } from '@cloister/core';
import { build } from 'esbuild';
import { pageHtml } from './html.js';

/** The node endpoints the page reads (GET only); everything else is not proxied. */
export const PROXIED = [
  '/v1/status',
  '/v1/evidence',
  '/v1/apps',
  '/v1/receipt',
  '/v1/log/consistency',
] as const;

export interface ConsoleOptions {
  /** The node's URL (http or https), e.g. http://127.0.0.1:7410. */
  readonly nodeUrl: string;
  /** Port on 127.0.0.1 (default 0: a free port). */
  readonly port?: number;
  /** The constraint given on the command line; undefined: the page asks for one. */
  readonly constraint?: string;
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

function send(res: ServerResponse, status: number, type: string, body: string | Uint8Array) {
  res.writeHead(status, {
    'content-type': type,
    'cache-control': 'no-store',
    'x-content-type-options': 'nosniff',
    // The page runs only its own bundled script and talks only to itself and the node's /v1/scp.
    'content-security-policy':
      "default-src 'none'; script-src 'self'; style-src 'unsafe-inline'; connect-src 'self' ws: wss:; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
    'referrer-policy': 'no-referrer',
  });
  res.end(body);
}

function sendError(res: ServerResponse, status: number, code: string, message: string) {
  send(res, status, 'application/json', JSON.stringify({ error: { code, message } }));
}

/** Starts the console on 127.0.0.1; resolves once it listens. */
export async function startConsole(o: ConsoleOptions): Promise<ConsoleServer> {
  const nodeUrl = normalizeNodeUrl(o.nodeUrl);
  const { script, inputs } = await bundlePage();
  const config = JSON.stringify({
    nodeUrl,
    ...(o.constraint === undefined ? {} : { constraint: o.constraint }),
  });
  let origin = '';

  async function proxy(res: ServerResponse, path: string, search: string) {
    let r: Response;
    try {
      r = await fetch(`${nodeUrl}${path}${search}`, { signal: AbortSignal.timeout(15_000) });
    } catch (e) {
      sendError(
        res,
        502,
        'NETWORK',
        `could not reach the node at ${nodeUrl}: ${(e as Error).message}`,
      );
      return;
    }
    const type = r.headers.get('content-type') ?? 'application/octet-stream';
    if (path === '/v1/evidence' && o.alterEvidence === true && r.ok) {
      send(res, r.status, type, alter(await r.text()));
      return;
    }
    send(res, r.status, type, new Uint8Array(await r.arrayBuffer()));
  }

  const server: Server = createServer((req, res) => {
    // DNS rebinding: only requests addressed to this very origin are served.
    if (req.headers.host !== origin.slice('http://'.length)) {
      sendError(res, 421, 'INVALID_INPUT', 'the console answers only at its own 127.0.0.1 URL');
      return;
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      sendError(res, 405, 'INVALID_INPUT', 'the console answers GET only');
      return;
    }
    const u = new URL(req.url ?? '/', origin);
    if (u.pathname === '/') send(res, 200, 'text/html; charset=utf-8', pageHtml);
    else if (u.pathname === '/console.js') send(res, 200, 'text/javascript', script);
    else if (u.pathname === '/config.json') send(res, 200, 'application/json', config);
    else if (PROXIED.some((p) => u.pathname === p || u.pathname.startsWith('/v1/apps/')))
      proxy(res, u.pathname, u.search).catch((e: unknown) => {
        // The node failed mid-answer: say so when nothing was sent yet, else cut the answer.
        if (!res.headersSent)
          sendError(res, 502, 'NETWORK', `the node's answer failed: ${String(e)}`);
        else res.destroy();
      });
    else sendError(res, 404, 'INVALID_INPUT', `no such console page: ${u.pathname}`);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
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
