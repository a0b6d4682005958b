/**
 * The enclave signer key: the P-256 key whose public half goes into every manifest as signerKey,
 * and whose hash is the enclave's signer (the `signer` sealing policy and the SIGNER constraint
 * depend on it: keep it, or an upgrade cannot read data sealed by the previous version).
 * Stored as PKCS#8 PEM, mode 0600; the CLI defaults the path to ~/.cloister/signer.pem.
 */
import type { KeyObject } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { InvalidInputError, sha256, utf8 } from '@cloister/core';
import {
  errorCode,
  readFileOrUndefined,
  SECRET_DIR_MODE,
  SECRET_FILE_MODE,
  writeFileAtomic,
} from '../fs/atomic.js';
import {
  generateP256,
  privateKeyFromPem,
  privateKeyToPem,
  publicKeyBytes,
} from '../platform/p256.js';

/** A loaded signer key. */
export interface SignerKey {
  /** Absolute path of the key file. */
  readonly path: string;
  readonly privateKey: KeyObject;
  /** 65-byte uncompressed public key (the manifest's signerKey). */
  readonly publicKey: Uint8Array;
  /** SHA-256(publicKey): the enclave signer value. */
  readonly signer: Uint8Array;
  /** True when this call created the key file. */
  readonly created: boolean;
}

/**
 * Loads the signer key at `path`, creating it (and its parent directories, mode 0700) on first
 * use. Creation is exclusive: if two processes race, both end up with the one key on disk.
 * Throws InvalidInputError when the file exists but is not a P-256 PKCS#8 PEM key (it is never
 * overwritten), or when it cannot be created.
 */
export function loadOrCreateSignerKey(path: string): SignerKey {
  const abs = resolve(path);
  const existing = readSignerFile(abs);
  if (existing !== undefined) return load(abs, existing, false);
  try {
    mkdirSync(dirname(abs), { recursive: true, mode: SECRET_DIR_MODE });
    const key = generateP256();
    const pem = privateKeyToPem(key);
    writeFileAtomic(abs, utf8(pem), { mode: SECRET_FILE_MODE, exclusive: true });
    return load(abs, pem, true);
  } catch (e) {
    if (errorCode(e) === 'EEXIST') {
      const raced = readSignerFile(abs);
      if (raced !== undefined) return load(abs, raced, false);
    }
    if (e instanceof InvalidInputError) throw e;
    throw new InvalidInputError(
      `Cannot create the signer key ${abs} (${errorCode(e) ?? (e as Error).message}). Check the directory is writable, or pass --signer-key with another path.`,
    );
  }
}

function readSignerFile(abs: string): string | undefined {
  let bytes: Uint8Array | undefined;
  try {
    bytes = readFileOrUndefined(abs);
  } catch (e) {
    throw new InvalidInputError(
      `Cannot read the signer key ${abs} (${errorCode(e) ?? (e as Error).message}).`,
    );
  }
  return bytes === undefined ? undefined : new TextDecoder().decode(bytes);
}

function load(abs: string, pem: string, created: boolean): SignerKey {
  const privateKey = privateKeyFromPem(
    pem,
    `The signer key ${abs} (expected a P-256 PKCS#8 PEM key; restore it from backup, or pass --signer-key with another path)`,
  );
  const publicKey = publicKeyBytes(privateKey);
  return { path: abs, privateKey, publicKey, signer: sha256(publicKey), created };
}
