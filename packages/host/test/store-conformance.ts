/**
 * The Store conformance suite (src/store/store.ts is the contract): every implementation runs
 * exactly these tests, plus fast-check properties against a plain Map model.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { InvalidInputError } from '@cloister/core';
import fc from 'fast-check';
import {
  type BatchOp,
  compareKeys,
  MAX_VALUE_BYTES,
  type Store,
  type StoreEntry,
  StoreError,
} from '../src/store/store.js';

export interface StoreFactory {
  /** A new, empty store. */
  create(): Promise<Store>;
  /** Closes `store` and opens the same storage again (persistent implementations only). */
  reopen?(store: Store): Promise<Store>;
  /** fast-check runs per property (default 60). */
  readonly runs?: number;
}

const b = (...xs: number[]): Uint8Array => new Uint8Array(xs);
const hex = (x: Uint8Array): string => Buffer.from(x).toString('hex');

async function all(it: AsyncIterable<StoreEntry>): Promise<[string, string][]> {
  const out: [string, string][] = [];
  for await (const e of it) out.push([hex(e.key), hex(e.value)]);
  return out;
}

/** The model: a Map from hex key to hex value, applied op by op. */
function applyModel(model: Map<string, string>, batch: readonly BatchOp[]): void {
  for (const op of batch) {
    if (op.type === 'put') model.set(hex(op.key), hex(op.value));
    else model.delete(hex(op.key));
  }
}

function modelRange(
  model: Map<string, string>,
  gte?: Uint8Array,
  lt?: Uint8Array,
  limit?: number,
): [string, string][] {
  const keys = [...model.keys()]
    .map((k) => Buffer.from(k, 'hex'))
    .filter(
      (k) =>
        (gte === undefined || compareKeys(k, gte) >= 0) &&
        (lt === undefined || compareKeys(k, lt) < 0),
    )
    .sort(compareKeys)
    .slice(0, limit ?? Number.POSITIVE_INFINITY);
  return keys.map((k) => [hex(k), model.get(hex(k))!]);
}

/** Small keys from a small alphabet, so batches collide and prefixes occur. */
const keyArb = fc.uint8Array({ minLength: 1, maxLength: 3 }).map((k) => k.map((x) => x % 4));
const opArb: fc.Arbitrary<BatchOp> = fc.oneof(
  fc.record({
    type: fc.constant('put' as const),
    key: keyArb,
    value: fc.uint8Array({ maxLength: 8 }),
  }),
  fc.record({ type: fc.constant('del' as const), key: keyArb }),
);
const batchArb = fc.array(opArb, { maxLength: 8 });

export function runStoreConformance(name: string, factory: StoreFactory): void {
  const runs = factory.runs ?? 60;

  describe(`Store conformance: ${name}`, () => {
    test('get of a missing key is undefined; put, overwrite and del', async () => {
      const s = await factory.create();
      assert.equal(s.get(b(1)), undefined);
      await s.write([{ type: 'put', key: b(1), value: b(9) }], { sync: false });
      assert.deepEqual(s.get(b(1)), b(9));
      await s.write([{ type: 'put', key: b(1), value: b() }], { sync: true });
      assert.deepEqual(s.get(b(1)), b(), 'an empty value is a value, not absence');
      await s.write([{ type: 'del', key: b(1) }], { sync: false });
      assert.equal(s.get(b(1)), undefined);
      await s.write([{ type: 'del', key: b(7) }], { sync: false });
      await s.write([], { sync: true });
      await s.close();
    });

    test('a batch applies in order: the later operation on a key wins', async () => {
      const s = await factory.create();
      await s.write(
        [
          { type: 'put', key: b(1), value: b(1) },
          { type: 'put', key: b(1), value: b(2) },
          { type: 'put', key: b(2), value: b(2) },
          { type: 'del', key: b(2) },
          { type: 'del', key: b(3) },
          { type: 'put', key: b(3), value: b(3) },
        ],
        { sync: true },
      );
      assert.deepEqual(s.get(b(1)), b(2));
      assert.equal(s.get(b(2)), undefined);
      assert.deepEqual(s.get(b(3)), b(3));
      await s.close();
    });

    test('writes apply in call order even when not awaited one by one', async () => {
      const s = await factory.create();
      const ps: Promise<void>[] = [];
      for (let i = 0; i < 20; i++) {
        ps.push(s.write([{ type: 'put', key: b(5), value: b(i) }], { sync: i % 3 === 0 }));
      }
      await Promise.all(ps);
      assert.deepEqual(s.get(b(5)), b(19));
      await s.close();
    });

    test('invalid input is refused whole: nothing of the batch is written', async () => {
      const s = await factory.create();
      const bad: unknown[] = [
        [
          { type: 'put', key: b(1), value: b(1) },
          { type: 'put', key: b(), value: b(1) },
        ],
        [{ type: 'put', key: new Uint8Array(2000), value: b(1) }],
        [{ type: 'put', key: b(1), value: 'text' }],
        [{ type: 'merge', key: b(1) }],
        [{ type: 'del', key: [1] }],
      ];
      for (const batch of bad) {
        await assert.rejects(s.write(batch as BatchOp[], { sync: true }), InvalidInputError);
      }
      assert.equal(s.get(b(1)), undefined);
      assert.throws(() => s.get(b()), InvalidInputError);
      assert.throws(() => s.iterate({ limit: -1 }), InvalidInputError);
      assert.throws(() => s.iterate({ gte: b() }), InvalidInputError);
      await s.close();
    });

    test('a batch operation that is no object, a value over MAX_VALUE_BYTES and iterate options that are no object are refused by name (coverage gap)', async () => {
      const s = await factory.create();
      const refused = async (batch: unknown[], message: string) =>
        assert.rejects(s.write(batch as BatchOp[], { sync: true }), {
          name: 'InvalidInputError',
          message,
        });
      await refused(
        [{ type: 'put', key: b(1), value: b(1) }, null],
        'a store batch operation must be an object',
      );
      await refused(
        [{ type: 'put', key: b(1), value: new Uint8Array(MAX_VALUE_BYTES + 1) }],
        `a store value is at most ${MAX_VALUE_BYTES} bytes; this one is ${MAX_VALUE_BYTES + 1}`,
      );
      assert.equal(s.get(b(1)), undefined, 'nothing of either batch was written');
      assert.throws(() => s.iterate(null as never), {
        name: 'InvalidInputError',
        message: 'iterate options must be an object',
      });
      await s.close();
    });

    test('buffers: the store keeps copies and hands out copies', async () => {
      const s = await factory.create();
      const key = b(1, 2);
      const value = b(3, 4);
      await s.write([{ type: 'put', key, value }], { sync: true });
      key[0] = 9;
      value[0] = 9;
      const got = s.get(b(1, 2))!;
      assert.deepEqual(got, b(3, 4));
      got[0] = 7;
      assert.deepEqual(s.get(b(1, 2)), b(3, 4));
      for await (const e of s.iterate()) {
        e.value[0] = 7;
        e.key[0] = 7;
      }
      assert.deepEqual(s.get(b(1, 2)), b(3, 4));
      // Buffers too: Buffer#slice is a view, so a store must copy another way.
      const bufKey = Buffer.from([5]);
      const bufValue = Buffer.from([6]);
      await s.write([{ type: 'put', key: bufKey, value: bufValue }], { sync: false });
      bufKey[0] = 9;
      bufValue[0] = 9;
      assert.deepEqual(s.get(b(5)), b(6));
      const got5 = s.get(b(5)) as Uint8Array;
      got5[0] = 1;
      assert.deepEqual(s.get(b(5)), b(6));
      await s.close();
    });

    test('iterate: bytewise order, half-open ranges, limit', async () => {
      const s = await factory.create();
      const keys = [b(2), b(1, 0), b(1), b(0xff), b(1, 0, 0), b(0x80)];
      await s.write(
        keys.map((key, i) => ({ type: 'put', key, value: b(i) })),
        { sync: false },
      );
      const order = (await all(s.iterate())).map(([k]) => k);
      assert.deepEqual(order, ['01', '0100', '010000', '02', '80', 'ff']);
      assert.deepEqual(
        (await all(s.iterate({ gte: b(1, 0), lt: b(0x80) }))).map(([k]) => k),
        ['0100', '010000', '02'],
      );
      assert.deepEqual(
        (await all(s.iterate({ gte: b(1), limit: 2 }))).map(([k]) => k),
        ['01', '0100'],
      );
      assert.deepEqual(await all(s.iterate({ limit: 0 })), []);
      assert.deepEqual(await all(s.iterate({ gte: b(3), lt: b(3) })), []);
      assert.deepEqual(await all(s.iterate({ gte: b(0x90), lt: b(0x10) })), []);
      await s.close();
    });

    test('iterate reads a snapshot taken when iteration starts', async () => {
      const s = await factory.create();
      await s.write(
        [1, 2, 3].map((i) => ({ type: 'put', key: b(i), value: b(i) })),
        { sync: false },
      );
      const seen: string[] = [];
      for await (const e of s.iterate()) {
        seen.push(hex(e.key));
        if (seen.length === 1) {
          await s.write(
            [
              { type: 'put', key: b(4), value: b(4) },
              { type: 'del', key: b(3) },
              { type: 'put', key: b(2), value: b(9) },
            ],
            { sync: false },
          );
        }
        if (hex(e.key) === '02') assert.deepEqual(e.value, b(2));
      }
      assert.deepEqual(seen, ['01', '02', '03']);
      assert.deepEqual(
        (await all(s.iterate())).map(([k]) => k),
        ['01', '02', '04'],
      );
      await s.close();
    });

    test('breaking out of an iteration releases it; the store stays usable', async () => {
      const s = await factory.create();
      await s.write(
        Array.from({ length: 600 }, (_, i) => ({
          type: 'put' as const,
          key: b(i >> 8, i & 255),
          value: b(i & 255),
        })),
        { sync: false },
      );
      let n = 0;
      for await (const _ of s.iterate()) if (++n === 300) break;
      assert.equal(n, 300);
      assert.equal((await all(s.iterate())).length, 600);
      await s.close();
    });

    test('after close every method is a StoreError; close is idempotent', async () => {
      const s = await factory.create();
      await s.close();
      await s.close();
      assert.throws(() => s.get(b(1)), StoreError);
      await assert.rejects(s.write([{ type: 'del', key: b(1) }], { sync: true }), StoreError);
      await assert.rejects(async () => {
        for await (const _ of s.iterate()) break;
      }, StoreError);
    });

    test('property: any sequence of batches matches the Map model', async () => {
      await fc.assert(
        fc.asyncProperty(
          fc.array(fc.tuple(batchArb, fc.boolean()), { maxLength: 12 }),
          keyArb,
          fc.option(keyArb, { nil: undefined }),
          fc.option(fc.nat(6), { nil: undefined }),
          async (batches, gte, lt, limit) => {
            const s = await factory.create();
            const model = new Map<string, string>();
            try {
              for (const [batch, sync] of batches) {
                await s.write(batch, { sync });
                applyModel(model, batch);
                for (const k of model.keys()) {
                  assert.equal(hex(s.get(Buffer.from(k, 'hex'))!), model.get(k));
                }
              }
              assert.deepEqual(await all(s.iterate()), modelRange(model));
              const opts = {
                gte,
                ...(lt ? { lt } : {}),
                ...(limit !== undefined ? { limit } : {}),
              };
              assert.deepEqual(await all(s.iterate(opts)), modelRange(model, gte, lt, limit));
              for (const op of batches.flatMap(([batch]) => batch)) {
                const want = model.get(hex(op.key));
                const got = s.get(op.key);
                assert.equal(got === undefined ? undefined : hex(got), want);
              }
            } finally {
              await s.close();
            }
          },
        ),
        { numRuns: runs },
      );
    });

    if (factory.reopen) {
      const reopen = factory.reopen;
      test('what was written is there after close and reopen', async () => {
        let s = await factory.create();
        await s.write([{ type: 'put', key: b(1), value: b(1) }], { sync: false });
        await s.write(
          [
            { type: 'put', key: b(2), value: b(2) },
            { type: 'del', key: b(1) },
          ],
          { sync: true },
        );
        s = await reopen(s);
        assert.deepEqual(await all(s.iterate()), [['02', '02']]);
        await s.close();
      });
    }
  });
}
