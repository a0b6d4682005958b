/**
 * The order of the epoch protocol under real kills (issue 4, item 6; docs/logchain.md §5): a
 * child process starts the REAL enclave bundle on LevelDB and the simulation platform's counter
 * file, and SIGKILLs itself exactly before or exactly after the counter increment. The next
 * start must neither brick the node nor accept an older copy of the data directory: copies
 * taken before the kill, and at the kill, are refused with ROLLBACK_DETECTED afterwards.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { cpSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { tempDir, testBuild } from './helpers.js';

const CHILD = fileURLToPath(new URL('./fixtures/epoch/epoch-child.ts', import.meta.url));

interface Outcome {
  readonly killed: boolean;
  readonly ok?: boolean;
  readonly code?: string;
  readonly message?: string;
  readonly index?: number;
  readonly epoch?: number;
}

function run(
  dirs: { data: string; platform: string; enclave: string },
  when: 'before' | 'after' | 'none' = 'none',
  nth = 1,
): Outcome {
  const r = spawnSync(
    process.execPath,
    [
      '--import',
      'tsx',
      '--conditions=source',
      CHILD,
      dirs.data,
      dirs.platform,
      dirs.enclave,
      when,
      String(nth),
    ],
    { encoding: 'utf8', timeout: 120_000 },
  );
  if (r.signal === 'SIGKILL') return { killed: true };
  const line = r.stdout.trim().split('\n').pop() ?? '';
  assert.ok(line.startsWith('{'), `child printed no outcome: ${r.stdout}\n${r.stderr}`);
  return { killed: false, ...(JSON.parse(line) as Omit<Outcome, 'killed'>) };
}

function restore(from: string, to: string): void {
  rmSync(to, { recursive: true, force: true });
  cpSync(from, to, { recursive: true });
}

test('a kill on either side of the counter increment neither bricks the node nor opens a rollback', async () => {
  const b = await testBuild();
  const root = tempDir('cloister-epoch-');
  const dirs = { data: join(root, 'data'), platform: join(root, 'platform'), enclave: b.outDir };
  const copy = (name: string) => {
    const to = join(root, name);
    cpSync(dirs.data, to, { recursive: true });
    return to;
  };

  const genesis = run(dirs);
  assert.deepEqual([genesis.ok, genesis.epoch], [true, 1]);
  const afterGenesis = copy('after-genesis');

  // Killed after the checkpoint of epoch 2 was sealed, before the counter moved to 2.
  assert.equal(run(dirs, 'before').killed, true);
  const atKill = copy('at-kill-before');
  const recovered = run(dirs);
  assert.equal(recovered.ok, true, recovered.message);
  assert.equal(recovered.epoch, 3, 'the interrupted bump is finished, then a new epoch begins');
  assert.equal(recovered.index, genesis.index, 'the log is intact');

  // Killed just after the counter moved: the checkpoint is already sealed with that epoch.
  assert.equal(run(dirs, 'after').killed, true);
  const again = run(dirs);
  assert.equal(again.ok, true, again.message);
  assert.equal(again.epoch, 5);

  // Every older copy is now refused, including the one taken at the first kill.
  for (const [name, older] of [
    ['the copy after genesis', afterGenesis],
    ['the copy at the kill', atKill],
  ] as const) {
    const live = copy(`live-${name.replaceAll(' ', '-')}`);
    restore(older, dirs.data);
    const r = run(dirs);
    assert.equal(r.ok, false, `${name} was accepted`);
    assert.equal(r.code, 'ROLLBACK_DETECTED', `${name}: ${r.message}`);
    restore(live, dirs.data);
  }
  const last = run(dirs);
  assert.equal(last.ok, true, 'the live directory still starts after the refused restores');
});

test('a kill during genesis, before service.sealed exists, is refused with the way out', async () => {
  const b = await testBuild();
  const root = tempDir('cloister-epoch-');
  const dirs = { data: join(root, 'data'), platform: join(root, 'platform'), enclave: b.outDir };
  assert.equal(run(dirs, 'before').killed, true);
  const r = run(dirs);
  assert.equal(r.ok, false);
  assert.match(r.message ?? '', /remove the store/);
  rmSync(join(dirs.data, 'store'), { recursive: true, force: true });
  const fresh = run(dirs);
  assert.equal(fresh.ok, true, fresh.message);
});
