/**
 * The node's HTTP surface (issue 2): `GET /v1/health`, `GET /v1/evidence?nonce=<hex>`,
 * `GET /metrics`. The host only relays: evidence comes from the enclave, signed by the platform,
 * and is checked by the client; nothing here is to be believed by anyone.
 *
 * Limits (stated defaults, configurable): URL at most 2048 bytes (414), headers at most 8 KiB
 * (Node's 431), no request body on any route (413), only GET and HEAD (405). Errors are JSON
 * `{ "error": { "code", "message", "hint" } }` with codes from the one registry in @cloister/core.
 */

import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import { createServer } from 'node:http';
import {
  CloisterError,
  ERROR_CODES,
  type ErrorCode,
  fromHex,
  InvalidInputError,
  toBase64,
  toHex,
} from '@cloister/core';
import type { Logger } from './logger.js';
import type { NodeMetrics, Route } from './metrics.js';

export interface HttpLimits {
  readonly maxUrlBytes: number;
  readonly maxHeaderBytes: number;
}

export const DEFAULT_HTTP_LIMITS: HttpLimits = { maxUrlBytes: 2048, maxHeaderBytes: 8192 };

/** Evidence responses carry at most this many nonce bytes (DESIGN.md: 64). */
export const MAX_NONCE_BYTES = 64;

export interface HttpDeps {
  /** Asks the enclave for evidence answering `nonce`. */
  evidence(nonce: Uint8Array): Promise<{ evidence: Uint8Array; identityPublicKey: Uint8Array }>;
  /** Public facts for the health endpoint. */
  health(): { status: 'ok' | 'stopping'; platform: string };
  readonly metrics: NodeMetrics;
  readonly log: Logger;
  readonly limits?: HttpLimits;
}

class HttpError extends CloisterError {
  readonly status: number;
  constructor(status: number, code: ErrorCode, message: string) {
    super(code, message);
    this.status = status;
  }
}

function send(res: ServerResponse, status: number, body: unknown, type = 'application/json'): void {
  const text = type === 'application/json' ? `${JSON.stringify(body)}\n` : String(body);
  res.writeHead(status, {
    'content-type': type,
    'content-length': Buffer.byteLength(text),
    'cache-control': 'no-store',
    'x-content-type-options': 'nosniff',
  });
  res.end(res.req.method === 'HEAD' ? undefined : text);
}

function sendError(res: ServerResponse, status: number, e: CloisterError): void {
  send(res, status, { error: { code: e.code, message: e.message, hint: ERROR_CODES[e.code] } });
}

function routeOf(path: string): Route {
  return path === '/v1/health' || path === '/v1/evidence' || path === '/metrics' ? path : 'other';
}

function parseNonce(url: URL): Uint8Array {
  const all = url.searchParams.getAll('nonce');
  if (all.length !== 1) {
    throw new InvalidInputError('give exactly one nonce query parameter: /v1/evidence?nonce=<hex>');
  }
  const hex = all[0]!;
  if (hex.length > MAX_NONCE_BYTES * 2) {
    throw new InvalidInputError(
      `nonce is at most ${MAX_NONCE_BYTES} bytes (${MAX_NONCE_BYTES * 2} hex digits)`,
    );
  }
  return fromHex(hex, 'nonce');
}

async function handle(deps: HttpDeps, req: IncomingMessage, res: ServerResponse, route: Route) {
  const limits = deps.limits ?? DEFAULT_HTTP_LIMITS;
  if (Buffer.byteLength(req.url ?? '') > limits.maxUrlBytes) {
    throw new HttpError(414, 'REQUEST_TOO_LARGE', `URL is longer than ${limits.maxUrlBytes} bytes`);
  }
  const length = req.headers['content-length'];
  if ((length !== undefined && length !== '0') || req.headers['transfer-encoding'] !== undefined) {
    res.setHeader('connection', 'close');
    throw new HttpError(413, 'REQUEST_TOO_LARGE', 'requests to this node carry no body');
  }
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    res.setHeader('allow', 'GET, HEAD');
    throw new HttpError(405, 'INVALID_INPUT', `method ${req.method} is not allowed; use GET`);
  }
  const url = new URL(req.url ?? '/', 'http://node.invalid');
  switch (route) {
    case '/v1/health':
      return send(res, 200, deps.health());
    case '/v1/evidence': {
      const nonce = parseNonce(url);
      const { evidence, identityPublicKey } = await deps.evidence(nonce);
      return send(res, 200, {
        format: 'cloister-evidence-v1',
        evidence: toBase64(evidence),
        identityPublicKey: toHex(identityPublicKey),
      });
    }
    case '/metrics':
      return send(
        res,
        200,
        await deps.metrics.registry.metrics(),
        deps.metrics.registry.contentType,
      );
    default:
      throw new HttpError(404, 'NOT_FOUND', `no such endpoint; try /v1/health`);
  }
}

/** Creates (does not start) the node's HTTP server. */
export function createHttpServer(deps: HttpDeps): Server {
  const limits = deps.limits ?? DEFAULT_HTTP_LIMITS;
  const server = createServer({ maxHeaderSize: limits.maxHeaderBytes }, (req, res) => {
    const path = (req.url ?? '/').split('?', 1)[0]!;
    const route = routeOf(path);
    const stop = deps.metrics.httpDuration.startTimer({ route });
    res.on('finish', () => {
      stop();
      deps.metrics.httpRequests.inc({ route, status: String(res.statusCode) });
    });
    handle(deps, req, res, route).catch((e: unknown) => {
      if (res.headersSent) return res.destroy();
      if (e instanceof HttpError) return sendError(res, e.status, e);
      if (e instanceof CloisterError) {
        const status = e.code === 'INVALID_INPUT' || e.code === 'ENCODING' ? 400 : 503;
        if (status === 503) deps.log.error({ route, code: e.code }, 'request failed');
        return sendError(res, status, e);
      }
      deps.log.error({ route }, 'internal error');
      return sendError(res, 500, new CloisterError('ENCLAVE_FAILED', 'internal error'));
    });
  });
  server.headersTimeout = 10_000;
  server.requestTimeout = 30_000;
  return server;
}
