/**
 * The log checkpoint (docs/logchain.md, "Checkpoint"): what the ledger engine keeps inside its
 * sealed root record so that `open` can verify the stored log on restart: the last entry's hash,
 * the size and tree root, the epoch, and the last signature entry. Deterministic CBOR, label first.
 */
import { decodeCbor, encodeCbor, InvalidInputError } from '@cloister/core';

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
}

/** Deterministic CBOR ["cloister/log/v1/checkpoint", last, size, root, epoch, lastSignature]. */
export function encodeCheckpoint(c: LogCheckpoint): Uint8Array {
  return encodeCbor([CHECKPOINT_LABEL, c.last, c.size, c.root, c.epoch, c.lastSignature]);
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
