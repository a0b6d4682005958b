/**
 * The service's sealed state (docs/logchain.md, "Service state"; DESIGN.md §7): the service
 * identity key (P-256), every ledger secret generation, the key of the sealed root record and the
 * name of the platform counter of its epochs (its identity, sealed so the host cannot swap it).
 * Sealed under the signer policy with purpose 'service-state', like the node state: an upgrade
 * keeps it, an older security version cannot open what a newer one sealed.
 *
 * Plaintext: deterministic CBOR
 *   ["cloister-service-state", 1, maxSvn, servicePkcs8, rootKey(32), counterName,
 *    [[generation, secret(32)], …]]   (generations ascending, distinct)
 */
import { generateKeyPairSync, type KeyObject, randomBytes } from 'node:crypto';
import { decodeCbor, encodeCbor, sha256, toHex, wipe } from '@cloister/core';
import { privateKeyFromPkcs8, rawPublicKey } from '@cloister/node-crypto';
import { type LedgerSecret, SECRET_BYTES } from '../ledger/crypto.js';
import {
  SealedDataCorruptError,
  type SealKeySource,
  SecurityVersionRollbackError,
  seal,
  unseal,
} from '../seal.js';

export const SERVICE_STATE_PURPOSE = 'service-state';
const MAGIC = 'cloister-service-state';
const FORMAT = 1;
/** Prefix of the epoch counter's name; the rest is random, chosen at genesis and sealed. */
export const EPOCH_COUNTER_PREFIX = 'cloister-ledger-epoch.';

export interface ServiceState {
  readonly serviceKey: KeyObject;
  /** 65-byte SEC1 public key of the service. */
  readonly servicePublicKey: Uint8Array;
  /** Every generation, ascending; the first is the origin (fixes path and store keys). */
  readonly secrets: readonly LedgerSecret[];
  /** AES-256-GCM key of the sealed root record (32 bytes). */
  readonly rootKey: Uint8Array;
  /** The platform counter this service's epochs use. */
  readonly counter: string;
}

/** The owner string of a node's sealed service state: bound to the node identity key. */
export function serviceStateOwner(nodePublicKey: Uint8Array): string {
  return `node-key:${toHex(sha256(nodePublicKey))}`;
}

/** A new service: fresh service key, ledger secret generation 0, root key and counter name. */
export function newServiceState(): ServiceState {
  const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  return {
    serviceKey: privateKey,
    servicePublicKey: rawPublicKey(privateKey),
    secrets: [{ generation: 0, secret: new Uint8Array(randomBytes(SECRET_BYTES)) }],
    rootKey: new Uint8Array(randomBytes(32)),
    counter: `${EPOCH_COUNTER_PREFIX}${toHex(new Uint8Array(randomBytes(8)))}`,
  };
}

/** The state with one more ledger secret generation (max + 1, random). */
export function withNewSecret(state: ServiceState): {
  state: ServiceState;
  secret: LedgerSecret;
} {
  const generation = Math.max(...state.secrets.map((s) => s.generation)) + 1;
  const secret = { generation, secret: new Uint8Array(randomBytes(SECRET_BYTES)) };
  return { state: { ...state, secrets: [...state.secrets, secret] }, secret };
}

/** Seals `state` at `svn` for `owner`. */
export async function sealServiceState(
  keys: SealKeySource,
  owner: string,
  svn: number,
  state: ServiceState,
): Promise<Uint8Array> {
  const pkcs8 = new Uint8Array(state.serviceKey.export({ type: 'pkcs8', format: 'der' }));
  const plaintext = encodeCbor([
    MAGIC,
    FORMAT,
    svn,
    pkcs8,
    state.rootKey,
    state.counter,
    state.secrets.map((s) => [s.generation, s.secret]),
  ]);
  try {
    return await seal(
      keys,
      { policy: 'signer', svn, purpose: SERVICE_STATE_PURPOSE, owner },
      plaintext,
    );
  } finally {
    wipe(plaintext);
    wipe(pkcs8);
  }
}

function corrupt(what: string): never {
  throw new SealedDataCorruptError(`sealed service state ${what}`);
}

/**
 * Opens a sealed service state. Refuses blobs of another purpose or node, altered or foreign ones
 * (SealedDataCorruptError) and a state last run by a higher version (SecurityVersionRollbackError);
 * `resealed` is set after an upgrade (the host must persist it).
 */
export async function openServiceState(
  keys: SealKeySource,
  owner: string,
  ownSvn: number,
  blob: Uint8Array,
): Promise<{ state: ServiceState; maxSvn: number; resealed: Uint8Array | undefined }> {
  const { plaintext } = await unseal(
    keys,
    { purpose: SERVICE_STATE_PURPOSE, owner, ownSvn, policy: 'signer' },
    blob,
  );
  let fields: unknown;
  try {
    fields = decodeCbor(plaintext);
  } catch {
    corrupt('is not in the service-state format');
  } finally {
    wipe(plaintext);
  }
  if (
    !Array.isArray(fields) ||
    fields.length !== 7 ||
    fields[0] !== MAGIC ||
    fields[1] !== FORMAT
  ) {
    corrupt('is not in the service-state format');
  }
  const [, , maxSvn, pkcs8, rootKey, counter, rawSecrets] = fields as unknown[];
  if (
    typeof maxSvn !== 'number' ||
    !Number.isInteger(maxSvn) ||
    !(pkcs8 instanceof Uint8Array) ||
    !(rootKey instanceof Uint8Array) ||
    rootKey.length !== 32 ||
    typeof counter !== 'string' ||
    !counter.startsWith(EPOCH_COUNTER_PREFIX) ||
    !Array.isArray(rawSecrets) ||
    rawSecrets.length === 0
  ) {
    corrupt('fields are malformed');
  }
  const secrets: LedgerSecret[] = [];
  for (const s of rawSecrets as unknown[]) {
    if (!Array.isArray(s) || s.length !== 2) corrupt('secrets are malformed');
    const [generation, secret] = s as unknown[];
    if (
      typeof generation !== 'number' ||
      !Number.isInteger(generation) ||
      generation < 0 ||
      generation > 0xffffffff ||
      !(secret instanceof Uint8Array) ||
      secret.length !== SECRET_BYTES ||
      (secrets.length > 0 && generation <= (secrets.at(-1)?.generation ?? -1))
    ) {
      corrupt('secrets are malformed');
    }
    secrets.push({ generation, secret });
  }
  let serviceKey: KeyObject;
  try {
    serviceKey = privateKeyFromPkcs8(pkcs8);
  } catch {
    corrupt('holds an unreadable service key');
  }
  if (
    serviceKey.asymmetricKeyType !== 'ec' ||
    serviceKey.asymmetricKeyDetails?.namedCurve !== 'prime256v1'
  ) {
    corrupt('holds a service key that is not P-256');
  }
  wipe(pkcs8);
  if (maxSvn > ownSvn) throw new SecurityVersionRollbackError(maxSvn, ownSvn);
  const state: ServiceState = {
    serviceKey,
    servicePublicKey: rawPublicKey(serviceKey),
    secrets,
    rootKey,
    counter,
  };
  const resealed = ownSvn > maxSvn ? await sealServiceState(keys, owner, ownSvn, state) : undefined;
  return { state, maxSvn: Math.max(maxSvn, ownSvn), resealed };
}
