/**
 * The enclave signer key: the P-256 key whose public half goes into every manifest as signerKey,
 * and whose hash is the enclave's signer (the `signer` sealing policy and the SIGNER constraint
 * depend on it: keep it, or an upgrade cannot read data sealed by the previous version).
 * Stored as PKCS#8 PEM, mode 0600; the CLI defaults the path to ~/.cloister/signer.pem.
 */
import { sha256 } from '@cloister/core';
import { type KeyFile, loadKeyFile, loadOrCreateKeyFile } from '../fs/key-file.js';

/** A loaded signer key; `publicKey` is the manifest's signerKey. */
export interface SignerKey extends KeyFile {
  /** SHA-256(publicKey): the enclave signer value. */
  readonly signer: Uint8Array;
}

/**
 * Loads the signer key at `path`, creating it (and its parent directories, mode 0700) on first
 * use. Creation is exclusive: if two processes race, both end up with the one key on disk.
 * Throws InvalidInputError when the file exists but is not a P-256 PKCS#8 PEM key (it is never
 * overwritten), or when it cannot be created.
 */
export function loadOrCreateSignerKey(path: string): SignerKey {
  const k = loadOrCreateKeyFile(path, 'signer key', '--signer-key');
  return { ...k, signer: sha256(k.publicKey) };
}

/** The signer key at `path`, which must exist (loadKeyFile; `missing` says how to get it). */
export function loadSignerKey(path: string, missing: string): SignerKey {
  const k = loadKeyFile(path, 'signer key', '--signer-key', missing);
  return { ...k, signer: sha256(k.publicKey) };
}
