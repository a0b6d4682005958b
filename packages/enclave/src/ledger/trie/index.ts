/** The table trie: nodes, stored forms, proofs and the trie itself (docs/ledger-format.md). */
export {
  type Branch,
  EMPTY_ROOT,
  type Leaf,
  PATH_BYTES,
  RADIX_16,
  type Radix,
  SALT_BYTES,
  type TrieNode,
  keyCommitment,
  radix,
  valueCommitment,
} from './node.js';
export { PROOF_INCLUSION, PROOF_NON_INCLUSION, PROOF_VERSION, encodeProof } from './proof.js';
export { decodeStored, storedForm } from './stored.js';
export {
  DEFAULT_INLINE_LIMIT,
  type NodeRecord,
  type NodeSource,
  type Trie,
  type TrieOp,
  type TrieOptions,
  type TrieUpdate,
  createTrie,
} from './trie.js';
