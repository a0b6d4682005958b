/**
 * checkSignedRoot (src/log/rollback.ts): the client's rollback and fork detection.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { sha256 } from '../src/hash.js';
import { RollbackDetectedError, StateLockedError } from '../src/log/errors.js';
import { leafHash, MerkleLog } from '../src/log/merkle.js';
import { verifyReceipt } from '../src/log/receipt.js';
import {
  checkSignedRoot,
  memorySignedRootStore,
  type SignedRoot,
  sameSignedRoot,
  signedRootOf,
} from '../src/log/rollback.js';
import { CONSTRAINT, KitService, makeClaims } from './log-kit.js';

const service = sha256(new TextEncoder().encode('service key'));

function tree(n: number, salt = 0): MerkleLog {
  const m = new MerkleLog();
  for (let i = 0; i < n; i++) m.append(leafHash(Uint8Array.of(i, i < 5 ? 0 : salt)));
  return m;
}

/** A lock for one process that tells whether it is held (`held()`), for where a fetch ran. */
function trackedLock() {
  let inside = false;
  return {
    held: () => inside,
    async lock<T>(f: () => Promise<T>): Promise<T> {
      inside = true;
      try {
        return await f();
      } finally {
        inside = false;
      }
    },
  };
}

describe('checkSignedRoot', () => {
  test('the first root is stored; the same root again is accepted', async () => {
    const store = memorySignedRootStore();
    const t = tree(10);
    await checkSignedRoot(store, { service, size: 6, root: t.root(6) });
    await checkSignedRoot(store, { service, size: 6, root: t.root(6) });
    assert.deepEqual((await store.get(service))?.size, 6);
  });

  test('an older size without a proof: rollback', async () => {
    const store = memorySignedRootStore();
    const t = tree(10);
    await checkSignedRoot(store, { service, size: 8, root: t.root(8) });
    await assert.rejects(
      checkSignedRoot(store, { service, size: 6, root: t.root(6) }),
      RollbackDetectedError,
    );
    assert.equal((await store.get(service))?.size, 8);
  });

  test('an older root proven a prefix of the stored one is accepted (an earlier receipt)', async () => {
    const store = memorySignedRootStore();
    const t = tree(20);
    const fork = tree(20, 9);
    await checkSignedRoot(store, { service, size: 15, root: t.root(15) });
    // As a client fetches it: the proof between the two sizes, asked inside the check.
    const asked: [number, number][] = [];
    await checkSignedRoot(store, { service, size: 8, root: t.root(8) }, async (from, to) => {
      asked.push([from, to]);
      return t.consistencyProof(from, to);
    });
    assert.deepEqual(asked, [[8, 15]]);
    assert.deepEqual(await store.get(service), { service, size: 15, root: t.root(15) });
    // A forked older root does not verify as a prefix; no proof at all is refused too.
    await assert.rejects(
      checkSignedRoot(
        store,
        { service, size: 8, root: fork.root(8) },
        fork.consistencyProof(8, 15),
      ),
      (e: unknown) => e instanceof RollbackDetectedError && /not a prefix/.test(e.message),
    );
    await assert.rejects(
      checkSignedRoot(store, { service, size: 8, root: t.root(8) }, async () => undefined),
      (e: unknown) =>
        e instanceof RollbackDetectedError && /without a consistency proof/.test(e.message),
    );
    assert.equal((await store.get(service))?.size, 15);
  });

  test('checks on one store run one at a time: two in flight cannot roll it back', async () => {
    // A store whose calls finish on a later task, as IndexedDB's do.
    const inner = memorySignedRootStore();
    const later = () => new Promise((r) => setImmediate(r));
    const store = {
      get: async (s: Uint8Array) => {
        await later();
        return inner.get(s);
      },
      put: async (r: Parameters<typeof inner.put>[0]) => {
        await later();
        return inner.put(r);
      },
    };
    const t = tree(20);
    const fork = tree(20, 9);
    await checkSignedRoot(store, { service, size: 5, root: t.root(5) });
    const proof = (m: MerkleLog) => async (from: number, to: number) => {
      await later();
      return m.consistencyProof(from, to);
    };
    // Both read size 5 before either wrote, when unserialised: the later write (size 10) won,
    // and the fork of size 15 then passed against it.
    const [a, b] = await Promise.allSettled([
      checkSignedRoot(store, { service, size: 20, root: t.root(20) }, proof(t)),
      checkSignedRoot(store, { service, size: 10, root: t.root(10) }, proof(t)),
    ]);
    assert.equal(a.status, 'fulfilled');
    assert.equal(b.status, 'fulfilled');
    assert.equal((await store.get(service))?.size, 20, 'the newest root stays');
    await assert.rejects(
      checkSignedRoot(store, { service, size: 15, root: fork.root(15) }, proof(fork)),
      RollbackDetectedError,
    );
  });

  test('two store objects over one state (two processes) are ordered by the lock given', async () => {
    // Each "process" has its own store object (so `exclusive` does not order them) over one
    // shared state, and one lock they share (ClientState.lock: a lock file, a Web Lock).
    const inner = memorySignedRootStore();
    const later = () => new Promise((r) => setImmediate(r));
    // `cas`: the view passes the check's compare-and-set on (SignedRootStore.put's `previous`).
    let cas = false;
    const view = () => ({
      get: async (s: Uint8Array) => {
        await later();
        return inner.get(s);
      },
      put: async (r: SignedRoot, previous?: SignedRoot | null) => {
        await later();
        return cas ? inner.put(r, previous) : inner.put(r);
      },
    });
    let tail: Promise<unknown> = Promise.resolve();
    const lock = <T>(f: () => Promise<T>): Promise<T> => {
      const run = tail.then(f, f);
      tail = run.catch(() => undefined);
      return run;
    };
    const t = tree(20);
    const proof = async (from: number, to: number) => {
      await later();
      return t.consistencyProof(from, to);
    };
    const race = async (withLock: boolean) => {
      await inner.put({ service, size: 5, root: t.root(5) });
      const l = withLock ? lock : undefined;
      await Promise.all([
        checkSignedRoot(view(), { service, size: 20, root: t.root(20) }, proof, l),
        checkSignedRoot(view(), { service, size: 10, root: t.root(10) }, proof, l),
      ]);
      return (await inner.get(service))?.size;
    };
    // Unlocked and without compare-and-set, both read size 5 and the later write (size 10) puts
    // an older root back.
    assert.equal(await race(false), 10);
    assert.equal(await race(true), 20, 'with the lock the newest root stays');
    cas = true;
    assert.equal(await race(false), 20, 'with compare-and-set writes too');
  });

  test('the proof is fetched outside the lock; a root changed meanwhile is checked again', async () => {
    const store = memorySignedRootStore();
    const t = tree(30);
    await store.put({ service, size: 5, root: t.root(5) });
    const { lock, held } = trackedLock();
    const asked: [number, number, boolean][] = [];
    let first = true;
    await checkSignedRoot(
      store,
      { service, size: 20, root: t.root(20) },
      async (from, to) => {
        asked.push([from, to, held()]);
        if (first) {
          // Another process stores a newer root while this one fetches its proof.
          first = false;
          await store.put({ service, size: 25, root: t.root(25) });
        }
        return t.consistencyProof(from, to);
      },
      lock,
    );
    // The first proof (5 → 20) went stale; the check started over against size 25, where 20 is
    // an earlier root proven a prefix; no proof was fetched while the lock was held.
    assert.deepEqual(asked, [
      [5, 20, false],
      [20, 25, false],
    ]);
    assert.equal((await store.get(service))?.size, 25);
  });

  test('contention is never a rollback: after three changed rounds the check fetches holding the lock', async () => {
    const store = memorySignedRootStore();
    const t = tree(60);
    await store.put({ service, size: 5, root: t.root(5) });
    const { lock, held } = trackedLock();
    // Another process stores a newer root during each fetch made outside the lock.
    let next = 30;
    const asked: [number, number, boolean][] = [];
    await checkSignedRoot(
      store,
      { service, size: 20, root: t.root(20) },
      async (from, to) => {
        asked.push([from, to, held()]);
        if (!held()) {
          next += 5;
          await store.put({ service, size: next, root: t.root(next) });
        }
        return t.consistencyProof(from, to);
      },
      lock,
    );
    assert.deepEqual(
      asked.map(([, , h]) => h),
      [false, false, false, true],
    );
    assert.equal((await store.get(service))?.size, 45, 'the newest root stays');
    // A store changed even under the lock (a lock taken over): CLIENT_STATE_LOCKED, not a rollback.
    const noLock = async <T>(f: () => Promise<T>): Promise<T> => f();
    await assert.rejects(
      checkSignedRoot(
        store,
        { service, size: 50, root: t.root(50) },
        async (from, to) => {
          next += 1;
          await store.put({ service, size: next, root: t.root(next) });
          return t.consistencyProof(from, to);
        },
        noLock,
      ),
      (e: unknown) => e instanceof StateLockedError && e.code === 'CLIENT_STATE_LOCKED',
    );
  });

  test('a store put with `previous` is a compare-and-set', async () => {
    const store = memorySignedRootStore();
    const t = tree(10);
    const r = (n: number) => ({ service, size: n, root: t.root(n) });
    await store.put(r(3), null);
    await assert.rejects(store.put(r(4), null), StateLockedError);
    await assert.rejects(store.put(r(4), r(2)), StateLockedError);
    // The same size is not the same root: a previous with another root of size 3 is stale too.
    const forked = { service, size: 3, root: sha256(Uint8Array.of(3)) };
    await assert.rejects(store.put(r(4), forked), StateLockedError);
    assert.equal(sameSignedRoot(r(3), forked), false);
    assert.equal(sameSignedRoot(r(3), r(3)), true);
    assert.equal((await store.get(service))?.size, 3, 'nothing written');
    await store.put(r(4), r(3));
    await store.put(r(2));
    assert.equal((await store.get(service))?.size, 2, 'without previous: unconditional');
  });

  test('the same size with another root: a fork', async () => {
    const store = memorySignedRootStore();
    await checkSignedRoot(store, { service, size: 8, root: tree(8).root() });
    await assert.rejects(
      checkSignedRoot(store, { service, size: 8, root: tree(8, 1).root() }),
      (e: unknown) => e instanceof RollbackDetectedError && /fork/.test(e.message),
    );
  });

  test('a newer root with a valid consistency proof is stored', async () => {
    const store = memorySignedRootStore();
    const t = tree(20);
    await checkSignedRoot(store, { service, size: 7, root: t.root(7) });
    await checkSignedRoot(
      store,
      { service, size: 13, root: t.root(13) },
      t.consistencyProof(7, 13),
    );
    assert.equal((await store.get(service))?.size, 13);
    await checkSignedRoot(
      store,
      { service, size: 20, root: t.root(20) },
      t.consistencyProof(13, 20),
    );
    assert.deepEqual((await store.get(service))?.root, t.root(20));
  });

  test('a newer root without a proof, with a bad proof, or forked: rollback', async () => {
    const store = memorySignedRootStore();
    const t = tree(20);
    const fork = tree(20, 9); // same first 5 leaves, then different
    await checkSignedRoot(store, { service, size: 7, root: t.root(7) });
    await assert.rejects(
      checkSignedRoot(store, { service, size: 13, root: t.root(13) }),
      /without a consistency proof/,
    );
    const proof = t.consistencyProof(7, 13);
    const bad = proof.map((h, i) => (i === 0 ? sha256(h) : h));
    await assert.rejects(
      checkSignedRoot(store, { service, size: 13, root: t.root(13) }, bad),
      RollbackDetectedError,
    );
    await assert.rejects(
      checkSignedRoot(
        store,
        { service, size: 13, root: fork.root(13) },
        fork.consistencyProof(7, 13),
      ),
      RollbackDetectedError,
    );
    assert.equal((await store.get(service))?.size, 7);
  });

  test('a malformed signed root is InvalidInputError before the store is read (coverage gap)', async () => {
    const store = memorySignedRootStore();
    const root = tree(3).root(3);
    const cases: [unknown, string][] = [
      [null, 'a signed root must be an object'],
      [
        { service: service.subarray(1), size: 3, root },
        'signed root service must be a 32-byte identity hash',
      ],
      [{ service, size: -1, root }, 'signed root size must be an unsigned integer'],
      [{ service, size: 3, root: root.subarray(1) }, 'signed root root must be 32 bytes'],
    ];
    for (const [seen, message] of cases) {
      // A rejected promise, not a synchronous throw (a `.catch()` chain sees it).
      await assert.rejects(checkSignedRoot(store, seen as SignedRoot), {
        name: 'InvalidInputError',
        message,
      });
    }
    assert.equal(await store.get(service), undefined);
  });

  test('a store that fails to write fails the check with its own error, never a pass (coverage gap)', async () => {
    const inner = memorySignedRootStore();
    const broken = new Error('EIO: the state file cannot be written');
    const store = {
      ...inner,
      get: inner.get.bind(inner),
      put: async () => {
        throw broken;
      },
    };
    const t = tree(3);
    await assert.rejects(
      checkSignedRoot(store, { service, size: 3, root: t.root(3) }),
      (e) => e === broken,
    );
  });

  test('roots of different services are kept apart', async () => {
    const store = memorySignedRootStore();
    const other = sha256(service);
    await checkSignedRoot(store, { service, size: 9, root: tree(9).root() });
    await checkSignedRoot(store, { service: other, size: 3, root: tree(3, 1).root() });
    assert.equal((await store.get(service))?.size, 9);
  });

  test('from verified receipts: a later receipt with the service consistency proof', async () => {
    const s = new KitService();
    const a = s.tx(makeClaims(1));
    s.sign();
    const b = s.tx(makeClaims(2));
    s.sign();
    const store = memorySignedRootStore();
    const ra = signedRootOf(await verifyReceipt(s.receipt(a), { constraint: CONSTRAINT }));
    const rb = signedRootOf(await verifyReceipt(s.receipt(b), { constraint: CONSTRAINT }));
    await checkSignedRoot(store, ra);
    await checkSignedRoot(store, rb, s.tree.consistencyProof(ra.size, rb.size));
    await assert.rejects(checkSignedRoot(store, ra), RollbackDetectedError);
  });
});
