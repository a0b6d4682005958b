/**
 * The named errors of the app runtime (docs/app-abi.md §13). The sandbox's own errors (traps, fuel,
 * depth, deploy refusals) and the ledger's (reserved table, cursor, transaction caps) pass through
 * unchanged; these add what only the ABI knows. Messages name the rule, the import or the method,
 * never ledger data; an app error carries the app's own code and message, which the app chose to
 * show its caller.
 */
import { CloisterError } from '@cloister/core';

/** Deploy: no `cloister_abi_version`, or a version this node does not support (named). */
export class AbiVersionError extends CloisterError {
  readonly version: number | undefined;
  constructor(message: string, version?: number) {
    super('APP_ABI_VERSION', message);
    this.version = version;
  }
}

/** The module broke a rule of the ABI (bad UTF-8, a cap, a call out of place). */
export class AbiError extends CloisterError {
  readonly import: string;
  constructor(importName: string, message: string) {
    super('APP_ABI', `${importName}: ${message}`);
    this.import = importName;
  }
}

/** A write (ledger_set, ledger_remove, key_create) in a query. */
export class QueryWriteError extends CloisterError {
  constructor(importName: string) {
    super(
      'APP_QUERY_WRITE',
      `${importName} in a query: queries read committed state and never write`,
    );
  }
}

/** The app refused the call: `fail(code, message)`. Distinct from a trap. */
export class AppError extends CloisterError {
  readonly kind = 'app-error' as const;
  readonly appCode: string;
  readonly appMessage: string;
  constructor(appCode: string, appMessage: string) {
    super('APP_ERROR', `the app refused the call: ${appCode}: ${appMessage}`);
    this.appCode = appCode;
    this.appMessage = appMessage;
  }
}

/** AssemblyScript's `abort` (an assertion or runtime check failed in the app). */
export class AppAbortError extends CloisterError {
  readonly appMessage: string;
  readonly file: string;
  readonly line: number;
  readonly column: number;
  constructor(appMessage: string, file: string, line: number, column: number) {
    super(
      'APP_ABORT',
      `the app aborted: ${appMessage || '(no message)'} at ${file || '?'}:${line}:${column}`,
    );
    this.appMessage = appMessage;
    this.file = file;
    this.line = line;
    this.column = column;
  }
}

/** No app of that id. */
export class AppNotFoundError extends CloisterError {
  constructor(app: string) {
    super('APP_NOT_FOUND', `no app '${app}' is deployed`);
  }
}

/** Methods listed in a MethodUnknownError at most (an app may register many). */
const LISTED_METHODS = 24;

/**
 * The app has no route of that name. The message lists the app's methods and kinds (the names
 * its module registers: public to whoever holds the module, as the host does), so a typo is
 * fixed from the error alone.
 */
export class MethodUnknownError extends CloisterError {
  constructor(
    app: string,
    method: string,
    methods: readonly { readonly name: string; readonly kind: string }[] = [],
  ) {
    const sorted = [...methods].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    const shown = sorted.slice(0, LISTED_METHODS).map((m) => `${m.name} (${m.kind})`);
    const more =
      sorted.length > LISTED_METHODS ? `, and ${sorted.length - LISTED_METHODS} more` : '';
    super(
      'APP_METHOD_UNKNOWN',
      `app '${app}' has no method '${method}'${
        shown.length === 0 ? '' : `; its methods: ${shown.join(', ')}${more}`
      }`,
    );
  }
}

/** A query called as a transaction, or the reverse. */
export class MethodKindError extends CloisterError {
  constructor(app: string, method: string, declared: string, asked: string) {
    super(
      'APP_METHOD_KIND',
      `method '${method}' of app '${app}' is a ${declared}; it cannot be called as a ${asked}`,
    );
  }
}

/** A result or notification that is not valid JSON text. */
export class ResultInvalidError extends CloisterError {
  constructor(what: string, problem = 'is not valid JSON text') {
    super('APP_RESULT_INVALID', `the app's ${what} ${problem}`);
  }
}

/**
 * A transaction's request id was used by the same caller for another call (another method or
 * other argument bytes): nothing ran; the first call's outcome stays its own.
 */
export class RequestIdReusedError extends CloisterError {
  constructor(app: string, txid: string) {
    super(
      'REQUEST_ID_REUSED',
      `this request id was already used with app '${app}' for another call (another method or other arguments), applied in transaction ${txid}: use a new request id for a new call`,
    );
  }
}

/** The app's code changed since the call was checked or started: nothing of it ran or stays. */
export class AppCodeChangedError extends CloisterError {
  constructor(app: string, current: string) {
    super(
      'APP_CODE_CHANGED',
      `app '${app}' now runs code ${current}: read app.info again and check it before retrying`,
    );
  }
}
