/**
 * The SDK's errors: CloisterError subclasses with codes from core's one registry (ERROR_CODES),
 * so the CLI, the docs and a browser app all see the same code and hint.
 */
import {
  AppCodeMismatchError,
  CloisterError,
  decodeAlert,
  ERROR_CODES,
  type ErrorCode,
  ScpError,
  type ScpErrorCode,
} from '@cloister/core';

/** The node could not be reached, or the connection dropped and could not be re-opened. */
export class NetworkError extends CloisterError {
  constructor(message: string, options?: { cause?: unknown; hint?: string }) {
    super('NETWORK', message, options);
  }
}

/**
 * The service identity this URL shows is not the one pinned for it (on first use, or as accepted
 * earlier): the service was replaced, or someone is impersonating it. Nothing was sent to it (a
 * transaction that had gone out on an earlier connection fails with OUTCOME_UNKNOWN instead).
 * Re-pin only deliberately, after checking with the operator: `acceptServiceChange: shown` (that
 * exact service), or `true`.
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

/**
 * CONSTRAINT_MISMATCH: `acceptServiceChange` (`--accept-service`) named the service identity the
 * caller expects, and the URL shows another one while no other service was pinned for it (no pin
 * yet, or the pin is the service shown). Refused like an `SVC:` clause naming it would be: before
 * the client key or any app data is sent, and nothing is pinned. (Where another service was
 * pinned, the same mismatch is SERVICE_CHANGED.)
 */
export class UnexpectedServiceError extends CloisterError {
  /** The identity acceptServiceChange named. */
  readonly expected: Uint8Array;
  /** The identity the URL shows. */
  readonly shown: Uint8Array;
  constructor(message: string, expected: Uint8Array, shown: Uint8Array) {
    super('CONSTRAINT_MISMATCH', message, {
      hint: 'The node does not show the service identity you named (--accept-service, acceptServiceChange): check the node URL and that identity with the operator, then pass the one the operator confirms.',
    });
    this.expected = expected.slice();
    this.shown = shown.slice();
  }
}

/** Codes a node may put in a handshake ALERT (docs/scp.md §7); any other becomes SCP_HANDSHAKE. */
const ALERT_CODES: ReadonlySet<string> = new Set([
  'SCP_HANDSHAKE',
  'SCP_VERSION',
  'SCP_PROTOCOL',
  'SCP_SESSIONS',
  'FRAME_TOO_LARGE',
]);

/**
 * The node refused the handshake after the client sent CA: it answered with an ALERT (docs/scp.md
 * §2) before any record of the session. The code and message are the alert's, as the peer
 * reported them: an ALERT is not authenticated (the host may have forged it), so it explains a
 * failure and never changes what the client trusts.
 */
export class HandshakeRefusedError extends ScpError {
  /** Always true: the code and message come from the (unauthenticated) peer, not from a check. */
  readonly reportedByPeer = true;
  /** The alert's own code, as sent (`code` is this when a node may send it, else SCP_HANDSHAKE). */
  readonly alertCode: string;

  constructor(alertCode: string, alertMessage: string) {
    const code: ScpErrorCode = ALERT_CODES.has(alertCode)
      ? (alertCode as ScpErrorCode)
      : 'SCP_HANDSHAKE';
    super(
      code,
      `the node refused the handshake (${alertCode.slice(0, 64)}: ${alertMessage}); this alert is not authenticated: connect again, and if it persists check the client identity and the node's logs`,
    );
    this.alertCode = alertCode;
  }

  /** The error an ALERT frame stands for; a malformed one is still a refusal (SCP_HANDSHAKE). */
  static of(frame: Uint8Array): HandshakeRefusedError {
    try {
      const { code, message } = decodeAlert(frame);
      return new HandshakeRefusedError(code, message);
    } catch {
      return new HandshakeRefusedError('SCP_HANDSHAKE', 'a malformed alert');
    }
  }
}

/** The node answered a request with an error (its code is from the registry). */
export class NodeError extends CloisterError {}

/** Another process held or changed the client state (pins, signed roots): core's class. */
export { StateLockedError } from '@cloister/core';

/**
 * OUTCOME_UNKNOWN: a transaction went out on a session, and that session ended (dropped, closed,
 * refused by an unauthenticated alert, or a reconnect failed) before its answer came back, so it
 * may have been committed. Never retry it with a new request id: look it up with
 * `status({ app, requestId })`, or call `transact` again with the same `requestId`, which applies
 * it at most once. `cause` is what ended the session.
 */
export class OutcomeUnknownError extends CloisterError {
  readonly app: string;
  readonly requestId: string;
  constructor(app: string, requestId: string, cause: unknown) {
    super(
      'OUTCOME_UNKNOWN',
      `transaction ${JSON.stringify(requestId)} of app ${JSON.stringify(app)} was sent but its answer was lost (${cause instanceof Error ? cause.message : String(cause)}); it may have been committed: look it up with status({ app, requestId }) or retry with the same request id (applied at most once)`,
      { cause },
    );
    this.app = app;
    this.requestId = requestId;
  }
}

/** The client was closed (by `close()`, or after an error it cannot recover from). */
export class ClientClosedError extends CloisterError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('SCP_CLOSED', message, options);
  }
}

/**
 * APP_ERROR: the app refused the call with `fail(code, message)` (docs/app-abi.md §13). The
 * enclave words it `the app refused the call: <appCode>: <appMessage>`, the code being
 * [A-Za-z0-9_.-] (no colon), so both parts are read back here for a caller to branch on.
 */
export class AppCallError extends NodeError {
  readonly appCode: string;
  readonly appMessage: string;
  constructor(message: string, appCode: string, appMessage: string) {
    super('APP_ERROR', message);
    this.appCode = appCode;
    this.appMessage = appMessage;
  }
}

const APP_REFUSAL = /^the app refused the call: ([A-Za-z0-9_.-]{1,64}): ([\s\S]*)$/;

/** A node error response as a CloisterError; a code outside the registry is a protocol fault. */
export function nodeError(code: string, message: string): CloisterError {
  if (code === 'APP_ERROR') {
    const m = APP_REFUSAL.exec(message);
    if (m !== null) return new AppCallError(message, m[1] as string, m[2] as string);
  }
  if (Object.hasOwn(ERROR_CODES, code)) return new NodeError(code as ErrorCode, message);
  return new NodeError(
    'SCP_PROTOCOL',
    `the node answered with an unknown error code ${JSON.stringify(code.slice(0, 64))}: ${message}`,
  );
}

/**
 * APP_CODE_MISMATCH for a repeated request id: the node had applied `requestId` (at `txid`) with
 * earlier code of the app, before an upgrade, and a retry answers that stored outcome, whose code
 * id (`seen`) the constraint's `APP:` clauses (`clause`) do not admit. Nothing ran again. It is
 * not a downgrade: add `APP:<app>=<seen>` to accept the stored outcome, or look the transaction
 * up by `txid` (status, receipt).
 */
export class RepeatedRequestCodeError extends AppCodeMismatchError {
  readonly app: string;
  readonly requestId: string;
  /** The transaction that applied the request id, with the earlier code. */
  readonly txid: string;
  override readonly hint: string =
    'The request id was applied by earlier code than your constraint admits, before the app was upgraded; nothing ran again. Add that code id (named in the message) as an APP: clause to accept its stored outcome, only if you trust that code, or look the transaction up by its txid.';
  constructor(mismatch: AppCodeMismatchError, app: string, requestId: string, txid: string) {
    const { clause, seen } = mismatch;
    super(
      clause,
      seen,
      `request id ${JSON.stringify(requestId)} of app ${JSON.stringify(app)} was already applied at ${txid} by earlier code ${seen}; a retry answers that stored outcome, which is not from code your constraint admits (${clause}), so it is refused (nothing ran again): add APP:${app}=${seen} to the constraint to accept it, or check the transaction without it: status({ app, requestId }), or its receipt (client.receipt("${txid}"), \`cloister receipt get <url> ${txid}\`)`,
    );
    this.app = app;
    this.requestId = requestId;
    this.txid = txid;
  }
}
