/**
 * A confidential token (examples/token/README.md). Balances are kept per caller id, as 16 hex
 * digits (a fixed width: a write's size says nothing about an amount); only the owner of a
 * balance can read it. Only the issuer whose public key is compiled in (config.ts) can mint: a
 * mint carries the issuer's signature over (recipient, amount, nonce), and each nonce works once.
 * Exactly-once under retries is the platform's request id (docs/app-abi.md §5.3).
 */
import { Context, fail, Json, Table } from '@cloister/sdk';
import {
  amountArg,
  callerIdArg,
  fixedHex,
  fromHex,
  idField,
  nullifier,
  parseFixedHex,
  verifiedCredential,
} from '../../common/assembly/signed';
import { ISSUER_PUBLIC_KEY_HEX } from './config';

/** caller id (hex) → balance (fixedHex). Read only by its owner, through `balance`. */
const balances = new Table('balances');
/** nullifier('mint', nonce) → "1": the mint authorizations already used. */
const usedMints = new Table('mints');
/**
 * "total" → the total minted (fixedHex). Invariant: it is the sum of all balances and at most
 * 2^53 − 1, so no balance can overflow and a refused transfer never depends on the recipient's
 * balance (with a balance near 2^53, "too large" used to answer "is X's balance above t?").
 */
const supply = new Table('supply');
const TOTAL = 'total';

const MAX: u64 = 9007199254740991;
const MINT_KIND = 'cloister-example/token-mint/v1';

function ok(): Json {
  return Json.obj().setBool('ok', true);
}

/** The caller's own caller id: what a payer needs from a recipient, and the issuer for a mint. */
@query
export function whoami(): Json {
  return Json.obj().setString('callerId', Context.callerHex());
}

/**
 * Mints per an issuer authorization `{ credential, signature }` (examples/tools/credentials.ts
 * `mint`): credits its `amount` to its `to`. Anyone may submit it; it credits only `to`, once.
 */
@transaction
export function mint(args: Json): Json {
  const issuer = fromHex(ISSUER_PUBLIC_KEY_HEX)!;
  const fields = ['kind', 'to', 'amount', 'nonce'];
  const auth = verifiedCredential(args, issuer, MINT_KIND, fields);
  const to = callerIdArg(auth.getString('to'), 'the authorization\'s "to"');
  const amount = amountArg(auth, 'amount');
  const used = nullifier('mint', idField(auth, 'nonce'));
  if (usedMints.has(used)) {
    return fail<Json>(
      'mint_used',
      'this mint authorization was used already: ask the issuer for a new one',
    );
  }
  usedMints.set(used, '1');
  const total = parseFixedHex(supply.get(TOTAL));
  if (total > MAX - amount) {
    return fail<Json>('supply_exhausted', 'the total supply would exceed 2^53 − 1');
  }
  supply.set(TOTAL, fixedHex(total + amount));
  // At most the total supply: cannot exceed 2^53 − 1.
  balances.set(to, fixedHex(parseFixedHex(balances.get(to)) + amount));
  return ok();
}

/**
 * At an upgrade from a version without a supply record: it is the sum of the balances. Listed
 * here, in the upgrade's transaction, once.
 */
@migrate
export function migrate(): void {
  if (supply.has(TOTAL)) return;
  let total: u64 = 0;
  let cursor: Uint8Array | null = null;
  do {
    const page = balances.list(cursor, 1000);
    for (let i = 0; i < page.entries.length; i++) {
      const balance = parseFixedHex(page.entries[i].valueText());
      if (total > MAX - balance) {
        // The supply invariant would not hold (transfers rely on it): refuse the upgrade.
        fail<Json>('supply_exhausted', 'the balances add up to more than 2^53 − 1');
        return;
      }
      total += balance;
    }
    cursor = page.cursor;
  } while (cursor !== null);
  supply.set(TOTAL, fixedHex(total));
}

/** Moves `amount` of the caller's balance to the caller id `to`. */
@transaction
export function transfer(args: Json): Json {
  const from = Context.callerHex();
  const to = callerIdArg(args.getString('to'), '"to"');
  const amount = amountArg(args, 'amount');
  if (to == from) return fail<Json>('self_transfer', 'a transfer needs another recipient');
  const have = parseFixedHex(balances.get(from));
  if (have < amount) {
    return fail<Json>('insufficient_funds', 'the balance is lower than the amount: transfer less');
  }
  // theirs + amount ≤ the total supply ≤ 2^53 − 1 (the supply invariant): no overflow check, and
  // so no refusal that depends on the recipient's balance.
  const theirs = parseFixedHex(balances.get(to));
  balances.set(from, fixedHex(have - amount));
  balances.set(to, fixedHex(theirs + amount));
  return ok();
}

/** The caller's own balance; there is no way to name another caller's. */
@query
export function balance(): Json {
  return Json.obj().setI64('balance', <i64>parseFixedHex(balances.get(Context.callerHex())));
}
