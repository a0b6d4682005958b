/**
 * The CLI's plain HTTP requests to a node (evidence, receipts, status, deploys): one place that
 * turns a failed fetch into a NETWORK error naming its real cause, and a node's JSON error into
 * the registry's code. The node is not trusted: its error code is taken only when the registry
 * has it as an own key, and nothing it says is more than a message.
 */
import { CloisterError, ERROR_CODES, type ErrorCode } from '@cloister/core';
import { printable } from './output.js';

export class NetworkError extends CloisterError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('NETWORK', message, options);
  }
}

/** Codes under which Node's TLS refuses a certificate it cannot check (node:tls, OpenSSL). */
const CERTIFICATE =
  /CERT|SELF_SIGNED|UNABLE_TO_VERIFY|UNABLE_TO_GET_ISSUER|ERR_TLS_CERT_ALTNAME_INVALID/;

/**
 * Why `fetch` failed, in words a user can act on. Node's fetch rejects with "fetch failed" and
 * keeps the reason in `cause` (a refused connection, an untrusted certificate, a closed socket).
 */
export function fetchFailure(e: unknown, origin: string): NetworkError {
  const err = e as {
    name?: string;
    message?: string;
    cause?: { code?: unknown; message?: unknown };
  };
  if (err?.name === 'TimeoutError') {
    return new NetworkError(`${origin} did not answer in time`, { cause: e });
  }
  const code = typeof err?.cause?.code === 'string' ? err.cause.code : undefined;
  const detail =
    typeof err?.cause?.message === 'string' ? err.cause.message : (err?.message ?? String(e));
  let why: string;
  if (code !== undefined && CERTIFICATE.test(code)) {
    why = `its TLS certificate is not one this machine trusts (${code}): for a node started with your own --tls-cert, run this command with NODE_EXTRA_CA_CERTS=<that certificate, or its CA>`;
  } else if (code === 'ECONNREFUSED') {
    why = 'nothing listens there (ECONNREFUSED): is the node running, on that port?';
  } else if (code === 'ENOTFOUND' || code === 'EAI_AGAIN') {
    why = `no such host (${code})`;
  } else if (code === 'UND_ERR_SOCKET' || code === 'ECONNRESET') {
    why = `the connection closed before an answer (${detail}): if the node serves HTTPS (--tls-cert), the URL starts with https://`;
  } else if (code === 'ERR_SSL_WRONG_VERSION_NUMBER' || /wrong version number/i.test(detail)) {
    why = 'it does not speak TLS: if the node serves plain HTTP, the URL starts with http://';
  } else {
    why = code === undefined ? detail : `${detail} (${code})`;
  }
  return new NetworkError(`could not reach ${origin}: ${why}`, { cause: e });
}

/** `fetch` with a timeout; a failure is fetchFailure's NETWORK error. */
export async function fetchNode(
  url: URL,
  timeoutMs: number,
  init: RequestInit = {},
): Promise<Response> {
  try {
    return await fetch(url, { ...init, signal: AbortSignal.timeout(timeoutMs) });
  } catch (e) {
    throw fetchFailure(e, url.origin);
  }
}

/**
 * A node's error answer as a CloisterError with the node's code when the registry has it as its
 * own key and, when `codes` is given, it is one of those (what that endpoint can answer: a node
 * must not make a receipt lookup show ROLLBACK_DETECTED and its hint); else NETWORK. The node's
 * message is clipped and made printable. `body` is the answer's bytes or text.
 */
export function nodeAnswerError(
  status: number,
  body: Uint8Array | string,
  what: string,
  codes?: readonly ErrorCode[],
): CloisterError {
  let err: { code?: unknown; message?: unknown } = {};
  try {
    const text = typeof body === 'string' ? body : new TextDecoder().decode(body);
    err = (JSON.parse(text) as { error?: typeof err }).error ?? {};
  } catch {
    // not JSON: not a node's error, or not a node
  }
  const message =
    typeof err.message === 'string' ? printable(err.message.slice(0, 500)) : undefined;
  const known =
    typeof err.code === 'string' &&
    Object.hasOwn(ERROR_CODES, err.code) &&
    (codes === undefined || codes.includes(err.code as ErrorCode));
  return new CloisterError(
    known ? (err.code as ErrorCode) : 'NETWORK',
    `${what}: the node answered HTTP ${status}${message === undefined ? '' : `: ${message}`}`,
  );
}
