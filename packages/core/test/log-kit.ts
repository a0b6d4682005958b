/**
 * Test kit for the logchain: a service written from the contract (docs/receipts.md) with
 * @noble/curves P-256 keys and simulation evidence from helpers.ts, so receipts and logs in the
 * tests are real ones, signed end to end.
 */
import { p256 } from '@noble/curves/nist.js';
import { toHex } from '../src/bytes.js';
import { CborTag, encodeCbor } from '../src/cbor.js';
import { decodeSign1, ES256_PROTECTED, encodeSign1, sign1ToBeSigned } from '../src/cose.js';
import { computeMeasurement, computeReportData, type EvidenceClaims } from '../src/evidence.js';
import { sha256 } from '../src/hash.js';
import { entryLeafHash } from '../src/log/entry-hashes.js';
import { ENTRY_KIND, encodeEntry, entryHash, type LogEntry } from '../src/log/format.js';
import { MerkleLog } from '../src/log/merkle.js';
import {
  type Claims,
  claimsDigest,
  endorsementNonce,
  endorsementPayload,
  signaturePayload,
} from '../src/log/payloads.js';
import { encodeReceipt, type Receipt } from '../src/log/receipt.js';
import { newKey, payloadMap, signEnvelope, type TestKey } from './helpers.js';

export interface P256Key {
  readonly secret: Uint8Array;
  readonly publicKey: Uint8Array;
}

export function p256Key(): P256Key {
  const secret = p256.utils.randomSecretKey();
  return { secret, publicKey: p256.getPublicKey(secret, false) };
}

/** A COSE_Sign1 (ES256) of `payload` by `key`. */
export function sign1(key: P256Key, payload: Uint8Array): Uint8Array {
  const signature = p256.sign(sign1ToBeSigned(ES256_PROTECTED, payload), key.secret);
  return encodeSign1({ protectedBytes: ES256_PROTECTED, payload, signature });
}

/**
 * The same COSE_Sign1 (same protected header, payload and signature, so it still verifies) with
 * `unprotected` as its unprotected header, which the signature does not cover.
 */
export function withUnprotected(cose: Uint8Array, unprotected: Map<unknown, unknown>): Uint8Array {
  const d = decodeSign1(cose);
  return encodeCbor(new CborTag(18, [d.protectedBytes, unprotected, d.payload, d.signature]));
}

/** A COSE_Sign1 by `key` whose protected header is `protectedBytes` (alg ES256 among others). */
export function sign1With(
  key: P256Key,
  protectedBytes: Uint8Array,
  payload: Uint8Array,
): Uint8Array {
  const signature = p256.sign(sign1ToBeSigned(protectedBytes, payload), key.secret);
  return encodeCbor(new CborTag(18, [protectedBytes, new Map(), payload, signature]));
}

const MEASUREMENT = computeMeasurement(sha256(new TextEncoder().encode('app bundle')), 7, 3);
const SIGNER = sha256(new TextEncoder().encode('signer key'));

/** Simulation evidence binding `identityKey` with `nonce`, signed by `platform`. */
export function simulationEvidence(
  identityKey: Uint8Array,
  nonce: Uint8Array,
  platform: TestKey = newKey(),
): Uint8Array {
  const claims: EvidenceClaims = {
    v: 1,
    platform: 'simulation',
    measurement: MEASUREMENT,
    signer: SIGNER,
    product: 7,
    svn: 3,
    reportData: computeReportData(identityKey, nonce),
    platformKey: platform.publicKey,
  };
  return signEnvelope(encodeCbor(payloadMap({ ...claims })), platform);
}

/** A constraint the kit's evidence satisfies (insecure platforms admitted). */
export const CONSTRAINT = `C:${toHex(MEASUREMENT)} SEC:INSECURE`;
/** Same code, but a secure platform required: the kit's evidence fails it. */
export const SECURE_CONSTRAINT = `C:${toHex(MEASUREMENT)}`;

export function makeClaims(n: number): Claims {
  const te = new TextEncoder();
  return {
    salt: sha256(te.encode(`salt ${n}`)),
    request: te.encode(`request ${n}`),
    response: te.encode(`response ${n}`),
    codeId: sha256(te.encode('code')),
  };
}

/** An honest service: genesis, transactions, signatures; every entry kept as bytes. */
export class KitService {
  readonly service = p256Key();
  readonly node = p256Key();
  readonly end: Uint8Array;
  readonly ev: Uint8Array;
  readonly entries: Uint8Array[] = [];
  readonly decoded: LogEntry[] = [];
  readonly tree = new MerkleLog();
  /** State hash after each index (fake but distinct: the auditor cannot recompute it). */
  readonly stateHashes: Uint8Array[] = [new Uint8Array(32)];

  /** `reshapeEnd` re-encodes the honest endorsement (tests of encodings its signature does not cover). */
  constructor(
    opts: {
      end?: Uint8Array;
      ev?: Uint8Array;
      reshapeEnd?: (cose: Uint8Array) => Uint8Array;
      /** Leave genesis unsigned: entry 2 is then whatever the test appends (not an honest log). */
      unsignedGenesis?: boolean;
    } = {},
  ) {
    this.end =
      opts.end ??
      (opts.reshapeEnd ?? ((c) => c))(
        sign1(this.node, endorsementPayload(this.service.publicKey, this.node.publicKey)),
      );
    this.ev =
      opts.ev ?? simulationEvidence(this.node.publicKey, endorsementNonce(this.service.publicKey));
    this.append({
      kind: ENTRY_KIND.genesis,
      meta: { svc: this.service.publicKey, end: this.end, ev: this.ev },
    });
    if (opts.unsignedGenesis !== true) this.sign();
  }

  /** The secret generation write sets use: 0, then the last rotation's. */
  generation = 0;

  /** A rotation entry to generation `to` (default the next); later write sets use it. */
  rotate(to = this.generation + 1): number {
    this.generation = to;
    return this.append({ kind: ENTRY_KIND.rotation, meta: { rot: to } });
  }

  get size(): number {
    return this.entries.length;
  }

  private append(p: Partial<LogEntry> & Pick<LogEntry, 'kind'>): number {
    const index = this.size + 1;
    const e: LogEntry = {
      term: 1,
      index,
      prev: index === 1 ? new Uint8Array(32) : entryHash(this.entries[index - 2] as Uint8Array),
      meta: {},
      writeSet: new Uint8Array(0),
      claims: new Uint8Array(0),
      sig: new Uint8Array(0),
      ...p,
    };
    const bytes = encodeEntry(e);
    this.entries.push(bytes);
    this.decoded.push(e);
    this.tree.append(entryLeafHash(e));
    // After genesis the state is empty (32 zero bytes, what signature entry 2 signs); later
    // hashes are stand-ins (no write set is decrypted here).
    this.stateHashes.push(
      index === 1 ? new Uint8Array(32) : sha256(Uint8Array.of(index & 255, index >> 8)),
    );
    return index;
  }

  /** A transaction with claims (and a fake encrypted write set); returns its index. */
  tx(claims?: Claims, gen = this.generation): number {
    const n = this.size + 1;
    const writeSet = new Uint8Array(10 + (n % 7)).fill(n & 255);
    return this.append({
      kind: ENTRY_KIND.transaction,
      meta: { gen, size: writeSet.length, app: 'shop' },
      writeSet,
      claims: claims === undefined ? new Uint8Array(0) : claimsDigest(claims),
    });
  }

  /**
   * A signature entry over the tree before it, by `by` (default the service key); `reshape`
   * re-encodes its COSE_Sign1 (tests of encodings the signature does not cover).
   */
  sign(
    by: P256Key = this.service,
    reshape: (cose: Uint8Array) => Uint8Array = (c) => c,
    stateHash?: Uint8Array,
  ): number {
    const size = this.size;
    const payload = signaturePayload({
      term: 1,
      size,
      treeRoot: this.tree.root(size),
      stateHash: stateHash ?? (this.stateHashes[size] as Uint8Array),
    });
    return this.append({ kind: ENTRY_KIND.signature, sig: reshape(sign1(by, payload)) });
  }

  /** The receipt fields of entry `index`, from the first signature entry after it. */
  receiptOf(index: number): Receipt {
    const sigIndex =
      this.decoded.findIndex((e) => e.index > index && e.kind === ENTRY_KIND.signature) + 1;
    if (sigIndex === 0) throw new Error(`entry ${index} is not signed yet`);
    const e = this.decoded[index - 1] as LogEntry;
    const size = sigIndex - 1;
    return {
      entry: {
        term: e.term,
        index: e.index,
        kind: e.kind,
        metaDigest: sha256(encodeCbor(new Map(Object.entries(e.meta)))),
        writeSetDigest: sha256(e.writeSet),
        claims: e.claims,
      },
      size,
      path: this.tree.inclusionProof(index - 1, size),
      sig: (this.decoded[sigIndex - 1] as LogEntry).sig,
      sigIndex,
      end: this.end,
      ev: this.ev,
    };
  }

  receipt(index: number): Uint8Array {
    return encodeReceipt(this.receiptOf(index));
  }
}
