/**
 * Client-side rollback and fork detection (docs/receipts.md, "Consistency"): a client keeps, per
 * service, the last signed root it has seen, through a small state-store port; every newer root
 * must come with an RFC 9162 consistency proof from it.
 */
import { bytesEqual, toHex } from '../bytes.js';
import { CloisterError, InvalidInputError } from '../errors.js';
import { RollbackDetectedError, StateLockedError } from './errors.js';
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
 *
 * `put(r, previous)` is a compare-and-set: with `previous` given (the root read before the check,
 * `null` for none), it stores `r` only if the service's stored root is still that one (same size
 * and root), in one atomic step, and otherwise rejects with StateLockedError, writing nothing. A
 * store that other processes or tabs share must honour it: the check then never puts an older
 * root back over one another process stored meanwhile, whatever the timing.
 */
export interface SignedRootStore {
  get(service: Uint8Array): Promise<SignedRoot | undefined>;
  put(r: SignedRoot, previous?: SignedRoot | null): Promise<void>;
}

/** Same size and root, or both none (`null` and undefined alike). */
export function sameSignedRoot(
  x: SignedRoot | null | undefined,
  y: SignedRoot | null | undefined,
): boolean {
  if (x === undefined || x === null || y === undefined || y === null) {
    return (x === undefined || x === null) && (y === undefined || y === null);
  }
  return x.size === y.size && bytesEqual(x.root, y.root);
}

/** The error a store's put rejects with when the stored root is not `previous` any more. */
export function storedRootChanged(): StateLockedError {
  return new StateLockedError(
    'the stored signed root of this service changed during the check (another process or tab sharing the client state stored one): nothing was written',
  );
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
 * The RFC 9162 consistency proof between two signed sizes of the service (`from` < `to`): the
 * proof itself, or a function that fetches it for the sizes it is asked (the stored root is only
 * known inside the check, so a caller that cannot know it passes a function).
 */
export type ConsistencySource =
  | readonly Uint8Array[]
  | ((from: number, to: number) => Promise<readonly Uint8Array[] | undefined>);

const running = new WeakMap<object, Promise<unknown>>();

/**
 * Runs `f` once every earlier `exclusive` call on the same `lock` object settled: a
 * read-check-write on a store (signed roots, pins) then cannot interleave with another on it.
 * Within this JavaScript realm only: a store shared with other processes or tabs needs its own
 * compare-and-set.
 */
export function exclusive<T>(lock: object, f: () => Promise<T>): Promise<T> {
  const before = running.get(lock) ?? Promise.resolve();
  const mine = before.then(f, f);
  running.set(
    lock,
    mine.catch(() => undefined),
  );
  return mine;
}

async function proofOf(
  consistency: ConsistencySource | undefined,
  from: number,
  to: number,
): Promise<readonly Uint8Array[] | undefined> {
  return typeof consistency === 'function' ? consistency(from, to) : consistency;
}

/**
 * Checks `seen` — a root whose signature the caller has verified (e.g. with verifyReceipt) —
 * against the last root stored for its service, then stores it if it is newer:
 * - none stored: stores `seen`;
 * - the same size and root: nothing to do; the same size, another root: RollbackDetectedError
 *   (a fork);
 * - a newer size: `consistency` must give the RFC 9162 proof from the stored root to `seen`;
 *   missing or not verifying: RollbackDetectedError; verifying: stores `seen`;
 * - an older size (a receipt of an earlier transaction is signed at an earlier size): `consistency`
 *   must give the proof from `seen` to the stored root, which shows `seen` is a prefix of what was
 *   already accepted; missing or not verifying: RollbackDetectedError (rolled back or forked).
 *   The stored root stays.
 * Checks on one store run one at a time. Across processes (a store shared with other processes
 * or tabs), each write is a compare-and-set against the root the check read (SignedRootStore),
 * and `lock` (the client's ClientState.lock) orders the checks: the proof is fetched outside it
 * at first (a slow node must not hold up every other process), and a check whose stored root
 * another process changed meanwhile starts over from the new one; after OPTIMISTIC_ROUNDS such
 * rounds it fetches while holding the lock, so it always ends (the source's own timeout bounds
 * the fetch). Contention is never reported as a rollback: only a proof that fails is.
 */
export function checkSignedRoot(
  store: SignedRootStore,
  seen: SignedRoot,
  consistency?: ConsistencySource,
  lock?: <T>(f: () => Promise<T>) => Promise<T>,
): Promise<void> {
  // A malformed root is the caller's mistake, but still a rejection, like every other failure.
  try {
    check(seen);
  } catch (e) {
    return Promise.reject(e);
  }
  const fresh = { service: seen.service.slice(), size: seen.size, root: seen.root.slice() };
  // One at a time per store (read, verify, write): two checks in flight cannot both pass against
  // the same stored root and the older one win the write.
  return exclusive(store, () => checkNow(store, fresh, consistency, lock));
}

/** Rounds with the proof fetched outside the lock before one that fetches holding it. */
const OPTIMISTIC_ROUNDS = 3;

async function checkNow(
  store: SignedRootStore,
  seen: SignedRoot,
  consistency: ConsistencySource | undefined,
  lock: (<T>(f: () => Promise<T>) => Promise<T>) | undefined,
): Promise<void> {
  const locked = lock ?? (<T>(f: () => Promise<T>) => f());
  for (let round = 0; round < OPTIMISTIC_ROUNDS; round++) {
    // Read, and fetch the proof the stored root calls for, without the lock; then decide and
    // write under it, if the stored root is still the one the proof was fetched for.
    const last = await store.get(seen.service);
    const proof = await proofFor(last, seen, consistency);
    const done = await locked(async () => {
      if (!sameSignedRoot(await store.get(seen.service), last)) return false;
      return decide(store, seen, last, proof);
    });
    if (done) return;
  }
  // Others kept changing it: read, fetch and decide holding the lock. A compare-and-set that
  // still fails here means the lock was taken over: reported as such (CLIENT_STATE_LOCKED).
  await locked(async () => {
    const last = await store.get(seen.service);
    const proof = await proofFor(last, seen, consistency);
    if (!(await decide(store, seen, last, proof))) throw storedRootChanged();
  });
}

/** The consistency proof `seen` needs against `last` (undefined when none is needed or given). */
async function proofFor(
  last: SignedRoot | undefined,
  seen: SignedRoot,
  consistency: ConsistencySource | undefined,
): Promise<readonly Uint8Array[] | undefined> {
  if (last === undefined || seen.size === last.size) return undefined;
  const older = seen.size < last.size;
  return proofOf(consistency, older ? seen.size : last.size, older ? last.size : seen.size);
}

/**
 * Checks `seen` against `last` (the stored root) with `proof`, and stores it if newer, with a
 * compare-and-set against `last`. False when that found another root stored (nothing written).
 */
async function decide(
  store: SignedRootStore,
  seen: SignedRoot,
  last: SignedRoot | undefined,
  proof: readonly Uint8Array[] | undefined,
): Promise<boolean> {
  const put = async (): Promise<boolean> => {
    try {
      await store.put(seen, last ?? null);
      return true;
    } catch (e) {
      if (e instanceof StateLockedError) return false;
      throw e;
    }
  };
  if (last === undefined) return put();
  const was = `size ${last.size} root ${toHex(last.root)}`;
  if (seen.size === last.size) {
    if (bytesEqual(seen.root, last.root)) return true;
    throw new RollbackDetectedError(
      `the service shows another root ${toHex(seen.root)} at the same size as the ${was} already seen: a fork`,
    );
  }
  const older = seen.size < last.size;
  const [a, b] = older ? [seen, last] : [last, seen];
  if (proof === undefined) {
    throw new RollbackDetectedError(
      older
        ? `the service shows tree size ${seen.size}, older than the ${was} already seen, without a consistency proof that it is a prefix of it: it may have been rolled back`
        : `the service shows tree size ${seen.size} without a consistency proof from the ${was} already seen`,
    );
  }
  try {
    verifyConsistency(a.size, b.size, a.root, b.root, proof);
  } catch (e) {
    if (!(e instanceof CloisterError)) throw e;
    throw new RollbackDetectedError(
      older
        ? `the root of size ${seen.size} is not a prefix of the ${was} already seen (${e.message}): rolled back or forked`
        : `the root of size ${seen.size} does not extend the ${was} already seen (${e.message}): a fork`,
      { cause: e },
    );
  }
  return older ? true : put();
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
    async put(r, previous) {
      const id = toHex(r.service);
      if (previous !== undefined && !sameSignedRoot(roots.get(id), previous)) {
        throw storedRootChanged();
      }
      roots.set(id, {
        service: r.service.slice(),
        size: r.size,
        root: r.root.slice(),
      });
    },
  };
}
