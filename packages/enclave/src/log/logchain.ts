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
 * This module owns the staging core: the logchain's state and its commit protocol (stage, settle,
 * checkpoint, open). The rest sits beside it: write-set encryption and keys (write-set.ts), the
 * checkpoint codec (checkpoint.ts), the store layout and reading entries back (log-store.ts),
 * restart verification (restart.ts), receipts and consistency proofs (receipts.ts), node:crypto
 * hashing and signing (log-crypto.ts).
 */
import type { KeyObject } from 'node:crypto';
import {
  bytesEqual,
  ENTRY_KIND,
  type EntryMeta,
  encodeEntryHashes,
  formatTxid,
  InvalidInputError,
  type LogEntry,
  LogEntryAlteredError,
  MerkleLog,
  signaturePayload,
} from '@cloister/core';
import type { LedgerSecret } from '../ledger/crypto.js';
import { LedgerIntegrityError } from '../ledger/errors.js';
import type { CommitLog, LogItem, WriteItem } from '../ledger/ledger/index.js';
import type { RecordPut } from '../ledger/node-store.js';
import { pooledRandom } from '../random.js';
import { isUint32, SecurityVersionRollbackError } from '../seal.js';
import { decodeCheckpoint, encodeCheckpoint, isIndex } from './checkpoint.js';
import { UnknownTransactionError } from './errors.js';
import { rawPublicKeyObject, sha256, signCose } from './log-crypto.js';
import { type LogStore, logStoreKey, READ_RANGE, readStoredEntry, TERM } from './log-store.js';
import { consistencyProof, LeafCache, logReceipt } from './receipts.js';
import { verifyStoredLog } from './restart.js';
import { checkGeneration, decryptWriteSet, encryptWriteSet, writeSetKeyFor } from './write-set.js';

/** Default number of unsigned entries after which a signature is queued. */
export const DEFAULT_SIGN_EVERY = 1000;

const ZERO32: Uint8Array = new Uint8Array(32);
const EMPTY: Uint8Array = new Uint8Array(0);

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
  /**
   * This enclave's security version (default 0): recorded in every checkpoint as the store's
   * highest, and `open` refuses a store whose checkpoint records a higher one.
   */
  readonly svn?: number;
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
  /**
   * The committed entry `index`, read back and verified against the tree, and for a signature
   * entry its `sig` against the signature this log made (LogEntryAlteredError otherwise). `prev`
   * is as stored: the leaf does not cover it and this read does not walk the chain (restart does).
   */
  entry(index: number): LogEntry;
}

interface Staged {
  readonly fromSize: number;
  /** Signature entries of the group: index and COSE_Sign1. */
  readonly signatures: [number, Uint8Array][];
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
  const svn = opts.svn ?? 0;
  if (!isUint32(svn)) {
    throw new InvalidInputError('svn must be a whole number of 32 bits');
  }
  // Invariant: maxSvn >= svn; the highest version that ran on the store, this one included.
  let maxSvn = svn;
  const servicePub = rawPublicKeyObject(servicePublicKey);
  const random = opts.random ?? pooledRandom();
  // Checked leaves of committed entries, for receipts (receipts.ts LeafCache).
  const leaves = new LeafCache();
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

  function signatureFor(size: number, stateHash: Uint8Array): Uint8Array {
    const payload = signaturePayload({
      term: TERM,
      size,
      treeRoot: merkle.root(size),
      stateHash,
    });
    return signCose(serviceKey, payload);
  }

  function buildEntry(
    item: LogItem,
    index: number,
    position: number,
    base: Uint8Array,
  ): { entry: LogEntry; isSignature: boolean; rotation?: number } {
    // Every entry written out whole, in one field order: a spread of shared fields followed by
    // new ones (`{ ...common, kind }`) gives each entry a hidden class of its own on Node 20
    // (docs/performance.md, "Hidden classes").
    const entryOf = (
      kind: LogEntry['kind'],
      meta: EntryMeta,
      writeSet: Uint8Array,
      claims: Uint8Array = EMPTY,
      sig: Uint8Array = EMPTY,
    ): LogEntry => ({ term: TERM, index, prev: stagedHash, claims, sig, kind, meta, writeSet });
    switch (item.kind) {
      case 'transaction': {
        const meta: EntryMeta = {};
        let writeSet = EMPTY;
        if (item.writes.length > 0) {
          const enc = encryptWriteSet(keys, random, index, item.writes, stagedGeneration);
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
          entry: entryOf(ENTRY_KIND.transaction, meta, writeSet, claims),
          isSignature: false,
        };
      }
      case 'genesis': {
        if (index !== 1) throw new InvalidInputError('the genesis entry must be entry 1');
        const { end, ev } = opts.endorsement();
        return {
          entry: entryOf(ENTRY_KIND.genesis, { svc: servicePublicKey, end, ev }, EMPTY),
          isSignature: false,
        };
      }
      case 'rotation': {
        const next = Math.max(...keys.keys());
        if (next <= stagedGeneration) {
          throw new InvalidInputError('a rotation entry needs a new secret generation (addSecret)');
        }
        return {
          entry: entryOf(ENTRY_KIND.rotation, { rot: next }, EMPTY),
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
          entry: entryOf(ENTRY_KIND.signature, {}, EMPTY, EMPTY, signatureFor(index - 1, base)),
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
        maxSvn,
      });
    },

    async open(checkpointBytes, index, stateHashAt) {
      const cp = decodeCheckpoint(checkpointBytes);
      // Before anything of the store is read further: the sealed files a host gives may be from
      // before an upgrade (they open at their own, older version), the sealed root record not.
      if (cp.maxSvn > svn) {
        throw new SecurityVersionRollbackError(
          cp.maxSvn,
          svn,
          'the store was last run by (its sealed checkpoint records)',
        );
      }
      if (cp.size !== index) {
        throw new LedgerIntegrityError({
          failure: 'structure',
          detail: `the root record is at index ${index} but its log checkpoint covers ${cp.size} entries`,
        });
      }
      const v = await verifyStoredLog({
        store,
        checkpoint: cp,
        readRange,
        servicePublicKey,
        servicePub,
        keys,
        stateHashAt,
      });
      merkle = v.merkle;
      size = v.size;
      lastHash = v.last;
      stagedHash = lastHash;
      lastSignature = cp.lastSignature;
      signatures = v.signatures;
      signatureBytes = v.signatureBytes;
      // Without a rotation entry the origin generation is current, even when the sealed state
      // holds a newer one whose rotation never committed (a crash after the host persisted it).
      generation = v.rotation ?? Math.min(...keys.keys());
      stagedGeneration = generation;
      epoch = cp.epoch;
      openedEpoch = cp.epoch;
      maxSvn = Math.max(svn, cp.maxSvn);
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
      return logReceipt(
        {
          store,
          merkle,
          size,
          lastSigned: log.lastSigned,
          signatures,
          signatureBytes,
          endorsement: opts.endorsement,
          leaves,
        },
        txid,
      );
    },

    consistency(oldSize, newSize) {
      return consistencyProof(merkle, log.lastSigned, oldSize, newSize);
    },

    writeSet(index) {
      if (!isIndex(index) || index < 1 || index > size) {
        throw new UnknownTransactionError(formatTxid(TERM, Math.max(1, index | 0)), size);
      }
      return decryptWriteSet(keys, readStoredEntry(store, merkle, index, size));
    },

    entry(index) {
      if (!isIndex(index) || index < 1 || index > size) {
        throw new UnknownTransactionError(formatTxid(TERM, Math.max(1, index | 0)), size);
      }
      const e = readStoredEntry(store, merkle, index, size);
      if (e.kind === ENTRY_KIND.signature) {
        const signed = signatureBytes.get(index);
        if (signed === undefined || !bytesEqual(e.sig, signed)) {
          throw new LogEntryAlteredError(
            index,
            `signature entry ${index} was altered in the store`,
          );
        }
      }
      return e;
    },
  };

  return log;
}
