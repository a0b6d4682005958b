/**
 * The SCP v1 key schedule (docs/scp.md §Key schedule): HKDF-SHA256 and HMAC-SHA256 from the
 * audited @noble/hashes, labels exactly as written in the contract. Pure functions of their
 * inputs, so the test vectors in test/scp-vectors.ts pin them byte for byte.
 */
import { expand, extract } from '@noble/hashes/hkdf.js';
import { hmac } from '@noble/hashes/hmac.js';
import { sha256 as nobleSha256 } from '@noble/hashes/sha2.js';
import { utf8 } from '../bytes.js';

const L = (s: string): Uint8Array => utf8(`cloister/scp/v1 ${s}`);

export const LABEL = Object.freeze({
  sHsKey: 's hs key',
  sHsIv: 's hs iv',
  cHsKey: 'c hs key',
  cHsIv: 'c hs iv',
  sFin: 's fin',
  cFin: 'c fin',
  cAp: 'c ap',
  sAp: 's ap',
  key: 'key',
  iv: 'iv',
  ku: 'ku',
} as const);

/** Context strings of the two handshake signatures (followed by 0x00 and the transcript hash). */
export const SERVER_SIG_CONTEXT = utf8('cloister/scp/v1 server');
export const CLIENT_SIG_CONTEXT = utf8('cloister/scp/v1 client');

export function hkdfExtract(salt: Uint8Array, ikm: Uint8Array): Uint8Array {
  return extract(nobleSha256, ikm, salt);
}

export function hkdfExpand(prk: Uint8Array, label: string, length: number): Uint8Array {
  return expand(nobleSha256, prk, L(label), length);
}

export function hmacSha256(key: Uint8Array, data: Uint8Array): Uint8Array {
  return hmac(nobleSha256, key, data);
}

/** Handshake secrets derived from HS = HKDF-Extract(TH1, Z). */
export interface HandshakeSecrets {
  readonly hs: Uint8Array;
  readonly sHsKey: Uint8Array;
  readonly sHsIv: Uint8Array;
  readonly cHsKey: Uint8Array;
  readonly cHsIv: Uint8Array;
  readonly sFin: Uint8Array;
  readonly cFin: Uint8Array;
}

export function handshakeSecrets(th1: Uint8Array, z: Uint8Array): HandshakeSecrets {
  const hs = hkdfExtract(th1, z);
  return {
    hs,
    sHsKey: hkdfExpand(hs, LABEL.sHsKey, 32),
    sHsIv: hkdfExpand(hs, LABEL.sHsIv, 12),
    cHsKey: hkdfExpand(hs, LABEL.cHsKey, 32),
    cHsIv: hkdfExpand(hs, LABEL.cHsIv, 12),
    sFin: hkdfExpand(hs, LABEL.sFin, 32),
    cFin: hkdfExpand(hs, LABEL.cFin, 32),
  };
}

/** The first application traffic secrets: AS = HKDF-Extract(TH6, HS). */
export function trafficSecrets(
  th6: Uint8Array,
  hs: Uint8Array,
): { cAp: Uint8Array; sAp: Uint8Array } {
  const as = hkdfExtract(th6, hs);
  return { cAp: hkdfExpand(as, LABEL.cAp, 32), sAp: hkdfExpand(as, LABEL.sAp, 32) };
}

/** Key and IV of one traffic secret. */
export function trafficKey(ap: Uint8Array): { key: Uint8Array; iv: Uint8Array } {
  return { key: hkdfExpand(ap, LABEL.key, 32), iv: hkdfExpand(ap, LABEL.iv, 12) };
}

/** The next traffic secret after a key update. */
export function nextTrafficSecret(ap: Uint8Array): Uint8Array {
  return hkdfExpand(ap, LABEL.ku, 32);
}

/** nonce = iv XOR u96be(seq), seq < 2^53. */
export function recordNonce(iv: Uint8Array, seq: number): Uint8Array {
  const n = new Uint8Array(iv); // a copy even when handed a Buffer (whose slice() is a view)
  let s = seq;
  for (let i = 11; i >= 4 && s > 0; i--) {
    n[i] = (n[i] as number) ^ (s % 256);
    s = Math.floor(s / 256);
  }
  return n;
}
