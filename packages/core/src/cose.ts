/**
 * COSE_Sign1 with ES256 only (RFC 9052, RFC 9053), strict: one algorithm, one encoding.
 *
 * Profile (docs/evidence.md): tag 18, protected header = deterministic CBOR of {1: -7} unless a
 * producer adds non-critical parameters, unprotected header a map (empty when we produce it),
 * attached payload, 64-byte r ‖ s signature over the Sig_structure with SHA-256 on P-256.
 */

import { bytesEqual, toHex } from './bytes.js';
import { CborTag, decodeCbor, encodeCbor } from './cbor.js';
import { EncodingError, InvalidInputError } from './errors.js';

/** RFC 9052 §2: CBOR tag of COSE_Sign1. */
export const COSE_SIGN1_TAG = 18;
/** RFC 9052 §3.1 header labels. */
export const COSE_HEADER_ALG = 1;
export const COSE_HEADER_CRIT = 2;
/** RFC 9053 §2.1: ECDSA w/ SHA-256 (on P-256 here). */
export const COSE_ALG_ES256 = -7;

/** Deterministic CBOR of the protected header {1: -7}: exactly a1 01 26. Do not mutate it. */
export const ES256_PROTECTED: Uint8Array = Uint8Array.of(0xa1, 0x01, 0x26);

const ES256_SIGNATURE_LENGTH = 64; // RFC 9053 §2.1: r ‖ s, 32 bytes each for P-256
const P256_PUBLIC_KEY_LENGTH = 65; // SEC1 uncompressed: 04 ‖ X ‖ Y
const EMPTY = new Uint8Array(0);
/** Header labels this implementation understands, i.e. that may be listed in crit. */
const UNDERSTOOD_LABELS: ReadonlySet<number> = new Set([COSE_HEADER_ALG]);

/**
 * A COSE_Sign1 that passed decodeSign1. Nothing in it is authenticated yet: check `signature`
 * over sign1ToBeSigned(protectedBytes, payload) before believing `payload`. The byte arrays are
 * fresh copies owned by the caller.
 */
export interface DecodedSign1 {
  /** The protected header exactly as carried (it is what the signature covers). */
  readonly protectedBytes: Uint8Array;
  /** The decoded protected header; integer labels only; alg (1) is -7. */
  readonly protectedHeader: Map<number, unknown>;
  /** The unprotected header (not covered by the signature). */
  readonly unprotected: Map<unknown, unknown>;
  readonly payload: Uint8Array;
  /** 64 bytes r ‖ s. */
  readonly signature: Uint8Array;
}

/**
 * The Sig_structure of a COSE_Sign1 (RFC 9052 §4.4):
 * ["Signature1", body_protected, external_aad, payload], deterministic CBOR. These are the bytes
 * that ES256 signs (it hashes them with SHA-256 itself).
 */
export function sign1ToBeSigned(
  protectedBytes: Uint8Array,
  payload: Uint8Array,
  externalAad: Uint8Array = EMPTY,
): Uint8Array {
  for (const [name, v] of [
    ['protectedBytes', protectedBytes],
    ['payload', payload],
    ['externalAad', externalAad],
  ] as const) {
    if (!(v instanceof Uint8Array)) throw new InvalidInputError(`${name} must be a Uint8Array`);
  }
  return encodeCbor(['Signature1', protectedBytes, externalAad, payload]);
}

/** Encodes a tagged COSE_Sign1 (RFC 9052 §4.2) with an empty unprotected header. */
export function encodeSign1(parts: {
  protectedBytes: Uint8Array;
  payload: Uint8Array;
  signature: Uint8Array;
}): Uint8Array {
  const { protectedBytes, payload, signature } = parts;
  if (!(payload instanceof Uint8Array)) throw new InvalidInputError('payload must be a Uint8Array');
  if (!(signature instanceof Uint8Array) || signature.length !== ES256_SIGNATURE_LENGTH) {
    throw new InvalidInputError('an ES256 signature must be 64 bytes (r ‖ s)');
  }
  if (!(protectedBytes instanceof Uint8Array)) {
    throw new InvalidInputError('protectedBytes must be a Uint8Array');
  }
  parseProtectedHeader(protectedBytes); // refuse to produce what decodeSign1 would refuse
  return encodeCbor(new CborTag(COSE_SIGN1_TAG, [protectedBytes, new Map(), payload, signature]));
}

/** RFC 9052 §3: the protected header is a bstr-wrapped map; we require alg ES256 in it. */
function parseProtectedHeader(protectedBytes: Uint8Array): Map<number, unknown> {
  if (protectedBytes.length === 0) {
    throw new EncodingError('COSE protected header is empty: alg ES256 must be protected');
  }
  const header = decodeCbor(protectedBytes);
  if (!(header instanceof Map)) throw new EncodingError('COSE protected header is not a map');
  for (const label of header.keys()) {
    if (typeof label !== 'number') {
      throw new EncodingError('COSE protected header labels must be integers');
    }
  }
  const alg = header.get(COSE_HEADER_ALG);
  if (alg !== COSE_ALG_ES256) {
    throw new EncodingError('COSE algorithm must be ES256 (-7) in the protected header');
  }
  if (header.has(COSE_HEADER_CRIT)) checkCrit(header.get(COSE_HEADER_CRIT));
  return header as Map<number, unknown>;
}

/** RFC 9052 §3.1 crit: non-empty array of labels, every one of which we must understand. */
function checkCrit(crit: unknown): void {
  if (!Array.isArray(crit) || crit.length === 0) {
    throw new EncodingError('COSE crit header must be a non-empty array');
  }
  for (const label of crit) {
    if (typeof label !== 'number' || !UNDERSTOOD_LABELS.has(label)) {
      throw new EncodingError('COSE crit header names a parameter this verifier does not support');
    }
  }
}

/**
 * Decodes a tagged COSE_Sign1 strictly (RFC 9052 §4.2): deterministic CBOR, tag 18, an array of
 * exactly [bstr, map, bstr, bstr], a protected header with alg -7 (ES256) and only understood
 * critical parameters, no crit in the unprotected header and no label in both headers
 * (RFC 9052 §3), a 64-byte signature. Untagged or detached-payload messages are refused.
 * Throws EncodingError. Does NOT verify the signature.
 */
export function decodeSign1(bytes: Uint8Array): DecodedSign1 {
  const item = decodeCbor(bytes);
  if (!(item instanceof CborTag) || item.tag !== COSE_SIGN1_TAG) {
    throw new EncodingError('not a COSE_Sign1: CBOR tag 18 expected');
  }
  const arr = item.contents;
  if (!Array.isArray(arr) || arr.length !== 4) {
    throw new EncodingError('COSE_Sign1 must be an array of 4 elements');
  }
  const [protectedBytes, unprotected, payload, signature] = arr as unknown[];
  if (!(protectedBytes instanceof Uint8Array)) {
    throw new EncodingError('COSE_Sign1 protected header must be a byte string');
  }
  if (!(unprotected instanceof Map)) {
    throw new EncodingError('COSE_Sign1 unprotected header must be a map');
  }
  if (!(payload instanceof Uint8Array)) {
    throw new EncodingError('COSE_Sign1 payload must be an attached byte string');
  }
  if (!(signature instanceof Uint8Array) || signature.length !== ES256_SIGNATURE_LENGTH) {
    throw new EncodingError('COSE_Sign1 ES256 signature must be a 64-byte string');
  }
  const protectedHeader = parseProtectedHeader(protectedBytes);
  for (const label of unprotected.keys()) {
    if (typeof label !== 'number' && typeof label !== 'string') {
      throw new EncodingError('COSE header labels must be integers or text');
    }
    if (label === COSE_HEADER_CRIT) {
      throw new EncodingError('COSE crit header must be protected (RFC 9052 §3.1)');
    }
    if (typeof label === 'number' && protectedHeader.has(label)) {
      throw new EncodingError('COSE header label appears in both buckets (RFC 9052 §3)');
    }
  }
  return { protectedBytes, protectedHeader, unprotected, payload, signature };
}

/**
 * decodeSign1, then the one form Cloister produces (docs/evidence.md §2): the protected header
 * exactly a1 01 26 ({1: -7}) and an empty unprotected header. Evidence, manifests,
 * endorsements, signature entries, receipts and operator requests are read with this, so each has
 * exactly one accepted encoding: the unprotected header is not covered by the
 * signature, and a relay that added parameters to it would otherwise make another byte string of
 * the same receipt or log entry that still verifies. Throws EncodingError. Does NOT verify the
 * signature.
 */
export function decodeMinimalSign1(bytes: Uint8Array): DecodedSign1 {
  const sign1 = decodeSign1(bytes);
  if (!isMinimalEs256Protected(sign1.protectedBytes)) {
    throw new EncodingError('COSE_Sign1 protected header must be exactly {1: -7} (a1 01 26)');
  }
  if (sign1.unprotected.size !== 0) {
    throw new EncodingError('COSE_Sign1 unprotected header must be empty');
  }
  return sign1;
}

// Imported public keys, keyed by their hex. Bounded (least recently used evicted first): keys
// are public, so the cache only saves work; a failed import is never cached.
const KEY_CACHE_LIMIT = 64;
const keyCache = new Map<string, Promise<CryptoKey>>();

/** WebCrypto's SubtleCrypto, or InvalidInputError naming why it is missing. */
export function subtle(): SubtleCrypto {
  const s = globalThis.crypto?.subtle;
  if (s === undefined) {
    throw new InvalidInputError(
      'WebCrypto (crypto.subtle) is unavailable; browsers provide it only in secure contexts',
    );
  }
  return s;
}

/** WebCrypto takes ArrayBuffer-backed views; copy only when the view is backed otherwise. */
export function bufferSource(u: Uint8Array): Uint8Array<ArrayBuffer> {
  return u.buffer instanceof ArrayBuffer ? (u as Uint8Array<ArrayBuffer>) : new Uint8Array(u);
}

async function importP256(publicKey: Uint8Array): Promise<CryptoKey> {
  const id = toHex(publicKey);
  const hit = keyCache.get(id);
  if (hit !== undefined) {
    keyCache.delete(id);
    keyCache.set(id, hit);
    return hit;
  }
  const pending = subtle().importKey(
    'raw',
    new Uint8Array(publicKey),
    { name: 'ECDSA', namedCurve: 'P-256' },
    false,
    ['verify'],
  );
  keyCache.set(id, pending);
  if (keyCache.size > KEY_CACHE_LIMIT) keyCache.delete(keyCache.keys().next().value as string);
  try {
    return await pending;
  } catch {
    if (keyCache.get(id) === pending) keyCache.delete(id);
    throw new EncodingError('public key is not a valid P-256 point');
  }
}

/**
 * Verifies an ES256 signature (ECDSA P-256 with SHA-256, IEEE P1363 r ‖ s; RFC 9053 §2.1) with
 * WebCrypto. Resolves false for a signature that does not verify (wrong length included); rejects
 * with EncodingError when `publicKey65` is not a 65-byte uncompressed SEC1 point on P-256.
 */
export async function verifyEs256(
  publicKey65: Uint8Array,
  data: Uint8Array,
  signature64: Uint8Array,
): Promise<boolean> {
  if (!(publicKey65 instanceof Uint8Array) || publicKey65.length !== P256_PUBLIC_KEY_LENGTH) {
    throw new EncodingError('a P-256 public key must be 65 bytes (uncompressed SEC1)');
  }
  if (publicKey65[0] !== 0x04) {
    throw new EncodingError('a P-256 public key must be uncompressed (first byte 04)');
  }
  if (!(data instanceof Uint8Array)) throw new InvalidInputError('data must be a Uint8Array');
  if (!(signature64 instanceof Uint8Array) || signature64.length !== ES256_SIGNATURE_LENGTH) {
    return false;
  }
  const key = await importP256(publicKey65);
  return subtle().verify(
    { name: 'ECDSA', hash: 'SHA-256' },
    key,
    bufferSource(signature64),
    bufferSource(data),
  );
}

/** True when `protectedBytes` is exactly the minimal ES256 protected header a1 01 26. */
function isMinimalEs256Protected(protectedBytes: Uint8Array): boolean {
  return bytesEqual(protectedBytes, ES256_PROTECTED);
}
