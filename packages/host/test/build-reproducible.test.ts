/**
 * The enclave build is reproducible: two copies of the same sources, at different absolute paths
 * and depths, built by different processes with different umasks, time zones and file times,
 * give the same bundle bytes and the same measurement. One changed byte of enclave code changes
 * the measurement.
 */
import assert from 'node:assert/strict';
import {
  cpSync,
  existsSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  symlinkSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, test } from 'node:test';
import { toHex } from '@cloister/core';
import { BUNDLE_FILE, MANIFEST_FILE, measureBuild, readBuild } from '../src/build/build.js';
import { repoRoot } from '../src/build/bundle.js';
import { loadOrCreateSignerKey } from '../src/build/signer.js';
import { fixture, runChild } from './fixtures/platform/children.js';

const repo = repoRoot();
const temp = mkdtempSync(join(tmpdir(), 'cloister-repro-'));
after(() => rmSync(temp, { recursive: true, force: true }));

/** node_modules/<pkg> or node_modules/@scope/<pkg> of every bundled third-party input. */
function thirdPartyPackages(inputs: readonly string[]): string[] {
  const out = new Set<string>();
  for (const p of inputs) {
    const m = /^node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(p);
    if (m?.[1] !== undefined) out.add(m[1]);
  }
  return [...out].sort();
}

/** Copies what the enclave bundle is built from into `dest`. */
function copyCheckout(dest: string, packages: readonly string[]): void {
  mkdirSync(dest, { recursive: true });
  for (const f of ['package.json', 'tsconfig.json', 'tsconfig.base.json']) {
    if (existsSync(join(repo, f))) cpSync(join(repo, f), join(dest, f));
  }
  for (const name of readdirSync(join(repo, 'packages'))) {
    const from = join(repo, 'packages', name);
    const to = join(dest, 'packages', name);
    mkdirSync(to, { recursive: true });
    for (const f of ['package.json', 'tsconfig.json']) {
      if (existsSync(join(from, f))) cpSync(join(from, f), join(to, f));
    }
    if (existsSync(join(from, 'src')))
      cpSync(join(from, 'src'), join(to, 'src'), { recursive: true });
    // Workspace links, relative as npm makes them: node_modules/@cloister/x -> ../../packages/x
    mkdirSync(join(dest, 'node_modules', '@cloister'), { recursive: true });
    const pkg = JSON.parse(readFileSync(join(from, 'package.json'), 'utf8')) as { name: string };
    if (pkg.name.startsWith('@cloister/')) {
      symlinkSync(join('..', '..', 'packages', name), join(dest, 'node_modules', pkg.name));
    }
  }
  for (const p of packages) {
    mkdirSync(dirname(join(dest, 'node_modules', p)), { recursive: true });
    cpSync(join(repo, 'node_modules', p), join(dest, 'node_modules', p), { recursive: true });
  }
}

/** Sets the access and modification times of everything under `dir` to `when`. */
function touchAll(dir: string, when: Date): void {
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) touchAll(p, when);
    if (!lstatSync(p).isSymbolicLink()) utimesSync(p, when, when);
  }
  utimesSync(dir, when, when);
}

/**
 * Changes one byte of enclave source in `checkout`: one character of a string literal of a bundled
 * enclave file that appears verbatim in `bundle` (so the change cannot be tree-shaken away).
 * Returns the file changed.
 */
function changeOneByte(checkout: string, inputs: readonly string[], bundle: string): string {
  // A numeric limit used at run time (`const MAX_... = 64 ...`): bundled whatever esbuild erases
  // (types, unused exports), and changing one digit changes the program.
  for (const rel of inputs.filter((p) => p.startsWith('packages/enclave/src/'))) {
    const file = join(checkout, rel);
    const text = readFileSync(file, 'utf8');
    const m = /const (MAX_[A-Z_]+) = (\d)/.exec(text);
    if (!m || !bundle.includes(m[1] ?? '')) continue;
    const at = m.index + m[0].length - 1;
    const digit = text[at] === '9' ? '8' : String(Number(text[at]) + 1);
    writeFileSync(file, `${text.slice(0, at)}${digit}${text.slice(at + 1)}`);
    return rel;
  }
  throw new Error('no bundled numeric limit found in the enclave sources to change');
}

test('two copies at different paths build the same bundle and measurement', async () => {
  const signerKeyPath = join(temp, 'signer.pem');
  const signer = loadOrCreateSignerKey(signerKeyPath);
  const reference = await measureBuild({ root: repo });
  const packages = thirdPartyPackages(Object.keys(reference.inputs.inputs));
  assert.ok(packages.length > 0, 'the enclave bundles third-party packages');

  const a = join(temp, 'a');
  const b = join(temp, 'deeper', 'x', 'y', 'checkout-b');
  copyCheckout(a, packages);
  copyCheckout(b, packages);
  touchAll(a, new Date('2001-02-03T04:05:06Z'));
  touchAll(b, new Date('2033-11-12T13:14:15Z'));

  const runs = await Promise.all([
    runChild(
      fixture('build-child.ts'),
      [a, join(a, 'out'), signerKeyPath, '022'],
      { TZ: 'UTC', LC_ALL: 'C' },
      a,
    ),
    runChild(
      fixture('build-child.ts'),
      [b, join(b, 'out'), signerKeyPath, '077'],
      { TZ: 'Pacific/Kiritimati', LC_ALL: 'C.UTF-8' },
      b,
    ),
  ]);
  for (const r of runs) assert.equal(r.code, 0, r.stderr);
  const [ra, rb] = runs.map((r) => JSON.parse(r.stdout) as Record<string, unknown>);
  assert.notEqual(ra?.timeZone, rb?.timeZone, 'the children really ran in different time zones');
  assert.equal(ra?.measurement, rb?.measurement);
  assert.equal(ra?.bundleHash, rb?.bundleHash);
  assert.equal(ra?.signer, toHex(signer.signer));
  assert.equal(rb?.signer, toHex(signer.signer));

  const bundleA = readFileSync(join(a, 'out', BUNDLE_FILE));
  const bundleB = readFileSync(join(b, 'out', BUNDLE_FILE));
  assert.ok(bundleA.equals(bundleB), 'bundle bytes are identical');
  for (const dir of [a, b]) {
    for (const f of [BUNDLE_FILE, MANIFEST_FILE]) {
      assert.equal(statSync(join(dir, 'out', f)).mode & 0o777, 0o644, `${f} mode, any umask`);
    }
    const stored = readBuild(join(dir, 'out'));
    assert.equal(toHex(stored.measurement), ra?.measurement);
  }

  // One byte of enclave code changed: another bundle, another measurement.
  const inputs = Object.keys(reference.inputs.inputs);
  changeOneByte(b, inputs, new TextDecoder().decode(reference.bundle));
  const changed = await measureBuild({ root: b });
  const same = await measureBuild({ root: a });
  assert.equal(toHex(same.measurement), ra?.measurement);
  assert.notEqual(toHex(changed.measurement), ra?.measurement);
  assert.notEqual(toHex(changed.bundleHash), ra?.bundleHash);
});
