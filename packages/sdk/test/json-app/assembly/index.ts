/**
 * Test app for the SDK's JSON (packages/cli/test/app-sdk.test.ts): parses and re-encodes text,
 * echoes arguments, and builds values with the API, run on the real runtime.
 */
import { Json, JsonKind } from '@cloister/sdk';

/** `{ text }` → `{ ok: true, json }` (re-encoded) or `{ ok: false, error }`. */
@query
export function reencode(args: Json): Json {
  const v = Json.parse(args.getString('text'));
  if (v === null) return Json.obj().setBool('ok', false).setString('error', Json.lastError);
  return Json.obj().setBool('ok', true).setString('json', v.stringify());
}

/** The arguments, parsed by the SDK and encoded again as the result. */
@query
export function echo(args: Json): Json {
  return args;
}

/** Kinds and readers of the members of the argument object. */
@query
export function describe(args: Json): Json {
  const out = Json.arr();
  const names = args.memberNames();
  for (let i = 0; i < names.length; i++) {
    const v = args.get(names[i])!;
    let kind = 'object';
    if (v.kind == JsonKind.Null) kind = 'null';
    else if (v.kind == JsonKind.Bool) kind = 'bool';
    else if (v.kind == JsonKind.Integer) kind = 'integer';
    else if (v.kind == JsonKind.Number) kind = 'number';
    else if (v.kind == JsonKind.String) kind = 'string';
    else if (v.kind == JsonKind.Array) kind = 'array';
    out.push(
      Json.obj()
        .setString('name', names[i])
        .setString('kind', kind)
        .setI64('i64', v.asI64())
        .setF64('f64', v.asF64())
        .setI64('length', v.length),
    );
  }
  return out;
}

/** A value built with every builder. */
@query
export function build(): Json {
  return Json.obj()
    .set('null', Json.null())
    .setBool('yes', true)
    .setI64('big', 9007199254740993)
    .setI64('min', i64.MIN_VALUE)
    .setF64('half', 0.5)
    .setF64('nan', NaN)
    .setString('text', 'quote " backslash \\ newline \n tab \t nul \u0000 é 😀')
    .set('list', Json.arr().push(Json.int(1)).push(Json.str('two')).push(Json.arr()))
    .set('replaced', Json.int(1))
    .set('replaced', Json.int(2));
}

/** Results of other types: a string, a bool, a number, nothing. */
@query
export function text(): string {
  return 'a "string" result';
}

@query
export function flag(): bool {
  return true;
}

@query
export function ratio(): f64 {
  return 0.25;
}

@transaction
export function nothing(): void {}
