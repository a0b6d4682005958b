/**
 * Transaction ids of the logchain: "term.index" (docs/receipts.md), the name a client holds for
 * its transaction and asks a receipt for. Both numbers are at least 1 and safe integers.
 */
import { InvalidInputError } from '../errors.js';
import { inputFail, positive } from './format-checks.js';

/** "term.index", e.g. "1.42". */
export function formatTxid(term: number, index: number): string {
  positive(term, 'term', inputFail);
  positive(index, 'index', inputFail);
  return `${term}.${index}`;
}

/** Parses "term.index" (decimal, no leading zeros, both >= 1); InvalidInputError. */
export function parseTxid(s: string): { term: number; index: number } {
  const m = typeof s === 'string' ? /^([1-9][0-9]{0,15})\.([1-9][0-9]{0,15})$/.exec(s) : null;
  if (m === null) {
    throw new InvalidInputError(
      'a transaction id is "term.index" with decimal integers >= 1, e.g. "1.42"',
    );
  }
  const term = Number(m[1]);
  const index = Number(m[2]);
  if (!Number.isSafeInteger(term) || !Number.isSafeInteger(index)) {
    throw new InvalidInputError('a transaction id term and index must be at most 2^53 - 1');
  }
  return { term, index };
}

/** True when `v` is a transaction id as parseTxid reads one (text of the form "term.index"). */
export function isTxid(v: unknown): v is string {
  if (typeof v !== 'string') return false;
  try {
    parseTxid(v);
    return true;
  } catch {
    return false;
  }
}
