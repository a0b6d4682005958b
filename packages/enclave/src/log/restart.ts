/**
 * Restart verification of the logchain (docs/logchain.md, "Restart"): before the engine serves
 * anything, every stored entry is read (in ranges, logPages) and checked against the checkpoint
 * sealed in the root record: keys in order with none missing or extra, each entry decodes and
 * carries its own index, the hash chain links, the genesis entry names this service key, every
 * signature entry verifies against the tree and the ledger's state hash, every rotation names a
 * generation the sealed service state holds, and the size, last hash, tree root and last
 * signature are the sealed ones. Each failure is a named log error for the first entry at fault.
 */
import type { KeyObject } from 'node:crypto';
import {
  bytesEqual,
  decodeEntryHashes,
  ENTRY_KIND,
  type HashedEntry,
  type LogEntry,
  LogEntryAlteredError,
  LogEntryMissingError,
  LogEntryReorderedError,
  LogSignatureError,
  LogTailCutError,
  MerkleLog,
  RollbackDetectedError,
} from '@cloister/core';
import type { LogCheckpoint } from './checkpoint.js';
import { sha256, signatureProblem } from './log-crypto.js';
import { indexOfKey, type LogStore, logPages, TERM } from './log-store.js';

/** Signature entries whose check `open` defers, at most (see there). */
const SIGNATURE_BATCH = 64;

const ZERO32: Uint8Array = new Uint8Array(32);

export interface VerifyStoredLogOptions {
  readonly store: LogStore;
  /** The checkpoint of the sealed root record (its size is the root record's index). */
  readonly checkpoint: LogCheckpoint;
  /** Entries per read range (logPages). */
  readonly readRange: number;
  /** The service public key (65-byte SEC1) the genesis entry must name. */
  readonly servicePublicKey: Uint8Array;
  /** The same key as a node:crypto KeyObject: signature entries verify under it. */
  readonly servicePub: KeyObject;
  /** Write-set keys by secret generation: the generations the sealed service state holds. */
  readonly keys: ReadonlyMap<number, KeyObject>;
  /** The ledger's state hash at index i (0 <= i <= checkpoint.size), as CommitLog.open gets it. */
  readonly stateHashAt: (i: number) => Uint8Array;
}

/** The stored log, verified: what `open` makes the committed state. */
export interface VerifiedLog {
  /** The tree of the `size` stored entries. */
  readonly merkle: MerkleLog;
  readonly size: number;
  /** entryHash of the last entry (32 zero bytes for an empty log). */
  readonly last: Uint8Array;
  /** Signature entry indexes, ascending. */
  readonly signatures: number[];
  /** The COSE_Sign1 of each signature entry (copies). */
  readonly signatureBytes: Map<number, Uint8Array>;
  /** The generation the last rotation entry named; undefined when there is none. */
  readonly rotation: number | undefined;
}

/** Reads and checks the whole stored log against `checkpoint` (see above); throws the log errors. */
export async function verifyStoredLog(o: VerifyStoredLogOptions): Promise<VerifiedLog> {
  const { store, checkpoint: cp, readRange, servicePublicKey, servicePub, keys, stateHashAt } = o;
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
    const problem = signatureProblem(servicePub, e, stateHashAt(e.index - 1), treeRoot);
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
    if (at === undefined || at === 0) {
      // No entry has index 0: its key, sorted before entry 1, is a stray, named as core's
      // offline audit names it (not "entry 1 is missing", which it is not).
      throw new LogEntryAlteredError(
        expected,
        at === 0
          ? `a log key for index 0 sits at entry ${expected} (entries start at 1)`
          : `a malformed log key sits at entry ${expected}`,
      );
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
  return {
    merkle: m,
    size: n,
    last: prevHash,
    signatures: sigs,
    signatureBytes: sigBytes,
    rotation: rotated ? gen : undefined,
  };
}
