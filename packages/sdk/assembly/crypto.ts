/**
 * Hashing, randomness and named keys (docs/app-abi.md §9). Private and secret key bytes never
 * enter the module: a named key is created, used and kept inside the enclave, in a reserved
 * table.
 */
import {
  AUTH_FAILED,
  ecdsa_verify,
  EXISTS,
  key_create,
  key_decrypt,
  key_encrypt,
  key_public,
  key_sign,
  NOT_FOUND,
  random_bytes,
  sha256,
  WRONG_KIND,
} from './abi';
import { readHostBuffer, utf8 } from './bytes';
import { fail } from './result';

/** Kinds of named keys (§9.1). */
export const enum KeyKind {
  /** ECDSA P-256 with SHA-256; signatures are raw r ‖ s (64 bytes). */
  EcdsaP256 = 1,
  /** AES-256-GCM; ciphertexts are nonce(12) ‖ ciphertext ‖ tag(16). */
  AesGcm = 2,
}

function keyStatus(n: i32, name: string): i32 {
  if (n == NOT_FOUND) fail('key_not_found', 'no key named ' + name);
  if (n == WRONG_KIND) fail('key_wrong_kind', 'key ' + name + ' is of the other kind');
  return n;
}

export class Crypto {
  static sha256(data: Uint8Array): Uint8Array {
    const out = new Uint8Array(32);
    sha256(data.dataStart, data.length, out.dataStart);
    return out;
  }

  /** SHA-256 of the UTF-8 bytes of `text`. */
  static sha256Text(text: string): Uint8Array {
    return Crypto.sha256(utf8(text));
  }

  /** `n` bytes (at most 65,536) from the enclave's generator. */
  static randomBytes(n: i32): Uint8Array {
    const out = new Uint8Array(n);
    random_bytes(out.dataStart, n);
    return out;
  }

  /** Creates a named key in a transaction; false when one of that name exists. */
  static createKey(kind: KeyKind, name: string): bool {
    const b = utf8(name);
    return key_create(<i32>kind, b.dataStart, b.length) != EXISTS;
  }

  /** The 65-byte public key (0x04 ‖ x ‖ y) of an ECDSA key; an app error when absent. */
  static publicKey(name: string): Uint8Array {
    const b = utf8(name);
    return readHostBuffer(keyStatus(key_public(b.dataStart, b.length), name));
  }

  /** Signs SHA-256(`message`) with a named ECDSA key: 64 bytes r ‖ s. */
  static sign(name: string, message: Uint8Array): Uint8Array {
    const b = utf8(name);
    const n = key_sign(b.dataStart, b.length, message.dataStart, message.length);
    return readHostBuffer(keyStatus(n, name));
  }

  /** Verifies a raw 64-byte signature over SHA-256(`message`) with any P-256 public key. */
  static verify(publicKey: Uint8Array, message: Uint8Array, signature: Uint8Array): bool {
    return (
      ecdsa_verify(
        publicKey.dataStart,
        publicKey.length,
        message.dataStart,
        message.length,
        signature.dataStart,
        signature.length,
      ) == 1
    );
  }

  /** Encrypts with a named AES-GCM key: nonce(12) ‖ ciphertext ‖ tag(16). */
  static encrypt(
    name: string,
    plaintext: Uint8Array,
    aad: Uint8Array = new Uint8Array(0),
  ): Uint8Array {
    const b = utf8(name);
    const p = plaintext;
    const n = key_encrypt(b.dataStart, b.length, p.dataStart, p.length, aad.dataStart, aad.length);
    return readHostBuffer(keyStatus(n, name));
  }

  /** Decrypts what `encrypt` made; null when authentication fails (wrong key, data or aad). */
  static decrypt(
    name: string,
    sealed: Uint8Array,
    aad: Uint8Array = new Uint8Array(0),
  ): Uint8Array | null {
    const b = utf8(name);
    const s = sealed;
    const n = key_decrypt(b.dataStart, b.length, s.dataStart, s.length, aad.dataStart, aad.length);
    if (n == AUTH_FAILED) return null;
    return readHostBuffer(keyStatus(n, name));
  }
}
