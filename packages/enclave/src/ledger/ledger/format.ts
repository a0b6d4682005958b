/**
 * Byte formats of the ledger engine (docs/ledger-format.md §11): version records (the values of
 * table leaves), catalogue and admin values, version-index values, the root record, list cursors
 * and state proofs. All integers big endian; commit indexes are u64 (safe integers here).
 */
import { concatBytes, InvalidInputError, utf8 } from '@cloister/core';
import { integrity } from './errors.js';

export const FORMAT = 0x01;
export const VERSION_SET = 0x01;
export const VERSION_REMOVED = 0x02;
/** Version record header: format, kind, u64 index, u64 previous index. */
export const VERSION_HEADER = 18;
/** Root record plaintext format byte (2: with the log checkpoint; issue 4). */
export const ROOT_FORMAT = 0x02;
/**
 * Fixed part of the root record plaintext: format ‖ u64 index ‖ state hash ‖ version-index root ‖
 * u32 checkpoint length; the log checkpoint follows.
 */
export const ROOT_FIXED_BYTES = 77;
/** Longest log checkpoint the root record carries (bytes). */
export const MAX_CHECKPOINT_BYTES = 65_536;
/** Store key of the root record (namespace 0x00: engine records). */
export const ROOT_STORE_KEY: Uint8Array = concatBytes(
  Uint8Array.of(0x00),
  utf8('cloister/ledger/v1/root'),
);
/** Internal trie names (keyring table names; user names may not contain 0x00). */
export const ADMIN_TRIE = '\u0000admin';
export const VERSIONS_TRIE = '\u0000versions';
export const CATALOGUE_TRIE = '\u0000catalogue';

export function writeU64(b: Uint8Array, o: number, n: number): void {
  const hi = Math.floor(n / 2 ** 32);
  const lo = n >>> 0;
  b[o] = hi >>> 24;
  b[o + 1] = (hi >>> 16) & 255;
  b[o + 2] = (hi >>> 8) & 255;
  b[o + 3] = hi & 255;
  b[o + 4] = lo >>> 24;
  b[o + 5] = (lo >>> 16) & 255;
  b[o + 6] = (lo >>> 8) & 255;
  b[o + 7] = lo & 255;
}

export function readU64(b: Uint8Array, o: number): number {
  let n = 0;
  for (let i = 0; i < 8; i++) n = n * 256 + (b[o + i] ?? 0);
  return n;
}

export function u64(n: number): Uint8Array {
  const out = new Uint8Array(8);
  writeU64(out, 0, n);
  return out;
}

/** One version of a key: the value of its table leaf. */
export interface VersionRecord {
  /** The commit index that wrote this version (>= 1). */
  readonly index: number;
  /** The commit index of the version before it, 0 when there is none. Invariant: prev < index. */
  readonly prev: number;
  /** The value, or undefined when this version removed the key (a tombstone). */
  readonly value: Uint8Array | undefined;
}

/** version = 0x01 ‖ kind ‖ u64be(index) ‖ u64be(prev) ‖ value (kind 0x01 only). */
export function encodeVersion(v: VersionRecord): Uint8Array {
  const out = new Uint8Array(VERSION_HEADER + (v.value?.length ?? 0));
  out[0] = FORMAT;
  out[1] = v.value === undefined ? VERSION_REMOVED : VERSION_SET;
  writeU64(out, 2, v.index);
  writeU64(out, 10, v.prev);
  if (v.value !== undefined) out.set(v.value, VERSION_HEADER);
  return out;
}

/**
 * The version record `b`, or why it is not one. With `copy`, the value is a copy (else a view of
 * `b`): a reader of a cached leaf copies only the value, not the whole record. No closure and no
 * string is made unless it fails (the get path calls it once per get).
 */
export function readVersion(b: Uint8Array, copy: boolean): VersionRecord | string {
  const kind = b[1];
  if (
    b.length < VERSION_HEADER ||
    b[0] !== FORMAT ||
    (kind !== VERSION_SET && kind !== VERSION_REMOVED)
  ) {
    return 'the leaf does not hold a version record';
  }
  const index = readU64(b, 2);
  const prev = readU64(b, 10);
  if (index < 1 || prev >= index || (kind === VERSION_REMOVED && b.length !== VERSION_HEADER)) {
    return 'the version record is not canonical';
  }
  if (kind !== VERSION_SET) return { index, prev, value: undefined };
  const value = b.subarray(VERSION_HEADER);
  return { index, prev, value: copy ? new Uint8Array(value) : value };
}

/** Catalogue, admin and version-index leaf values: 0x01 ‖ hash(32). */
export function encodeRootValue(hash: Uint8Array): Uint8Array {
  const out = new Uint8Array(33);
  out[0] = FORMAT;
  out.set(hash, 1);
  return out;
}

export function decodeRootValue(b: Uint8Array, what: string): Uint8Array {
  if (b.length !== 33 || b[0] !== FORMAT)
    integrity('malformed', what, 'the leaf does not hold a root');
  return b.subarray(1);
}

/** What the root record holds (sealed by the platform, docs §11.5). */
export interface RootState {
  /** Latest committed index; 0 before the first commit. */
  readonly index: number;
  /** State hash at `index` (the admin trie root). */
  readonly stateHash: Uint8Array;
  /** Root of the version index (commit index → state hash). */
  readonly versionsRoot: Uint8Array;
}

/** The root record's plaintext: the state and the log checkpoint (empty without a log). */
export interface RootRecord extends RootState {
  readonly checkpoint: Uint8Array;
}

/** 0x02 ‖ u64be(index) ‖ stateHash(32) ‖ versionsRoot(32) ‖ u32be(len) ‖ checkpoint(len). */
export function encodeRoot(s: RootState, checkpoint: Uint8Array = new Uint8Array(0)): Uint8Array {
  if (checkpoint.length > MAX_CHECKPOINT_BYTES) {
    throw new InvalidInputError(`a log checkpoint is at most ${MAX_CHECKPOINT_BYTES} bytes`);
  }
  const out = new Uint8Array(ROOT_FIXED_BYTES + checkpoint.length);
  out[0] = ROOT_FORMAT;
  writeU64(out, 1, s.index);
  out.set(s.stateHash, 9);
  out.set(s.versionsRoot, 41);
  new DataView(out.buffer).setUint32(73, checkpoint.length);
  out.set(checkpoint, ROOT_FIXED_BYTES);
  return out;
}

export function decodeRoot(b: Uint8Array): RootRecord {
  if (!(b instanceof Uint8Array) || b.length < ROOT_FIXED_BYTES || b[0] !== ROOT_FORMAT) {
    integrity('malformed', 'root record', 'the unsealed root record is not of format 2');
  }
  const index = readU64(b, 1);
  if (!Number.isSafeInteger(index)) integrity('malformed', 'root record', 'index out of range');
  const len = new DataView(b.buffer, b.byteOffset, b.byteLength).getUint32(73);
  if (len > MAX_CHECKPOINT_BYTES || b.length !== ROOT_FIXED_BYTES + len) {
    integrity('malformed', 'root record', 'the log checkpoint length does not match');
  }
  return {
    index,
    stateHash: Uint8Array.from(b.subarray(9, 41)),
    versionsRoot: Uint8Array.from(b.subarray(41, 73)),
    checkpoint: Uint8Array.from(b.subarray(ROOT_FIXED_BYTES)),
  };
}

/**
 * State proof: 0x01 ‖ n:u8 (1..3) ‖ (u32be(len) ‖ trie proof) × n ‖ [u32be(len) ‖ version record]
 * Levels: admin trie, catalogue, table; the record follows iff the table proof is an inclusion.
 */
export function encodeStateProof(levels: readonly Uint8Array[], record?: Uint8Array): Uint8Array {
  const parts: Uint8Array[] = [Uint8Array.of(FORMAT, levels.length)];
  for (const p of [...levels, ...(record ? [record] : [])]) {
    const len = new Uint8Array(4);
    new DataView(len.buffer).setUint32(0, p.length);
    parts.push(len, p);
  }
  return concatBytes(...parts);
}
