/**
 * Ledger confidentiality (docs/ledger-format.md, "Keys" and "Records"): every key the ledger uses
 * is derived with HKDF-SHA256 (RFC 5869) from a ledger secret, one label per purpose.
 *
 * - Fixed for the ledger's whole life, from its origin secret: per table, the path key
 *   (path = HMAC-SHA256(pathKey, user key), RFC 2104) and the salt key (the salt a leaf commits
 *   its key and value under); and the store key (store key of a node = 0x01 ‖ HMAC-SHA256(storeKey,
 *   node hash)), so nothing the host sees can be matched to a published proof.
 * - Rotating, one per generation: the record key, AES-256-GCM (NIST SP 800-38D) with a random
 *   96-bit nonce per record (§8.2.2), so equal plaintexts never give equal records, and additional
 *   data binding the record to its purpose, its generation and its node hash.
 *
 * Record = 0x01 ‖ u32be(generation) ‖ nonce(12) ‖ ciphertext ‖ tag(16)
 * AAD    = "cloister/ledger/v1/record" ‖ 0x00 ‖ purpose(1) ‖ u32be(generation) ‖ binding
 */
import {
  createCipheriv,
  createHmac,
  createSecretKey,
  hkdfSync,
  type KeyObject,
  randomFillSync,
} from 'node:crypto';
import {
  concatBytes,
  InvalidInputError,
  type KeyedHmacSha256,
  keyedHmacSha256,
  utf8,
  wipe,
} from '@cloister/core';
import { LedgerIntegrityError } from './errors.js';

export const SECRET_BYTES = 32;
export const RECORD_FORMAT = 0x01;
export const NONCE_BYTES = 12;
export const TAG_BYTES = 16;
/** Bytes a record adds to its plaintext: format, generation, nonce, tag. */
export const RECORD_OVERHEAD = 1 + 4 + NONCE_BYTES + TAG_BYTES;
/** Namespace byte of node records in the store. */
export const STORE_NAMESPACE_NODE = 0x01;
/** Longest table name (UTF-8 bytes). */
export const MAX_TABLE_NAME_BYTES = 255;

/** What a record holds; part of its additional data. */
export const RecordPurpose = { node: 0x01 } as const;
export type RecordPurpose = (typeof RecordPurpose)[keyof typeof RecordPurpose];

/** HKDF info labels (docs/ledger-format.md, "Keys"). */
export const LABELS = {
  recordKey: 'cloister/ledger/v1/record-key',
  storeKey: 'cloister/ledger/v1/store-key',
  tablePath: 'cloister/ledger/v1/table-path',
  tableSalt: 'cloister/ledger/v1/table-salt',
  recordAad: 'cloister/ledger/v1/record',
} as const;

/** HKDF-SHA256 (RFC 5869): `size` bytes of output keying material. */
export function hkdfSha256(
  ikm: Uint8Array,
  salt: Uint8Array,
  info: Uint8Array,
  size: number,
): Uint8Array {
  return new Uint8Array(hkdfSync('sha256', ikm, salt, info, size));
}

/** HMAC-SHA256 (RFC 2104). */
export function hmacSha256(key: KeyObject | Uint8Array, message: Uint8Array): Uint8Array {
  return createHmac('sha256', key).update(message).digest();
}

// The keyed functions the ledger calls per key and per record (paths, salts, store keys) are
// HMAC-SHA256 under a few fixed keys: core's keyedHmacSha256 (@noble/hashes, the key's padded
// blocks hashed once), about 1 µs per short message against 1.7–2.2 µs for a node:crypto Hmac
// object per call, which was a third of a verified get (docs/performance.md).

import { aesGcmOpen } from '@cloister/node-crypto';

/** A ledger secret and its generation number. */
export interface LedgerSecret {
  /** A whole number 0 .. 2^32 - 1. */
  readonly generation: number;
  /** SECRET_BYTES bytes. The keyring copies what it needs; the caller keeps ownership. */
  readonly secret: Uint8Array;
}

export interface LedgerKeyringOptions {
  /** The secret the ledger was created under: fixes path, salt and store keys for its life. */
  readonly origin: LedgerSecret;
  /** Later secrets whose records must stay readable (rotation); the origin is always included. */
  readonly secrets?: readonly LedgerSecret[];
  /** Generation of new records (default: the highest known). */
  readonly current?: number;
  /** Fills a buffer with random bytes (default node:crypto randomFillSync). Tests inject it. */
  readonly random?: (out: Uint8Array) => void;
}

/** The keyed functions of one table. */
export interface TableKeys {
  /** HMAC-SHA256(pathKey, key): the key's 32-byte trie path. */
  path(key: Uint8Array): Uint8Array;
  /** HMAC-SHA256(saltKey, key): the 32-byte salt of the key's leaf commitments. */
  salt(key: Uint8Array): Uint8Array;
}

export interface LedgerKeyring {
  /** Generation new records are sealed under. */
  readonly generation: number;
  /** Records sealed by this keyring (AES-GCM random nonces: rotate well before 2^32). */
  readonly sealed: number;
  /** The keyed functions of table `name` (1..255 UTF-8 bytes). */
  table(name: string): TableKeys;
  /** The store key of the record of the node `nodeHash`: 0x01 ‖ HMAC-SHA256(storeKey, hash). */
  storeKey(nodeHash: Uint8Array): Uint8Array;
  /** A new record: randomized, bound to `purpose`, the current generation and `binding`. */
  seal(purpose: RecordPurpose, binding: Uint8Array, plaintext: Uint8Array): Uint8Array;
  /** The plaintext of `record`, or LedgerIntegrityError (authentication / malformed). */
  open(purpose: RecordPurpose, binding: Uint8Array, record: Uint8Array): Uint8Array;
  /** Drops every key and wipes the secret copies it held; the keyring is unusable after. */
  destroy(): void;
}

function u32be(n: number): Uint8Array {
  return Uint8Array.of(n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255);
}

function label(name: string, parameter?: Uint8Array): Uint8Array {
  return parameter === undefined
    ? utf8(name)
    : concatBytes(utf8(name), Uint8Array.of(0), parameter);
}

const NO_SALT = new Uint8Array(0);
const AAD_PREFIX = concatBytes(utf8(LABELS.recordAad), Uint8Array.of(0));

/** HKDF-SHA256 with an empty salt (RFC 5869 §2.2: HashLen zero bytes) into a KeyObject. */
function deriveKey(ikm: Uint8Array, info: Uint8Array): KeyObject {
  const raw = hkdfSha256(ikm, NO_SALT, info, 32);
  const key = createSecretKey(raw);
  wipe(raw);
  return key;
}

/** HKDF-SHA256 with an empty salt into a keyed HMAC; the raw key bytes are wiped. */
function deriveHmac(ikm: Uint8Array, info: Uint8Array): KeyedHmacSha256 {
  const raw = hkdfSha256(ikm, NO_SALT, info, 32);
  const h = keyedHmacSha256(raw);
  wipe(raw);
  return h;
}

function checkSecret(s: LedgerSecret): void {
  if (!Number.isInteger(s.generation) || s.generation < 0 || s.generation > 0xffffffff) {
    throw new InvalidInputError('a ledger secret generation must be a whole number below 2^32');
  }
  if (!(s.secret instanceof Uint8Array) || s.secret.length !== SECRET_BYTES) {
    throw new InvalidInputError(`a ledger secret must be ${SECRET_BYTES} bytes`);
  }
}

function fail(failure: 'authentication' | 'malformed', detail: string): never {
  throw new LedgerIntegrityError({ failure, detail });
}

export function createLedgerKeyring(options: LedgerKeyringOptions): LedgerKeyring {
  const all = [options.origin, ...(options.secrets ?? [])];
  all.forEach(checkSecret);
  // Invariant: one record key per known generation; `origin` holds the only secret copy kept.
  const recordKeys = new Map<number, KeyObject>();
  for (const s of all) {
    if (recordKeys.has(s.generation)) {
      if (s === options.origin || s.secret === options.origin.secret) continue;
      throw new InvalidInputError(`two ledger secrets for generation ${s.generation}`);
    }
    recordKeys.set(s.generation, deriveKey(s.secret, label(LABELS.recordKey, u32be(s.generation))));
  }
  const generation = options.current ?? Math.max(...recordKeys.keys());
  const current = recordKeys.get(generation);
  if (current === undefined)
    throw new InvalidInputError(`no ledger secret for generation ${generation}`);
  let origin: Uint8Array | undefined = Uint8Array.from(options.origin.secret);
  let storeKey: KeyedHmacSha256 | undefined = deriveHmac(origin, label(LABELS.storeKey));
  const tables = new Map<string, TableKeys>();
  const tableMacs: KeyedHmacSha256[] = [];
  const random = options.random ?? ((out: Uint8Array) => randomFillSync(out));
  const pool = new Uint8Array(NONCE_BYTES * 1024);
  let poolAt = pool.length;
  let sealed = 0;
  const currentGen = u32be(generation);

  function live(): Uint8Array {
    if (origin === undefined) throw new InvalidInputError('the ledger keyring was destroyed');
    return origin;
  }

  function nonce(): Uint8Array {
    if (poolAt === pool.length) {
      random(pool);
      poolAt = 0;
    }
    poolAt += NONCE_BYTES;
    // A view: used at once (copied into the record and by the cipher), never after a refill.
    return pool.subarray(poolAt - NONCE_BYTES, poolAt);
  }

  // Reused for the usual 32-byte binding: setAAD consumes it before returning.
  const aadScratch = new Uint8Array(AAD_PREFIX.length + 5 + 32);
  aadScratch.set(AAD_PREFIX, 0);

  /** "cloister/ledger/v1/record" ‖ 0x00 ‖ purpose ‖ generation(4) ‖ binding, in one buffer. */
  function aad(purpose: number, gen: Uint8Array, binding: Uint8Array): Uint8Array {
    const size = AAD_PREFIX.length + 5 + binding.length;
    const out = size === aadScratch.length ? aadScratch : new Uint8Array(size);
    out.set(AAD_PREFIX, 0);
    out[AAD_PREFIX.length] = purpose;
    out.set(gen, AAD_PREFIX.length + 1);
    out.set(binding, AAD_PREFIX.length + 5);
    return out;
  }

  return {
    generation,
    get sealed() {
      return sealed;
    },
    table(name: string): TableKeys {
      const cached = tables.get(name);
      if (cached) return cached;
      const nameBytes = typeof name === 'string' ? utf8(name) : new Uint8Array(0);
      if (nameBytes.length === 0 || nameBytes.length > MAX_TABLE_NAME_BYTES) {
        throw new InvalidInputError(
          `a table name must be 1 to ${MAX_TABLE_NAME_BYTES} UTF-8 bytes`,
        );
      }
      const pathKey = deriveHmac(live(), label(LABELS.tablePath, nameBytes));
      const saltKey = deriveHmac(live(), label(LABELS.tableSalt, nameBytes));
      tableMacs.push(pathKey, saltKey);
      const keys: TableKeys = {
        path: (key) => pathKey.mac(key),
        salt: (key) => saltKey.mac(key),
      };
      tables.set(name, keys);
      return keys;
    },
    storeKey(nodeHash: Uint8Array): Uint8Array {
      if (storeKey === undefined) throw new InvalidInputError('the ledger keyring was destroyed');
      const out = new Uint8Array(33);
      out[0] = STORE_NAMESPACE_NODE;
      storeKey.mac(nodeHash, out, 1);
      return out;
    },
    seal(purpose: RecordPurpose, binding: Uint8Array, plaintext: Uint8Array): Uint8Array {
      live();
      const gen = currentGen;
      const iv = nonce();
      // One allocation: header, then ciphertext and tag written in place.
      const out = new Uint8Array(RECORD_OVERHEAD + plaintext.length);
      out[0] = RECORD_FORMAT;
      out.set(gen, 1);
      out.set(iv, 5);
      const c = createCipheriv('aes-256-gcm', current, iv, { authTagLength: TAG_BYTES });
      c.setAAD(aad(purpose, gen, binding));
      out.set(c.update(plaintext), 5 + NONCE_BYTES);
      c.final();
      out.set(c.getAuthTag(), 5 + NONCE_BYTES + plaintext.length);
      sealed++;
      return out;
    },
    open(purpose: RecordPurpose, binding: Uint8Array, record: Uint8Array): Uint8Array {
      live();
      if (record.length < RECORD_OVERHEAD)
        fail('malformed', 'the record is shorter than its header and tag');
      if (record[0] !== RECORD_FORMAT) fail('malformed', `unknown record format ${record[0]}`);
      const gen = record.subarray(1, 5);
      const g =
        (gen[0] ?? 0) * 2 ** 24 + (((gen[1] ?? 0) << 16) | ((gen[2] ?? 0) << 8) | (gen[3] ?? 0));
      const key = recordKeys.get(g);
      if (key === undefined) {
        const newest = Math.max(...recordKeys.keys());
        fail(
          'authentication',
          g > newest
            ? `the record names key generation ${g}, newer than this ledger's secrets (up to ${newest}): the sealed service state is older than the ledger (service.sealed restored from before a secret rotation: a rollback), or the record was altered`
            : `the record names key generation ${g}, unknown to this ledger`,
        );
      }
      const plain = aesGcmOpen(
        key,
        record.subarray(5, 5 + NONCE_BYTES),
        aad(purpose, gen, binding),
        record.subarray(5 + NONCE_BYTES),
      );
      if (plain === undefined) {
        fail(
          'authentication',
          'the record does not authenticate for this node (tampered, swapped, or from another ledger)',
        );
      }
      return plain;
    },
    destroy(): void {
      if (origin) wipe(origin);
      origin = undefined;
      storeKey?.wipe();
      storeKey = undefined;
      for (const m of tableMacs) m.wipe();
      tableMacs.length = 0;
      recordKeys.clear();
      tables.clear();
      pool.fill(0);
    },
  };
}
