/**
 * The ledger's integrity error. Whatever the host does to the stored records — flip a bit, swap,
 * drop or duplicate a record, roll one back — a read either returns exactly what the enclave
 * wrote under the root it holds, or throws this error naming what failed. Never wrong data, never
 * an unnamed crash (docs/ledger-format.md, "Integrity").
 */
import { CloisterError } from '@cloister/core';

/**
 * What failed:
 * - `missing`: the store has no record for a node its parent names;
 * - `authentication`: a record exists but does not decrypt under this ledger's keys for this node
 *   (tampered, swapped or duplicated from another node, or written by another ledger);
 * - `malformed`: the record decrypts but is not a valid stored node of the documented format;
 * - `hash-mismatch`: the node decodes but its SHA-256 is not the hash its parent holds;
 * - `structure`: the node is valid alone but does not fit where its parent puts it
 *   (depth, prefix, or a leaf whose commitments do not match its key and value).
 */
export type IntegrityFailure =
  | 'missing'
  | 'authentication'
  | 'malformed'
  | 'hash-mismatch'
  | 'structure';

export interface IntegrityContext {
  /** What failed. */
  readonly failure: IntegrityFailure;
  /** The node's hash as its parent holds it (the first 8 bytes, hex), if known. */
  readonly node?: string;
  /** The node's position: the radix digits (hex) from the root, or "root". */
  readonly position?: string;
  /** One sentence on what was found. */
  readonly detail: string;
}

export class LedgerIntegrityError extends CloisterError {
  readonly failure: IntegrityFailure;
  readonly node: string | undefined;
  readonly position: string | undefined;
  /** The sentence on what was found, without the node and position. */
  readonly detail: string;

  constructor(context: IntegrityContext, options?: { cause?: unknown }) {
    const where = [
      context.node === undefined ? undefined : `node ${context.node}`,
      context.position === undefined ? undefined : `at ${context.position}`,
    ]
      .filter((x) => x !== undefined)
      .join(' ');
    super(
      'LEDGER_INTEGRITY',
      `ledger integrity check failed (${context.failure})${where ? `: ${where}` : ''}: ${context.detail}`,
      options,
    );
    this.failure = context.failure;
    this.node = context.node;
    this.position = context.position;
    this.detail = context.detail;
  }
}
