/**
 * @cloister/node-crypto: the node:crypto implementations that the enclave and Node clients share,
 * so each exists once. Imports only core and node:crypto (the enclave's bundle rules allow it;
 * the browser bundles never reach it).
 */
export { AEAD_TAG_BYTES, aesGcmOpen, aesGcmSeal } from './aead.js';
export { privateKeyFromPkcs8, publicKeyFromRaw, rawPublicKey } from './p256.js';
export { nodeScpCrypto, nodeScpSigner } from './scp.js';
