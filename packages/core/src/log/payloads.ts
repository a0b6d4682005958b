/**
 * The signed and hashed payloads of the logchain (docs/receipts.md §4-§6): the salted claims
 * digest a transaction entry carries, the payload the service key signs in a signature entry, the
 * endorsement the node signs for the service key and the nonce its evidence answers, and the
 * service identity hash. Deterministic CBOR with a versioned label first; the decoders are strict
 * (LogFormatError), the encoders check their input (InvalidInputError).
 */
import { encodeCbor } from '../cbor.js';
import { InvalidInputError } from '../errors.js';
import { sha256 } from '../hash.js';
import { LogFormatError } from './errors.js';
import {
  array,
  bytes,
  decodeStrict,
  formatFail,
  inputFail,
  positive,
  publicKey,
  uint,
} from './format-checks.js';

export interface Claims {
  /** 32 random bytes, kept by the client: without it the digest reveals nothing. */
  salt: Uint8Array;
  request: Uint8Array;
  response: Uint8Array;
  codeId: Uint8Array;
}

export interface SignaturePayload {
  term: number;
  /** Tree size signed: s - 1 for the signature entry at index s. */
  size: number;
  treeRoot: Uint8Array;
  stateHash: Uint8Array;
}

export const SIGNATURE_LABEL = 'cloister/signature/v1';
export const ENDORSEMENT_LABEL = 'cloister/endorsement/v1';
export const CLAIMS_LABEL = 'cloister/claims/v1';

/** SHA-256(CBOR `["cloister/claims/v1", salt(32), request, response, codeId]`). */
export function claimsDigest(c: Claims): Uint8Array {
  if (typeof c !== 'object' || c === null) throw new InvalidInputError('claims must be an object');
  bytes(c.salt, 'claims salt', inputFail, 32);
  bytes(c.request, 'claims request', inputFail);
  bytes(c.response, 'claims response', inputFail);
  bytes(c.codeId, 'claims codeId', inputFail);
  return sha256(encodeCbor([CLAIMS_LABEL, c.salt, c.request, c.response, c.codeId]));
}

/** CBOR `["cloister/signature/v1", term, size, treeRoot(32), stateHash(32)]`: what the service signs. */
export function signaturePayload(p: SignaturePayload): Uint8Array {
  positive(p.term, 'signature term', inputFail);
  uint(p.size, 'signature size', inputFail);
  bytes(p.treeRoot, 'signature treeRoot', inputFail, 32);
  bytes(p.stateHash, 'signature stateHash', inputFail, 32);
  return encodeCbor([SIGNATURE_LABEL, p.term, p.size, p.treeRoot, p.stateHash]);
}

/** Strict decoder of signaturePayload; LogFormatError. */
export function decodeSignaturePayload(b: Uint8Array): SignaturePayload {
  const [label, term, size, treeRoot, stateHash] = array(
    decodeStrict(b, 'signature payload'),
    5,
    'a signature payload',
  );
  if (label !== SIGNATURE_LABEL)
    throw new LogFormatError(`signature payload label must be "${SIGNATURE_LABEL}"`);
  return {
    term: positive(term, 'signature term', formatFail),
    size: uint(size, 'signature size', formatFail),
    treeRoot: bytes(treeRoot, 'signature treeRoot', formatFail, 32),
    stateHash: bytes(stateHash, 'signature stateHash', formatFail, 32),
  };
}

/** CBOR `["cloister/endorsement/v1", servicePublicKey(65), nodePublicKey(65)]`: what the node signs. */
export function endorsementPayload(
  servicePublicKey: Uint8Array,
  nodePublicKey: Uint8Array,
): Uint8Array {
  publicKey(servicePublicKey, 'service public key', inputFail);
  publicKey(nodePublicKey, 'node public key', inputFail);
  return encodeCbor([ENDORSEMENT_LABEL, servicePublicKey, nodePublicKey]);
}

/** Strict decoder of endorsementPayload; LogFormatError. */
export function decodeEndorsementPayload(b: Uint8Array): {
  servicePublicKey: Uint8Array;
  nodePublicKey: Uint8Array;
} {
  const [label, svc, node] = array(
    decodeStrict(b, 'endorsement payload'),
    3,
    'an endorsement payload',
  );
  if (label !== ENDORSEMENT_LABEL) {
    throw new LogFormatError(`endorsement payload label must be "${ENDORSEMENT_LABEL}"`);
  }
  return {
    servicePublicKey: publicKey(svc, 'endorsed service key', formatFail),
    nodePublicKey: publicKey(node, 'endorsing node key', formatFail),
  };
}

/** The nonce the node's evidence answers: SHA-256(CBOR `["cloister/endorsement/v1", servicePublicKey]`). */
export function endorsementNonce(servicePublicKey: Uint8Array): Uint8Array {
  publicKey(servicePublicKey, 'service public key', inputFail);
  return sha256(encodeCbor([ENDORSEMENT_LABEL, servicePublicKey]));
}

/** Service identity hash: SHA-256(servicePublicKey, SEC1 uncompressed, 65 bytes). */
export function serviceIdentity(servicePublicKey: Uint8Array): Uint8Array {
  publicKey(servicePublicKey, 'service public key', inputFail);
  return sha256(servicePublicKey);
}
