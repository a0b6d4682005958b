/**
 * A private poll (examples/poll/README.md). The creator names a question, its options and the
 * public key of the issuer whose credentials count; a voter presents one such credential per
 * vote. The app keeps, per poll, only the totals and the SHA-256 of (poll, credential id) of the
 * credentials that voted: never who voted, never which way a credential voted. Totals come out
 * only after the creator closes the poll, by a transaction.
 */
import { Context, fail, Json, Table } from '@cloister/sdk';
import {
  fixedHex,
  idField,
  nullifier,
  parseFixedHex,
  publicKeyArg,
  verifiedCredential,
  nameArg,
} from '../../common/assembly/signed';

/** poll id → { question, options, issuer, creator, open }. Invariant: holds no vote. */
const polls = new Table('polls');
/**
 * poll id → the totals, 16 hex digits per option: one value of fixed size rewritten by every
 * vote, so a write says neither which option nor how many votes.
 */
const tallies = new Table('tallies');
/** nullifier(poll id, credential id) → "1": the credentials that voted in that poll. */
const voted = new Table('voted');

const VOTER_KIND = 'cloister-example/voter/v1';

function load(id: string): Json {
  const p = polls.getJson(id);
  if (p === null) return fail<Json>('no_poll', 'no poll ' + id + ': check the id');
  return p;
}

/** Creates poll `poll`: `question`, 2–16 `options`, the credentials' `issuer` key (hex). */
@transaction
export function create(args: Json): Json {
  const id = nameArg(args, 'poll');
  if (polls.has(id)) return fail<Json>('poll_exists', 'poll ' + id + ' exists: choose another id');
  const question = args.getString('question');
  if (question.length == 0 || question.length > 512) {
    return fail<Json>('bad_question', 'ask a question of 1–512 characters');
  }
  const given = args.get('options');
  if (given === null || !given.isArray || given.length < 2 || given.length > 16) {
    return fail<Json>('bad_options', 'give 2–16 options as an array of strings');
  }
  const options = Json.arr();
  let zero = '';
  for (let i = 0; i < given.length; i++) {
    const o = given.at(i)!;
    if (!o.isString || o.asString().length == 0 || o.asString().length > 128) {
      return fail<Json>('bad_options', 'each option is a string of 1–128 characters');
    }
    options.push(Json.str(o.asString()));
    zero += fixedHex(0);
  }
  const issuer = args.getString('issuer');
  publicKeyArg(issuer);
  const record = Json.obj()
    .setString('question', question)
    .set('options', options)
    .setString('issuer', issuer)
    .setString('creator', Context.callerHex())
    .setBool('open', true);
  polls.setJson(id, record);
  tallies.set(id, zero);
  return record;
}

/**
 * Casts a vote for option index `option` with a voter credential `{ credential, signature }` of
 * the poll's issuer. Each credential votes once per poll, whoever presents it.
 */
@transaction
export function vote(args: Json): Json {
  const id = nameArg(args, 'poll');
  const p = load(id);
  if (!p.getBool('open')) return fail<Json>('poll_closed', 'poll ' + id + ' is closed');
  const issuer = publicKeyArg(p.getString('issuer'));
  const credential = verifiedCredential(args, issuer, VOTER_KIND, ['kind', 'id']);
  const count = p.get('options')!.length;
  const o = args.get('option');
  if (o === null || !o.isInteger || o.asI64() < 0 || o.asI64() >= count) {
    return fail<Json>('bad_option', 'option is the index of one of the poll\'s options');
  }
  // Last of the refusals: a call that could still be refused for anything else would tell
  // whether this credential voted without casting a vote (a probe of who voted).
  const used = nullifier(id, idField(credential, 'id'));
  if (voted.has(used)) {
    return fail<Json>('already_voted', 'this credential has voted in poll ' + id);
  }
  const at = <i32>o.asI64() * 16;
  const totals = tallies.get(id)!;
  const n = parseFixedHex(totals.substring(at, at + 16));
  voted.set(used, '1');
  tallies.set(id, totals.substring(0, at) + fixedHex(n + 1) + totals.substring(at + 16));
  return Json.obj().setBool('voted', true);
}

/** Closes the poll: only its creator, by this transaction. */
@transaction
export function close(args: Json): Json {
  const id = nameArg(args, 'poll');
  const p = load(id);
  if (p.getString('creator') != Context.callerHex()) {
    return fail<Json>('not_creator', 'only the creator of poll ' + id + ' can close it');
  }
  if (!p.getBool('open')) return fail<Json>('poll_closed', 'poll ' + id + ' is closed already');
  p.setBool('open', false);
  polls.setJson(id, p);
  return results(args);
}

/** The totals per option, once the poll is closed; refused while it is open. */
@query
export function results(args: Json): Json {
  const id = nameArg(args, 'poll');
  const p = load(id);
  if (p.getBool('open')) {
    return fail<Json>(
      'poll_open',
      'poll ' + id + ' is open: totals come out when its creator closes it',
    );
  }
  const totals = tallies.get(id)!;
  const out = Json.arr();
  let sum: i64 = 0;
  for (let at = 0; at < totals.length; at += 16) {
    const n = <i64>parseFixedHex(totals.substring(at, at + 16));
    out.push(Json.int(n));
    sum += n;
  }
  return Json.obj()
    .setString('question', p.getString('question'))
    .set('options', p.get('options')!)
    .set('totals', out)
    .setI64('votes', sum);
}

/** The poll's public record (question, options, issuer, creator, open): no vote information. */
@query
export function poll(args: Json): Json {
  return load(nameArg(args, 'poll'));
}
