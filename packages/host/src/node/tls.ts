/**
 * TLS for the node's HTTP server and the `/v1/scp` WebSocket (`cloister node start --tls-cert
 * FILE --tls-key FILE`). TLS protects the transport (and hides which URLs a client asks for);
 * the security of app calls does not depend on it: SCP authenticates the enclave end to end.
 * The files are read once at start; an unreadable file, the two files swapped, a key that does
 * not match the certificate, or a certificate outside its validity period stops the start with a
 * TlsConfigError naming the file.
 */
import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createSecureContext } from 'node:tls';
import { CloisterError, certificateDate, pemProblem } from '@cloister/core';

/** PEM certificate chain and private key, as read from the files. */
export interface TlsFiles {
  readonly cert: Buffer;
  readonly key: Buffer;
}

/** The certificate or key file cannot be read or used. */
export class TlsConfigError extends CloisterError {
  /** `hint`: a next step more exact than the registry's (a certificate out of date: renew it). */
  constructor(message: string, hint?: string) {
    super('TLS_CONFIG', message, { hint });
  }
}

const RENEW =
  "Renew the certificate (or have one issued that is valid now) and start the node again with it as --tls-cert; check this machine's clock too.";

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

const CERTIFICATE_BLOCK = /-----BEGIN (?:X509 |TRUSTED )?CERTIFICATE-----/;
const PRIVATE_KEY_BLOCK = /-----BEGIN (?:[A-Z]+ )*PRIVATE KEY-----/;

/**
 * Names a file given to the wrong option (a certificate as --tls-key, a private key as
 * --tls-cert: the files swapped) or a --tls-key holding no private key at all, before the TLS
 * stack's "cannot be used", which names neither file as the wrong one.
 */
function checkKinds(cert: Buffer, certPath: string, key: Buffer, keyPath: string): void {
  const certText = cert.toString('latin1');
  const keyText = key.toString('latin1');
  const certIsKey = !CERTIFICATE_BLOCK.test(certText) && PRIVATE_KEY_BLOCK.test(certText);
  const keyIsCert = CERTIFICATE_BLOCK.test(keyText) && !PRIVATE_KEY_BLOCK.test(keyText);
  if (certIsKey && keyIsCert) {
    throw new TlsConfigError(
      `--tls-cert ${certPath} holds a private key and --tls-key ${keyPath} a certificate: the files are swapped. Give the certificate with --tls-cert and its private key with --tls-key`,
    );
  }
  if (keyIsCert) {
    throw new TlsConfigError(
      `--tls-key ${keyPath} holds a certificate, not a private key: the files are swapped? Give the certificate's private key with --tls-key (and the certificate with --tls-cert)`,
    );
  }
  if (certIsKey) {
    throw new TlsConfigError(
      `--tls-cert ${certPath} holds a private key, not a certificate: the files are swapped? Give the certificate with --tls-cert (and its private key with --tls-key)`,
    );
  }
  if (!PRIVATE_KEY_BLOCK.test(keyText)) {
    throw new TlsConfigError(
      `--tls-key ${keyPath} holds no private key (${pemProblem(keyText)}): give the certificate's private key with --tls-key`,
    );
  }
  if (!CERTIFICATE_BLOCK.test(certText)) {
    throw new TlsConfigError(
      `--tls-cert ${certPath} holds no certificate (no BEGIN CERTIFICATE block): give a PEM certificate (chain) with --tls-cert`,
    );
  }
}

/**
 * Refuses a certificate (the leaf, the first of the file) outside its validity period at `now`.
 * Refused, not warned about: every client that checks certificates (the CLI, the SDK, browsers)
 * refuses an expired or not yet valid one, so a node serving it would be unreachable while
 * looking healthy, and its users would be told something about trust instead of "renew the
 * certificate". Only the leaf: chain files often carry an expired cross-signed root kept for old
 * clients, which path building skips once a valid trusted root is found (a review checked a node
 * client connecting through such a chain).
 */
function checkValidity(cert: Buffer, certPath: string, now: Date): void {
  const leaf = /-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/.exec(
    cert.toString('latin1'),
  )?.[0];
  if (leaf === undefined) return;
  let x: X509Certificate;
  try {
    x = new X509Certificate(leaf);
  } catch {
    return; // the TLS stack took the chain; a block it ignores is not ours to judge
  }
  const from = Date.parse(x.validFrom);
  const to = Date.parse(x.validTo);
  const which = `the TLS certificate in ${certPath}`;
  const period = `valid from ${certificateDate(x.validFrom)} to ${certificateDate(x.validTo)}`;
  const clock = `this machine's clock reads ${now.toISOString()}`;
  if (!Number.isNaN(to) && now.getTime() > to) {
    throw new TlsConfigError(
      `${which} has expired (${period}; ${clock}): every client would refuse it. Renew it and start again with the new file as --tls-cert`,
      RENEW,
    );
  }
  if (!Number.isNaN(from) && now.getTime() < from) {
    throw new TlsConfigError(
      `${which} is not valid yet (${period}; ${clock}): every client would refuse it. Use a certificate valid now as --tls-cert, or set this machine's clock right`,
      RENEW,
    );
  }
}

/**
 * Reads and checks the pair: both PEM, the key matching the certificate (the same check the
 * TLS stack makes, done here so the error names the files), and the certificate (the leaf)
 * within its validity period at `now`. Throws TlsConfigError.
 */
export function loadTlsFiles(certPath: string, keyPath: string, now = new Date()): TlsFiles {
  const cert = readPem(certPath, 'certificate', '--tls-cert');
  const key = readPem(keyPath, 'private key', '--tls-key');
  checkKinds(cert, certPath, key, keyPath);
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
  checkValidity(cert, certPath, now);
  return { cert, key };
}
