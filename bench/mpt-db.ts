/**
 * The @ethereumjs/mpt peer's storage: its `DB` interface (five methods) over classic-level, for
 * the ledger and trie benchmarks. `durability.sync` is read at each write, so a benchmark can skip
 * fsyncs while prefilling and sync every measured batch.
 */
import type { BatchDBOp, DB } from '@ethereumjs/util';
import type { ClassicLevel } from 'classic-level';

export function mptDb(
  db: ClassicLevel<string, Uint8Array>,
  durability: { readonly sync: boolean } = { sync: true },
): DB<string, string | Uint8Array> {
  const self: DB<string, string | Uint8Array> = {
    get: async (key) => db.getSync(key),
    put: async (key, value) => db.put(key, value as Uint8Array, { sync: durability.sync }),
    del: async (key) => db.del(key, { sync: durability.sync }),
    batch: async (ops: BatchDBOp<string, string | Uint8Array>[]) => {
      await db.batch(
        ops.map((op) =>
          op.type === 'put'
            ? { type: 'put' as const, key: op.key, value: op.value as Uint8Array }
            : { type: 'del' as const, key: op.key },
        ),
        { sync: durability.sync },
      );
    },
    shallowCopy: () => self,
    open: async () => {},
  };
  return self;
}
