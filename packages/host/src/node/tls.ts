/**
 * TLS for the node's HTTP server and the `/v1/scp` WebSocket (`cloister node start --tls-cert
 * FILE --tls-key FILE`). TLS protects the transport (and hides which URLs a client asks for);
 * the security of app calls does not depend on it: SCP authenticates the enclave end to end.
 * The files are read once at start; an unreadable file or a key that does not match the
 * certificate stops the start with a TlsConfigError naming the file.
 */
import { readFileSync } from 'node:fs';
import { createSecureContext } from 'node:tls';
import { CloisterError } from '@cloister/core';

/** PEM certificate chain and private key, as read from the files. */
export interface TlsFiles {
  readonly cert: Buffer;
  readonly key: Buffer;
}

/** The certificate or key file cannot be read or used. */
export class TlsConfigError extends CloisterError {
  constructor(message: string) {
    super('TLS_CONFIG', message);
  }
}

function readPem(path: string, what: 'certificate' | 'private key', flag: string): Buffer {
  let bytes: Buffer;
  try {
    bytes = readFileSync(path);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code ?? 'error';
    throw new TlsConfigError(
      `cannot read the TLS ${what} file ${path} (${code}): check the path given with ${flag} and that this user may read it`,
    );
  }
  if (!bytes.includes('-----BEGIN ')) {
    throw new TlsConfigError(
      `the TLS ${what} file ${path} is not PEM: give a PEM file with ${flag}`,
    );
  }
  return bytes;
}

/**
 * Reads and checks the pair: both PEM, the key matching the certificate (the same check the
 * TLS stack makes, done here so the error names the files). Throws TlsConfigError.
 */
export function loadTlsFiles(certPath: string, keyPath: string): TlsFiles {
  const cert = readPem(certPath, 'certificate', '--tls-cert');
  const key = readPem(keyPath, 'private key', '--tls-key');
  try {
    createSecureContext({ cert, key });
  } catch (e) {
    const why = /mismatch/i.test(String((e as Error).message))
      ? 'the private key does not match the certificate'
      : 'the certificate or the key cannot be used';
    throw new TlsConfigError(
      `${why} (--tls-cert ${certPath}, --tls-key ${keyPath}): give the key the certificate was issued for`,
    );
  }
  return { cert, key };
}
