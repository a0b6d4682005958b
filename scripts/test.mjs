#!/usr/bin/env node
// Runs the test suite. Node 20's test runner expands no globs, so every package lists its test
// files explicitly in `packages/<name>/tests.json` ({ "fast": [...], "slow": [...] }), and the
// example apps in `examples/tests.json` (paths relative to examples/). A file named *.test.ts
// under packages/ or examples/ that no list names is an error, so a test can never be silently
// left out.
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';

const root = new URL('..', import.meta.url).pathname;
const args = process.argv.slice(2);
const slow = args.includes('--slow');
const only = args.filter((a) => !a.startsWith('--'));

function walk(dir, out = []) {
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    if (e.name === 'node_modules' || e.name === 'dist' || e.name === 'fixtures') continue;
    const p = join(dir, e.name);
    if (e.isDirectory()) walk(p, out);
    else if (e.name.endsWith('.test.ts')) out.push(relative(root, p));
  }
  return out;
}

const listed = { fast: [], slow: [] };
const pkgs = join(root, 'packages');
for (const name of readdirSync(pkgs)) {
  const f = join(pkgs, name, 'tests.json');
  if (!existsSync(f)) continue;
  const list = JSON.parse(readFileSync(f, 'utf8'));
  for (const kind of ['fast', 'slow']) {
    for (const t of list[kind] ?? []) listed[kind].push(join('packages', name, t));
  }
}
const examples = join(root, 'examples');
const examplesList = join(examples, 'tests.json');
if (existsSync(examplesList)) {
  const list = JSON.parse(readFileSync(examplesList, 'utf8'));
  for (const kind of ['fast', 'slow']) {
    for (const t of list[kind] ?? []) listed[kind].push(join('examples', t));
  }
}
const all = new Set([...listed.fast, ...listed.slow]);
const tree = [...walk(pkgs), ...(existsSync(examples) ? walk(examples) : [])];
const unlisted = tree.filter((f) => !all.has(f));
const missing = [...all].filter((f) => !existsSync(join(root, f)));
if (unlisted.length || missing.length) {
  for (const f of unlisted)
    console.error(
      `test file not listed in its package's tests.json (or examples/tests.json): ${f}`,
    );
  for (const f of missing) console.error(`tests.json names a file that does not exist: ${f}`);
  process.exit(1);
}

let files = slow ? listed.slow : listed.fast;
if (only.length)
  files = [...listed.fast, ...listed.slow].filter((f) => only.some((o) => f.includes(o)));
if (files.length === 0) {
  console.error('no test files selected');
  process.exit(1);
}
const r = spawnSync(
  process.execPath,
  ['--import', 'tsx', '--conditions=source', '--test', '--test-reporter=spec', ...files],
  { cwd: root, stdio: 'inherit', env: { ...process.env, NODE_OPTIONS: '' } },
);
process.exit(r.status ?? 1);
