/**
 * What the build's entry points refuse, through them (bundle-rules.test.ts checks the rules
 * themselves, build-reproducible.test.ts a good build): a bundle that breaks the trust boundary,
 * a bundle carrying its absolute root path, an esbuild failure (every error, where it is), a
 * product/svn configuration missing a field, and a build directory missing a file, named. Each
 * builds a mini repository (fixtures/boundary/tree plus a shim entry of its own) in a temp dir.
 */
import assert from 'node:assert/strict';
import { cpSync, existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { computeMeasurement, InvalidInputError } from '@cloister/core';
import {
  BUNDLE_FILE,
  buildEnclave,
  ENCLAVE_PACKAGE_JSON,
  MANIFEST_FILE,
  measureBuild,
  NO_BUILD_HINT,
  readBuild,
  readEnclaveConfig,
} from '../src/build/build.js';
import { BundleError, ENCLAVE_ENTRY } from '../src/build/bundle.js';
import { ManifestError } from '../src/platform/errors.js';
import { tempDir } from './helpers.js';

const TREE = fileURLToPath(new URL('./fixtures/boundary/tree/', import.meta.url));

/** A mini repository whose shim entry is `entry`; `config`: its enclave package.json field. */
function miniRepo(entry: string, config?: unknown): string {
  const root = tempDir('cloister-build-');
  cpSync(TREE, root, { recursive: true });
  writeFileSync(join(root, ENCLAVE_ENTRY), entry);
  if (config !== undefined) {
    writeFileSync(
      join(root, ENCLAVE_PACKAGE_JSON),
      JSON.stringify({ name: '@cloister/enclave', cloister: config }),
    );
  }
  return root;
}

/** Follows every rule: the fixture shim, which imports node:worker_threads and enclave code. */
const GOOD_ENTRY = "export { started } from './entry.js';\n";
const versions = { product: 1, svn: 1 };

describe('measureBuild and buildEnclave', () => {
  test('refuse a bundle that breaks the trust boundary, naming file and import, and write nothing', async () => {
    // The same mini repository builds when its entry keeps to the rules: the refusal below is
    // the rules', not a tree that cannot be built.
    const good = await measureBuild({ root: miniRepo(GOOD_ENTRY), ...versions });
    assert.ok(Object.keys(good.inputs.inputs).includes('packages/enclave/src/clean.js'));

    const root = miniRepo("export { read } from '../../enclave/src/imports-fs.js';\n");
    const named = (e: unknown) => {
      assert.ok(e instanceof BundleError, String(e));
      assert.match(e.message, /^The enclave bundle breaks the trust boundary/);
      assert.ok(
        e.message.includes('packages/enclave/src/imports-fs.js imports node:fs'),
        e.message,
      );
      return true;
    };
    await assert.rejects(measureBuild({ root, ...versions }), named);
    const outDir = join(root, 'out');
    await assert.rejects(
      buildEnclave({ root, outDir, signerKeyPath: join(root, 'signer.pem'), ...versions }),
      named,
    );
    assert.equal(existsSync(join(outDir, BUNDLE_FILE)), false, 'no bundle written');
    assert.equal(existsSync(join(outDir, MANIFEST_FILE)), false, 'no manifest written');
  });

  test('refuse a bundle that carries the absolute path of its root (not reproducible)', async () => {
    // A source that spells out where the checkout lives (a generated file, say).
    const root = miniRepo(GOOD_ENTRY);
    const entry = `${GOOD_ENTRY}export const home = ${JSON.stringify(root)};\n`;
    writeFileSync(join(root, ENCLAVE_ENTRY), entry);
    await assert.rejects(measureBuild({ root, ...versions }), (e: unknown) => {
      assert.ok(e instanceof BundleError, String(e));
      assert.match(e.message, /the bundle contains an absolute path/);
      return true;
    });
    // The same text under another root is just a string: that build passes.
    await measureBuild({ root: miniRepo(entry), ...versions });
  });

  test('an esbuild failure names every error with its file, line and column', async () => {
    const imports = [1, 2, 3, 4, 5, 6].map((i) => `import './missing-${i}.js';\n`).join('');
    const root = miniRepo(`${imports}export const x = 1;\n`);
    await assert.rejects(measureBuild({ root, ...versions }), (e: unknown) => {
      assert.ok(e instanceof BundleError, String(e));
      assert.match(e.message, /^esbuild failed: /);
      // All six (esbuild's own message stops at five), each where it is.
      for (let i = 1; i <= 6; i++) {
        assert.ok(
          e.message.includes(`${ENCLAVE_ENTRY}:${i}:7: Could not resolve "./missing-${i}.js"`),
          e.message,
        );
      }
      return true;
    });
    const syntax = miniRepo(`${GOOD_ENTRY}export const y = 1 +;\n`);
    await assert.rejects(measureBuild({ root: syntax, ...versions }), (e: unknown) => {
      assert.ok(e instanceof BundleError, String(e));
      assert.equal(e.message, `esbuild failed: ${ENCLAVE_ENTRY}:2:20: Unexpected ";"`);
      return true;
    });
  });

  test('take product and svn from the enclave package.json, each overridden by its option', async () => {
    const root = miniRepo(GOOD_ENTRY, { product: 3, svn: 4 });
    const configured = await measureBuild({ root });
    assert.equal(configured.product, 3);
    assert.equal(configured.svn, 4);
    const svn = await measureBuild({ root, svn: 7 });
    assert.equal(svn.product, 3);
    assert.equal(svn.svn, 7);
    assert.deepEqual(svn.measurement, computeMeasurement(svn.bundleHash, 3, 7));
    const product = await measureBuild({ root, product: 9 });
    assert.equal(product.product, 9);
    assert.equal(product.svn, 4);
    for (const bad of [{ svn: 2 ** 32 }, { svn: -1 }, { product: 1.5 }]) {
      await assert.rejects(measureBuild({ root, ...bad }), InvalidInputError, JSON.stringify(bad));
    }
  });
});

describe('readEnclaveConfig', () => {
  test('refuses a configuration missing product or svn, or out of range, naming the file', () => {
    for (const config of [
      { product: 1 },
      { svn: 1 },
      { product: 1, svn: -1 },
      { product: 1, svn: 2 ** 32 },
      { product: '1', svn: 1 },
      {},
    ]) {
      const root = miniRepo(GOOD_ENTRY, config);
      assert.throws(
        () => readEnclaveConfig(root),
        (e: unknown) => {
          assert.ok(e instanceof InvalidInputError, String(e));
          assert.ok(e.message.startsWith(join(root, ENCLAVE_PACKAGE_JSON)), e.message);
          assert.match(e.message, /"product": <integer>, "svn": <integer>/);
          return true;
        },
        JSON.stringify(config),
      );
    }
    assert.deepEqual(readEnclaveConfig(miniRepo(GOOD_ENTRY, { product: 0, svn: 5 })), {
      product: 0,
      svn: 5,
    });
  });
});

describe('readBuild', () => {
  test('a directory missing a file names the one missing', () => {
    const cases: [files: string[], missing: string][] = [
      [[], BUNDLE_FILE],
      [[MANIFEST_FILE], BUNDLE_FILE],
      [[BUNDLE_FILE], MANIFEST_FILE],
    ];
    for (const [files, missing] of cases) {
      const dir = tempDir('cloister-build-');
      for (const f of files) writeFileSync(join(dir, f), 'x');
      assert.throws(
        () => readBuild(dir),
        (e: unknown) => {
          assert.ok(e instanceof ManifestError, String(e));
          assert.equal(e.message, `No enclave build in ${dir}: ${missing} is missing.`);
          assert.equal(e.hint, NO_BUILD_HINT);
          return true;
        },
        files.join(' ') || 'empty',
      );
    }
  });
});
