#!/usr/bin/env node
// Runs the benchmarks: `npm run bench` runs all, `npm run bench -- NAME` one (bench/NAME.bench.ts).
// Options pass through to each benchmark: --smoke (tiny sizes, used by CI so the harness cannot
// rot), --size N and --node-cpu-prof DIR (scp). Each benchmark prints `target <name> <measured> <goal> met|missed` and
// `info <name> <value>` lines (DESIGN.md §10).
import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';

const root = new URL('..', import.meta.url).pathname;
const args = process.argv.slice(2);
/** Options that take a value: the word after them is that value, not a benchmark's name. */
const VALUED = new Set(['--size', '--node-cpu-prof']);
const names = args.filter((a, i) => !a.startsWith('--') && !VALUED.has(args[i - 1] ?? ''));
const opts = args.filter((a) => !names.includes(a));
const all = readdirSync(`${root}bench`)
  .filter((f) => f.endsWith('.bench.ts'))
  .map((f) => f.slice(0, -'.bench.ts'.length))
  .sort();
const unknown = names.filter((n) => !all.includes(n));
if (unknown.length) {
  console.error(`unknown benchmark: ${unknown.join(', ')}; available: ${all.join(', ')}`);
  process.exit(2);
}
let failed = 0;
for (const name of names.length ? names : all) {
  console.log(`# bench ${name}`);
  const r = spawnSync(
    process.execPath,
    ['--import', 'tsx', '--conditions=source', `bench/${name}.bench.ts`, ...opts],
    { cwd: root, stdio: 'inherit' },
  );
  if (r.status !== 0) {
    console.error(`benchmark ${name} failed with exit code ${r.status}`);
    failed++;
  }
}
process.exit(failed ? 1 : 0);
