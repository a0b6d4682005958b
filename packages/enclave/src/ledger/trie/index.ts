/** The table trie: nodes, stored forms, proofs and the trie itself (docs/ledger-format.md). */
export {
  type Branch,
  EMPTY_ROOT,
  keyCommitment,
  type Leaf,
  PATH_BYTES,
  RADIX_16,
  type Radix,
  radix,
  SALT_BYTES,
  type TrieNode,
  valueCommitment,
} from './node.js';
export { encodeProof, PROOF_INCLUSION, PROOF_NON_INCLUSION, PROOF_VERSION } from './proof.js';
export { decodeStored, storedForm } from './stored.js';
export {
  createTrie,
  DEFAULT_BRANCH_INLINE_LIMIT,
  DEFAULT_INLINE_LIMIT,
  DEFAULT_PACKED_DEPTH,
  type NodeRecord,
  type NodeSource,
  type Trie,
  type TrieOp,
  type TrieOptions,
  type TrieUpdate,
} from './trie.js';
