/**
 * Receipts (docs/receipts.md): offline proof that a transaction is in a log signed by a service
 * whose key a node's evidence endorses. Verification needs no node, no network and no secret.
 *
 * Receipt = deterministic CBOR map with exactly the text keys
 *   v: 1, entry: leaf array [term, index, kind, metaDigest, writeSetDigest, claims],
 *   path: [size, [hash, …]] (RFC 9162 inclusion proof of leaf index-1 in the tree of `size`),
 *   sig: the signature entry's COSE_Sign1, sigIndex: its index (= size + 1),
 *   end: the service endorsement COSE_Sign1, ev: the node's evidence.
 */
import { bytesEqual, constantTimeEqual, toHex } from '../bytes.js';
import { decodeCbor, encodeCbor } from '../cbor.js';
import { type Constraint, parseConstraint } from '../constraint.js';
import type { DecodedSign1 } from '../cose.js';
import { decodeMinimalSign1 } from '../cose.js';
import { CloisterError, EncodingError, InvalidInputError } from '../errors.js';
import type { PlatformVerifier, VerifiedEvidence } from '../verify.js';
import { verifyEndorsementChain, verifySign1 } from './endorsement.js';
import { LogFormatError, ReceiptError } from './errors.js';
import {
  type EntryKind,
  encodeLeafInput,
  type LeafFields,
  leafArray,
  parseLeafArray,
} from './format.js';
import { leafHash, rootFromInclusion } from './merkle.js';
import { type Claims, claimsDigest, decodeSignaturePayload, serviceIdentity } from './payloads.js';
import { formatTxid } from './txid.js';

export const RECEIPT_VERSION = 1;
const RECEIPT_KEYS: ReadonlySet<string> = new Set([
  'v',
  'entry',
  'path',
  'sig',
  'sigIndex',
  'end',
  'ev',
]);
const MAX_PATH = 64;

export interface Receipt {
  /** The leaf input's fields: what the receipt proves is in the log. */
  entry: LeafFields;
  /** Tree size of the inclusion proof: sigIndex - 1. */
  size: number;
  /** RFC 9162 inclusion proof of leaf entry.index - 1 in the tree of `size` leaves. */
  path: Uint8Array[];
  /** The COSE_Sign1 of the signature entry at sigIndex (signs the tree of `size`). */
  sig: Uint8Array;
  sigIndex: number;
  /** Service endorsement COSE_Sign1, by the node key. */
  end: Uint8Array;
  /** The node's evidence, binding the node key with nonce endorsementNonce(servicePublicKey). */
  ev: Uint8Array;
}

export interface VerifyReceiptOptions {
  /**
   * What the verifier accepts of the node, as verifyEvidence takes it ('SEC:INSECURE …' for
   * simulation); its SVC: clause, when it has one, is checked against the receipt's service key
   * (ReceiptError('service')). APP: clauses cannot be: a receipt carries the digest of its
   * entry's metadata, not the app's code id.
   */
  readonly constraint: Constraint | string;
  /** Expected service identity hash (SHA-256 of the service key); mismatch → ReceiptError('service'). */
  readonly service?: Uint8Array;
  /** When given, their digest must be the entry's claims; else ReceiptError('claims'). */
  readonly claims?: Claims;
  /** Platform verifiers, as verifyEvidence takes them (default [simulationVerifier]). */
  readonly verifiers?: readonly PlatformVerifier[];
}

export interface VerifiedReceipt {
  /** "term.index" of the transaction. */
  readonly txid: string;
  readonly term: number;
  readonly index: number;
  readonly kind: EntryKind;
  /** The entry's claims digest (32 bytes) or empty. */
  readonly claims: Uint8Array;
  /** The signed tree: size, root and the state hash after entry `size`. */
  readonly size: number;
  readonly treeRoot: Uint8Array;
  readonly stateHash: Uint8Array;
  readonly sigIndex: number;
  /** Service identity hash: SHA-256(servicePublicKey). */
  readonly service: Uint8Array;
  readonly servicePublicKey: Uint8Array;
  readonly nodePublicKey: Uint8Array;
  /** What the node's evidence established (platform, secure, measurement …). */
  readonly security: VerifiedEvidence;
}

function fail(message: string): never {
  throw new ReceiptError('format', message);
}

function uint(v: unknown, what: string): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0)
    fail(`${what} must be an unsigned integer`);
  return v;
}

function bstr(v: unknown, what: string): Uint8Array {
  if (!(v instanceof Uint8Array)) fail(`${what} must be a byte string`);
  return v;
}

/** Encodes a receipt; InvalidInputError when a field is malformed. */
export function encodeReceipt(r: Receipt): Uint8Array {
  if (typeof r !== 'object' || r === null)
    throw new InvalidInputError('a receipt must be an object');
  for (const [v, what] of [
    [r.size, 'size'],
    [r.sigIndex, 'sigIndex'],
  ] as const) {
    if (!Number.isSafeInteger(v) || v < 0)
      throw new InvalidInputError(`receipt ${what} must be an unsigned integer`);
  }
  if (
    !Array.isArray(r.path) ||
    r.path.length > MAX_PATH ||
    r.path.some((h) => !(h instanceof Uint8Array) || h.length !== 32)
  ) {
    throw new InvalidInputError(`receipt path must be at most ${MAX_PATH} hashes of 32 bytes`);
  }
  for (const k of ['sig', 'end', 'ev'] as const) {
    if (!(r[k] instanceof Uint8Array)) throw new InvalidInputError(`receipt ${k} must be bytes`);
  }
  return encodeCbor(
    new Map<string, unknown>([
      ['v', RECEIPT_VERSION],
      ['entry', leafArray(r.entry)],
      ['path', [r.size, r.path]],
      ['sig', r.sig],
      ['sigIndex', r.sigIndex],
      ['end', r.end],
      ['ev', r.ev],
    ]),
  );
}

/** Decodes a receipt strictly; ReceiptError('format') saying what is wrong. */
export function decodeReceipt(b: Uint8Array): Receipt {
  if (!(b instanceof Uint8Array)) throw new InvalidInputError('a receipt must be bytes');
  let m: unknown;
  try {
    m = decodeCbor(b);
  } catch (e) {
    if (e instanceof EncodingError) throw new ReceiptError('format', e.message, { cause: e });
    throw e;
  }
  if (!(m instanceof Map)) fail('a receipt must be a CBOR map');
  for (const k of m.keys()) {
    if (typeof k !== 'string' || !RECEIPT_KEYS.has(k))
      fail(`unknown key ${JSON.stringify(String(k))}`);
  }
  if (m.get('v') !== RECEIPT_VERSION)
    fail(`receipt version ${String(m.get('v'))} is not supported (this verifier: 1)`);
  for (const k of RECEIPT_KEYS) if (!m.has(k)) fail(`the receipt has no "${k}"`);
  let entry: LeafFields;
  try {
    entry = parseLeafArray(m.get('entry'));
  } catch (e) {
    if (e instanceof LogFormatError) throw new ReceiptError('format', e.message, { cause: e });
    throw e;
  }
  const path = m.get('path');
  if (!Array.isArray(path) || path.length !== 2 || !Array.isArray(path[1])) {
    fail('path must be [size, [hash, …]]');
  }
  const hashes = path[1] as unknown[];
  if (hashes.length > MAX_PATH) fail(`path has ${hashes.length} hashes (at most ${MAX_PATH})`);
  for (const h of hashes) {
    if (!(h instanceof Uint8Array) || h.length !== 32) fail('path hashes must be 32 bytes');
  }
  return {
    entry,
    size: uint(path[0], 'path size'),
    path: hashes as Uint8Array[],
    sig: bstr(m.get('sig'), 'sig'),
    sigIndex: uint(m.get('sigIndex'), 'sigIndex'),
    end: bstr(m.get('end'), 'end'),
    ev: bstr(m.get('ev'), 'ev'),
  };
}

function decodeCose(bytes: Uint8Array, reason: 'endorsement' | 'signature'): DecodedSign1 {
  try {
    return decodeMinimalSign1(bytes);
  } catch (e) {
    if (e instanceof EncodingError)
      throw new ReceiptError(reason, `not a COSE_Sign1: ${e.message}`, { cause: e });
    throw e;
  }
}

/**
 * Verifies a receipt offline, in exactly this order, each step a ReceiptError with its reason:
 *  1. format: strict decode (decodeReceipt); the endorsement's COSE_Sign1 and payload parse;
 *  2. evidence: verifyEvidence(ev, { nonce: endorsementNonce(servicePublicKey), identityPublicKey:
 *     the endorsement payload's nodePublicKey, constraint, verifiers });
 *  3. endorsement: its ES256 signature by nodePublicKey;
 *  4. signature: the signature COSE_Sign1 verifies with servicePublicKey, its payload decodes, its
 *     size is sigIndex - 1 and its term the entry's term;
 *  5. inclusion: path size = signed size, and rootFromInclusion(index - 1, size,
 *     leafHash(leaf input), path) = the signed treeRoot;
 *  6. service: options.service (when given) and the constraint's SVC: clause (when it has one)
 *     each = SHA-256(servicePublicKey), compared in constant time;
 *  7. claims: options.claims (when given) digest to the entry's claims.
 * Resolves only when every step passed.
 */
export async function verifyReceipt(
  bytes: Uint8Array,
  options: VerifyReceiptOptions,
): Promise<VerifiedReceipt> {
  if (typeof options !== 'object' || options === null) {
    throw new InvalidInputError(
      'verifyReceipt needs options { constraint, service?, claims?, verifiers? }',
    );
  }
  if (
    options.service !== undefined &&
    (!(options.service instanceof Uint8Array) || options.service.length !== 32)
  ) {
    throw new InvalidInputError('options.service must be a 32-byte service identity hash');
  }
  const constraint =
    typeof options.constraint === 'string'
      ? parseConstraint(options.constraint)
      : options.constraint;
  const expectedClaims = options.claims === undefined ? undefined : claimsDigest(options.claims);
  // 1. format
  const r = decodeReceipt(bytes);
  // 1 (endorsement parse), 2. evidence, 3. endorsement: the chain SCP checks too
  const {
    servicePublicKey,
    nodePublicKey: endorsedNode,
    security,
  } = await verifyEndorsementChain(
    r.ev,
    r.end,
    { ...options, constraint },
    (step, message, cause) =>
      new ReceiptError(step, message, cause === undefined ? undefined : { cause }),
  );
  // 4. signature
  const sig = decodeCose(r.sig, 'signature');
  if (!(await verifySign1(sig, servicePublicKey))) {
    throw new ReceiptError('signature', 'the signature is not by the endorsed service key');
  }
  let signed: ReturnType<typeof decodeSignaturePayload>;
  try {
    signed = decodeSignaturePayload(sig.payload);
  } catch (e) {
    if (e instanceof LogFormatError) throw new ReceiptError('signature', e.message, { cause: e });
    throw e;
  }
  if (signed.size !== r.sigIndex - 1) {
    throw new ReceiptError(
      'signature',
      `the signature signs tree size ${signed.size}, not ${r.sigIndex - 1} (sigIndex - 1)`,
    );
  }
  if (signed.term !== r.entry.term) {
    throw new ReceiptError(
      'signature',
      `the signature is for term ${signed.term}, the entry for term ${r.entry.term}`,
    );
  }
  // 5. inclusion
  if (r.size !== signed.size) {
    throw new ReceiptError(
      'inclusion',
      `the path is for tree size ${r.size}, the signature for ${signed.size}`,
    );
  }
  if (r.entry.index > r.size) {
    throw new ReceiptError(
      'inclusion',
      `entry ${r.entry.index} is not in the signed tree of size ${r.size}`,
    );
  }
  let root: Uint8Array;
  try {
    root = rootFromInclusion(r.entry.index - 1, r.size, leafHash(encodeLeafInput(r.entry)), r.path);
  } catch (e) {
    if (e instanceof CloisterError) throw new ReceiptError('inclusion', e.message, { cause: e });
    throw e;
  }
  if (!bytesEqual(root, signed.treeRoot)) {
    throw new ReceiptError('inclusion', 'the entry and path do not lead to the signed tree root');
  }
  // 6. service
  const service = serviceIdentity(servicePublicKey);
  if (options.service !== undefined && !constantTimeEqual(service, options.service)) {
    throw new ReceiptError(
      'service',
      'the receipt is signed by another service than the one expected',
    );
  }
  if (constraint.service !== undefined && !constantTimeEqual(service, constraint.service)) {
    throw new ReceiptError(
      'service',
      `the receipt is signed by service ${toHex(service)}, not the one the constraint's SVC:${toHex(constraint.service)} names`,
    );
  }
  // 7. claims
  if (expectedClaims !== undefined && !constantTimeEqual(expectedClaims, r.entry.claims)) {
    throw new ReceiptError(
      'claims',
      r.entry.claims.length === 0
        ? 'the entry records no claims'
        : 'the claims do not match the entry',
    );
  }
  return {
    txid: formatTxid(r.entry.term, r.entry.index),
    term: r.entry.term,
    index: r.entry.index,
    kind: r.entry.kind,
    claims: r.entry.claims.slice(),
    size: signed.size,
    treeRoot: signed.treeRoot,
    stateHash: signed.stateHash,
    sigIndex: r.sigIndex,
    service,
    servicePublicKey: servicePublicKey.slice(),
    nodePublicKey: endorsedNode.slice(),
    security,
  };
}
