/**
 * The node's HTTP surface (docs/node-api.md): `GET /v1/health`, `GET /v1/evidence?nonce=<hex>`,
 * `GET /v1/status`, `GET /v1/receipt?txid=<term.index>`, `GET /v1/log/consistency?from=&to=`,
 * `GET /metrics`. The host only relays: evidence comes from the enclave, signed by the platform,
 * receipts and proofs come from the enclave's logchain service and are checked by the client
 * (core verifyReceipt, verifyConsistency); nothing here is to be believed by anyone.
 *
 * Apps: `POST /v1/apps` (deploy or upgrade: CBOR `{request, module}`, the request signed by the
 * operator key and checked by the enclave), `GET /v1/apps`, `GET /v1/apps/<name>` (the public
 * code history).
 *
 * Secure connections: `/v1/scp` is a WebSocket endpoint (scp-relay.ts, attached to this server);
 * a plain GET of it is answered 426. With `tls` the server is HTTPS (and the WebSocket WSS).
 *
 * Limits (stated defaults, configurable): URL at most 2048 bytes (414), headers at most 8 KiB
 * (Node's 431), no request body except on `POST /v1/apps` (413), where it is at most
 * `maxDeployBytes` (8 MiB + 64 KiB, 413); only GET and HEAD, plus POST on `/v1/apps` (405). Errors
 * are JSON `{ "error": { "code", "message", "hint" } }` with codes from the one registry in
 * @cloister/core.
 */

import { readFileSync } from 'node:fs';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import { createServer } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { CallResponse } from '@cloister/boundary';
import {
  CloisterError,
  decodeCbor,
  decodeMinimalSign1,
  EncodingError,
  ERROR_CODES,
  type ErrorCode,
  fromBase64,
  fromHex,
  InvalidInputError,
  isAppId,
  sign1ToBeSigned,
  toBase64,
  toHex,
  verifyEs256,
} from '@cloister/core';
import { shareKeyOf } from './client-key.js';
import type { Logger } from './logger.js';
import { metricsExposition, type NodeMetrics, ROUTES, type Route } from './metrics.js';
import { rawErrorAnswer } from './raw-answer.js';
import type { TlsFiles } from './tls.js';

export interface HttpLimits {
  readonly maxUrlBytes: number;
  readonly maxHeaderBytes: number;
  /** Body of `POST /v1/apps` (default: an 8 MiB module plus 64 KiB for the request). */
  readonly maxDeployBytes?: number;
  /**
   * `POST /v1/apps` bodies read at once (default 2): each may hold 8 MiB for up to 30 s before
   * any check, and deploys run one at a time anyway; beyond, 503 NODE_BUSY before reading.
   */
  readonly maxConcurrentUploads?: number;
  /**
   * Sockets open at once, HTTP and WebSocket together (default defaultMaxConnections()): beyond,
   * a new connection is closed at once. Without it a flood of idle connections used every file
   * descriptor the process may open, and the store, which needs them, failed.
   */
  readonly maxConnections?: number;
  /** Sockets from one remote address at most (default 1,024); beyond, 503 NODE_BUSY. */
  readonly maxConnectionsPerAddress?: number;
}

/**
 * The default socket cap: 12,000 (the relay's 10,000 secure connections and room for HTTP), or
 * less where the process may open fewer files, keeping 1,500 of them for the store (LevelDB
 * keeps up to 1,000 table files open) and the rest of the node.
 */
export function defaultMaxConnections(limitsText?: string): number {
  let text = limitsText;
  if (text === undefined) {
    try {
      text = readFileSync('/proc/self/limits', 'utf8');
    } catch {
      return 12_000;
    }
  }
  const soft = /^Max open files\s+(\d+)/m.exec(text)?.[1];
  if (soft === undefined) return 12_000;
  return Math.max(64, Math.min(12_000, Number(soft) - 1_500));
}

/** Default number of deploy bodies read at once. */
export const DEFAULT_MAX_CONCURRENT_UPLOADS = 2;

/** Default cap of a `POST /v1/apps` body: the sandbox's 8 MiB module cap plus 64 KiB. */
export const DEFAULT_MAX_DEPLOY_BYTES = 8 * 1024 * 1024 + 64 * 1024;

export const DEFAULT_HTTP_LIMITS: HttpLimits = {
  maxUrlBytes: 2048,
  maxHeaderBytes: 8192,
  maxDeployBytes: DEFAULT_MAX_DEPLOY_BYTES,
};

/** What `POST /v1/apps` answers (from the enclave's `apps.deploy`). */
export interface DeployReply {
  readonly txid: string;
  readonly app: string;
  readonly codeId: Uint8Array;
  readonly index: number;
  readonly migrated: boolean;
}

/** Evidence responses carry at most this many nonce bytes (DESIGN.md: 64). */
export const MAX_NONCE_BYTES = 64;

/** The logchain service's public status (`service.status`), as the enclave reports it. */
export type ServiceStatus = CallResponse<'service.status'>;

export interface HttpDeps {
  /** The operator's public key (65 bytes): its signed deploy requests get an upload slot of their own. */
  readonly operatorPublicKey?: Uint8Array;
  /** Asks the enclave for evidence answering `nonce`. */
  evidence(nonce: Uint8Array): Promise<{ evidence: Uint8Array; identityPublicKey: Uint8Array }>;
  /** The service's public status. */
  status(): Promise<ServiceStatus>;
  /** The receipt (CBOR, docs/receipts.md) of transaction `txid` (already checked: `term.index`). */
  receipt(txid: string): Promise<Uint8Array>;
  /** RFC 9162 consistency proof between two signed tree sizes. */
  consistency(from: number, to: number): Promise<Uint8Array[]>;
  /** Deploys or upgrades an app (the enclave checks everything). */
  deploy(request: Uint8Array, module: Uint8Array): Promise<DeployReply>;
  /** The public code history (CBOR of `apps.info`) of `app`, or of every app for ''. */
  apps(app: string): Promise<Uint8Array>;
  /** Public facts for the health endpoint. */
  health(): { status: 'ok' | 'stopping'; platform: string };
  readonly metrics: NodeMetrics;
  readonly log: Logger;
  readonly limits?: HttpLimits;
  /** Serve HTTPS (and WSS on /v1/scp) with this certificate and key (loadTlsFiles). */
  readonly tls?: TlsFiles;
}

class HttpError extends CloisterError {
  readonly status: number;
  constructor(status: number, code: ErrorCode, message: string) {
    super(code, message);
    this.status = status;
  }
}

function send(res: ServerResponse, status: number, body: unknown, type = 'application/json'): void {
  const text =
    body instanceof Uint8Array
      ? body
      : type === 'application/json'
        ? `${JSON.stringify(body)}\n`
        : String(body);
  res.writeHead(status, {
    'content-type': type,
    'content-length': typeof text === 'string' ? Buffer.byteLength(text) : text.length,
    'cache-control': 'no-store',
    'x-content-type-options': 'nosniff',
  });
  res.end(res.req.method === 'HEAD' ? undefined : text);
}

function sendError(res: ServerResponse, status: number, e: CloisterError): void {
  send(res, status, { error: { code: e.code, message: e.message, hint: ERROR_CODES[e.code] } });
}

/**
 * A request target, parsed once: normalised by the URL parser (dot segments resolved, an
 * absolute-form target reduced to its path), so the route, the app name and the parameters all
 * come from the same path (a review's `/v1/apps/../../abcdefghtoken` was routed as an app and
 * named app `token`). Undefined for a target the parser refuses (routed `other`, answered 400).
 */
function parseTarget(target: string): URL | undefined {
  try {
    return new URL(target, 'http://node.invalid');
  } catch {
    return undefined;
  }
}

function routeOf(path: string): Route {
  if (path.startsWith('/v1/apps/')) return '/v1/apps/{name}';
  return (ROUTES as readonly string[]).includes(path) && path !== 'other'
    ? (path as Route)
    : 'other';
}

/**
 * HTTP status of an error the enclave (or the host) raised: the code decides, never the message.
 * 404 for an unknown transaction, 409 for one not yet covered by a signature (retry after the
 * next signature), 400 for the caller's own input, 503 for the rest (logged by code).
 */
const STATUS_OF: Readonly<Record<string, number>> = {
  INVALID_INPUT: 400,
  ENCODING: 400,
  LOG_FORMAT: 400,
  NOT_FOUND: 404,
  LEDGER_INDEX: 404, // no such committed state / tree size
  UNKNOWN_TRANSACTION: 404, // no such transaction in the log
  RECEIPT_NOT_READY: 409, // committed, not signed yet: retry after the next signature
  REQUEST_TOO_LARGE: 413,
  // Deploy and upgrade: the request's or the module's fault, never the node's.
  APP_NOT_FOUND: 404,
  APP_DEPLOY_SIGNATURE: 403,
  APP_DEPLOY_STALE: 409,
  OPERATOR_KEY_MISSING: 409,
  TX_CONFLICT: 409,
  APP_DEPLOY_CODE_MISMATCH: 400,
  APP_MODULE_MALFORMED: 400,
  APP_MODULE_FEATURE: 400,
  APP_MODULE_LIMIT: 400,
  APP_IMPORT_UNKNOWN: 400,
  APP_ABI: 400,
  APP_ABI_VERSION: 400,
  APP_TRAP: 400,
  APP_FUEL_EXHAUSTED: 400,
  APP_STACK_DEPTH: 400,
  APP_ABORT: 400,
  APP_ERROR: 400,
  APP_QUERY_WRITE: 400,
  APP_RESULT_INVALID: 400,
  APP_RESULT_TOO_LARGE: 400,
  APP_INSTANCE_POISONED: 400,
  TX_TOO_LARGE: 400,
};

/** 409s that a retry fixes (after the next signature); a stale deploy is not one. */
const RETRY_LATER = new Set(['RECEIPT', 'RECEIPT_NOT_READY']);

function statusOf(e: CloisterError): number {
  return STATUS_OF[e.code] ?? 503;
}

const TXID = /^([1-9][0-9]{0,15})\.([1-9][0-9]{0,15})$/;

/** `txid`: exactly one parameter `term.index`, two whole numbers from 1 (e.g. `1.5`). */
function parseTxidParam(url: URL): string {
  const all = url.searchParams.getAll('txid');
  const m = all.length === 1 ? TXID.exec(all[0]!) : null;
  if (!m || !Number.isSafeInteger(Number(m[1])) || !Number.isSafeInteger(Number(m[2]))) {
    throw new InvalidInputError(
      'give exactly one txid query parameter in the form term.index, two whole numbers from 1 without leading zeros: /v1/receipt?txid=1.5',
    );
  }
  return all[0]!;
}

/** `name`: exactly one parameter, a whole number from 0 to 2^53-1 without leading zeros. */
function parseSize(url: URL, name: string): number {
  const all = url.searchParams.getAll(name);
  const text = all.length === 1 ? all[0]! : '';
  const n = Number(text);
  if (!/^(0|[1-9][0-9]{0,15})$/.test(text) || !Number.isSafeInteger(n)) {
    throw new InvalidInputError(
      `give exactly one ${name} query parameter, a whole number (a signed tree size): /v1/log/consistency?from=M&to=N`,
    );
  }
  return n;
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

/** Reads a request body of at most `max` bytes; 413 (connection closed) beyond it. */
function readBody(req: IncomingMessage, res: ServerResponse, max: number): Promise<Uint8Array> {
  const declared = Number(req.headers['content-length'] ?? Number.NaN);
  const tooLarge = () => {
    res.setHeader('connection', 'close');
    return new HttpError(
      413,
      'REQUEST_TOO_LARGE',
      `a deploy body is at most ${max} bytes (an 8 MiB module and its request)`,
    );
  };
  if (declared > max) {
    req.resume();
    return Promise.reject(tooLarge());
  }
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let done = false;
    req.on('data', (c: Buffer) => {
      if (done) return;
      size += c.length;
      if (size > max) {
        done = true;
        req.resume();
        reject(tooLarge());
        return;
      }
      chunks.push(c);
    });
    req.on('end', () => {
      if (done) return;
      done = true;
      resolve(new Uint8Array(Buffer.concat(chunks)));
    });
    req.on('error', (e) => {
      if (done) return;
      done = true;
      reject(e);
    });
  });
}

/** The body of `POST /v1/apps`: CBOR `{"request": bstr, "module": bstr}`, nothing else. */
function parseDeployBody(body: Uint8Array): { request: Uint8Array; module: Uint8Array } {
  const m = decodeCbor(body);
  const request = m instanceof Map ? m.get('request') : undefined;
  const module = m instanceof Map ? m.get('module') : undefined;
  if (
    !(m instanceof Map) ||
    m.size !== 2 ||
    !(request instanceof Uint8Array) ||
    !(module instanceof Uint8Array)
  ) {
    throw new EncodingError(
      'the body of POST /v1/apps is CBOR {"request": bstr, "module": bstr} (use `cloister app deploy`)',
    );
  }
  return { request, module };
}

/** `apps.info`'s CBOR as the JSON clients read. */
function appsJson(cbor: Uint8Array): unknown[] {
  const list = decodeCbor(cbor);
  if (!Array.isArray(list))
    throw new EncodingError('apps.info answered something else than a list');
  return list.map((item) => {
    const [app, history, loaded] = item as [string, [Uint8Array, number][], boolean];
    const versions = history.map(([codeId, index]) => ({
      codeId: toHex(codeId),
      index,
      txid: `1.${index}`,
    }));
    return {
      app,
      codeId: versions[0]?.codeId ?? null,
      index: versions[0]?.index ?? null,
      loaded,
      history: versions,
    };
  });
}

/** Header carrying the deploy request (base64 of its COSE_Sign1) ahead of the body. */
export const DEPLOY_REQUEST_HEADER = 'cloister-deploy-request';

/**
 * True when the request's DEPLOY_REQUEST_HEADER is a COSE_Sign1 that verifies under the
 * operator key and could still apply: for this service, and naming the app's code as it is now
 * (no app for a first deploy; its current code id and index for an upgrade). An admission ticket
 * to the operator's upload slot, nothing more: the enclave checks the request in the body. A
 * request already applied is no ticket (a review held the slot with a replayed one, read from
 * the wire, a `--json` output or the node's own log), nor is a bad header: either upload goes to
 * the shared slots, where the enclave refuses what it must.
 */
async function operatorTicket(
  req: IncomingMessage,
  deps: Pick<HttpDeps, 'operatorPublicKey' | 'status' | 'apps'>,
): Promise<boolean> {
  const header = req.headers[DEPLOY_REQUEST_HEADER];
  const operatorPublicKey = deps.operatorPublicKey;
  if (operatorPublicKey === undefined || typeof header !== 'string' || header.length > 8192) {
    return false;
  }
  try {
    const sign1 = decodeMinimalSign1(fromBase64(header, 'deploy request'));
    const signed = await verifyEs256(
      operatorPublicKey,
      sign1ToBeSigned(sign1.protectedBytes, sign1.payload),
      sign1.signature,
    );
    if (!signed) return false;
    const m = decodeCbor(sign1.payload);
    if (!(m instanceof Map)) return false;
    const [app, prev, prevIndex, service] = ['app', 'prev', 'prevIndex', 'service'].map((k) =>
      m.get(k),
    );
    if (typeof app !== 'string' || !isAppId(app) || !(prev instanceof Uint8Array)) return false;
    if (!(service instanceof Uint8Array)) return false;
    if (toHex(service) !== toHex((await deps.status()).serviceIdentity)) return false;
    let current: { codeId: string | null; index: number | null } | undefined;
    try {
      current = appsJson(await deps.apps(app))[0] as typeof current;
    } catch (e) {
      if (!(e instanceof CloisterError && e.code === 'APP_NOT_FOUND')) throw e;
    }
    return current === undefined || current.codeId === null
      ? prev.length === 0 && prevIndex === 0
      : current.codeId === toHex(prev) && current.index === prevIndex;
  } catch {
    return false;
  }
}

async function handle(
  deps: HttpDeps,
  req: IncomingMessage,
  res: ServerResponse,
  route: Route,
  url: URL | undefined,
  uploads: { n: number; operator: number },
) {
  const limits = deps.limits ?? DEFAULT_HTTP_LIMITS;
  if (Buffer.byteLength(req.url ?? '') > limits.maxUrlBytes) {
    throw new HttpError(414, 'REQUEST_TOO_LARGE', `URL is longer than ${limits.maxUrlBytes} bytes`);
  }
  const upload = route === '/v1/apps' && req.method === 'POST';
  const length = req.headers['content-length'];
  if (
    !upload &&
    ((length !== undefined && length !== '0') || req.headers['transfer-encoding'] !== undefined)
  ) {
    res.setHeader('connection', 'close');
    throw new HttpError(413, 'REQUEST_TOO_LARGE', 'requests to this node carry no body');
  }
  if (req.method !== 'GET' && req.method !== 'HEAD' && !upload) {
    const allow = route === '/v1/apps' ? 'GET, HEAD, POST' : 'GET, HEAD';
    res.setHeader('allow', allow);
    throw new HttpError(405, 'INVALID_INPUT', `method ${req.method} is not allowed; use ${allow}`);
  }
  if (url === undefined) {
    // An absolute-form target with a bad authority, say: the client's mistake, not the node's.
    throw new HttpError(
      400,
      'INVALID_INPUT',
      'the request target must be a path, such as /v1/health',
    );
  }
  switch (route) {
    case '/v1/apps': {
      if (!upload) return send(res, 200, { apps: appsJson(await deps.apps('')) });
      const type = String(req.headers['content-type'] ?? '');
      if (type.split(';', 1)[0]?.trim() !== 'application/cbor') {
        req.resume();
        throw new InvalidInputError('POST /v1/apps takes Content-Type: application/cbor');
      }
      // A request signed by the operator (its deploy request, in the header, checked before the
      // body) gets a slot of its own: strangers' uploads, which are read whole before the
      // enclave can refuse them, must not lock the operator out (a review: two trickling
      // uploads held both slots for as long as they liked).
      const slot: keyof typeof uploads = (await operatorTicket(req, deps)) ? 'operator' : 'n';
      const max =
        slot === 'operator' ? 1 : (limits.maxConcurrentUploads ?? DEFAULT_MAX_CONCURRENT_UPLOADS);
      if (uploads[slot] >= max) {
        // Refused before reading: the body is not buffered, and the connection ends with it.
        res.setHeader('connection', 'close');
        res.setHeader('retry-after', '1');
        throw new HttpError(
          503,
          'NODE_BUSY',
          slot === 'operator'
            ? 'another signed upload is being received; retry in a moment'
            : 'other app uploads are being received; retry in a moment',
        );
      }
      let body: Uint8Array;
      uploads[slot]++;
      try {
        body = await readBody(req, res, limits.maxDeployBytes ?? DEFAULT_MAX_DEPLOY_BYTES);
      } finally {
        uploads[slot]--;
      }
      const { request, module } = parseDeployBody(body);
      const r = await deps.deploy(request, module);
      return send(res, 201, {
        app: r.app,
        codeId: toHex(r.codeId),
        txid: r.txid,
        index: r.index,
        migrated: r.migrated,
        receipt: `/v1/receipt?txid=${r.txid}`,
      });
    }
    case '/v1/apps/{name}': {
      const name = url.pathname.slice('/v1/apps/'.length);
      if (!isAppId(name)) {
        throw new InvalidInputError(
          'an app id is 1..64 characters of [A-Za-z0-9_.-], starting with a letter or digit',
        );
      }
      const [app] = appsJson(await deps.apps(name));
      return send(res, 200, app);
    }
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
    case '/v1/status': {
      const st = await deps.status();
      return send(res, 200, {
        index: st.index,
        term: st.term,
        txid: `${st.term}.${st.index}`,
        lastSigned: st.lastSigned,
        stateHash: toHex(st.stateHash),
        treeRoot: toHex(st.treeRoot),
        serviceIdentity: toHex(st.serviceIdentity),
        servicePublicKey: toHex(st.servicePublicKey),
        epoch: st.epoch,
        generation: st.generation,
      });
    }
    case '/v1/receipt': {
      const receipt = await deps.receipt(parseTxidParam(url));
      return send(res, 200, receipt, 'application/cbor');
    }
    case '/v1/log/consistency': {
      const from = parseSize(url, 'from');
      const to = parseSize(url, 'to');
      if (from > to) {
        throw new InvalidInputError(`from (${from}) must not exceed to (${to})`);
      }
      const proof = await deps.consistency(from, to);
      return send(res, 200, { from, to, proof: proof.map(toHex) });
    }
    case '/v1/scp':
      res.setHeader('upgrade', 'websocket');
      throw new HttpError(
        426,
        'INVALID_INPUT',
        '/v1/scp is a WebSocket endpoint: connect with a WebSocket client (the Cloister client SDK)',
      );
    case '/metrics':
      return send(res, 200, await metricsText(deps.metrics), deps.metrics.registry.contentType);
    default:
      throw new HttpError(
        404,
        'NOT_FOUND',
        url.pathname === '/'
          ? 'this is a Cloister node: its API is under /v1 (docs/node-api.md); to look at it in a browser, run `cloister console <this URL>` on your own machine (a page served by the node could not be trusted to check it)'
          : `no such endpoint; try /v1/health`,
      );
  }
}

/** How long a rendering of /metrics is served again (Prometheus scrapes every 15 s or so). */
export const METRICS_RENDER_MS = 1000;

// Per registry: the last rendering of /metrics and when it began.
const rendered = new WeakMap<object, { at: number; text: Promise<string> }>();

/**
 * The /metrics text, rendered at most once per METRICS_RENDER_MS (a request meanwhile gets the
 * same text, or waits for the rendering in progress): a flood of scrapes (a review's 1,150/s)
 * made every client's calls 70 times slower, each scrape rendering every metric.
 */
function metricsText(m: NodeMetrics): Promise<string> {
  const now = performance.now();
  const last = rendered.get(m.registry);
  if (last !== undefined && now - last.at < METRICS_RENDER_MS) return last.text;
  const text = metricsExposition(m.registry);
  rendered.set(m.registry, { at: now, text });
  // A failed rendering is not served again.
  text.catch(() => rendered.delete(m.registry));
  return text;
}

/** Creates (does not start) the node's HTTP server. */
export function createHttpServer(deps: HttpDeps): Server {
  const limits = deps.limits ?? DEFAULT_HTTP_LIMITS;
  // Idle sockets are checked every 5 s (Node's default, 30 s, let a silent one live 40 s).
  // No Host header required: nothing here uses it, and Node's own refusal was an empty 400.
  const options = {
    maxHeaderSize: limits.maxHeaderBytes,
    connectionsCheckingInterval: 5_000,
    requireHostHeader: false,
  };
  // Invariant: the number of deploy bodies being read now, in the shared slots and in the
  // operator's (signed requests).
  const uploads = { n: 0, operator: 0 };
  const handler = (req: IncomingMessage, res: ServerResponse) => {
    const url = parseTarget(req.url ?? '/');
    const route = routeOf(url?.pathname ?? '/');
    const stop = deps.metrics.httpDuration.startTimer({ route });
    // A stopping node closes each connection after its answer: a kept-alive one would hold the
    // server's close, and so the node's stop, until its keep-alive timeout.
    if (deps.health().status === 'stopping') res.setHeader('connection', 'close');
    res.on('finish', () => {
      stop();
      deps.metrics.httpRequests.inc({ route, status: String(res.statusCode) });
    });
    handle(deps, req, res, route, url, uploads).catch((e: unknown) => {
      if (res.headersSent) return res.destroy();
      // (Not `req.destroyed`: a request read to its end is destroyed too, and must be answered.)
      if (res.destroyed || req.socket.destroyed) {
        // The client went away (an upload aborted, or cut at the request timeout): nothing to
        // answer, and not the node's error (it was logged at error level, at any client's will).
        deps.log.debug({ route, event: 'http.request-aborted' }, 'request aborted');
        return;
      }
      if (e instanceof HttpError) return sendError(res, e.status, e);
      if (e instanceof CloisterError) {
        const status = statusOf(e);
        if (status === 503) deps.log.error({ route, code: e.code }, 'request failed');
        if (RETRY_LATER.has(e.code)) res.setHeader('retry-after', '1');
        return sendError(res, status, e);
      }
      deps.log.error({ route }, 'internal error');
      return sendError(res, 500, new CloisterError('ENCLAVE_FAILED', 'internal error'));
    });
  };
  // An https.Server is an http.Server to everything that listens, upgrades and closes.
  const server: Server = deps.tls
    ? (createHttpsServer({ ...options, cert: deps.tls.cert, key: deps.tls.key }, handler) as Server)
    : createServer(options, handler);
  server.headersTimeout = 10_000;
  server.requestTimeout = 30_000;
  // Requests Node's parser refuses before any handler runs (bad framing, headers too large, too
  // slow): answered with the documented JSON error instead of Node's empty 400.
  server.on('clientError', (err: NodeJS.ErrnoException, socket) => {
    if (!socket.writable || (socket as { _httpMessage?: unknown })._httpMessage) {
      socket.destroy();
      return;
    }
    const [status, code, message] =
      err.code === 'HPE_HEADER_OVERFLOW'
        ? [
            431,
            'REQUEST_TOO_LARGE',
            `the request's headers are over ${limits.maxHeaderBytes} bytes`,
          ]
        : err.code === 'ERR_HTTP_REQUEST_TIMEOUT'
          ? [408, 'INVALID_INPUT', 'the request did not arrive in time']
          : [
              400,
              'INVALID_INPUT',
              `malformed HTTP request (${err.code ?? 'parse error'}): send a well-formed HTTP/1.1 request`,
            ];
    socket.end(rawErrorAnswer(status, code, message));
  });
  // CONNECT is not a request a handler sees: answered here, as the other wrong methods are.
  server.on('connect', (_req: IncomingMessage, socket: Duplex) => {
    socket.on('error', () => {});
    socket.end(
      rawErrorAnswer(
        405,
        'INVALID_INPUT',
        'method CONNECT is not allowed; use GET, HEAD (or POST on /v1/apps)',
        { allow: 'GET, HEAD' },
      ),
    );
  });
  capConnections(server, {
    total: limits.maxConnections ?? defaultMaxConnections(),
    perAddress: limits.maxConnectionsPerAddress ?? DEFAULT_MAX_CONNECTIONS_PER_ADDRESS,
    tls: deps.tls !== undefined,
  });
  return server;
}

/** Default sockets from one remote address, HTTP and WebSocket together. */
export const DEFAULT_MAX_CONNECTIONS_PER_ADDRESS = 1024;

/**
 * Caps the server's open sockets, in all and per client address (shareKeyOf; kept in memory only): a socket
 * beyond either is answered 503 NODE_BUSY (the documented JSON error, so a client can say why)
 * and closed, without being read. Node's own `maxConnections` closed it without a word ("socket
 * hang up"), and one address could take every slot (review: 15,000 idle sockets from one
 * address turned away most others).
 */
function capConnections(
  server: Server,
  cap: { total: number; perAddress: number; tls: boolean },
): void {
  let open = 0;
  const byAddress = new Map<string, number>();
  server.on('connection', (socket: Socket) => {
    // One client's addresses count together (an IPv6 client holds its whole /64).
    const address = shareKeyOf(socket.remoteAddress ?? '');
    const mine = byAddress.get(address) ?? 0;
    if (open >= cap.total || mine >= cap.perAddress) {
      const why =
        open >= cap.total
          ? `this node has ${cap.total} connections open`
          : `this node serves at most ${cap.perAddress} connections from one address`;
      socket.on('error', () => {});
      // Under TLS nothing can be said before the handshake: the socket is closed at once.
      if (cap.tls) {
        socket.destroy();
        return;
      }
      socket.end(rawErrorAnswer(503, 'NODE_BUSY', `${why}; retry later`, { 'retry-after': '1' }));
      socket.destroySoon();
      return;
    }
    open++;
    byAddress.set(address, mine + 1);
    socket.once('close', () => {
      open--;
      const left = (byAddress.get(address) ?? 1) - 1;
      if (left <= 0) byAddress.delete(address);
      else byAddress.set(address, left);
    });
  });
}
