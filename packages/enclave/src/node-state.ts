/**
 * The node's sealed state: its identity key and the highest security version that has run on this
 * data directory (DESIGN.md §7). Sealed under the signer policy, so an upgrade (same signer and
 * product, higher svn) keeps the identity, and a rebuild does not brick the data.
 *
 * Plaintext layout: deterministic CBOR ["cloister-node-state", 1, maxSvn, identityPkcs8].
 */

import type { KeyObject } from 'node:crypto';
import { generateKeyPairSync } from 'node:crypto';
import { decodeCbor, encodeCbor, wipe } from '@cloister/core';
import { privateKeyFromPkcs8, rawPublicKey } from '@cloister/node-crypto';
import {
  SealedDataCorruptError,
  type SealKeySource,
  SecurityVersionRollbackError,
  seal,
  unseal,
} from './seal.js';

export { rawPublicKey };

const PURPOSE = 'node-state';
const MAGIC = 'cloister-node-state';
const FORMAT = 1;

export interface NodeIdentity {
  readonly privateKey: KeyObject;
  /** 65-byte uncompressed P-256 public key. */
  readonly publicKey: Uint8Array;
}

export interface OpenedNodeState {
  readonly identity: NodeIdentity;
  /** Invariant: maxSvn >= the svn of every enclave that has opened this state. */
  readonly maxSvn: number;
  /** A newly sealed blob the host must persist, or undefined when the stored one is current. */
  readonly resealed: Uint8Array | undefined;
}

function identityFromPkcs8(pkcs8: Uint8Array): NodeIdentity {
  let privateKey: KeyObject;
  try {
    privateKey = privateKeyFromPkcs8(pkcs8);
  } catch {
    throw new SealedDataCorruptError('sealed node state holds an unreadable identity key');
  }
  if (
    privateKey.asymmetricKeyType !== 'ec' ||
    privateKey.asymmetricKeyDetails?.namedCurve !== 'prime256v1'
  ) {
    throw new SealedDataCorruptError('sealed node state holds a key that is not P-256');
  }
  return { privateKey, publicKey: rawPublicKey(privateKey) };
}

async function sealState(
  keys: SealKeySource,
  nodeId: string,
  svn: number,
  pkcs8: Uint8Array,
): Promise<Uint8Array> {
  const plaintext = encodeCbor([MAGIC, FORMAT, svn, pkcs8]);
  try {
    return await seal(keys, { policy: 'signer', svn, purpose: PURPOSE, owner: nodeId }, plaintext);
  } finally {
    wipe(plaintext);
  }
}

/** Creates a fresh identity for a new node and seals it at `svn`. */
export async function createNodeState(
  keys: SealKeySource,
  nodeId: string,
  svn: number,
): Promise<OpenedNodeState> {
  const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const pkcs8 = new Uint8Array(privateKey.export({ type: 'pkcs8', format: 'der' }));
  const sealed = await sealState(keys, nodeId, svn, pkcs8);
  wipe(pkcs8);
  return {
    identity: { privateKey, publicKey: rawPublicKey(privateKey) },
    maxSvn: svn,
    resealed: sealed,
  };
}

/**
 * Opens the node's sealed state. Refuses to run below the highest security version recorded
 * (SecurityVersionRollbackError); re-seals at `ownSvn` after an upgrade, so that older versions can
 * no longer open it.
 */
export async function openNodeState(
  keys: SealKeySource,
  nodeId: string,
  ownSvn: number,
  blob: Uint8Array,
): Promise<OpenedNodeState> {
  const { plaintext } = await unseal(
    keys,
    { purpose: PURPOSE, owner: nodeId, ownSvn, policy: 'signer' },
    blob,
  );
  let fields: unknown;
  try {
    fields = decodeCbor(plaintext);
  } catch {
    throw new SealedDataCorruptError('sealed node state is not in the node-state format');
  } finally {
    wipe(plaintext);
  }
  if (
    !Array.isArray(fields) ||
    fields.length !== 4 ||
    fields[0] !== MAGIC ||
    fields[1] !== FORMAT
  ) {
    throw new SealedDataCorruptError('sealed node state is not in the node-state format');
  }
  const [, , maxSvn, pkcs8] = fields as [unknown, unknown, unknown, unknown];
  if (typeof maxSvn !== 'number' || !Number.isInteger(maxSvn) || !(pkcs8 instanceof Uint8Array)) {
    throw new SealedDataCorruptError('sealed node state fields are malformed');
  }
  try {
    const identity = identityFromPkcs8(pkcs8);
    // The header check in unseal already refused blobs sealed above ownSvn; maxSvn is checked too
    // because it is what the state asserts about history.
    if (maxSvn > ownSvn) {
      throw new SecurityVersionRollbackError(maxSvn, ownSvn);
    }
    const resealed = ownSvn > maxSvn ? await sealState(keys, nodeId, ownSvn, pkcs8) : undefined;
    return { identity, maxSvn: Math.max(maxSvn, ownSvn), resealed };
  } finally {
    wipe(pkcs8); // on every path, refusals included
  }
}
