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

/**
 * `{ text }` → `{ ok: true, nodes }` or `{ ok: false, error }`: the parsed tree flattened in
 * pre-order (so any depth fits in a result), each number with its kind and exact value (an
 * integer's decimal digits, a number's f64 bits in hex) and each object member read back with
 * `get`, for comparison with JSON.parse.
 */
@query
export function inspect(args: Json): Json {
  const v = Json.parse(args.getString('text'));
  if (v === null) return Json.obj().setBool('ok', false).setString('error', Json.lastError);
  const nodes = Json.arr();
  flatten(v, nodes);
  return Json.obj().setBool('ok', true).set('nodes', nodes);
}

function flatten(v: Json, out: Json): void {
  if (v.kind == JsonKind.Null) out.push(Json.str('null'));
  else if (v.kind == JsonKind.Bool) out.push(Json.bool(v.asBool()));
  else if (v.kind == JsonKind.Integer) out.push(Json.obj().setString('int', v.asI64().toString()));
  else if (v.kind == JsonKind.Number) {
    out.push(Json.obj().setString('f64', reinterpret<u64>(v.asF64()).toString(16)));
  } else if (v.kind == JsonKind.String) out.push(Json.obj().setString('str', v.asString()));
  else if (v.kind == JsonKind.Array) {
    out.push(Json.obj().setI64('arr', v.length));
    for (let i = 0; i < v.length; i++) flatten(v.at(i)!, out);
  } else {
    const names = v.memberNames();
    out.push(Json.obj().setI64('obj', names.length));
    for (let i = 0; i < names.length; i++) {
      out.push(Json.str(names[i]));
      const byName = v.get(names[i])!;
      // The member read by name must be the one at its position.
      if (byName !== v.at(i)) out.push(Json.str('get() disagrees with at()'));
      flatten(byName, out);
    }
  }
}
