/**
 * The SDK's errors: CloisterError subclasses with codes from core's one registry (ERROR_CODES),
 * so the CLI, the docs and a browser app all see the same code and hint.
 */
import { CloisterError, ERROR_CODES, type ErrorCode } from '@cloister/core';

/** The node could not be reached, or the connection dropped and could not be re-opened. */
export class NetworkError extends CloisterError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('NETWORK', message, options);
  }
}

/**
 * The service identity this URL shows is not the one pinned for it on first use: the service was
 * replaced, or someone is impersonating it. Nothing was sent. Re-pin only deliberately
 * (`acceptServiceChange: true`) after checking with the operator.
 */
export class ServiceChangedError extends CloisterError {
  readonly pinned: Uint8Array;
  readonly shown: Uint8Array;
  constructor(message: string, pinned: Uint8Array, shown: Uint8Array) {
    super('SERVICE_CHANGED', message);
    this.pinned = pinned;
    this.shown = shown;
  }
}

/** The node answered a request with an error (its code is from the registry). */
export class NodeError extends CloisterError {}

/** The client was closed (by `close()`, or after an error it cannot recover from). */
export class ClientClosedError extends CloisterError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('SCP_CLOSED', message, options);
  }
}

/** A node error response as a CloisterError; a code outside the registry is a protocol fault. */
export function nodeError(code: string, message: string): CloisterError {
  if (Object.hasOwn(ERROR_CODES, code)) return new NodeError(code as ErrorCode, message);
  return new NodeError(
    'SCP_PROTOCOL',
    `the node answered with an unknown error code ${JSON.stringify(code.slice(0, 64))}: ${message}`,
  );
}
