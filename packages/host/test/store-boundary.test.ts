/**
 * The record store through the boundary: the enclave-side client (packages/enclave/src/store)
 * against the host's store service (src/store/service.ts).
 *
 * - The Store conformance suite runs against createBoundaryStore over an in-process pair of
 *   ports (the real codec and RPC on both sides; sync calls answered synchronously by the host
 *   handlers), over a memory store and over LevelDB, with small pages and chunks too.
 * - A hostile enclave side: malformed and oversized requests get named errors, nothing reaches
 *   the store, and the host keeps serving. A hostile host side: replies of the wrong shape are
 *   BoundaryErrors in the enclave.
 * - A real worker: the client inside an enclave bundled through the real shim, the LevelDB
 *   store on the host.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import {
  BoundaryError,
  createEnclaveRpc,
  createHostRpc,
  type EnclaveRpc,
  type HostCallHandlers,
  type HostPort,
  type Port,
  RemoteError,
} from '@cloister/boundary';
import { fromUtf8, isCloisterError, toHex, utf8 } from '@cloister/core';
import fc from 'fast-check';
import {
  createBoundaryStore,
  type RecordStore,
  type StoreRpc,
  successor,
} from '../../enclave/src/store/index.js';
import { bundleEnclave } from '../src/build/bundle.js';
import { type EnclaveWorker, launchEnclaveWorker } from '../src/launcher/index.js';
import { type LevelStore, openLevelStore } from '../src/store/level.js';
import { createMemoryStore } from '../src/store/memory.js';
import { STORE_SERVICE_LIMITS, storeOcalls } from '../src/store/service.js';
import { type Store, StoreError } from '../src/store/store.js';
import { runStoreConformance } from './store-conformance.js';

const root = mkdtempSync(join(tmpdir(), 'cloister-store-boundary-'));
after(() => rmSync(root, { recursive: true, force: true }));
let dirs = 0;
const freshDir = (): string => join(root, `db${dirs++}`);

/**
 * An in-process pair of ports: asynchronous frames are delivered in order on the microtask
 * queue, and a sync call runs the host's sync handler at once (the store's reads are sync).
 */
function portPair(): { port: Port; hostPort: HostPort } {
  let toHost: (b: Uint8Array) => void = () => {};
  let toEnclave: (b: Uint8Array) => void = () => {};
  let onSync: (b: Uint8Array, reply: (r: Uint8Array) => void) => void = () => {};
  const port: Port = {
    post: (b) => queueMicrotask(() => toHost(b.slice())),
    onMessage: (h) => {
      toEnclave = h;
    },
    callSync: (b) => {
      let out: Uint8Array | undefined;
      onSync(b.slice(), (r) => {
        out ??= r.slice();
      });
      if (out === undefined) throw new BoundaryError('the host did not answer synchronously');
      return out;
    },
  };
  const hostPort: HostPort = {
    post: (b) => queueMicrotask(() => toEnclave(b.slice())),
    onMessage: (h) => {
      toHost = h;
    },
    onSyncCall: (h) => {
      onSync = h;
    },
  };
  return { port, hostPort };
}

/** The enclave's RPC connected in process to host handlers. */
function connect(handlers: HostCallHandlers): { rpc: EnclaveRpc; port: Port } {
  const { port, hostPort } = portPair();
  createHostRpc(hostPort, handlers);
  return { rpc: createEnclaveRpc(port, {}), port };
}

/**
 * The conformance suite checks `instanceof StoreError`; a host store's StoreError crosses the
 * boundary as a RemoteError with code STORE. This adapter maps one to the other by code and
 * changes nothing else.
 */
function hostErrors(s: RecordStore): Store {
  const map = (e: unknown): unknown =>
    isCloisterError(e, 'STORE') && !(e instanceof StoreError)
      ? new StoreError(e.message, { cause: e })
      : e;
  const wrap =
    <A extends unknown[], R>(f: (...a: A) => R) =>
    (...a: A): R => {
      try {
        const r = f(...a);
        return (r instanceof Promise ? r.catch((e) => Promise.reject(map(e))) : r) as R;
      } catch (e) {
        throw map(e);
      }
    };
  return {
    get: wrap((k: Uint8Array) => s.get(k)),
    write: wrap((b, o) => s.write(b, o)),
    close: () => s.close(),
    iterate: wrap((o) => {
      const it = s.iterate(o);
      return {
        [Symbol.asyncIterator]: () => {
          const i = it[Symbol.asyncIterator]();
          return {
            next: () => i.next().catch((e) => Promise.reject(map(e))),
            return: (v?: unknown) => i.return?.(v) ?? Promise.resolve({ done: true, value: v }),
          } as AsyncIterator<{ key: Uint8Array; value: Uint8Array }>;
        },
      };
    }),
  };
}

/** A boundary store over a fresh host store; closing it closes both. */
function boundaryOver(host: Store, options: Parameters<typeof createBoundaryStore>[1] = {}): Store {
  const { rpc } = connect(storeOcalls(host));
  const client = hostErrors(createBoundaryStore(rpc, options));
  return {
    ...client,
    close: async () => {
      await client.close();
      await host.close();
    },
  };
}

runStoreConformance('boundary over memory', {
  create: async () => boundaryOver(createMemoryStore()),
});
runStoreConformance('boundary over memory, pages of 2, getMany chunks of 2', {
  create: async () => boundaryOver(createMemoryStore(), { pageEntries: 2, getManyChunk: 2 }),
});
runStoreConformance('boundary over level', {
  create: async () => boundaryOver(await openLevelStore(freshDir())),
  runs: 15,
});

const k = (...xs: number[]): Uint8Array => new Uint8Array(xs);
const hex = (x: Uint8Array): string => toHex(x);

describe('boundary store: beyond the Store contract', () => {
  test('getMany: one value or undefined per key, in order, across chunks', async () => {
    const host = createMemoryStore();
    await host.write(
      [1, 3, 5].map((i) => ({ type: 'put' as const, key: k(i), value: k(i, i) })),
      { sync: true },
    );
    const { rpc } = connect(storeOcalls(host));
    for (const getManyChunk of [1, 2, 1024]) {
      const s = createBoundaryStore(rpc, { getManyChunk });
      assert.deepEqual(s.getMany([k(1), k(2), k(3), k(4), k(5)]), [
        k(1, 1),
        undefined,
        k(3, 3),
        undefined,
        k(5, 5),
      ]);
      assert.deepEqual(s.getMany([]), []);
    }
  });

  test('paged iteration sees a snapshot though a write lands between pages', async () => {
    const host = createMemoryStore();
    await host.write(
      Array.from({ length: 10 }, (_, i) => ({ type: 'put' as const, key: k(i), value: k(i) })),
      { sync: true },
    );
    const { rpc } = connect(storeOcalls(host));
    const s = createBoundaryStore(rpc, { pageEntries: 3 });
    const seen: number[] = [];
    for await (const e of s.iterate({ gte: k(1), lt: k(9) })) {
      seen.push(e.key[0] as number);
      if (seen.length === 2) {
        await s.write(
          [
            { type: 'del', key: k(7) },
            { type: 'put', key: k(4, 0), value: k() },
          ],
          { sync: false },
        );
      }
    }
    assert.deepEqual(seen, [1, 2, 3, 4, 5, 6, 7, 8]);
    assert.equal(host.get(k(7)), undefined);
    assert.equal(host.size, 10);
  });

  test('property: paged iteration with writes at random points yields the starting snapshot', async () => {
    const keyArb = fc.uint8Array({ minLength: 1, maxLength: 2 }).map((x) => x.map((v) => v % 5));
    const opArb = fc.oneof(
      fc.record({
        type: fc.constant('put' as const),
        key: keyArb,
        value: fc.uint8Array({ maxLength: 3 }),
      }),
      fc.record({ type: fc.constant('del' as const), key: keyArb }),
    );
    await fc.assert(
      fc.asyncProperty(
        fc.array(opArb, { maxLength: 20 }),
        fc.integer({ min: 1, max: 4 }),
        fc.option(keyArb, { nil: undefined }),
        fc.option(keyArb, { nil: undefined }),
        fc.option(fc.nat(8), { nil: undefined }),
        fc.array(fc.tuple(fc.nat(10), opArb), { maxLength: 4 }),
        async (initial, pageEntries, gte, lt, limit, during) => {
          const host = createMemoryStore();
          await host.write(initial, { sync: false });
          const range = {
            ...(gte ? { gte } : {}),
            ...(lt ? { lt } : {}),
            ...(limit !== undefined ? { limit } : {}),
          };
          const want: string[] = [];
          for await (const e of host.iterate(range)) want.push(`${hex(e.key)}=${hex(e.value)}`);
          const s = createBoundaryStore(connect(storeOcalls(host)).rpc, { pageEntries });
          const got: string[] = [];
          for await (const e of s.iterate(range)) {
            got.push(`${hex(e.key)}=${hex(e.value)}`);
            for (const [at, op] of during)
              if (at === got.length) await s.write([op], { sync: false });
          }
          assert.deepEqual(got, want);
        },
      ),
      { numRuns: 150 },
    );
  });

  test('successor: the next key in bytewise order, also at the key-length cap', () => {
    assert.deepEqual(successor(k(1, 2)), k(1, 2, 0));
    const max = new Uint8Array(1024).fill(0xff);
    assert.equal(successor(max), undefined);
    max[1000] = 7;
    const next = successor(max) as Uint8Array;
    assert.equal(next.length, 1001);
    assert.equal(next[1000], 8);
  });

  test('the host refuses keys of a write the enclave checks, even without the client', async () => {
    const host = createMemoryStore();
    const s = createBoundaryStore(connect(storeOcalls(host)).rpc);
    await assert.rejects(s.write([{ type: 'put', key: k(), value: k() }], { sync: true }), {
      code: 'INVALID_INPUT',
    });
    assert.throws(() => s.getMany([k(1), k()]), { code: 'INVALID_INPUT' });
    await s.close();
    assert.throws(() => s.get(k(1)), { code: 'STORE' });
    assert.throws(() => s.getMany([k(1)]), { code: 'STORE' });
  });
});

describe('a hostile or buggy enclave side: named errors, the host keeps serving', () => {
  const limits = {
    maxGetManyKeys: 4,
    maxWriteOps: 3,
    maxWriteBytes: 64,
    maxPageEntries: 5,
    maxPageBytes: 8,
  };

  async function refused(p: Promise<unknown> | (() => unknown), code: string, what: RegExp) {
    const check = (e: unknown): boolean => {
      assert.ok(e instanceof RemoteError, `not a RemoteError: ${e}`);
      assert.equal(e.code, code);
      assert.match(e.message, what);
      return true;
    };
    if (typeof p === 'function') assert.throws(p, check);
    else await assert.rejects(p, check);
  }

  test('each malformed or oversized request is refused by name; nothing is written', async () => {
    const host = createMemoryStore();
    await host.write([{ type: 'put', key: k(1), value: k(1) }], { sync: true });
    const { rpc, port } = connect(storeOcalls(host, limits));
    const keys5 = [1, 2, 3, 4, 5].map((i) => k(i));
    const w = (types: number[], keys: Uint8Array[], values: Uint8Array[]) =>
      rpc.call('store.write', { types: k(...types), keys, values, sync: true });
    await refused(
      () => rpc.callSync('store.get', { key: k() }),
      'INVALID_INPUT',
      /store\.get: key/,
    );
    await refused(
      () => rpc.callSync('store.get', { key: new Uint8Array(1025) }),
      'INVALID_INPUT',
      /1 to 1024 bytes/,
    );
    await refused(
      () => rpc.callSync('store.getMany', { keys: keys5 }),
      'REQUEST_TOO_LARGE',
      /store\.getMany: asks for 5 keys; the limit is 4/,
    );
    await refused(
      () => rpc.callSync('store.getMany', { keys: [k(1), k()] }),
      'INVALID_INPUT',
      /key 1 must be/,
    );
    await refused(w([0], [k(2), k(3)], [k()]), 'INVALID_INPUT', /1 operation types for 2 keys/);
    await refused(w([0, 0], [k(2), k(3)], [k()]), 'INVALID_INPUT', /fewer values than puts/);
    await refused(w([1], [k(2)], [k()]), 'INVALID_INPUT', /1 values for 0 puts/);
    await refused(w([7], [k(2)], []), 'INVALID_INPUT', /operation 0 has unknown type 7/);
    await refused(w([1, 1, 1, 1], keys5.slice(0, 4), []), 'REQUEST_TOO_LARGE', /4 operations/);
    await refused(w([0], [k(2)], [new Uint8Array(64)]), 'REQUEST_TOO_LARGE', /65 bytes/);
    await refused(w([0, 0], [k(2), k()], [k(), k()]), 'INVALID_INPUT', /key 1 must be/);
    const it = (limit: number, gte = k(), lt = k()) =>
      rpc.call('store.iterate', { gte, lt, limit });
    await refused(it(0), 'INVALID_INPUT', /limit must be 1 to 5; it is 0/);
    await refused(it(6), 'REQUEST_TOO_LARGE', /limit must be 1 to 5; it is 6/);
    await refused(it(1, new Uint8Array(1025)), 'INVALID_INPUT', /gte must be/);
    // Junk in a sync call is answered (never left blocking) with an error reply.
    const junk = port.callSync(new Uint8Array([1, 2, 0x07, 0, 0, 0, 9, 0xff]));
    assert.equal(junk[1], 0x80, 'an error reply');
    // Nothing reached the store, and the host still serves.
    assert.equal(host.size, 1);
    assert.deepEqual(rpc.callSync('store.get', { key: k(1) }), { found: true, value: k(1) });
    await w([0, 1], [k(2), k(1)], [k(2)]);
    assert.deepEqual(host.get(k(2)), k(2));
    assert.equal(host.get(k(1)), undefined);
  });

  test('a page stops at the byte cap but always makes progress', async () => {
    const host = createMemoryStore();
    await host.write(
      [1, 2, 3].map((i) => ({ type: 'put' as const, key: k(i), value: new Uint8Array(10) })),
      { sync: true },
    );
    const { rpc } = connect(storeOcalls(host, limits));
    const r = await rpc.call('store.iterate', { gte: k(), lt: k(), limit: 5 });
    assert.equal(r.keys.length, 1);
    assert.equal(r.done, false);
    const s = createBoundaryStore(rpc, { pageEntries: 5 });
    let n = 0;
    for await (const _ of s.iterate()) n++;
    assert.equal(n, 3);
  });

  test("the host's store failing is the store's named error, STORE", async () => {
    const host = createMemoryStore();
    const { rpc } = connect(storeOcalls(host));
    await host.close();
    await refused(() => rpc.callSync('store.get', { key: k(1) }), 'STORE', /closed/);
    await refused(
      rpc.call('store.write', { types: k(1), keys: [k(1)], values: [], sync: false }),
      'STORE',
      /closed/,
    );
  });

  test('limits must be whole numbers >= 1', () => {
    assert.throws(() => storeOcalls(createMemoryStore(), { maxPageEntries: 0 }), {
      code: 'INVALID_INPUT',
    });
    assert.equal(STORE_SERVICE_LIMITS.maxGetManyKeys, 1024);
  });
});

describe('a hostile host side: replies of the wrong shape are BoundaryErrors', () => {
  function fake(replies: Record<string, unknown>): StoreRpc {
    return {
      callSync: ((name: string) => replies[name]) as never,
      call: ((name: string) => Promise.resolve(replies[name])) as never,
    };
  }
  const isBoundary = (what: RegExp) => (e: unknown) =>
    e instanceof BoundaryError && what.test(e.message);

  test('get and getMany', () => {
    const s = createBoundaryStore(
      fake({
        'store.get': { found: false, value: k(1) },
        'store.getMany': { found: k(1), values: [k(1), k(2)] },
      }),
    );
    assert.throws(() => s.get(k(1)), isBoundary(/value for a missing key/));
    assert.throws(() => s.getMany([k(1), k(2)]), isBoundary(/1 flags and 2 values for 2 keys/));
    const t = createBoundaryStore(
      fake({ 'store.getMany': { found: k(0, 2), values: [k(), k()] } }),
    );
    assert.throws(() => t.getMany([k(1), k(2)]), isBoundary(/bad entry 1/));
    const u = createBoundaryStore(fake({ 'store.getMany': { found: k(0), values: [k(3)] } }));
    assert.throws(() => u.getMany([k(1)]), isBoundary(/bad entry 0/));
  });

  test('iterate pages', async () => {
    const pages: [string, unknown][] = [
      ['2 keys and 1 values', { keys: [k(1), k(2)], values: [k()], done: true }],
      ['empty but not done', { keys: [], values: [], done: false }],
      ['out of order', { keys: [k(2), k(1)], values: [k(), k()], done: true }],
      ['out of range', { keys: [k(9)], values: [k()], done: true }],
      [
        '3 entries; 2 were asked',
        { keys: [k(1), k(2), k(3)], values: [k(), k(), k()], done: true },
      ],
    ];
    for (const [what, reply] of pages) {
      const s = createBoundaryStore(fake({ 'store.iterate': reply }), { pageEntries: 2 });
      await assert.rejects(
        async () => {
          for await (const _ of s.iterate({ lt: k(5) })) {
            // consume
          }
        },
        isBoundary(new RegExp(what.replace(/[.;]/g, '.'))),
      );
    }
    // A key before the range's start, and the same key twice, are out of range and order.
    const wrong: [Record<string, unknown>, Parameters<RecordStore['iterate']>[0]][] = [
      [
        { keys: [k(2)], values: [k()], done: true },
        { gte: k(3), lt: k(5) },
      ],
      [{ keys: [k(1), k(1)], values: [k(), k()], done: true }, { lt: k(5) }],
    ];
    for (const [reply, range] of wrong) {
      const s = createBoundaryStore(fake({ 'store.iterate': reply }), { pageEntries: 2 });
      await assert.rejects(
        async () => {
          for await (const _ of s.iterate(range)) {
            // consume
          }
        },
        isBoundary(/store.iterate reply has keys out of order or out of range/),
      );
    }
  });

  test('getMany: as many values as keys; options of at least 1', () => {
    const s = createBoundaryStore(fake({ 'store.getMany': { found: k(1, 1), values: [k(1)] } }));
    assert.throws(() => s.getMany([k(1), k(2)]), isBoundary(/2 flags and 1 values for 2 keys/));
    for (const what of ['pageEntries', 'getManyChunk']) {
      assert.throws(() => createBoundaryStore(fake({}), { [what]: 0 }), {
        code: 'STORE',
        message: `boundary store option ${what} must be a whole number >= 1`,
      });
    }
  });
});

describe('the store inside a real enclave worker', () => {
  let w: EnclaveWorker;
  let store: LevelStore;
  const calls: string[] = [];

  before(async () => {
    const { code } = await bundleEnclave({
      enclave: 'packages/host/test/fixtures/store/store-enclave.ts',
    });
    store = await openLevelStore(freshDir());
    const handlers = storeOcalls(store, { maxGetManyKeys: 8 });
    const counted = Object.fromEntries(
      Object.entries(handlers).map(([name, h]) => [
        name,
        (req: never) => {
          calls.push(name);
          return (h as (r: never) => unknown)(req);
        },
      ]),
    ) as HostCallHandlers;
    w = await launchEnclaveWorker({ code, ocalls: counted });
  });
  after(async () => {
    await w?.terminate();
    await store?.close();
  });

  const run = async (command: string): Promise<unknown> =>
    JSON.parse(fromUtf8((await w.call('enclave.ping', { payload: utf8(command) })).payload));

  test('sync gets, getMany, writes with sync, paged iteration with a snapshot', async () => {
    const r = await run('scenario');
    assert.deepEqual(r, {
      gets: ['0000', '0606', null],
      many: ['0101', null, '0202'],
      // gte 2, limit 5, pages of 3; key 5 deleted after the first entry is still seen.
      seen: ['02=0101', '03=0202', '04=0303', '05=0404', '06=0505'],
      after: [null, null],
    });
    assert.equal(store.get(k(1)), undefined);
    assert.deepEqual(store.get(k(7)), k(6, 6));
    assert.ok(calls.includes('store.get') && calls.includes('store.getMany'));
    assert.ok(calls.filter((c) => c === 'store.iterate').length >= 2, 'iteration was paged');
    assert.ok(calls.includes('store.write'));
  });

  test('an oversized getMany is refused by name inside the enclave; the host keeps serving', async () => {
    const r = (await run('oversize:9')) as {
      refused: { name: string; code: string; message: string };
      after: string;
    };
    assert.equal(r.refused.name, 'RemoteError');
    assert.equal(r.refused.code, 'REQUEST_TOO_LARGE');
    assert.match(r.refused.message, /asks for 9 keys; the limit is 8/);
    assert.equal(r.after, '0101');
  });
});
