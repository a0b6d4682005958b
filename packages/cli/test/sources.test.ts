/**
 * `cloister measure` and `build` name the bundle inputs that git does not track or that differ
 * from the commit (src/sources.ts): the measurement covers whatever esbuild read from disk.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { describeSources, sourceStatus } from '../src/sources.js';

const tmp = mkdtempSync(join(tmpdir(), 'cloister-sources-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

const git = (root: string, ...args: string[]): string =>
  execFileSync(
    'git',
    ['-C', root, '-c', 'user.name=t', '-c', 'user.email=t@example.org', ...args],
    {
      encoding: 'utf8',
    },
  ).trim();

function checkout(): string {
  const root = mkdtempSync(join(tmp, 'repo-'));
  git(root, 'init', '-q');
  mkdirSync(join(root, 'src'));
  writeFileSync(join(root, 'src', 'a.ts'), 'export const a = 1;\n');
  writeFileSync(join(root, 'src', 'b.ts'), 'export const b = 2;\n');
  writeFileSync(join(root, '.gitignore'), '*.js\n');
  git(root, 'add', '.');
  git(root, 'commit', '-q', '-m', 'one');
  return root;
}

const INPUTS = ['src/a.ts', 'src/b.ts', 'node_modules/dep/index.js'];

describe('the sources of a measured bundle', () => {
  it('a clean checkout: every input as in HEAD, node_modules counted apart', () => {
    const root = checkout();
    const s = sourceStatus(root, INPUTS);
    assert.deepEqual(s, {
      commit: git(root, 'rev-parse', 'HEAD'),
      files: 2,
      dependencies: 1,
      untracked: [],
      modified: [],
    });
    const d = describeSources(s);
    assert.deepEqual(d.warnings, []);
    assert.equal(
      d.line,
      `2 files, all as in git commit ${s.commit} (and 1 from node_modules, as npm installed them)`,
    );
  });

  it('an untracked input (an ignored x.js beside x.ts included) and an edited one are named', () => {
    const root = checkout();
    // What an `./a.js` import resolves to when the file exists: esbuild reads it, git ignores it.
    writeFileSync(join(root, 'src', 'a.js'), 'exports.a = 666;\n');
    writeFileSync(join(root, 'src', 'b.ts'), 'export const b = 3;\n');
    const s = sourceStatus(root, ['src/a.js', 'src/b.ts', 'node_modules/dep/index.js']);
    assert.deepEqual(s.untracked, ['src/a.js']);
    assert.deepEqual(s.modified, ['src/b.ts']);
    const d = describeSources(s);
    assert.match(d.line, /^2 files, NOT all as in git commit [0-9a-f]{40}/);
    assert.deepEqual(d.warnings, [
      'the measurement covers 1 file that git does not track: src/a.js; remove it, or review and commit, before you trust this measurement',
      `the measurement covers 1 file that differs from commit ${s.commit?.slice(0, 12)}: src/b.ts; the measurement may differ from that commit's (a change in a comment only does not change it)`,
    ]);
    // A change staged but not committed is still not the commit.
    git(root, 'add', 'src/b.ts');
    assert.deepEqual(sourceStatus(root, ['src/b.ts']).modified, ['src/b.ts']);
    // Committed: clean again.
    git(root, 'commit', '-q', '-m', 'two');
    assert.deepEqual(sourceStatus(root, ['src/b.ts']).modified, []);
  });

  it('outside a git checkout nothing is compared, and it says so', () => {
    const root = mkdtempSync(join(tmp, 'plain-'));
    const s = sourceStatus(root, INPUTS);
    assert.deepEqual(s, {
      commit: undefined,
      files: 2,
      dependencies: 1,
      untracked: [],
      modified: [],
    });
    assert.equal(
      describeSources(s).line,
      '2 files (not a git checkout: not compared with a commit) and 1 from node_modules, as npm installed them',
    );
  });
});
