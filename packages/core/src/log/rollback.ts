/**
 * Client-side rollback and fork detection (docs/receipts.md, "Consistency"): a client keeps, per
 * service, the last signed root it has seen, through a small state-store port; every newer root
 * must come with an RFC 9162 consistency proof from it.
 */
import { bytesEqual, toHex } from '../bytes.js';
import { CloisterError, InvalidInputError } from '../errors.js';
import { RollbackDetectedError } from './errors.js';
import { verifyConsistency } from './merkle.js';
import type { VerifiedReceipt } from './receipt.js';

/** A signed tree root of a service: its identity hash, tree size and root. */
export interface SignedRoot {
  readonly service: Uint8Array;
  readonly size: number;
  readonly root: Uint8Array;
}

/**
 * Where a client keeps the last signed root per service (memory, localStorage, a file …).
 * get resolves undefined for a service never seen; put replaces the service's root. Both are
 * called with values the caller owns; implementations store copies.
 */
export interface SignedRootStore {
  get(service: Uint8Array): Promise<SignedRoot | undefined>;
  put(r: SignedRoot): Promise<void>;
}

/** The signed root a verified receipt carries. */
export function signedRootOf(v: VerifiedReceipt): SignedRoot {
  return { service: v.service, size: v.size, root: v.treeRoot };
}

function check(seen: SignedRoot): void {
  if (typeof seen !== 'object' || seen === null)
    throw new InvalidInputError('a signed root must be an object');
  if (!(seen.service instanceof Uint8Array) || seen.service.length !== 32) {
    throw new InvalidInputError('signed root service must be a 32-byte identity hash');
  }
  if (!Number.isSafeInteger(seen.size) || seen.size < 0) {
    throw new InvalidInputError('signed root size must be an unsigned integer');
  }
  if (!(seen.root instanceof Uint8Array) || seen.root.length !== 32) {
    throw new InvalidInputError('signed root root must be 32 bytes');
  }
}

/**
 * Checks `seen` — a root whose signature the caller has verified (e.g. with verifyReceipt) —
 * against the last root stored for its service, then stores it if it is newer:
 * - none stored: stores `seen`;
 * - an older size: RollbackDetectedError (the service went back);
 * - the same size, another root: RollbackDetectedError (a fork);
 * - the same size and root: nothing to do;
 * - a newer size: `consistency` must be the RFC 9162 consistency proof from the stored root to
 *   `seen`; missing or not verifying: RollbackDetectedError; verifying: stores `seen`.
 */
export async function checkSignedRoot(
  store: SignedRootStore,
  seen: SignedRoot,
  consistency?: readonly Uint8Array[],
): Promise<void> {
  check(seen);
  const last = await store.get(seen.service);
  const fresh = { service: seen.service.slice(), size: seen.size, root: seen.root.slice() };
  if (last === undefined) {
    await store.put(fresh);
    return;
  }
  const was = `size ${last.size} root ${toHex(last.root)}`;
  if (seen.size < last.size) {
    throw new RollbackDetectedError(
      `the service shows tree size ${seen.size}, older than the ${was} already seen: it was rolled back`,
    );
  }
  if (seen.size === last.size) {
    if (bytesEqual(seen.root, last.root)) return;
    throw new RollbackDetectedError(
      `the service shows another root ${toHex(seen.root)} at the same size as the ${was} already seen: a fork`,
    );
  }
  if (consistency === undefined) {
    throw new RollbackDetectedError(
      `the service shows tree size ${seen.size} without a consistency proof from the ${was} already seen`,
    );
  }
  try {
    verifyConsistency(last.size, seen.size, last.root, seen.root, consistency);
  } catch (e) {
    if (!(e instanceof CloisterError)) throw e;
    throw new RollbackDetectedError(
      `the root of size ${seen.size} does not extend the ${was} already seen (${e.message}): a fork`,
      { cause: e },
    );
  }
  await store.put(fresh);
}

/** A SignedRootStore in memory (tests, short-lived clients). */
export function memorySignedRootStore(): SignedRootStore {
  const roots = new Map<string, SignedRoot>();
  return {
    async get(service) {
      const r = roots.get(toHex(service));
      return r === undefined
        ? undefined
        : { service: r.service.slice(), size: r.size, root: r.root.slice() };
    },
    async put(r) {
      roots.set(toHex(r.service), {
        service: r.service.slice(),
        size: r.size,
        root: r.root.slice(),
      });
    },
  };
}
