/**
 * Write-set encryption of the logchain (enclave-only format, docs/logchain.md): plaintext =
 * deterministic CBOR array of [ledger, table, key, value | null]; stored = nonce(12) ‖ AES-256-GCM
 * ciphertext ‖ tag(16) under the generation's write-set key HKDF-SHA256(secret_g, "",
 * "cloister/log/v1/write-set-key" ‖ 0x00 ‖ u32be(g)), additional data "cloister/log/v1/write-set"
 * ‖ 0x00 ‖ u64be(term) ‖ u64be(index) ‖ u32be(g). The entry's meta names g ("gen") and the
 * plaintext size ("size"). Keys are derived once per generation and held as KeyObjects; plaintext
 * buffers are wiped after use.
 */
import { createCipheriv, createSecretKey, type KeyObject } from 'node:crypto';
import {
  concatBytes,
  decodeCbor,
  encodeCbor,
  InvalidInputError,
  type LogEntry,
  LogEntryAlteredError,
  utf8,
  wipe,
} from '@cloister/core';
import { AEAD_TAG_BYTES, aesGcmOpen } from '@cloister/node-crypto';
import { hkdfSha256, type LedgerSecret } from '../ledger/crypto.js';
import type { WriteItem } from '../ledger/ledger/index.js';
import { TERM } from './log-store.js';

/** HKDF info label of the write-set keys (followed by 0x00 ‖ u32be(generation)). */
export const WRITE_SET_KEY_LABEL = 'cloister/log/v1/write-set-key';
/** Additional-data label of write sets. */
export const WRITE_SET_AAD_LABEL = 'cloister/log/v1/write-set';

const NONCE_BYTES = 12;
const EMPTY: Uint8Array = new Uint8Array(0);

function u32be(n: number): Uint8Array {
  return Uint8Array.of(n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255);
}

/** The write-set key of a secret generation (HKDF, see above); the raw key bytes are wiped. */
export function writeSetKeyFor(secret: LedgerSecret): KeyObject {
  const raw = hkdfSha256(
    secret.secret,
    EMPTY,
    concatBytes(utf8(WRITE_SET_KEY_LABEL), Uint8Array.of(0), u32be(secret.generation)),
    32,
  );
  const key = createSecretKey(raw);
  wipe(raw);
  return key;
}

const AAD_LABEL: Uint8Array = utf8(WRITE_SET_AAD_LABEL);

function writeSetAad(term: number, index: number, generation: number): Uint8Array {
  // label ‖ 0x00 ‖ u64be(term) ‖ u64be(index) ‖ u32be(generation)
  const n = AAD_LABEL.length;
  const out = new Uint8Array(n + 21);
  out.set(AAD_LABEL);
  const v = new DataView(out.buffer);
  v.setUint32(n + 1, Math.floor(term / 2 ** 32));
  v.setUint32(n + 5, term >>> 0);
  v.setUint32(n + 9, Math.floor(index / 2 ** 32));
  v.setUint32(n + 13, index >>> 0);
  v.setUint32(n + 17, generation >>> 0);
  return out;
}

/** Checks a secret generation fits the u32 of the key label and the additional data. */
export function checkGeneration(g: number): void {
  if (!Number.isInteger(g) || g < 0 || g > 0xffffffff) {
    throw new InvalidInputError('a ledger secret generation must be a whole number below 2^32');
  }
}

/**
 * Encrypts `writes` as the write set of entry `index` under generation `gen`'s key in `keys`;
 * the stored bytes and the plaintext size. `random` fills the nonce.
 */
export function encryptWriteSet(
  keys: ReadonlyMap<number, KeyObject>,
  random: (out: Uint8Array) => void,
  index: number,
  writes: readonly WriteItem[],
  gen: number,
): { bytes: Uint8Array; size: number } {
  const key = keys.get(gen);
  if (key === undefined) throw new InvalidInputError(`no ledger secret for generation ${gen}`);
  const plaintext = encodeCbor(
    writes.map((w) => [w.ledger, w.table, w.key, w.value === undefined ? null : w.value]),
  );
  // nonce ‖ AES-256-GCM ciphertext ‖ tag, written into one array.
  const n = plaintext.length;
  const out = new Uint8Array(NONCE_BYTES + n + AEAD_TAG_BYTES);
  const nonce = out.subarray(0, NONCE_BYTES);
  random(nonce);
  const c = createCipheriv('aes-256-gcm', key, nonce, { authTagLength: AEAD_TAG_BYTES });
  c.setAAD(writeSetAad(TERM, index, gen));
  const body = c.update(plaintext);
  out.set(body, NONCE_BYTES);
  const tail = c.final();
  out.set(tail, NONCE_BYTES + body.length);
  out.set(c.getAuthTag(), NONCE_BYTES + n);
  wipe(plaintext);
  return { bytes: out, size: n };
}

/** The write items of entry `e`, decrypted with the key of its generation (LogEntryAlteredError). */
export function decryptWriteSet(keys: ReadonlyMap<number, KeyObject>, e: LogEntry): WriteItem[] {
  if (e.writeSet.length === 0) return [];
  const gen = e.meta.gen;
  if (gen === undefined) throw new LogEntryAlteredError(e.index, 'write set without generation');
  const key = keys.get(gen);
  if (key === undefined) {
    throw new InvalidInputError(
      `entry ${e.index} is encrypted under secret generation ${gen}, which this service does not hold`,
    );
  }
  if (e.writeSet.length < NONCE_BYTES + AEAD_TAG_BYTES) {
    throw new LogEntryAlteredError(e.index, `the write set of entry ${e.index} is truncated`);
  }
  const plain = aesGcmOpen(
    key,
    e.writeSet.subarray(0, NONCE_BYTES),
    writeSetAad(e.term, e.index, gen),
    e.writeSet.subarray(NONCE_BYTES),
  );
  if (plain === undefined) {
    throw new LogEntryAlteredError(
      e.index,
      `the write set of entry ${e.index} does not authenticate`,
    );
  }
  const v = decodeCbor(plain);
  wipe(plain);
  if (!Array.isArray(v)) throw new LogEntryAlteredError(e.index, 'malformed write set');
  return v.map((w: unknown) => {
    if (!Array.isArray(w) || w.length !== 4) {
      throw new LogEntryAlteredError(e.index, 'malformed write set');
    }
    const [ledger, table, key, value] = w as unknown[];
    if (
      typeof ledger !== 'string' ||
      typeof table !== 'string' ||
      !(key instanceof Uint8Array) ||
      !(value === null || value instanceof Uint8Array)
    ) {
      throw new LogEntryAlteredError(e.index, 'malformed write set');
    }
    return { ledger, table, key, value: value === null ? undefined : value };
  });
}
