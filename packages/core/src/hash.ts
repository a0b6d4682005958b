/** SHA-256 (FIPS 180-4), synchronous, from the audited @noble/hashes. */
import { sha256 as nobleSha256 } from '@noble/hashes/sha2.js';
import { InvalidInputError } from './errors.js';

/** SHA-256 of the concatenation of `parts` (no separators, no length prefixes: callers that need
 * unambiguous framing must put fixed-length or length-prefixed parts in). */
export function sha256(...parts: Uint8Array[]): Uint8Array {
  const h = nobleSha256.create();
  for (const p of parts) {
    if (!(p instanceof Uint8Array)) throw new InvalidInputError('sha256 takes Uint8Array parts');
    h.update(p);
  }
  return h.digest();
}
