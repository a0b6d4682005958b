/**
 * Results, notifications and app errors (docs/app-abi.md §6, §7). A method's return value becomes
 * its result; `setResult` is for code that wants to set it explicitly.
 */
import { fail as abiFail, notify as abiNotify, result_set } from './abi';
import { utf8 } from './bytes';
import { Json } from './json';

/** Sets the call's result (JSON text); a later call replaces it. */
export function setResultText(json: string): void {
  const b = utf8(json);
  result_set(b.dataStart, b.length);
}

export function setResult(value: Json): void {
  setResultText(value.stringify());
}

/** Sends a notification (JSON) to the caller of this call; for a transaction, after it commits. */
export function notify(value: Json): void {
  const b = utf8(value.stringify());
  abiNotify(b.dataStart, b.length);
}

/**
 * Ends the call as an app error: the client gets `APP_ERROR` with `code` (1–64 characters of
 * `[A-Za-z0-9_.-]`) and `message`; a transaction is aborted (no write survives). Never returns.
 * Generic so it can stand where a value is expected: `return fail<Json>('not_found', '…')`.
 */
export function fail<T = void>(code: string, message: string): T {
  const c = utf8(code);
  const m = utf8(message);
  abiFail(c.dataStart, c.length, m.dataStart, m.length);
  return unreachable();
}
