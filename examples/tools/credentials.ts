/**
 * Issuer keys and signed documents for the example apps (examples/README.md): voter credentials
 * (poll), salary credentials (salary-benchmark), birth-date credentials (age-check) and mint
 * authorizations (token).
 *
 * A signed document is `{ credential, signature }`: `credential` is a JSON text with its fields in
 * a fixed order and no spaces (exactly what `JSON.stringify` writes for the object literals
 * below), and `signature` is the hex of a raw ECDSA P-256 signature (r ‖ s, 64 bytes) over
 * SHA-256 of the credential's UTF-8 bytes: what the apps check with `Crypto.verify`. The apps
 * refuse a text that is not in that canonical form, so one credential has one spelling.
 *
 * Run with tsx:
 *   npx tsx examples/tools/credentials.ts issuer --out issuer.pem         (prints the public key)
 *   npx tsx examples/tools/credentials.ts config --issuer issuer.pem --app APP
 *       (APP: token, salary-benchmark or age-check, the apps that compile their issuer in)
 *   npx tsx examples/tools/credentials.ts voter --issuer issuer.pem
 *   npx tsx examples/tools/credentials.ts salary --issuer issuer.pem --salary 52000
 *   npx tsx examples/tools/credentials.ts birth-date --issuer issuer.pem --date 2001-04-02
 *   npx tsx examples/tools/credentials.ts mint --issuer issuer.pem --to CALLER_ID --amount 100
 */
import {
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  type KeyObject,
  randomBytes,
  sign,
} from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** What an app receives: the canonical credential text and the issuer's signature over it. */
export interface Signed {
  readonly credential: string;
  readonly signature: string;
}

export interface Issuer {
  readonly privateKey: KeyObject;
  /** 65-byte uncompressed point 04 ‖ x ‖ y, hex: what the apps take and compile in. */
  readonly publicKeyHex: string;
}

/** The kinds the apps accept, one per document type (a credential of one kind is no other). */
export const KIND = {
  voter: 'cloister-example/voter/v1',
  salary: 'cloister-example/salary/v1',
  birthDate: 'cloister-example/birth-date/v1',
  mint: 'cloister-example/token-mint/v1',
  over18: 'cloister-example/over-18/v1',
} as const;

export function publicKeyHex(key: KeyObject): string {
  const jwk = createPublicKey(key).export({ format: 'jwk' });
  const coord = (c: string | undefined): string =>
    Buffer.from(c ?? '', 'base64url').toString('hex');
  return `04${coord(jwk.x)}${coord(jwk.y)}`;
}

export function issuerFromPem(pem: string): Issuer {
  const privateKey = createPrivateKey(pem);
  return { privateKey, publicKeyHex: publicKeyHex(privateKey) };
}

export function newIssuer(): Issuer {
  const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  return { privateKey, publicKeyHex: publicKeyHex(privateKey) };
}

/**
 * TEST ONLY: the fixed issuer whose public key examples/token, salary-benchmark and age-check
 * compile in (their assembly/config.ts). Its private key is published here, so anyone can mint
 * and attest with it: replace it (`config` below) before deploying anything that matters.
 */
export const TEST_ISSUER_PEM = `-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgOW9rr2E/ZRHgG0u0
JAHOmYc3OYKtz8VGUBJW+R6sFvihRANCAAQUrU1mZ6/0j6ZtFXmTMOhoEL/LFYSe
sXQg7USukiuKJTPu8ONZUDL9N1U7KXCA31FlJlgLGagnLNL1svTSn0iR
-----END PRIVATE KEY-----
`;

export function testIssuer(): Issuer {
  return issuerFromPem(TEST_ISSUER_PEM);
}

/** Signs `text` as the apps verify it: raw r ‖ s over SHA-256 of its UTF-8 bytes, hex. */
export function signText(issuer: Issuer, text: string): string {
  const sig = sign('sha256', Buffer.from(text, 'utf8'), {
    key: issuer.privateKey,
    dsaEncoding: 'ieee-p1363',
  });
  return sig.toString('hex');
}

function signed(issuer: Issuer, fields: object): Signed {
  const credential = JSON.stringify(fields);
  return { credential, signature: signText(issuer, credential) };
}

/** A fresh random credential id (16 bytes, hex). */
export function newId(): string {
  return randomBytes(16).toString('hex');
}

/** A voter credential: it carries nothing about the voter but an id that makes it count once. */
export function voterCredential(issuer: Issuer, id = newId()): Signed {
  return signed(issuer, { kind: KIND.voter, id });
}

/** An attested salary (a whole number of currency units, 0 < salary < 2^40). */
export function salaryCredential(issuer: Issuer, salary: number, id = newId()): Signed {
  return signed(issuer, { kind: KIND.salary, id, salary });
}

/** An attested birth date, `YYYY-MM-DD`. */
export function birthDateCredential(issuer: Issuer, birthDate: string, id = newId()): Signed {
  return signed(issuer, { kind: KIND.birthDate, id, birthDate });
}

/**
 * The issuer's authorization to mint `amount` to the caller id `to` (hex, what the recipient's
 * `whoami` query returns); `nonce` makes it usable once.
 */
export function mintAuthorization(
  issuer: Issuer,
  to: string,
  amount: number,
  nonce = newId(),
): Signed {
  return signed(issuer, { kind: KIND.mint, to, amount, nonce });
}

/** The config.ts that compiles `issuer` into examples/<app> (the code id then commits to it). */
export function configSource(publicKey: string): string {
  return (
    '/**\n' +
    ' * The issuer this app trusts, compiled in: its code id (SHA-256 of the module, which clients\n' +
    ' * pin) commits to this key. Written by examples/tools/credentials.ts `config`.\n' +
    ' */\n' +
    `export const ISSUER_PUBLIC_KEY_HEX = '${publicKey}';\n`
  );
}

function option(args: string[], name: string): string {
  const i = args.indexOf(`--${name}`);
  const v = i >= 0 ? args[i + 1] : undefined;
  if (v === undefined) throw new Error(`give --${name}: see the usage at the top of this file`);
  return v;
}

function main(argv: string[]): void {
  const [command, ...args] = argv;
  const load = (): Issuer => issuerFromPem(readFileSync(option(args, 'issuer'), 'utf8'));
  const print = (v: unknown): void => {
    process.stdout.write(`${JSON.stringify(v, null, 2)}\n`);
  };
  switch (command) {
    case 'issuer': {
      const issuer = newIssuer();
      const pem = issuer.privateKey.export({ type: 'pkcs8', format: 'pem' }) as string;
      writeFileSync(option(args, 'out'), pem, { mode: 0o600 });
      print({ publicKey: issuer.publicKeyHex });
      return;
    }
    case 'config': {
      const app = option(args, 'app');
      if (!['token', 'salary-benchmark', 'age-check'].includes(app)) {
        throw new Error('--app is token, salary-benchmark or age-check');
      }
      const here = dirname(fileURLToPath(import.meta.url));
      const file = join(here, '..', app, 'assembly', 'config.ts');
      writeFileSync(file, configSource(load().publicKeyHex));
      print({ wrote: file });
      return;
    }
    case 'voter':
      print(voterCredential(load()));
      return;
    case 'salary':
      print(salaryCredential(load(), Number(option(args, 'salary'))));
      return;
    case 'birth-date':
      print(birthDateCredential(load(), option(args, 'date')));
      return;
    case 'mint':
      print(mintAuthorization(load(), option(args, 'to'), Number(option(args, 'amount'))));
      return;
    default:
      throw new Error(
        `unknown command ${command ?? '(none)'}: use issuer, config, voter, salary, birth-date or mint`,
      );
  }
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  try {
    main(process.argv.slice(2));
  } catch (e) {
    process.stderr.write(`error: ${(e as Error).message}\n`);
    process.exit(1);
  }
}
