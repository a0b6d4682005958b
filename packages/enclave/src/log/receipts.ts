/**
 * Receipts and consistency proofs of the logchain (docs/receipts.md): a transaction's receipt is
 * its leaf, the inclusion path in the tree the first later signature entry signs, that signature
 * and the current endorsement and evidence; both entries are read back from the store and checked
 * against the tree, and the signature against the one signed or verified here. Consistency
 * proofs are only given within the signed log.
 */
import {
  bytesEqual,
  ENTRY_KIND,
  encodeReceipt,
  InvalidInputError,
  type LeafFields,
  LogEntryAlteredError,
  leafFields,
  type MerkleLog,
  parseTxid,
} from '@cloister/core';
import { isIndex } from './checkpoint.js';
import { ReceiptNotReadyError, UnknownTransactionError } from './errors.js';
import { type LogStore, readStoredEntry, TERM } from './log-store.js';

/** The committed log as a receipt reads it (a snapshot of the logchain's state at the call). */
export interface ReceiptSource {
  readonly store: LogStore;
  /** The tree of the committed entries (then any staged ones). */
  readonly merkle: MerkleLog;
  /** Committed entries. */
  readonly size: number;
  /** Tree size the last signature covers (0 when none). */
  readonly lastSigned: number;
  /** Committed signature entry indexes, ascending. */
  readonly signatures: readonly number[];
  /** The COSE_Sign1 of each committed signature entry, as signed or verified by the logchain. */
  readonly signatureBytes: ReadonlyMap<number, Uint8Array>;
  /** The current endorsement and evidence. */
  readonly endorsement: () => { readonly end: Uint8Array; readonly ev: Uint8Array };
  /**
   * Leaf fields of committed entries already read back and checked against the tree, by index
   * (LeafCache): a receipt of an entry of megabytes read and hashed it whole every time, and
   * repeated fetches of one held the enclave (16 at once of a 15 MiB entry: 2 s for everyone).
   */
  readonly leaves?: LeafCache;
}

/** Most leaves a LeafCache keeps (about 200 bytes each). */
export const LEAF_CACHE_ENTRIES = 4096;

/** Checked leaf fields of committed entries by index; the oldest-used go first. */
export class LeafCache {
  // Invariant: at most LEAF_CACHE_ENTRIES entries, each the leaf of a committed entry that was
  // read back and checked against the tree (a committed entry never changes).
  readonly #map = new Map<number, LeafFields>();
  get(index: number): LeafFields | undefined {
    const v = this.#map.get(index);
    if (v !== undefined) {
      this.#map.delete(index); // most recently used last
      this.#map.set(index, v);
    }
    return v;
  }
  set(index: number, leaf: LeafFields): void {
    this.#map.set(index, leaf);
    if (this.#map.size > LEAF_CACHE_ENTRIES) {
      this.#map.delete(this.#map.keys().next().value as number);
    }
  }
  get size(): number {
    return this.#map.size;
  }
}

/** The first signature entry index above `index` in ascending `signatures`, or undefined. */
export function firstSignatureAbove(
  signatures: readonly number[],
  index: number,
): number | undefined {
  let lo = 0;
  let hi = signatures.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if ((signatures[mid] as number) > index) hi = mid;
    else lo = mid + 1;
  }
  return signatures[lo];
}

/** The receipt of `txid` (core encodeReceipt); UnknownTransactionError, ReceiptNotReadyError. */
export function logReceipt(src: ReceiptSource, txid: string): Uint8Array {
  const { store, merkle, size, signatureBytes } = src;
  const { term, index } = parseTxid(txid);
  if (term !== TERM || index < 1 || index > size) throw new UnknownTransactionError(txid, size);
  const s = firstSignatureAbove(src.signatures, index);
  if (s === undefined) throw new ReceiptNotReadyError(txid, src.lastSigned);
  const treeSize = s - 1;
  let leaf = src.leaves?.get(index);
  if (leaf === undefined) {
    leaf = leafFields(readStoredEntry(store, merkle, index, treeSize));
    src.leaves?.set(index, leaf);
  }
  const sigEntry = readStoredEntry(store, merkle, s, s);
  const signed = signatureBytes.get(s);
  if (sigEntry.kind !== ENTRY_KIND.signature || !signed || !bytesEqual(sigEntry.sig, signed)) {
    throw new LogEntryAlteredError(s, `signature entry ${s} was altered in the store`);
  }
  const { end, ev } = src.endorsement();
  return encodeReceipt({
    entry: leaf,
    size: treeSize,
    path: merkle.inclusionProof(index - 1, treeSize),
    sig: sigEntry.sig,
    sigIndex: s,
    end,
    ev,
  });
}

/** RFC 9162 consistency proof between two tree sizes of `merkle` within the signed log. */
export function consistencyProof(
  merkle: MerkleLog,
  lastSigned: number,
  oldSize: number,
  newSize: number,
): Uint8Array[] {
  const top = lastSigned;
  if (!isIndex(oldSize) || !isIndex(newSize) || oldSize > newSize || newSize > top) {
    throw new InvalidInputError(
      `a consistency proof needs 0 <= old <= new <= ${top} (the last signed size)`,
    );
  }
  return merkle.consistencyProof(oldSize, newSize);
}
