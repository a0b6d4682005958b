/**
 * The node's record store: a LevelDB store at `<data>/store`, served to the enclave through the
 * boundary, counted by call name only, closed on shutdown, and a start that fails on it undone.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { createLogger } from '../src/node/logger.js';
import { createNodeMetrics } from '../src/node/metrics.js';
import { countStoreCalls, startNode } from '../src/node/node.js';
import { openLevelStore } from '../src/store/level.js';
import { createMemoryStore } from '../src/store/memory.js';
import { storeOcalls } from '../src/store/service.js';
import { StoreError } from '../src/store/store.js';
import { tempDir, testBuild } from './helpers.js';

const silent = createLogger({ level: 'silent' });

describe('node record store', () => {
  it('opens <data>/store, exposes the store-call counter, and releases the store on close', async () => {
    const { outDir } = await testBuild();
    const dataDir = join(tempDir(), 'data');
    const node = await startNode({
      dataDir,
      platformDir: join(tempDir(), 'platform'),
      enclaveDir: outDir,
      port: 0,
      logger: silent,
    });
    try {
      assert.ok(existsSync(join(dataDir, 'store', 'CURRENT')), 'a LevelDB store');
      const text = await node.metrics.registry.metrics();
      assert.match(text, /# TYPE cloister_store_calls_total counter/);
    } finally {
      await node.close();
    }
    const again = await openLevelStore(join(dataDir, 'store'), { createIfMissing: false });
    await again.close();
  });

  it('a store held by another handle fails the start with StoreError, and undoes it', async () => {
    const { outDir } = await testBuild();
    const dataDir = join(tempDir(), 'data');
    const platformDir = join(tempDir(), 'platform');
    const held = await openLevelStore(join(dataDir, 'store'));
    const opts = { dataDir, platformDir, enclaveDir: outDir, port: 0, logger: silent };
    try {
      await assert.rejects(startNode(opts), (e: unknown) => {
        assert.ok(e instanceof StoreError);
        assert.match(e.message, /open in another process/);
        return true;
      });
    } finally {
      await held.close();
    }
    const node = await startNode(opts); // the data directory lock was released
    await node.close();
  });

  it('counts store calls by catalogue name only', async () => {
    const metrics = createNodeMetrics();
    const handlers = countStoreCalls(storeOcalls(createMemoryStore()), (call) =>
      metrics.storeCalls.inc({ call }),
    );
    const get = handlers['store.get'];
    assert.ok(get);
    await get({ key: new Uint8Array([1]) });
    await get({ key: new Uint8Array([2]) });
    const counted = await metrics.storeCalls.get();
    assert.deepEqual(
      counted.values.map((v) => [v.labels, v.value]),
      [[{ call: 'store.get' }, 2]],
    );
  });
});
