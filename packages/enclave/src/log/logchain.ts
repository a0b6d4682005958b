/**
 * The logchain (docs/logchain.md; DESIGN.md §6, §11): every commit index is one entry, chained by
 * hash, fed to an RFC 9162 Merkle tree, its write set encrypted, signed every `signEvery` entries
 * by the service key. It implements the ledger engine's CommitLog port: the engine stages the
 * entries of a group into the group's atomic batch (so an entry and the ledger changes it carries
 * are durable together), and keeps `checkpoint()` inside its sealed root record; on restart `open`
 * verifies every stored entry against that checkpoint before the engine serves anything.
 *
 * Entry byte formats, the leaf input, the signature payload and receipts are core's
 * (packages/core/src/log, docs/receipts.md). Store layout: entry `index` under
 * 0x02 ‖ u64be(index), its CBOR bytes as value (public: an auditor reads them).
 *
 * Write set (enclave-only format): plaintext = deterministic CBOR array of
 * [ledger, table, key, value | null]; stored = nonce(12) ‖ AES-256-GCM ciphertext ‖ tag(16) under
 * the generation's write-set key HKDF-SHA256(secret_g, "", "cloister/log/v1/write-set-key" ‖ 0x00 ‖
 * u32be(g)), additional data "cloister/log/v1/write-set" ‖ 0x00 ‖ u64be(term) ‖ u64be(index) ‖
 * u32be(g). The entry's meta names g ("gen") and the plaintext size ("size").
 */
import {
  createCipheriv,
  createPublicKey,
  createSecretKey,
  type KeyObject,
  hash as nodeHash,
  randomFillSync,
  sign,
  verify,
} from 'node:crypto';
import {
  bytesEqual,
  concatBytes,
  decodeCbor,
  decodeEntry,
  decodeEntryHashes,
  decodeSign1,
  decodeSignaturePayload,
  ENTRY_KIND,
  type EntryMeta,
  ES256_PROTECTED,
  encodeCbor,
  encodeEntryHashes,
  encodeReceipt,
  encodeSign1,
  entryLeafHash,
  formatTxid,
  type HashedEntry,
  InvalidInputError,
  type LogEntry,
  LogEntryAlteredError,
  LogEntryMissingError,
  LogEntryReorderedError,
  LogSignatureError,
  LogTailCutError,
  leafFields,
  MerkleLog,
  parseTxid,
  RollbackDetectedError,
  rootFromInclusion,
  type Sha256,
  sign1ToBeSigned,
  signaturePayload,
  utf8,
  wipe,
} from '@cloister/core';
import { AEAD_TAG_BYTES, aesGcmOpen } from '../aead.js';
import { hkdfSha256, type LedgerSecret } from '../ledger/crypto.js';
import type { CommitLog, LogItem, WriteItem } from '../ledger/ledger/index.js';
import type { RecordPut } from '../ledger/node-store.js';
import type { IterateOptions, StoreEntry } from '../store/store.js';
import { ReceiptNotReadyError, UnknownTransactionError } from './errors.js';

/** Namespace byte of log entries in the store. */
export const STORE_NAMESPACE_LOG = 0x02;
/** Default number of unsigned entries after which a signature is queued. */
export const DEFAULT_SIGN_EVERY = 1000;
/** HKDF info label of the write-set keys (followed by 0x00 ‖ u32be(generation)). */
export const WRITE_SET_KEY_LABEL = 'cloister/log/v1/write-set-key';
/** Additional-data label of write sets. */
export const WRITE_SET_AAD_LABEL = 'cloister/log/v1/write-set';
/** First element of the checkpoint array. */
export const CHECKPOINT_LABEL = 'cloister/log/v1/checkpoint';

const TERM = 1;
const NONCE_BYTES = 12;
const ZERO32: Uint8Array = new Uint8Array(32);
const EMPTY: Uint8Array = new Uint8Array(0);

/** Store key of entry `index`: 0x02 ‖ u64be(index). */
export function logStoreKey(index: number): Uint8Array {
  const out = new Uint8Array(9);
  out[0] = STORE_NAMESPACE_LOG;
  new DataView(out.buffer).setBigUint64(1, BigInt(index), false);
  return out;
}

function indexOfKey(key: Uint8Array): number | undefined {
  if (key.length !== 9 || key[0] !== STORE_NAMESPACE_LOG) return undefined;
  const hi =
    (key[1] as number) * 0x1000000 +
    (((key[2] as number) << 16) | ((key[3] as number) << 8) | (key[4] as number));
  const lo =
    (key[5] as number) * 0x1000000 +
    (((key[6] as number) << 16) | ((key[7] as number) << 8) | (key[8] as number));
  // Above 2^53 - 1 (hi >= 2^21) an index is not a safe integer.
  return hi >= 0x200000 ? undefined : hi * 0x100000000 + lo;
}

/**
 * SHA-256 by node:crypto (one call into OpenSSL, 10-40x faster than core's portable default on
 * the short inputs of the log), as a plain Uint8Array; the same bytes as core's. The digest comes
 * back as a 'binary' (latin1) string and is copied: half the cost of a 'buffer' digest, whose
 * every result is a separately allocated ArrayBuffer (and garbage to collect). `into` writes it
 * straight where the caller wants it (the tree's levels, the leaf input).
 */
const sha256: Sha256 = Object.assign(
  (data: Uint8Array): Uint8Array => {
    const out = new Uint8Array(32);
    sha256Into(data, out, 0);
    return out;
  },
  { into: sha256Into },
);

function sha256Into(data: Uint8Array, out: Uint8Array, at: number): void {
  const s = nodeHash('sha256', data, 'binary');
  for (let i = 0; i < 32; i++) out[at + i] = s.charCodeAt(i);
}

/** Signature entries whose check `open` defers, at most (see there). */
const SIGNATURE_BATCH = 64;

/** Log entries per range `logPages` reads by default: a few pages of the boundary store. */
const READ_RANGE = 4096;
/** Ranges `logPages` reads ahead of the one being checked. */
const READ_AHEAD = 2;

/**
 * The whole log namespace in key order, as arrays of entries: ranges of `range` indexes up to
 * `size` (the checkpoint's), then the rest of the namespace. The ranges tile the namespace
 * (0x02 .. 0x03), so together they are exactly one ordered iteration of it, including keys that
 * are not well-formed entry keys; READ_AHEAD ranges are read while the caller checks one. After an
 * empty range (a log shorter than its checkpoint) the rest is read as one last range.
 */
async function* logPages(
  store: LogStore,
  size: number,
  range: number,
): AsyncGenerator<StoreEntry[]> {
  const end = Uint8Array.of(STORE_NAMESPACE_LOG + 1);
  // Range j is [bound(j), bound(j + 1)); bound(0) opens the namespace, bound(ranges) closes it.
  let ranges = Math.max(1, Math.ceil(size / range));
  const bound = (j: number): Uint8Array =>
    j === 0 ? Uint8Array.of(STORE_NAMESPACE_LOG) : j >= ranges ? end : logStoreKey(1 + j * range);
  const read = async (gte: Uint8Array, lt: Uint8Array): Promise<StoreEntry[]> => {
    const out: StoreEntry[] = [];
    for await (const e of store.iterate({ gte, lt })) out.push(e);
    return out;
  };
  const reads: Promise<StoreEntry[]>[] = [];
  let started = 0;
  for (let j = 0; j < ranges; j++) {
    while (started < Math.min(ranges, j + 1 + READ_AHEAD)) {
      const p = read(bound(started), bound(started + 1));
      started++;
      // A failed read-ahead is reported when its turn comes, not as an unhandled rejection.
      p.catch(() => {});
      reads.push(p);
    }
    const page = await (reads.shift() as Promise<StoreEntry[]>);
    if (page.length === 0 && j > 0 && started < ranges) {
      // The log ends before its checkpoint says: the ranges started so far, then the rest.
      const rest = bound(started);
      ranges = started + 1;
      const p = read(rest, end);
      p.catch(() => {});
      reads.push(p);
      started = ranges;
    }
    yield page;
  }
}

function u32be(n: number): Uint8Array {
  return Uint8Array.of(n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255);
}

/** The checkpoint kept in the sealed root record (docs/logchain.md, "Checkpoint"). */
export interface LogCheckpoint {
  /** entryHash of the last entry (32 zero bytes for an empty log). */
  readonly last: Uint8Array;
  /** Number of entries (= index of the last entry). */
  readonly size: number;
  /** Tree root of the `size` entries. */
  readonly root: Uint8Array;
  /** The epoch this checkpoint was sealed in (the platform counter's value once it is bumped). */
  readonly epoch: number;
  /** Index of the last signature entry (0 when none). */
  readonly lastSignature: number;
}

/** Deterministic CBOR ["cloister/log/v1/checkpoint", last, size, root, epoch, lastSignature]. */
export function encodeCheckpoint(c: LogCheckpoint): Uint8Array {
  return encodeCbor([CHECKPOINT_LABEL, c.last, c.size, c.root, c.epoch, c.lastSignature]);
}

function isIndex(n: unknown): n is number {
  return typeof n === 'number' && Number.isSafeInteger(n) && n >= 0;
}

export function decodeCheckpoint(b: Uint8Array): LogCheckpoint {
  let v: unknown;
  try {
    v = decodeCbor(b);
  } catch {
    v = undefined;
  }
  if (!Array.isArray(v) || v.length !== 6 || v[0] !== CHECKPOINT_LABEL) {
    throw new InvalidInputError('the root record holds no log checkpoint of format v1');
  }
  const [, last, size, root, epoch, lastSignature] = v as unknown[];
  if (
    !(last instanceof Uint8Array) ||
    last.length !== 32 ||
    !(root instanceof Uint8Array) ||
    root.length !== 32 ||
    !isIndex(size) ||
    !isIndex(epoch) ||
    !isIndex(lastSignature) ||
    lastSignature > size
  ) {
    throw new InvalidInputError('the log checkpoint in the root record is malformed');
  }
  return { last, size, root, epoch, lastSignature };
}

/** A store the log reads entries from: point reads and ordered iteration. */
export interface LogStore {
  get(key: Uint8Array): Uint8Array | undefined;
  iterate(options?: IterateOptions): AsyncIterable<StoreEntry>;
}

export interface LogchainOptions {
  readonly store: LogStore;
  /** The service identity key (P-256 private key). */
  readonly serviceKey: KeyObject;
  /** Its 65-byte SEC1 public key. */
  readonly servicePublicKey: Uint8Array;
  /** Every ledger secret generation known (write sets of any of them decrypt). */
  readonly secrets: readonly LedgerSecret[];
  /** Unsigned entries after which `onSignatureDue` is called (default 1000). */
  readonly signEvery?: number;
  /** The current endorsement and evidence: genesis meta and every receipt carry them. */
  readonly endorsement: () => { readonly end: Uint8Array; readonly ev: Uint8Array };
  /** Called (asynchronously, at most once until a signature lands) when a signature is due. */
  readonly onSignatureDue?: () => void;
  /** Random bytes for write-set nonces (default node:crypto). */
  readonly random?: (out: Uint8Array) => void;
  /** Entries per read range of `open` (default 4096; tests use small ones). */
  readonly readRange?: number;
}

export interface Logchain extends CommitLog {
  /** Committed entries (= the index of the last one). */
  readonly size: number;
  /** Index of the last committed signature entry (0 when none). */
  readonly lastSignature: number;
  /** Tree size the last signature covers (lastSignature - 1; 0 when none). */
  readonly lastSigned: number;
  /** Committed entries no signature covers: size - lastSignature. */
  readonly unsigned: number;
  /** Epoch written into the next checkpoints. */
  readonly epoch: number;
  /** Secret generation of new write sets (the last rotation entry's, or the newest at genesis). */
  readonly generation: number;
  /** Every generation known. */
  readonly generations: readonly number[];
  /** The epoch stored in the checkpoint `open` verified (undefined before open). */
  readonly openedEpoch: number | undefined;
  setEpoch(epoch: number): void;
  /** Adds a secret generation; it becomes current when a rotation entry commits. */
  addSecret(secret: LedgerSecret): void;
  /** Tree root of the first `size` entries (default: all committed). */
  root(size?: number): Uint8Array;
  /** The receipt of `txid` (core encodeReceipt). */
  receipt(txid: string): Uint8Array;
  /** RFC 9162 consistency proof between two tree sizes within the signed log. */
  consistency(oldSize: number, newSize: number): Uint8Array[];
  /** The decrypted write set of entry `index` (read back and verified against the tree). */
  writeSet(index: number): WriteItem[];
  /** The committed entry `index`, read back and verified against the tree. */
  entry(index: number): LogEntry;
}

interface Staged {
  readonly fromSize: number;
  /** Signature entries of the group: index and COSE_Sign1. */
  readonly signatures: [number, Uint8Array][];
}

function rawPublicKeyObject(pub: Uint8Array): KeyObject {
  if (pub.length !== 65 || pub[0] !== 0x04) {
    throw new InvalidInputError('a service public key must be 65 bytes (uncompressed P-256)');
  }
  const b64 = (b: Uint8Array) => Buffer.from(b).toString('base64url');
  return createPublicKey({
    key: { kty: 'EC', crv: 'P-256', x: b64(pub.subarray(1, 33)), y: b64(pub.subarray(33, 65)) },
    format: 'jwk',
  });
}

function es256Sign(key: KeyObject, data: Uint8Array): Uint8Array {
  return new Uint8Array(sign('sha256', data, { key, dsaEncoding: 'ieee-p1363' }));
}

function es256Verify(key: KeyObject, data: Uint8Array, signature: Uint8Array): boolean {
  if (signature.length !== 64) return false;
  try {
    return verify('sha256', data, { key, dsaEncoding: 'ieee-p1363' }, signature);
  } catch {
    return false;
  }
}

/** A COSE_Sign1 (ES256, minimal protected header) over `payload` by `key`. */
export function signCose(key: KeyObject, payload: Uint8Array): Uint8Array {
  const signature = es256Sign(key, sign1ToBeSigned(ES256_PROTECTED, payload));
  return encodeSign1({ protectedBytes: ES256_PROTECTED, payload, signature });
}

function writeSetKeyFor(secret: LedgerSecret): KeyObject {
  const raw = hkdfSha256(
    secret.secret,
    EMPTY,
    concatBytes(utf8(WRITE_SET_KEY_LABEL), Uint8Array.of(0), u32be(secret.generation)),
    32,
  );
  const key = createSecretKey(raw);
  wipe(raw);
  return key;
}

const AAD_LABEL: Uint8Array = utf8(WRITE_SET_AAD_LABEL);

function writeSetAad(term: number, index: number, generation: number): Uint8Array {
  // label ‖ 0x00 ‖ u64be(term) ‖ u64be(index) ‖ u32be(generation)
  const n = AAD_LABEL.length;
  const out = new Uint8Array(n + 21);
  out.set(AAD_LABEL);
  const v = new DataView(out.buffer);
  v.setUint32(n + 1, Math.floor(term / 2 ** 32));
  v.setUint32(n + 5, term >>> 0);
  v.setUint32(n + 9, Math.floor(index / 2 ** 32));
  v.setUint32(n + 13, index >>> 0);
  v.setUint32(n + 17, generation >>> 0);
  return out;
}

/** Random bytes from node:crypto, drawn 4 KiB at a time (one call per ~340 nonces). */
function pooledRandom(): (out: Uint8Array) => void {
  const pool = new Uint8Array(4096);
  let at = pool.length;
  return (out) => {
    if (out.length > pool.length) {
      randomFillSync(out);
      return;
    }
    if (at + out.length > pool.length) {
      randomFillSync(pool);
      at = 0;
    }
    out.set(pool.subarray(at, at + out.length));
    pool.fill(0, at, at + out.length);
    at += out.length;
  };
}

function checkGeneration(g: number): void {
  if (!Number.isInteger(g) || g < 0 || g > 0xffffffff) {
    throw new InvalidInputError('a ledger secret generation must be a whole number below 2^32');
  }
}

/** Creates an empty logchain; `open` loads a stored one, or the engine stages entries from 0. */
export function createLogchain(opts: LogchainOptions): Logchain {
  const { store, serviceKey, servicePublicKey } = opts;
  const signEvery = opts.signEvery ?? DEFAULT_SIGN_EVERY;
  const readRange = opts.readRange ?? READ_RANGE;
  if (!Number.isSafeInteger(readRange) || readRange < 1) {
    throw new InvalidInputError('readRange must be a whole number >= 1');
  }
  if (!Number.isSafeInteger(signEvery) || signEvery < 1) {
    throw new InvalidInputError('signEvery must be a whole number >= 1');
  }
  const servicePub = rawPublicKeyObject(servicePublicKey);
  const random = opts.random ?? pooledRandom();
  const keys = new Map<number, KeyObject>();
  for (const s of opts.secrets) {
    checkGeneration(s.generation);
    keys.set(s.generation, writeSetKeyFor(s));
  }
  if (keys.size === 0) throw new InvalidInputError('the logchain needs at least one ledger secret');

  // Invariant: merkle holds the committed entries' leaves, then the staged ones (while `staged`).
  let merkle = new MerkleLog({ hash: sha256 });
  // Committed state (what settle(true) made the log).
  let size = 0;
  let lastHash: Uint8Array = ZERO32;
  let lastSignature = 0;
  // Committed signature entry indexes, ascending (receipts find the first one above an index).
  let signatures: number[] = [];
  // The COSE_Sign1 of each committed signature entry, as signed or verified here: the store's
  // copy is compared with it (the signature is not in the leaf, so the tree cannot check it).
  let signatureBytes = new Map<number, Uint8Array>();
  let generation = Math.max(...keys.keys());
  let epoch = 0;
  let openedEpoch: number | undefined;
  // Staged state: leaves are in `merkle`, hash in `stagedHash`, until settle.
  let staged: Staged | undefined;
  let stagedHash: Uint8Array = ZERO32;
  let stagedLastSignature = 0;
  let stagedGeneration = generation;
  // A signature request is queued as a microtask and has not run yet.
  let dueQueued = false;

  function encryptWriteSet(
    index: number,
    writes: readonly WriteItem[],
    gen: number,
  ): { bytes: Uint8Array; size: number } {
    const key = keys.get(gen);
    if (key === undefined) throw new InvalidInputError(`no ledger secret for generation ${gen}`);
    const plaintext = encodeCbor(
      writes.map((w) => [w.ledger, w.table, w.key, w.value === undefined ? null : w.value]),
    );
    // nonce ‖ AES-256-GCM ciphertext ‖ tag, written into one array.
    const n = plaintext.length;
    const out = new Uint8Array(NONCE_BYTES + n + AEAD_TAG_BYTES);
    const nonce = out.subarray(0, NONCE_BYTES);
    random(nonce);
    const c = createCipheriv('aes-256-gcm', key, nonce, { authTagLength: AEAD_TAG_BYTES });
    c.setAAD(writeSetAad(TERM, index, gen));
    const body = c.update(plaintext);
    out.set(body, NONCE_BYTES);
    const tail = c.final();
    out.set(tail, NONCE_BYTES + body.length);
    out.set(c.getAuthTag(), NONCE_BYTES + n);
    wipe(plaintext);
    return { bytes: out, size: n };
  }

  function decryptWriteSet(e: LogEntry): WriteItem[] {
    if (e.writeSet.length === 0) return [];
    const gen = e.meta.gen;
    if (gen === undefined) throw new LogEntryAlteredError(e.index, 'write set without generation');
    const key = keys.get(gen);
    if (key === undefined) {
      throw new InvalidInputError(
        `entry ${e.index} is encrypted under secret generation ${gen}, which this service does not hold`,
      );
    }
    if (e.writeSet.length < NONCE_BYTES + AEAD_TAG_BYTES) {
      throw new LogEntryAlteredError(e.index, `the write set of entry ${e.index} is truncated`);
    }
    const plain = aesGcmOpen(
      key,
      e.writeSet.subarray(0, NONCE_BYTES),
      writeSetAad(e.term, e.index, gen),
      e.writeSet.subarray(NONCE_BYTES),
    );
    if (plain === undefined) {
      throw new LogEntryAlteredError(
        e.index,
        `the write set of entry ${e.index} does not authenticate`,
      );
    }
    const v = decodeCbor(plain);
    wipe(plain);
    if (!Array.isArray(v)) throw new LogEntryAlteredError(e.index, 'malformed write set');
    return v.map((w: unknown) => {
      if (!Array.isArray(w) || w.length !== 4) {
        throw new LogEntryAlteredError(e.index, 'malformed write set');
      }
      const [ledger, table, key, value] = w as unknown[];
      if (
        typeof ledger !== 'string' ||
        typeof table !== 'string' ||
        !(key instanceof Uint8Array) ||
        !(value === null || value instanceof Uint8Array)
      ) {
        throw new LogEntryAlteredError(e.index, 'malformed write set');
      }
      return { ledger, table, key, value: value === null ? undefined : value };
    });
  }

  function signatureFor(size: number, stateHash: Uint8Array): Uint8Array {
    const payload = signaturePayload({
      term: TERM,
      size,
      treeRoot: merkle.root(size),
      stateHash,
    });
    return signCose(serviceKey, payload);
  }

  /** Why signature entry `e` (index s) is not a valid signature of this log, or undefined. */
  function signatureProblem(
    e: LogEntry,
    stateHash: Uint8Array,
    treeRoot: (n: number) => Uint8Array,
  ): string | undefined {
    let payloadBytes: Uint8Array;
    let sig: ReturnType<typeof decodeSign1>;
    try {
      sig = decodeSign1(e.sig);
      payloadBytes = sig.payload;
    } catch {
      return 'its signature is not a COSE_Sign1';
    }
    if (!bytesEqual(sig.protectedBytes, ES256_PROTECTED))
      return 'its protected header is not ES256';
    if (
      !es256Verify(servicePub, sign1ToBeSigned(sig.protectedBytes, payloadBytes), sig.signature)
    ) {
      return 'its signature does not verify with the service key';
    }
    let p: ReturnType<typeof decodeSignaturePayload>;
    try {
      p = decodeSignaturePayload(payloadBytes);
    } catch {
      return 'its payload is malformed';
    }
    if (p.term !== e.term || p.size !== e.index - 1) {
      return `it signs term ${p.term} size ${p.size}, not term ${e.term} size ${e.index - 1}`;
    }
    if (!bytesEqual(p.treeRoot, treeRoot(p.size))) {
      return `it signs a tree root that is not the log's at size ${p.size}`;
    }
    if (!bytesEqual(p.stateHash, stateHash)) {
      return `it signs a state hash that is not the ledger's at index ${p.size}`;
    }
    return undefined;
  }

  function buildEntry(
    item: LogItem,
    index: number,
    position: number,
    base: Uint8Array,
  ): { entry: LogEntry; isSignature: boolean; rotation?: number } {
    const common = { term: TERM, index, prev: stagedHash, claims: EMPTY, sig: EMPTY };
    switch (item.kind) {
      case 'transaction': {
        const meta: EntryMeta = {};
        let writeSet = EMPTY;
        if (item.writes.length > 0) {
          const enc = encryptWriteSet(index, item.writes, stagedGeneration);
          writeSet = enc.bytes;
          meta.gen = stagedGeneration;
          meta.size = enc.size;
        }
        if (item.app !== undefined) meta.app = item.app;
        const claims = item.claims ?? EMPTY;
        if (claims.length !== 0 && claims.length !== 32) {
          throw new InvalidInputError('a claims digest must be 32 bytes');
        }
        return {
          entry: { ...common, kind: ENTRY_KIND.transaction, meta, writeSet, claims },
          isSignature: false,
        };
      }
      case 'genesis': {
        if (index !== 1) throw new InvalidInputError('the genesis entry must be entry 1');
        const { end, ev } = opts.endorsement();
        return {
          entry: {
            ...common,
            kind: ENTRY_KIND.genesis,
            meta: { svc: servicePublicKey, end, ev },
            writeSet: EMPTY,
          },
          isSignature: false,
        };
      }
      case 'rotation': {
        const next = Math.max(...keys.keys());
        if (next <= stagedGeneration) {
          throw new InvalidInputError('a rotation entry needs a new secret generation (addSecret)');
        }
        return {
          entry: { ...common, kind: ENTRY_KIND.rotation, meta: { rot: next }, writeSet: EMPTY },
          isSignature: false,
          rotation: next,
        };
      }
      case 'signature': {
        if (position !== 0) {
          throw new InvalidInputError('a signature entry must start its commit group');
        }
        if (index < 2) throw new InvalidInputError('a signature needs entries to sign');
        return {
          entry: {
            ...common,
            kind: ENTRY_KIND.signature,
            meta: {},
            writeSet: EMPTY,
            sig: signatureFor(index - 1, base),
          },
          isSignature: true,
        };
      }
      default:
        throw new InvalidInputError('unknown log item kind');
    }
  }

  /**
   * Tells the owner a signature is due. Called after every group that leaves `signEvery` or more
   * entries unsigned (the owner keeps at most one signature in flight); never from inside the
   * engine's flush: the request runs as a microtask and joins the engine's queue after it.
   */
  function requestSignatureIfDue(): void {
    const due = opts.onSignatureDue;
    if (dueQueued || size - lastSignature < signEvery || !due) return;
    dueQueued = true;
    queueMicrotask(() => {
      dueQueued = false;
      due();
    });
  }

  /** Reads entry `index` back from the store and checks it is the committed leaf. */
  function readEntry(index: number, treeSize: number): LogEntry {
    const bytes = store.get(logStoreKey(index));
    if (bytes === undefined) {
      throw new LogEntryMissingError(index, `log entry ${index} is missing from the store`);
    }
    let e: LogEntry;
    try {
      e = decodeEntry(bytes);
    } catch (cause) {
      throw new LogEntryAlteredError(index, `log entry ${index} does not decode`, { cause });
    }
    if (e.index !== index) {
      throw new LogEntryReorderedError(index, `the store holds entry ${e.index} at ${index}`);
    }
    const path = merkle.inclusionProof(index - 1, treeSize);
    if (
      !bytesEqual(
        rootFromInclusion(index - 1, treeSize, entryLeafHash(e, sha256), path),
        merkle.root(treeSize),
      )
    ) {
      throw new LogEntryAlteredError(index, `log entry ${index} is not the one the tree holds`);
    }
    return e;
  }

  function firstSignatureAbove(index: number): number | undefined {
    let lo = 0;
    let hi = signatures.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if ((signatures[mid] as number) > index) hi = mid;
      else lo = mid + 1;
    }
    return signatures[lo];
  }

  const log: Logchain = {
    get size() {
      return size;
    },
    get lastSignature() {
      return lastSignature;
    },
    get lastSigned() {
      return lastSignature === 0 ? 0 : lastSignature - 1;
    },
    get unsigned() {
      return size - lastSignature;
    },
    get epoch() {
      return epoch;
    },
    get generation() {
      return generation;
    },
    get generations() {
      return [...keys.keys()].sort((a, b) => a - b);
    },
    get openedEpoch() {
      return openedEpoch;
    },

    setEpoch(e) {
      if (!isIndex(e)) throw new InvalidInputError('an epoch must be a whole number >= 0');
      epoch = e;
    },

    addSecret(secret) {
      checkGeneration(secret.generation);
      if (keys.has(secret.generation)) {
        throw new InvalidInputError(`generation ${secret.generation} is already known`);
      }
      keys.set(secret.generation, writeSetKeyFor(secret));
    },

    checkpoint() {
      const n = merkle.size;
      return encodeCheckpoint({
        last: staged ? stagedHash : lastHash,
        size: n,
        root: merkle.root(n),
        epoch,
        lastSignature: staged ? stagedLastSignature : lastSignature,
      });
    },

    async open(checkpointBytes, index, stateHashAt) {
      const cp = decodeCheckpoint(checkpointBytes);
      if (cp.size !== index) {
        throw new InvalidInputError(
          `the root record is at index ${index} but its log checkpoint covers ${cp.size} entries`,
        );
      }
      const m = new MerkleLog({ hash: sha256 });
      const sigs: number[] = [];
      const sigBytes = new Map<number, Uint8Array>();
      let gen = Math.min(...keys.keys());
      let rotated = false;
      let prevHash: Uint8Array = ZERO32;
      let expected = 1;
      // The first broken link (prev(k) ≠ hash(k-1)) waits for the next link to say which entry
      // was altered: k itself (its next link is broken too) or k-1 (k agrees with k+1).
      let pendingBreak: number | undefined;
      const chainBreak = (bad: number): never => {
        const k = Math.max(1, bad);
        throw new LogEntryAlteredError(k, `log entry ${k} does not match the hash chain`);
      };
      const signature = (e: LogEntry, treeRoot: (n: number) => Uint8Array): void => {
        const problem = signatureProblem(e, stateHashAt(e.index - 1), treeRoot);
        if (problem !== undefined) {
          throw new LogSignatureError(e.index, `signature entry ${e.index}: ${problem}`);
        }
      };
      const treeRoot = (n: number): Uint8Array => m.root(n);
      // Signature checks wait here (index order) and run in batches: back to back, ECDSA
      // verification is several times faster than one between every thousand entries (its code
      // and tables stay in the CPU caches). Every failure is still reported in index order: the
      // batch runs before any error found at a later entry is thrown, and before the end checks.
      const deferred: LogEntry[] = [];
      const checkDeferred = (): void => {
        for (const e of deferred.splice(0)) signature(e, treeRoot);
      };
      /** Checks the stored entry (key, value) in position `expected` and appends its leaf. */
      const visit = (key: Uint8Array, value: Uint8Array): void => {
        const at = indexOfKey(key);
        let read: HashedEntry | undefined;
        let decodeFailure: unknown;
        try {
          read = decodeEntryHashes(value, sha256);
        } catch (cause) {
          decodeFailure = cause;
        }
        const e = read?.entry;
        if (pendingBreak !== undefined) {
          // Link `pendingBreak` is broken; the link into this entry says which side changed.
          const nextAgrees = e !== undefined && at === expected && bytesEqual(e.prev, prevHash);
          chainBreak(nextAgrees ? pendingBreak - 1 : pendingBreak);
        }
        if (at === undefined) {
          throw new LogEntryAlteredError(expected, `a malformed log key sits at entry ${expected}`);
        }
        if (at > cp.size) {
          if (expected <= cp.size) {
            throw new LogEntryMissingError(expected, `log entry ${expected} is missing`);
          }
          throw new RollbackDetectedError(
            `the store holds log entry ${at} beyond the sealed checkpoint (${cp.size} entries): ` +
              'the root record is older than the log (rolled back)',
          );
        }
        if (at !== expected) {
          throw new LogEntryMissingError(expected, `log entry ${expected} is missing`);
        }
        if (read === undefined || e === undefined) {
          throw new LogEntryAlteredError(at, `log entry ${at} does not decode`, {
            cause: decodeFailure,
          });
        }
        if (e.index !== at) {
          throw new LogEntryReorderedError(
            at,
            `the entry stored at position ${at} carries index ${e.index}`,
          );
        }
        if (e.term !== TERM) {
          throw new LogEntryAlteredError(at, `log entry ${at} has term ${e.term}`);
        }
        const linked = bytesEqual(e.prev, prevHash);
        if (!linked) pendingBreak = at;
        if (at === 1) {
          if (e.kind !== ENTRY_KIND.genesis) {
            throw new LogEntryAlteredError(1, 'log entry 1 is not a genesis entry');
          }
          if (!e.meta.svc || !bytesEqual(e.meta.svc, servicePublicKey)) {
            throw new LogEntryAlteredError(1, 'the genesis entry names another service key');
          }
        } else if (e.kind === ENTRY_KIND.genesis) {
          throw new LogEntryAlteredError(at, `log entry ${at} is a second genesis entry`);
        }
        if (e.kind === ENTRY_KIND.signature) {
          // Checked only when the link into it holds: otherwise the chain names the culprit.
          if (linked) {
            deferred.push(e);
            if (deferred.length >= SIGNATURE_BATCH) checkDeferred();
          }
          sigs.push(at);
          sigBytes.set(at, e.sig.slice());
        }
        if (e.kind === ENTRY_KIND.rotation && e.meta.rot !== undefined) {
          if (!keys.has(e.meta.rot)) {
            throw new RollbackDetectedError(
              `log entry ${at} rotated to secret generation ${e.meta.rot}, which the sealed service state does not hold: service.sealed is older than the log`,
            );
          }
          gen = e.meta.rot;
          rotated = true;
        }
        m.append(read.leafHash);
        prevHash = read.entryHash;
        expected = at + 1;
      };
      try {
        for await (const page of logPages(store, cp.size, readRange)) {
          for (const { key, value } of page) visit(key, value);
        }
        checkDeferred();
      } catch (err) {
        // A signature entry before the failing entry is reported first, as in index order.
        checkDeferred();
        throw err;
      }
      const n = expected - 1;
      if (pendingBreak !== undefined) {
        chainBreak(bytesEqual(prevHash, cp.last) ? pendingBreak - 1 : pendingBreak);
      }
      if (n < cp.size) {
        throw new LogTailCutError(
          n + 1,
          `the log ends at entry ${n} but the sealed checkpoint covers ${cp.size}: its tail was cut`,
        );
      }
      if (n > 0 && !bytesEqual(prevHash, cp.last)) {
        throw new LogEntryAlteredError(n, `log entry ${n} is not the one the checkpoint sealed`);
      }
      if (!bytesEqual(m.root(n), cp.root)) {
        throw new LogEntryAlteredError(n, `the tree of ${n} entries is not the one sealed`);
      }
      if ((sigs.at(-1) ?? 0) !== cp.lastSignature) {
        throw new LogSignatureError(
          cp.lastSignature,
          `the checkpoint names signature entry ${cp.lastSignature}, the log ${sigs.at(-1) ?? 0}`,
        );
      }
      merkle = m;
      size = n;
      lastHash = prevHash;
      stagedHash = lastHash;
      lastSignature = cp.lastSignature;
      signatures = sigs;
      signatureBytes = sigBytes;
      // Without a rotation entry the origin generation is current, even when the sealed state
      // holds a newer one whose rotation never committed (a crash after the host persisted it).
      generation = rotated ? gen : Math.min(...keys.keys());
      stagedGeneration = generation;
      epoch = cp.epoch;
      openedEpoch = cp.epoch;
      staged = undefined;
    },

    stage(items, firstIndex, base, _after) {
      if (staged) throw new InvalidInputError('a log group is already staged and not settled');
      if (firstIndex !== size + 1) {
        throw new InvalidInputError(`the next log entry is ${size + 1}, not ${firstIndex}`);
      }
      staged = { fromSize: size, signatures: [] };
      stagedHash = lastHash;
      stagedLastSignature = lastSignature;
      stagedGeneration = generation;
      const puts: RecordPut[] = [];
      try {
        items.forEach((item, j) => {
          const index = firstIndex + j;
          const { entry, isSignature, rotation } = buildEntry(item, index, j, base);
          const { bytes, entryHash: hash, leafHash } = encodeEntryHashes(entry, sha256);
          merkle.append(leafHash);
          stagedHash = hash;
          if (isSignature) {
            staged?.signatures.push([index, entry.sig]);
            stagedLastSignature = index;
          }
          if (rotation !== undefined) stagedGeneration = rotation;
          puts.push({ type: 'put', key: logStoreKey(index), value: bytes });
        });
      } catch (e) {
        log.settle(false);
        throw e;
      }
      return puts;
    },

    settle(ok) {
      const s = staged;
      if (!s) return;
      staged = undefined;
      if (!ok) {
        merkle.truncate(s.fromSize);
        stagedHash = lastHash;
        stagedGeneration = generation;
        stagedLastSignature = lastSignature;
        return;
      }
      size = merkle.size;
      lastHash = stagedHash;
      if (s.signatures.length > 0) {
        for (const [i, sig] of s.signatures) {
          signatures.push(i);
          signatureBytes.set(i, sig);
        }
        lastSignature = stagedLastSignature;
      }
      generation = stagedGeneration;
      requestSignatureIfDue();
    },

    root(n = size) {
      if (!isIndex(n) || n > size)
        throw new InvalidInputError(`no tree of size ${n} (log: ${size})`);
      return merkle.root(n);
    },

    receipt(txid) {
      const { term, index } = parseTxid(txid);
      if (term !== TERM || index < 1 || index > size) throw new UnknownTransactionError(txid, size);
      const s = firstSignatureAbove(index);
      if (s === undefined) throw new ReceiptNotReadyError(txid, log.lastSigned);
      const treeSize = s - 1;
      const e = readEntry(index, treeSize);
      const sigEntry = readEntry(s, s);
      const signed = signatureBytes.get(s);
      if (sigEntry.kind !== ENTRY_KIND.signature || !signed || !bytesEqual(sigEntry.sig, signed)) {
        throw new LogEntryAlteredError(s, `signature entry ${s} was altered in the store`);
      }
      const { end, ev } = opts.endorsement();
      return encodeReceipt({
        entry: leafFields(e),
        size: treeSize,
        path: merkle.inclusionProof(index - 1, treeSize),
        sig: sigEntry.sig,
        sigIndex: s,
        end,
        ev,
      });
    },

    consistency(oldSize, newSize) {
      const top = log.lastSigned;
      if (!isIndex(oldSize) || !isIndex(newSize) || oldSize > newSize || newSize > top) {
        throw new InvalidInputError(
          `a consistency proof needs 0 <= old <= new <= ${top} (the last signed size)`,
        );
      }
      return merkle.consistencyProof(oldSize, newSize);
    },

    writeSet(index) {
      if (!isIndex(index) || index < 1 || index > size) {
        throw new UnknownTransactionError(formatTxid(TERM, Math.max(1, index | 0)), size);
      }
      return decryptWriteSet(readEntry(index, size));
    },

    entry(index) {
      if (!isIndex(index) || index < 1 || index > size) {
        throw new UnknownTransactionError(formatTxid(TERM, Math.max(1, index | 0)), size);
      }
      return readEntry(index, size);
    },
  };

  return log;
}
