/** SHA-256 (FIPS 180-4) and HMAC-SHA256 (RFC 2104), synchronous, from the audited @noble/hashes. */
import { hmac } from '@noble/hashes/hmac.js';
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

/** HMAC-SHA256 under one fixed key (keyedHmacSha256). */
export interface KeyedHmacSha256 {
  /** HMAC-SHA256(key, message) into `out` at `at` (default: a new 32-byte array). */
  mac(message: Uint8Array, out?: Uint8Array, at?: number): Uint8Array;
  /** Zeroes the key's hash states; the object is unusable after (InvalidInputError). */
  wipe(): void;
}

/**
 * HMAC-SHA256 (RFC 2104) under one fixed key, from the audited @noble/hashes. The key's two
 * padded blocks are hashed once, here; each `mac` copies those states into one reused instance,
 * so a MAC of a short message costs two SHA-256 compressions and allocates only its output (the
 * ledger computes one per key read and per record written: about 1 µs here against 1.7–2.2 µs
 * for a node:crypto Hmac object per call, docs/performance.md). The reused instance is zeroed by
 * noble after every digest, so no message state outlives its call.
 */
export function keyedHmacSha256(key: Uint8Array): KeyedHmacSha256 {
  if (!(key instanceof Uint8Array)) throw new InvalidInputError('an HMAC key is bytes');
  let keyed: ReturnType<typeof hmac.create> | undefined = hmac.create(nobleSha256, key);
  // Invariant: `scratch` is destroyed (zeroed) between calls; each call overwrites all its state.
  const scratch = keyed.clone();
  scratch.destroy();
  return {
    mac(message, out, at = 0) {
      if (keyed === undefined)
        throw new InvalidInputError(
          'this HMAC key was wiped (the keyring that held it was destroyed)',
        );
      if (!(message instanceof Uint8Array)) throw new InvalidInputError('an HMAC message is bytes');
      keyed._cloneInto(scratch);
      scratch.update(message);
      if (out === undefined) {
        const d = new Uint8Array(32);
        scratch.digestInto(d);
        return d;
      }
      if (!(at >= 0 && at + 32 <= out.length)) {
        throw new InvalidInputError('an HMAC output needs 32 bytes from its offset');
      }
      scratch.digestInto(out.subarray(at, at + 32));
      return out;
    },
    wipe() {
      keyed?.destroy();
      keyed = undefined;
    },
  };
}
