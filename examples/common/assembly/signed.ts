/**
 * Issuer-signed documents, as examples/tools/credentials.ts makes them: a JSON text with its
 * fields in a fixed order and no spaces, and the hex of a raw ECDSA P-256 signature (r ‖ s) over
 * SHA-256 of its UTF-8 bytes. A text that is not in that one canonical spelling is refused, so a
 * credential cannot be presented twice under two spellings; the apps count a credential by its
 * `id`, never by its text or signature (ECDSA signatures are malleable: (r, n − s) verifies too).
 */
import { Crypto, fail, Json, toHex, utf8 } from '@cloister/sdk';

function nibble(c: i32): i32 {
  if (c >= 48 && c <= 57) return c - 48;
  if (c >= 97 && c <= 102) return c - 87;
  return -1;
}

/** Lowercase hex to bytes; null when `s` is not even-length lowercase hex. */
export function fromHex(s: string): Uint8Array | null {
  if (s.length % 2 != 0) return null;
  const out = new Uint8Array(s.length / 2);
  for (let i = 0; i < out.length; i++) {
    const hi = nibble(s.charCodeAt(2 * i));
    const lo = nibble(s.charCodeAt(2 * i + 1));
    if (hi < 0 || lo < 0) return null;
    out[i] = <u8>((hi << 4) | lo);
  }
  return out;
}

/** A P-256 public key given as hex (65 bytes, 04 ‖ x ‖ y); an app error otherwise. */
export function publicKeyArg(hex: string): Uint8Array {
  const key = fromHex(hex);
  if (key === null || key.length != 65 || key[0] != 4) {
    return fail<Uint8Array>(
      'bad_public_key',
      'give the issuer key as 130 lowercase hex digits: an uncompressed P-256 point 04 ‖ x ‖ y',
    );
  }
  return key;
}

/**
 * Checks `args.credential` (text) and `args.signature` (hex) against `issuer`, that the text is
 * the canonical JSON object with exactly `fields` in that order, and that its `kind` is `kind`.
 * Returns the parsed credential; any failure is an app error naming what is wrong.
 */
export function verifiedCredential(
  args: Json,
  issuer: Uint8Array,
  kind: string,
  fields: Array<string>,
): Json {
  const text = args.getString('credential');
  const signature = fromHex(args.getString('signature'));
  if (text.length == 0 || text.length > 1024) {
    return fail<Json>('bad_credential', 'give the credential text (at most 1024 characters)');
  }
  if (signature === null || signature.length != 64) {
    return fail<Json>('bad_signature', 'give the signature as 128 hex digits (raw r ‖ s)');
  }
  if (!Crypto.verify(issuer, utf8(text), signature)) {
    return fail<Json>(
      'bad_signature',
      'the credential is not signed by the issuer this app or poll names: ask that issuer for one',
    );
  }
  const parsed = Json.parse(text);
  if (parsed === null || !parsed.isObject || parsed.stringify() != text) {
    return fail<Json>('bad_credential', 'the credential is not canonical JSON: reissue it');
  }
  const names = parsed.memberNames();
  let same = names.length == fields.length;
  for (let i = 0; same && i < names.length; i++) same = names[i] == fields[i];
  if (!same || parsed.getString('kind') != kind) {
    return fail<Json>('wrong_credential', 'this is not a ' + kind + ' credential');
  }
  return parsed;
}

/** `credential[field]`, an id of 16–64 characters (an id, a nonce); an app error otherwise. */
export function idField(credential: Json, field: string): string {
  const id = credential.getString(field);
  if (id.length < 16 || id.length > 64) {
    const why = 'the credential ' + field + ' must be 16–64 characters';
    return fail<string>('bad_credential', why);
  }
  return id;
}

/** A caller id (64 lowercase hex digits) from `s`; an app error otherwise. */
export function callerIdArg(s: string, what: string): string {
  const b = fromHex(s);
  if (b === null || b.length != 32) {
    return fail<string>(
      'bad_caller_id',
      what + ' must be a caller id: 64 lowercase hex digits, as the `whoami` query returns',
    );
  }
  return s;
}

/** SHA-256(scope ‖ 0x00 ‖ id), hex: what an app stores to count a credential once per scope. */
export function nullifier(scope: string, id: string): string {
  return toHex(Crypto.sha256(utf8(scope + '\u0000' + id)));
}

/** `v` as 16 hex digits: a fixed width, so a stored amount's size says nothing about it. */
export function fixedHex(v: u64): string {
  const digits = '0123456789abcdef';
  let s = '';
  for (let shift = 60; shift >= 0; shift -= 4) s += digits.charAt(<i32>((v >> <u64>shift) & 15));
  return s;
}

/** The inverse of fixedHex; 0 for a missing value. */
export function parseFixedHex(s: string | null): u64 {
  if (s === null) return 0;
  const b = fromHex(s);
  assert(b !== null && b.length == 8, 'stored amount is not 16 hex digits');
  let v: u64 = 0;
  for (let i = 0; i < 8; i++) v = (v << 8) | <u64>b![i];
  return v;
}

/** A positive whole amount below 2^53 from `args[key]`; an app error otherwise. */
export function amountArg(args: Json, key: string): u64 {
  const v = args.get(key);
  if (v === null || !v.isInteger || v.asI64() <= 0 || v.asI64() > 9007199254740991) {
    return fail<u64>('bad_amount', key + ' must be a whole number from 1 to 2^53 − 1');
  }
  return <u64>v.asI64();
}

/** `args[key]`, an id of 1–64 characters of [A-Za-z0-9_-]; else an app error `bad_<key>_id`. */
export function nameArg(args: Json, key: string): string {
  const id = args.getString(key);
  let good = id.length >= 1 && id.length <= 64;
  for (let i = 0; good && i < id.length; i++) {
    const c = id.charCodeAt(i);
    const alnum = (c >= 48 && c <= 57) || (c >= 65 && c <= 90) || (c >= 97 && c <= 122);
    good = alnum || c == 45 || c == 95;
  }
  if (!good) {
    const first = key.length > 0 ? key.charCodeAt(0) : 0;
    const vowel = first == 97 || first == 101 || first == 105 || first == 111 || first == 117;
    return fail<string>(
      'bad_' + key + '_id',
      (vowel ? 'an ' : 'a ') + key + ' id is 1–64 characters of [A-Za-z0-9_-]',
    );
  }
  return id;
}
