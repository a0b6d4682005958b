/**
 * Finds plaintext where none may be: scans bytes (files of a directory, captured logs, a metrics
 * page) for each secret in every form an accident would leave it in — raw bytes, lower- and
 * upper-case hex, standard and URL-safe base64 (at each of the three alignments, so a secret in
 * the middle of a longer encoded blob is found too) and UTF-16 (little and big endian).
 * Used by the confidentiality tests (DESIGN.md §2: nothing leaves the enclave in plaintext).
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';

export interface Leak {
  readonly secret: string;
  readonly form: string;
  readonly where: string;
}

function utf16(bytes: Uint8Array, littleEndian: boolean): Uint8Array {
  const out = new Uint8Array(bytes.length * 2);
  bytes.forEach((b, i) => {
    out[i * 2 + (littleEndian ? 0 : 1)] = b;
  });
  return out;
}

/**
 * Base64 of `secret` as it appears inside a longer base64 text, for each alignment: the encoding
 * of (k filler bytes ‖ secret) minus the characters the filler and the last partial group touch.
 */
function base64Cores(secret: Uint8Array, urlSafe: boolean): string[] {
  const cores: string[] = [];
  for (let k = 0; k < 3; k++) {
    const b64 = Buffer.concat([Buffer.alloc(k), Buffer.from(secret)]).toString(
      urlSafe ? 'base64url' : 'base64',
    );
    const start = Math.ceil((k * 4) / 3) + (k === 0 ? 0 : 1);
    const end = Math.floor(((k + secret.length) * 4) / 3) - 1;
    if (end - start >= 8) cores.push(b64.slice(start, end));
  }
  return cores;
}

/** Every searchable form of `secret` (at least 6 bytes, so matches are meaningful). */
export function formsOf(secret: Uint8Array): { form: string; bytes: Uint8Array }[] {
  if (secret.length < 6) throw new Error('secrets to scan for must be at least 6 bytes');
  const hex = Buffer.from(secret).toString('hex');
  const text = (s: string) => new Uint8Array(Buffer.from(s, 'latin1'));
  return [
    { form: 'raw', bytes: secret },
    { form: 'hex', bytes: text(hex) },
    { form: 'HEX', bytes: text(hex.toUpperCase()) },
    ...base64Cores(secret, false).map((c) => ({ form: 'base64', bytes: text(c) })),
    ...base64Cores(secret, true).map((c) => ({ form: 'base64url', bytes: text(c) })),
    { form: 'utf16le', bytes: utf16(secret, true) },
    { form: 'utf16be', bytes: utf16(secret, false) },
  ];
}

/** The leaks of `secrets` in `haystack`, named `where`. */
export function scanBytes(
  haystack: Uint8Array,
  secrets: ReadonlyMap<string, Uint8Array>,
  where: string,
): Leak[] {
  const hay = Buffer.from(haystack.buffer, haystack.byteOffset, haystack.byteLength);
  const leaks: Leak[] = [];
  for (const [name, secret] of secrets) {
    for (const { form, bytes } of formsOf(secret)) {
      if (hay.indexOf(bytes) >= 0) leaks.push({ secret: name, form, where });
    }
  }
  return leaks;
}

/** The leaks of `secrets` in every file below `dir`. */
export function scanDirectory(dir: string, secrets: ReadonlyMap<string, Uint8Array>): Leak[] {
  const leaks: Leak[] = [];
  for (const name of readdirSync(dir, { recursive: true }) as string[]) {
    const path = join(dir, name);
    if (statSync(path).isFile()) leaks.push(...scanBytes(readFileSync(path), secrets, path));
  }
  return leaks;
}
