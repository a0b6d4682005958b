/**
 * The log checkpoint (docs/logchain.md, "Checkpoint"): what the ledger engine keeps inside its
 * sealed root record so that `open` can verify the stored log on restart: the last entry's hash,
 * the size and tree root, the epoch, the last signature entry and the highest security version
 * that ran on the store. Deterministic CBOR, label first.
 */
import { decodeCbor, encodeCbor } from '@cloister/core';
import { LedgerIntegrityError } from '../ledger/errors.js';
import { isUint32 } from '../seal.js';

/** First element of the checkpoint array. */
export const CHECKPOINT_LABEL = 'cloister/log/v1/checkpoint';

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
  /**
   * The highest enclave security version that has run on this store (0 in checkpoints written
   * before the field existed). An enclave below it refuses the store: sealed files restored from
   * before an upgrade would otherwise let a retired version read what its successor wrote.
   */
  readonly maxSvn: number;
}

/** Deterministic CBOR ["cloister/log/v1/checkpoint", last, size, root, epoch, lastSignature, maxSvn]. */
export function encodeCheckpoint(c: LogCheckpoint): Uint8Array {
  return encodeCbor([CHECKPOINT_LABEL, c.last, c.size, c.root, c.epoch, c.lastSignature, c.maxSvn]);
}

/** A whole number >= 0 that is a safe integer (a size, index or epoch). */
export function isIndex(n: unknown): n is number {
  return typeof n === 'number' && Number.isSafeInteger(n) && n >= 0;
}

export function decodeCheckpoint(b: Uint8Array): LogCheckpoint {
  let v: unknown;
  try {
    v = decodeCbor(b);
  } catch {
    v = undefined;
  }
  // Six elements: written before maxSvn was recorded (read as 0); every write now has seven.
  if (!Array.isArray(v) || (v.length !== 6 && v.length !== 7) || v[0] !== CHECKPOINT_LABEL) {
    // The root record is sealed under the ledger's root key: only tampering with it gets here.
    throw new LedgerIntegrityError({
      failure: 'malformed',
      detail: 'the root record holds no log checkpoint of format v1',
    });
  }
  const [, last, size, root, epoch, lastSignature, maxSvn = 0] = v as unknown[];
  if (
    !(last instanceof Uint8Array) ||
    last.length !== 32 ||
    !(root instanceof Uint8Array) ||
    root.length !== 32 ||
    !isIndex(size) ||
    !isIndex(epoch) ||
    !isIndex(lastSignature) ||
    lastSignature > size ||
    !isUint32(maxSvn)
  ) {
    throw new LedgerIntegrityError({
      failure: 'malformed',
      detail: 'the log checkpoint in the root record is malformed',
    });
  }
  return { last, size, root, epoch, lastSignature, maxSvn };
}
