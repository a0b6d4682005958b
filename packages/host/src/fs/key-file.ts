/**
 * A P-256 private key kept in a PEM file (PKCS#8, mode 0600, parents 0700): the signer key and the
 * operator key. Created on first use, exclusively: when two processes race, both end up with the
 * one key on disk; an existing file is never overwritten, and a file that is not a P-256 PKCS#8
 * PEM key is an error naming it.
 */
import type { KeyObject } from 'node:crypto';
import { mkdirSync, statSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { InvalidInputError, utf8 } from '@cloister/core';
import {
  generateP256,
  privateKeyFromPem,
  privateKeyToPem,
  publicKeyBytes,
} from '../platform/p256.js';
import {
  errorCode,
  readFileOrUndefined,
  SECRET_DIR_MODE,
  SECRET_FILE_MODE,
  writeFileAtomic,
} from './atomic.js';

export interface KeyFile {
  /** Absolute path of the key file. */
  readonly path: string;
  readonly privateKey: KeyObject;
  /** 65-byte uncompressed public key. */
  readonly publicKey: Uint8Array;
  /** True when this call created the key file. */
  readonly created: boolean;
}

/**
 * Loads the key at `path`, creating it on first use. `what` names the key in messages ("signer
 * key"); `flag` is the CLI option that picks another path ("--signer-key").
 */
export function loadOrCreateKeyFile(path: string, what: string, flag: string): KeyFile {
  const abs = resolve(path);
  const existing = read(abs, what);
  if (existing !== undefined) return load(abs, existing, false, what, flag);
  try {
    mkdirSync(dirname(abs), { recursive: true, mode: SECRET_DIR_MODE });
    const pem = privateKeyToPem(generateP256());
    writeFileAtomic(abs, utf8(pem), { mode: SECRET_FILE_MODE, exclusive: true });
    return load(abs, pem, true, what, flag);
  } catch (e) {
    if (errorCode(e) === 'EEXIST') {
      const raced = read(abs, what);
      if (raced !== undefined) return load(abs, raced, false, what, flag);
    }
    if (e instanceof InvalidInputError) throw e;
    throw new InvalidInputError(
      `Cannot create the ${what} ${abs} (${errorCode(e) ?? (e as Error).message}). Check the directory is writable, or pass ${flag} with another path.`,
    );
  }
}

/**
 * Loads the key at `path`, which must exist: InvalidInputError naming the path and `missing` (how
 * to get the right one) when it does not. A key path the user typed that is absent is a typo or a
 * wrong folder more often than a wish for a new key, and a key silently made there signs as
 * someone else (another operator, another enclave signer).
 */
export function loadKeyFile(path: string, what: string, flag: string, missing: string): KeyFile {
  const abs = resolve(path);
  const existing = read(abs, what);
  if (existing === undefined) throw new InvalidInputError(`no ${what} at ${abs}: ${missing}`);
  return load(abs, existing, false, what, flag);
}

function read(abs: string, what: string): string | undefined {
  let bytes: Uint8Array | undefined;
  try {
    bytes = readFileOrUndefined(abs);
  } catch (e) {
    throw new InvalidInputError(
      `Cannot read the ${what} ${abs} (${errorCode(e) ?? (e as Error).message}).`,
    );
  }
  return bytes === undefined ? undefined : new TextDecoder().decode(bytes);
}

function load(abs: string, pem: string, created: boolean, what: string, flag: string): KeyFile {
  const privateKey = privateKeyFromPem(
    pem,
    `The ${what} ${abs}`,
    `a P-256 PKCS#8 PEM key is expected; restore it from backup, or pass ${flag} with another path`,
  );
  // A key group or others can read is not private: refused like a client identity (a signer or
  // operator key signs for the enclave build or the app deploys, so it is worth more).
  const mode = statSync(abs).mode;
  if (process.platform !== 'win32' && (mode & 0o077) !== 0) {
    throw new InvalidInputError(
      `The ${what} ${abs} can be read by group or others (mode ${(mode & 0o777).toString(8)}): a private key must be private; run \`chmod 600 ${abs}\``,
    );
  }
  return { path: abs, privateKey, publicKey: publicKeyBytes(privateKey), created };
}
