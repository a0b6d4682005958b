/** Client identities made with WebCrypto: the private key never leaves the CryptoKey. */
import { webCryptoSigner } from '@cloister/core';
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
