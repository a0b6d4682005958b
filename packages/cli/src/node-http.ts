/**
 * The CLI's plain HTTP requests to a node (evidence, receipts, status, deploys): one place that
 * turns a failed fetch into a NETWORK error naming its real cause, and a node's JSON error into
 * the registry's code. The node is not trusted: its error code is taken only when the registry
 * has it as an own key, and nothing it says is more than a message.
 */
import { connect } from 'node:tls';
import {
  CERTIFICATE_OUT_OF_DATE,
  type CertificateDates,
  CloisterError,
  ERROR_CODES,
  type ErrorCode,
  tlsTrustProblem,
} from '@cloister/core';
import { printable } from './output.js';

export class NetworkError extends CloisterError {
  constructor(message: string, options?: { cause?: unknown; hint?: string }) {
    super('NETWORK', message, options);
  }
}

/**
 * Why `fetch` failed, in words a user can act on. Node's fetch rejects with "fetch failed" and
 * keeps the reason in `cause` (a refused connection, an untrusted certificate, a closed socket).
 * `dates`: the validity period of the certificate the node showed, for one out of date.
 */
export function fetchFailure(e: unknown, origin: string, dates?: CertificateDates): NetworkError {
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
  const tls = tlsTrustProblem(code, dates);
  if (tls !== undefined) {
    // Not "is the node running?": it answered, with a certificate this machine refused.
    return new NetworkError(`could not reach ${origin}: ${tls.why}`, { cause: e, hint: tls.hint });
  }
  let why: string;
  if (code === 'ECONNREFUSED') {
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
    const code = (e as { cause?: { code?: unknown } })?.cause?.code;
    const dates =
      typeof code === 'string' && CERTIFICATE_OUT_OF_DATE.has(code)
        ? await certificateDates(url, Math.min(timeoutMs, 3000))
        : undefined;
    throw fetchFailure(e, url.origin, dates);
  }
}

/**
 * The validity period of the certificate an https `url` shows, or undefined when it cannot be
 * read in `timeoutMs`. Only for the message of a certificate refused as out of date: the
 * connection is not verified (that is the point) and nothing is sent over it.
 */
export function certificateDates(
  url: URL,
  timeoutMs: number,
): Promise<CertificateDates | undefined> {
  if (url.protocol !== 'https:') return Promise.resolve(undefined);
  const host = url.hostname.replace(/^\[(.*)\]$/, '$1');
  return new Promise((resolve) => {
    const socket = connect({
      host,
      port: Number(url.port || 443),
      ...(/^[\d.]+$|:/.test(host) ? {} : { servername: host }),
      rejectUnauthorized: false,
    });
    const done = (dates: CertificateDates | undefined): void => {
      clearTimeout(timer);
      socket.destroy();
      resolve(dates);
    };
    const timer = setTimeout(() => done(undefined), timeoutMs);
    socket.once('secureConnect', () => {
      const c = socket.getPeerCertificate();
      done(
        typeof c?.valid_from === 'string' && typeof c.valid_to === 'string'
          ? { validFrom: c.valid_from, validTo: c.valid_to }
          : undefined,
      );
    });
    socket.once('error', () => done(undefined));
  });
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
