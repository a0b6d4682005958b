/**
 * The confidential node layer: the trie's NodeSource over the host's record store. It finds a
 * node's record by its keyed store key, decrypts it, and hands the plaintext to the trie, which
 * verifies it against the hash its parent holds (trie.ts). For writes it seals the records of a
 * trie update into puts for the caller's one atomic batch.
 *
 * The host sees only store keys (HMACs of node hashes under a key it does not have), record sizes
 * and which records are read and written (docs/ledger-format.md, "What the host learns").
 */
import { type LedgerKeyring, RecordPurpose } from './crypto.js';
import type { NodeRecord, NodeSource } from './trie/trie.js';

/** The host's record store as the enclave reads it: synchronous, untrusted. */
export interface RecordReader {
  /** The value under `key`, or undefined. May throw the host's own errors (not integrity). */
  get(key: Uint8Array): Uint8Array | undefined;
}

/** A put of the host store's batch (structurally the host Store's BatchOp). */
export interface RecordPut {
  readonly type: 'put';
  readonly key: Uint8Array;
  readonly value: Uint8Array;
}

/**
 * A sealed put: a class instance, not an object literal, which V8 would pretenure after a bulk
 * commit and then keep each later commit's sealed records alive through young collections (see
 * Record in trie.ts).
 */
class SealedPut implements RecordPut {
  readonly type = 'put';
  readonly key: Uint8Array;
  readonly value: Uint8Array;
  constructor(key: Uint8Array, value: Uint8Array) {
    this.key = key;
    this.value = value;
  }
}

export interface ConfidentialNodeStore extends NodeSource {
  /**
   * The decrypted record of node `hash`, or undefined when the store has no record under its
   * store key. A record that does not authenticate for this node and ledger is a
   * LedgerIntegrityError (authentication, or malformed when it is not even a record).
   */
  get(hash: Uint8Array): Uint8Array | undefined;
  /** Freshly encrypted puts for `records` (each call draws new nonces). */
  seal(records: readonly NodeRecord[]): RecordPut[];
}

export interface ConfidentialNodeStoreOptions {
  readonly records: RecordReader;
  readonly keyring: LedgerKeyring;
}

export function createConfidentialNodeStore(
  options: ConfidentialNodeStoreOptions,
): ConfidentialNodeStore {
  const { records, keyring } = options;
  return {
    get(hash: Uint8Array): Uint8Array | undefined {
      const record = records.get(keyring.storeKey(hash));
      return record === undefined ? undefined : keyring.open(RecordPurpose.node, hash, record);
    },
    seal(list: readonly NodeRecord[]): RecordPut[] {
      return list.map(
        (r) =>
          new SealedPut(
            keyring.storeKey(r.hash),
            keyring.seal(RecordPurpose.node, r.hash, r.plaintext),
          ),
      );
    },
  };
}
