/**
 * Proof encoding, enclave side (docs/ledger-format.md, "Proofs"). The verifier is the isomorphic
 * one in @cloister/core (packages/core/src/ledger/proof.ts), written separately from this encoder
 * and checked against it and against the document's vectors.
 *
 *   proof = version 0x01 ‖ kind ‖ path(32) ‖ n:u8 ‖ node_1 … node_n ‖ [salt(32) iff kind = 0x01]
 *
 * node_1 … node_n are the canonical encodings of the nodes on the lookup path of `path`, root
 * first. kind 0x01 (inclusion): node_n is the leaf whose path is `path`, and the salt lets the
 * verifier check the leaf's key and value commitments. kind 0x02 (non-inclusion): the walk ends
 * without such a leaf (n = 0 for the empty trie).
 */
import { PATH_BYTES, SALT_BYTES, type TrieNode } from './node.js';

export const PROOF_VERSION = 0x01;
export const PROOF_INCLUSION = 0x01;
export const PROOF_NON_INCLUSION = 0x02;

function samePath(a: Uint8Array, b: Uint8Array): boolean {
  for (let i = 0; i < PATH_BYTES; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** Encodes the proof for `path` from the nodes on its lookup path (root first). */
export function encodeProof(path: Uint8Array, nodes: readonly TrieNode[]): Uint8Array {
  if (nodes.length > 255) throw new Error('encodeProof: a lookup path longer than 255 nodes');
  const last = nodes[nodes.length - 1];
  const found = last?.kind === 'leaf' && samePath(last.path, path) ? last : undefined;
  let size = 2 + PATH_BYTES + 1 + (found ? SALT_BYTES : 0);
  for (const n of nodes) size += n.encoding.length;
  const out = new Uint8Array(size);
  out[0] = PROOF_VERSION;
  out[1] = found ? PROOF_INCLUSION : PROOF_NON_INCLUSION;
  out.set(path, 2);
  out[2 + PATH_BYTES] = nodes.length;
  let o = 3 + PATH_BYTES;
  for (const n of nodes) {
    out.set(n.encoding, o);
    o += n.encoding.length;
  }
  if (found) out.set(found.salt, o);
  return out;
}
