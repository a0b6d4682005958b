/**
 * An operator's mistake the platform stops: starting a copy of a running node's data directory
 * (taken for an audit, say) on the same machine. Unchecked, the copy served the same service
 * beside the original — two txids 1.77, one per node — and its start moved the epoch counter on,
 * so the original, the newer state, refused to start ever after (ROLLBACK_DETECTED). The counter
 * is held by the process using it (platform counters.ts `holdCounter`): the copy fails at once
 * with COUNTER_IN_USE, before its enclave bumps anything, and the original keeps serving and
 * restarts as before.
 */
import assert from 'node:assert/strict';
import { cpSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { isCloisterError } from '@cloister/core';
import { LOCK_NAME, LOCK_OWNER_NAME } from '../src/fs/lock.js';
import { createLogger } from '../src/node/logger.js';
import { startNode } from '../src/node/node.js';
import { loadOrCreateOperatorKey } from '../src/node/operator.js';
import { tempDir, testBuild } from './helpers.js';

test("a copy of a running node's data directory does not start beside it, and the original is unharmed", async () => {
  const build = await testBuild();
  const dataDir = join(tempDir(), 'data');
  const platformDir = join(tempDir(), 'platform');
  const options = {
    dataDir,
    platformDir,
    enclaveDir: build.outDir,
    port: 0,
    logger: createLogger({ level: 'silent' }),
    signIntervalMs: 50,
    operatorPublicKey: loadOrCreateOperatorKey(join(tempDir(), 'operator.pem')).publicKey,
  };
  const original = await startNode(options);
  const status = async (url: string) =>
    (await (await fetch(new URL('/v1/status', url))).json()) as {
      serviceIdentity: string;
      index: number;
    };
  const before = await status(original.url);
  // The copy, as `cp -a` makes it while the node runs; its copied data-directory lock is left
  // out, as if the operator had waited for it to go stale (10 s).
  const copy = join(tempDir(), 'copy');
  cpSync(dataDir, copy, { recursive: true });
  rmSync(join(copy, LOCK_NAME), { recursive: true, force: true });
  rmSync(join(copy, LOCK_OWNER_NAME), { force: true });
  const started = await startNode({ ...options, dataDir: copy }).then(
    async (forked) => {
      await forked.close();
      return undefined;
    },
    (e: unknown) => e,
  );
  assert.ok(started !== undefined, 'the copy started beside the original');
  assert.ok(isCloisterError(started, 'COUNTER_IN_USE'), String(started));
  assert.match(started.message, /process \d+ on this machine is running the same service/);
  assert.match(started.message, /do not start it/);
  // The original still serves, and restarts: the copy moved no counter.
  assert.equal((await status(original.url)).serviceIdentity, before.serviceIdentity);
  await original.close();
  const again = await startNode(options);
  assert.equal((await status(again.url)).serviceIdentity, before.serviceIdentity);
  assert.ok((await status(again.url)).index >= before.index);
  await again.close();
});
