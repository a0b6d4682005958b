/**
 * Used by the code that the SDK's transform generates (transform/index.js): route registration,
 * argument decoding and result encoding for `cloister_routes` / `cloister_call` (docs/app-abi.md
 * §3). Not for app code.
 */
import { call_args, route } from './abi';
import { fromUtf8, utf8 } from './bytes';
import { Json, quoteJson } from './json';
import { fail, setResultText } from './result';

export function __cloisterRoute(kind: i32, name: string, id: i32): void {
  const b = utf8(name);
  route(kind, b.dataStart, b.length, id);
}

/** The call's arguments, parsed (the host has already checked that they are valid JSON). */
export function __cloisterArgs(len: i32): Json {
  const bytes = new Uint8Array(len);
  if (len > 0) call_args(bytes.dataStart);
  const v = Json.parse(fromUtf8(bytes));
  if (v === null) {
    return fail<Json>('invalid_arguments', 'the arguments are not JSON: ' + Json.lastError);
  }
  return v;
}

/** Encodes a method's return value as the call's result. */
export function __cloisterResult<T>(value: T): void {
  if (isNullable<T>()) {
    if (value === null) {
      setResultText('null');
      return;
    }
  }
  if (value instanceof Json) {
    setResultText(value.stringify());
  } else if (isString<T>()) {
    setResultText(quoteJson(changetype<string>(value)));
  } else if (isBoolean<T>()) {
    setResultText(value ? 'true' : 'false');
  } else if (isInteger<T>()) {
    setResultText(Json.int(<i64>value).stringify());
  } else if (isFloat<T>()) {
    setResultText(Json.num(<f64>value).stringify());
  } else {
    ERROR('a @query or @transaction method returns Json, string, bool, a number or void');
  }
}
