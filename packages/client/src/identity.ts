/** Client identities made with WebCrypto: the private key never leaves the CryptoKey. */
import { InvalidInputError, utf8, webCryptoSigner } from '@cloister/core';
import type { Identity } from './ports.js';

const P256 = { name: 'ECDSA', namedCurve: 'P-256' } as const;

/** A WebCrypto ECDSA P-256 CryptoKeyPair (named through core so Node-only programs compile). */
export type KeyPair = Parameters<typeof webCryptoSigner>[0];

/**
 * A fresh P-256 identity whose private key is non-extractable, kept in memory only: each run is
 * a new caller to apps (their caller id derives from the public key). Persist one with the
 * "./node" (PEM file) or "./browser" (IndexedDB) adapters.
 */
export async function generateIdentity(): Promise<Identity> {
  const pair = await globalThis.crypto.subtle.generateKey(P256, false, ['sign', 'verify']);
  return identityOf(pair);
}

/** The Identity of a WebCrypto ECDSA P-256 key pair (its public key is always exportable). */
export async function identityOf(pair: KeyPair): Promise<Identity> {
  const raw = new Uint8Array(await globalThis.crypto.subtle.exportKey('raw', pair.publicKey));
  return webCryptoSigner(pair, raw);
}

/**
 * The message both entries' `claimsSaltFor` MAC (docs/scp.md §6): u16be(|service|) ‖ service ‖
 * u16be(|app|) ‖ utf8(app) ‖ utf8(requestId). InvalidInputError for a service identity or app
 * name longer than 65,535 bytes, an empty app name, or a request id outside 1..128 bytes.
 */
export function claimsSaltMessage(
  serviceIdentity: Uint8Array,
  app: string,
  requestId: string,
): Uint8Array<ArrayBuffer> {
  const appBytes = utf8(app);
  const idBytes = utf8(requestId);
  if (!(serviceIdentity instanceof Uint8Array) || serviceIdentity.length > 0xffff) {
    throw new InvalidInputError('a service identity is the bytes of client.service.identity');
  }
  if (appBytes.length === 0 || appBytes.length > 0xffff) {
    throw new InvalidInputError('an app name is 1 to 65,535 bytes of UTF-8 text');
  }
  if (idBytes.length === 0 || idBytes.length > 128) {
    throw new InvalidInputError('a request id is 1 to 128 bytes of UTF-8 text');
  }
  const s = serviceIdentity.length;
  const out = new Uint8Array(4 + s + appBytes.length + idBytes.length);
  out[0] = s >> 8;
  out[1] = s & 0xff;
  out.set(serviceIdentity, 2);
  out[2 + s] = appBytes.length >> 8;
  out[3 + s] = appBytes.length & 0xff;
  out.set(appBytes, 4 + s);
  out.set(idBytes, 4 + s + appBytes.length);
  return out;
}
