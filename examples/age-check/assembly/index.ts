/**
 * An age check (examples/age-check/README.md). A person presents a birth-date credential signed
 * by the issuer compiled in (config.ts) and a date D; if they were 18 or older on D, the app
 * answers with the claim "over 18 as of D", signed by its own named key, which anyone verifies
 * offline with the app's public key. The check is a query: nothing is stored, and the claim holds
 * nothing about the person but that fact (and the verifier's challenge, if given).
 */
import { Context, Crypto, fail, Json, KeyKind, toHex, utf8 } from '@cloister/sdk';
import { fromHex, verifiedCredential } from '../../common/assembly/signed';
import { ISSUER_PUBLIC_KEY_HEX } from './config';

/** The app's signing key for claims, kept in the enclave (a reserved table no call can read). */
const CLAIM_KEY = 'claims';
const BIRTH_KIND = 'cloister-example/birth-date/v1';
const CLAIM_KIND = 'cloister-example/over-18/v1';
const DAY_MS: i64 = 86400000;

/** Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's days_from_civil). */
function daysFromCivil(y: i64, m: i64, d: i64): i64 {
  y -= m <= 2 ? 1 : 0;
  const era = (y >= 0 ? y : y - 399) / 400;
  const yoe = y - era * 400;
  const doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  const doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + doe - 719468;
}

function isLeap(y: i64): bool {
  return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

/** `YYYY-MM-DD` → [y, m, d], or null when it is not a real date from 1900 to 9999. */
function parseDate(s: string): Array<i64> | null {
  if (s.length != 10 || s.charAt(4) != '-' || s.charAt(7) != '-') return null;
  const parts = [s.substring(0, 4), s.substring(5, 7), s.substring(8, 10)];
  const v = new Array<i64>(3);
  for (let p = 0; p < 3; p++) {
    let n: i64 = 0;
    for (let i = 0; i < parts[p].length; i++) {
      const c = parts[p].charCodeAt(i);
      if (c < 48 || c > 57) return null;
      n = n * 10 + (c - 48);
    }
    v[p] = n;
  }
  const monthDays: i64[] = [31, isLeap(v[0]) ? 29 : 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
  if (v[0] < 1900 || v[1] < 1 || v[1] > 12) return null;
  if (v[2] < 1 || v[2] > monthDays[<i32>v[1] - 1]) return null;
  return v;
}

/**
 * Creates the app's claim key; the first call creates it, later ones change nothing. Returns the
 * public key (hex) that verifiers use.
 */
@transaction
export function init(): Json {
  const created = Crypto.createKey(KeyKind.EcdsaP256, CLAIM_KEY);
  return Json.obj()
    .setString('publicKey', toHex(Crypto.publicKey(CLAIM_KEY)))
    .setBool('created', created);
}

/** The claim key's public key (hex, 04 ‖ x ‖ y): what verifies claims offline. */
@query
export function publicKey(): Json {
  return Json.obj().setString('publicKey', toHex(Crypto.publicKey(CLAIM_KEY)));
}

/**
 * Checks a birth-date credential `{ credential, signature }` against the date `asOf`
 * (`YYYY-MM-DD`, at most one day after the node's date) and, when its holder was 18 or older on
 * that date, returns `{ claim, signature }`: the claim text `{"kind","asOf","challenge"}` and the
 * app key's raw P-256 signature over it. `challenge` (0–64 hex digits, default empty) is a value
 * the verifier chose, binding the claim to one verification. Refused (`not_over_18`) otherwise.
 */
@query
export function check(args: Json): Json {
  const issuer = fromHex(ISSUER_PUBLIC_KEY_HEX)!;
  const asOfText = args.getString('asOf');
  const asOf = parseDate(asOfText);
  if (asOf === null) return fail<Json>('bad_date', 'asOf is a date YYYY-MM-DD from 1900 on');
  const asOfDays = daysFromCivil(asOf[0], asOf[1], asOf[2]);
  // The node's clock is the host's and untrusted; the claim's truth does not depend on it. The
  // bound only keeps claims from being made in advance (README.md, "Why the date bound").
  const today = Context.time() / DAY_MS;
  if (asOfDays > today + 1) {
    return fail<Json>(
      'date_in_future',
      'asOf is more than one day after today: ask for a claim on or before tomorrow',
    );
  }
  const challenge = args.getString('challenge');
  const c = fromHex(challenge);
  if (c === null || challenge.length > 64) {
    return fail<Json>(
      'bad_challenge',
      'challenge is 0–64 lowercase hex digits chosen by the verifier',
    );
  }
  const credential = verifiedCredential(args, issuer, BIRTH_KIND, ['kind', 'id', 'birthDate']);
  const birth = parseDate(credential.getString('birthDate'));
  if (birth === null) {
    return fail<Json>('bad_credential', 'the credential birth date is not a date');
  }
  // 18 on the day of the 18th birthday; born on 29 February: on 1 March of non-leap years.
  const turns18 = [birth[0] + 18, birth[1], birth[2]];
  const over = turns18[0] < asOf[0] || (turns18[0] == asOf[0] &&
    (turns18[1] < asOf[1] || (turns18[1] == asOf[1] && turns18[2] <= asOf[2])));
  if (!over) {
    // As long as a claim's answer once padded (docs/scp.md §4: buckets of 256, 1024, … bytes): a
    // host relaying the call sees only sizes, and a short refusal fell in a smaller bucket than a
    // claim, which told it whether the person is over 18 (examples/test/e2e.test.ts checks it).
    return fail<Json>(
      'not_over_18',
      'the credential does not show 18 years of age on ' +
        asOfText +
        '. No claim is made and nothing is stored. This answer is as long as a claim, so that the' +
        ' host relaying it, which sees only the sizes of the encrypted messages, cannot tell a' +
        ' refusal from a claim.',
    );
  }
  const claim = Json.obj()
    .setString('kind', CLAIM_KIND)
    .setString('asOf', asOfText)
    .setString('challenge', challenge)
    .stringify();
  const signature = toHex(Crypto.sign(CLAIM_KEY, utf8(claim)));
  return Json.obj().setString('claim', claim).setString('signature', signature);
}
