/**
 * A pooled salary benchmark (examples/salary-benchmark/README.md). An owner opens a round with a
 * threshold k (at least 5); contributors present one salary credential each, signed by the issuer
 * compiled in (config.ts) — not one the owner picks, who could otherwise sign k − 1 made-up
 * salaries and read the last one off the mean. While the round is open nothing about it comes out,
 * not even how many contributed. The owner's close releases count, mean and median — only when at
 * least k credentials contributed — and deletes the individual salaries either way. No query takes
 * a filter or a subset, and a credential contributes to one round only, so the releases are
 * aggregates over disjoint sets that cannot be differenced down to one salary.
 */
import { Context, fail, Json, Table } from '@cloister/sdk';
import {
  fixedHex,
  idField,
  nullifier,
  fromHex,
  nameArg,
  parseFixedHex,
  verifiedCredential,
} from '../../common/assembly/signed';
import { ISSUER_PUBLIC_KEY_HEX } from './config';

/**
 * round id → { owner, k, issuer (the compiled-in key), open, result }. Invariant: while `open`,
 * nothing in it depends on a contribution; `result` is null until the close.
 */
const rounds = new Table('rounds');
/**
 * nullifier('salary', credential id) → "1": credentials that contributed, to any round. One
 * credential, one round: rounds never share a contribution.
 */
const used = new Table('contributed');

/** The salaries of one open round: nullifier → fixedHex(salary). Emptied at the close. */
function salariesOf(id: string): Table {
  return new Table('salaries/' + id);
}

const SALARY_KIND = 'cloister-example/salary/v1';
/** round id → fixedHex(contributions so far). */
const counts = new Table('counts');
/**
 * Contributions per round at most: the close reads and sorts every salary in one transaction
 * (the median needs them all), and that must fit the call's fuel (about 40,000 a contribution).
 */
const MAX_CONTRIBUTIONS: u64 = 1000;
const MIN_K: i64 = 5;
const MAX_SALARY: i64 = 1099511627776;

function load(id: string): Json {
  const r = rounds.getJson(id);
  if (r === null) return fail<Json>('no_round', 'no round ' + id + ': check the id');
  return r;
}

/** Opens round `round` with threshold `k` (≥ 5, fixed for the round); the caller owns it. */
@transaction
export function open(args: Json): Json {
  const id = nameArg(args, 'round');
  if (rounds.has(id)) {
    return fail<Json>('round_exists', 'round ' + id + ' exists: choose another id');
  }
  const k = args.get('k');
  if (k === null || !k.isInteger || k.asI64() < MIN_K || k.asI64() > 1000000) {
    return fail<Json>(
      'bad_k',
      'k is a whole number of at least 5: fewer contributors would expose each other',
    );
  }
  const record = Json.obj()
    .setString('owner', Context.callerHex())
    .setI64('k', k.asI64())
    .setString('issuer', ISSUER_PUBLIC_KEY_HEX)
    .setBool('open', true)
    .set('result', Json.null());
  rounds.setJson(id, record);
  return record;
}

/** Contributes the salary that a `{ credential, signature }` of the issuer attests. */
@transaction
export function contribute(args: Json): Json {
  const id = nameArg(args, 'round');
  const r = load(id);
  if (!r.getBool('open')) return fail<Json>('round_closed', 'round ' + id + ' is closed');
  const count = parseFixedHex(counts.get(id));
  if (count >= MAX_CONTRIBUTIONS) {
    return fail<Json>(
      'round_full',
      'round ' + id + ' has the most contributions a close can take (1000): ask for a new round',
    );
  }
  const issuer = fromHex(ISSUER_PUBLIC_KEY_HEX)!;
  const credential = verifiedCredential(args, issuer, SALARY_KIND, ['kind', 'id', 'salary']);
  const salary = credential.get('salary')!;
  if (!salary.isInteger || salary.asI64() <= 0 || salary.asI64() >= MAX_SALARY) {
    return fail<Json>(
      'bad_credential',
      'the credential salary must be a whole number from 1 to 2^40 − 1',
    );
  }
  const key = nullifier('salary', idField(credential, 'id'));
  if (used.has(key)) {
    return fail<Json>(
      'already_contributed',
      'this credential has contributed already (to this or another round)',
    );
  }
  used.set(key, '1');
  counts.set(id, fixedHex(count + 1));
  salariesOf(id).set(key, fixedHex(<u64>salary.asI64()));
  return Json.obj().setBool('contributed', true);
}

/**
 * Closes the round: only its owner, by this transaction. Releases { released, count, mean,
 * median } when at least k contributed, else { released: false } alone; deletes the salaries.
 */
@transaction
export function close(args: Json): Json {
  const id = nameArg(args, 'round');
  const r = load(id);
  if (r.getString('owner') != Context.callerHex()) {
    return fail<Json>('not_owner', 'only the owner of round ' + id + ' can close it');
  }
  if (!r.getBool('open')) return fail<Json>('round_closed', 'round ' + id + ' is closed already');
  const table = salariesOf(id);
  const keys: string[] = [];
  const values: u64[] = [];
  let cursor: Uint8Array | null = null;
  for (;;) {
    const page = table.list(cursor, 1000);
    for (let i = 0; i < page.entries.length; i++) {
      keys.push(page.entries[i].keyText());
      values.push(parseFixedHex(page.entries[i].valueText()));
    }
    if (page.done) break;
    cursor = page.cursor;
  }
  for (let i = 0; i < keys.length; i++) table.remove(keys[i]);
  const result = Json.obj();
  if (<i64>values.length < r.getI64('k')) {
    result.setBool('released', false);
  } else {
    values.sort((a: u64, b: u64): i32 => (a < b ? -1 : a > b ? 1 : 0));
    let sum: u64 = 0;
    for (let i = 0; i < values.length; i++) sum += values[i];
    const n = values.length;
    const median = n % 2 == 1 ? values[n / 2] : (values[n / 2 - 1] + values[n / 2]) / 2;
    result
      .setBool('released', true)
      .setI64('count', n)
      .setI64('mean', <i64>(sum / <u64>n))
      .setI64('median', <i64>median);
  }
  r.setBool('open', false);
  r.set('result', result);
  rounds.setJson(id, r);
  return r;
}

/** The round's public record: owner, k, issuer, open; after the close, its result. */
@query
export function round(args: Json): Json {
  return load(nameArg(args, 'round'));
}
