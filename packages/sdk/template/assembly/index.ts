/**
 * The app: its methods are the exported functions marked @query (read-only, committed state) or
 * @transaction (reads and writes the app's ledger, all or nothing). Arguments arrive as parsed
 * JSON; what a method returns is its JSON result. See node_modules/@cloister/sdk/README.md.
 */
import { Context, fail, Json, notify, Table } from '@cloister/sdk';

const counters = new Table('counters');

/** Adds `by` (default 1) to the counter `name`; returns its new value. */
@transaction
export function increment(args: Json): Json {
  const name = args.getString('name');
  if (name.length == 0) return fail<Json>('bad_name', 'give the counter a name');
  const current = counters.getJson(name);
  const value = (current === null ? 0 : current.asI64()) + args.getI64('by', 1);
  counters.setJson(name, Json.int(value));
  notify(Json.obj().setString('counter', name).setI64('value', value));
  return Json.obj().setI64('value', value).setString('by', Context.callerHex());
}

/** The value of the counter `name` (0 when it was never incremented). */
@query
export function get(args: Json): i64 {
  const v = counters.getJson(args.getString('name'));
  return v === null ? 0 : v.asI64();
}
