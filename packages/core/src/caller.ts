/**
 * The caller id an app sees for a client (docs/app-abi.md §5.1, DESIGN.md §11): SHA-256 of
 * `"cloister/caller/v1" ‖ 0x00 ‖ u16be(|app id|) ‖ app id ‖ identity key`. Public data in, so a
 * client can show its own id in an app; the enclave's runtime computes the same (with node:crypto,
 * for speed; a test holds the two equal).
 */
import { utf8 } from './bytes.js';
import { InvalidInputError } from './errors.js';
import { sha256 } from './hash.js';

const LABEL = utf8('cloister/caller/v1');

/** The caller id of `identityKey` (a 65-byte P-256 public key) in app `app`. */
export function callerId(app: string, identityKey: Uint8Array): Uint8Array {
  if (typeof app !== 'string') throw new InvalidInputError('an app id is text');
  if (!(identityKey instanceof Uint8Array) || identityKey.length !== 65) {
    throw new InvalidInputError('an identity key is a 65-byte uncompressed P-256 public key');
  }
  const a = utf8(app);
  if (a.length > 0xffff) throw new InvalidInputError('an app id is at most 65,535 bytes');
  return sha256(LABEL, Uint8Array.of(0, a.length >> 8, a.length & 0xff), a, identityKey);
}
