/**
 * Enclave manifest v1 (docs/platform.md, "Manifest"): a COSE_Sign1 (RFC 9052 §4.2) with the
 * protected header {1: -7} (ES256) and an empty unprotected header, whose payload is the
 * deterministic CBOR (RFC 8949 §4.2.1) map with exactly the text keys
 *
 *   "v": 1, "bundle": bstr 32 (SHA-256 of the exact bundle bytes), "product": uint < 2^32,
 *   "svn": uint < 2^32, "signerKey": bstr 65 (the P-256 key that signs this manifest)
 *
 * signed (RFC 9052 §4.4, external_aad empty) by the private key of signerKey. signer =
 * SHA-256(signerKey). The platform checks it before launch (verifyManifest) and puts the verified
 * values into the enclave's identity.
 */
import type { KeyObject } from 'node:crypto';
import {
  bytesEqual,
  computeMeasurement,
  decodeCbor,
  decodeMinimalSign1,
  ES256_PROTECTED,
  encodeCbor,
  encodeSign1,
  sha256,
  sign1ToBeSigned,
} from '@cloister/core';
import { ManifestError } from '../platform/errors.js';
import {
  publicKeyBytes,
  publicKeyFromBytes,
  signEs256,
  verifyEs256Sync,
} from '../platform/p256.js';
import { isU32 } from '../platform/sealing.js';

export const MANIFEST_VERSION = 1;
const KEYS = ['v', 'bundle', 'product', 'svn', 'signerKey'] as const;

/** The payload of a manifest. */
export interface ManifestClaims {
  readonly v: 1;
  /** SHA-256 of the bundle bytes, 32 bytes. */
  readonly bundle: Uint8Array;
  readonly product: number;
  readonly svn: number;
  /** 65-byte uncompressed P-256 public key that signs the manifest. */
  readonly signerKey: Uint8Array;
}

/** A manifest split into its parts; produced by decodeManifest, which checks no signature. */
export interface DecodedManifest {
  readonly claims: ManifestClaims;
  readonly protectedBytes: Uint8Array;
  readonly payload: Uint8Array;
  readonly signature: Uint8Array;
}

/** What a verified manifest establishes about a bundle. */
export interface VerifiedManifest {
  readonly claims: ManifestClaims;
  /** SHA-256(signerKey). */
  readonly signer: Uint8Array;
  /** SHA-256 of the bundle, equal to claims.bundle. */
  readonly bundleHash: Uint8Array;
  /** computeMeasurement(bundleHash, product, svn). */
  readonly measurement: Uint8Array;
}

/** The deterministic CBOR payload of a manifest. Throws ManifestError on out-of-range fields. */
export function encodeManifest(claims: ManifestClaims): Uint8Array {
  checkClaims(claims);
  return encodeCbor(
    new Map<string, unknown>([
      ['v', claims.v],
      ['bundle', claims.bundle],
      ['product', claims.product],
      ['svn', claims.svn],
      ['signerKey', claims.signerKey],
    ]),
  );
}

/** Decodes a manifest payload strictly: exactly the five keys, deterministic CBOR, v = 1. */
export function decodeManifestPayload(payload: Uint8Array): ManifestClaims {
  let value: unknown;
  try {
    value = decodeCbor(payload);
  } catch (e) {
    throw new ManifestError(
      `The manifest payload is not deterministic CBOR: ${(e as Error).message}`,
      {
        cause: e,
      },
    );
  }
  if (!(value instanceof Map) || value.size !== KEYS.length || !KEYS.every((k) => value.has(k))) {
    throw new ManifestError(
      `The manifest payload must be a map with exactly the keys ${KEYS.join(', ')}.`,
    );
  }
  const claims = {
    v: value.get('v'),
    bundle: value.get('bundle'),
    product: value.get('product'),
    svn: value.get('svn'),
    signerKey: value.get('signerKey'),
  } as ManifestClaims;
  checkClaims(claims);
  return claims;
}

/**
 * Signs a manifest for a bundle with `key` (P-256 private key), whose public key becomes the
 * manifest's signerKey. Returns the COSE_Sign1 bytes.
 */
export function signManifest(
  fields: { readonly bundleHash: Uint8Array; readonly product: number; readonly svn: number },
  key: KeyObject,
): Uint8Array {
  const payload = encodeManifest({
    v: MANIFEST_VERSION,
    bundle: fields.bundleHash,
    product: fields.product,
    svn: fields.svn,
    signerKey: publicKeyBytes(key),
  });
  const signature = signEs256(key, sign1ToBeSigned(ES256_PROTECTED, payload));
  return encodeSign1({ protectedBytes: ES256_PROTECTED, payload, signature });
}

/**
 * Decodes a manifest strictly (COSE_Sign1 with tag 18, protected header exactly a1 01 26, empty
 * unprotected header, strict payload) without checking its signature. Throws ManifestError.
 */
export function decodeManifest(bytes: Uint8Array): DecodedManifest {
  let sign1: ReturnType<typeof decodeMinimalSign1>;
  try {
    sign1 = decodeMinimalSign1(bytes);
  } catch (e) {
    throw new ManifestError(`The manifest is not a COSE_Sign1 message: ${(e as Error).message}`, {
      cause: e,
    });
  }
  return {
    claims: decodeManifestPayload(sign1.payload),
    protectedBytes: sign1.protectedBytes,
    payload: sign1.payload,
    signature: sign1.signature,
  };
}

/**
 * The launch check: decodes `manifest`, verifies its signature with the signerKey it carries, and
 * checks that its bundle hash is SHA-256 of exactly `bundle`. Throws ManifestError naming what
 * failed.
 */
export function verifyManifest(manifest: Uint8Array, bundle: Uint8Array): VerifiedManifest {
  const decoded = decodeManifest(manifest);
  const { claims } = decoded;
  let key: KeyObject;
  try {
    key = publicKeyFromBytes(claims.signerKey);
  } catch (e) {
    throw new ManifestError('The manifest signerKey is not a P-256 public key.', { cause: e });
  }
  const tbs = sign1ToBeSigned(decoded.protectedBytes, decoded.payload);
  if (!verifyEs256Sync(key, tbs, decoded.signature)) {
    throw new ManifestError(
      'The manifest signature does not verify with its signerKey: the manifest was altered or signed by another key.',
    );
  }
  const bundleHash = sha256(bundle);
  if (!bytesEqual(bundleHash, claims.bundle)) {
    throw new ManifestError(
      'The bundle is not the one the manifest was signed for (its SHA-256 differs from the manifest bundle hash).',
    );
  }
  return {
    claims,
    signer: sha256(claims.signerKey),
    bundleHash,
    measurement: computeMeasurement(bundleHash, claims.product, claims.svn),
  };
}

function checkClaims(c: ManifestClaims): void {
  if (c.v !== MANIFEST_VERSION) {
    throw new ManifestError(
      `The manifest format version is ${String(c.v)}; this Cloister reads version ${MANIFEST_VERSION}. Rebuild with this Cloister.`,
    );
  }
  if (!(c.bundle instanceof Uint8Array) || c.bundle.length !== 32) {
    throw new ManifestError('The manifest bundle hash must be 32 bytes.');
  }
  if (!isU32(c.product))
    throw new ManifestError('The manifest product must be an integer in [0, 2^32).');
  if (!isU32(c.svn)) throw new ManifestError('The manifest svn must be an integer in [0, 2^32).');
  if (!(c.signerKey instanceof Uint8Array) || c.signerKey.length !== 65 || c.signerKey[0] !== 4) {
    throw new ManifestError('The manifest signerKey must be a 65-byte uncompressed P-256 key.');
  }
}
