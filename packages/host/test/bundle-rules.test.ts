/**
 * The trust boundary on what is really bundled: the real enclave and client core bundles pass;
 * fixtures that break each rule (a mini repository under fixtures/boundary/tree, copied to a temp
 * dir with a fake dependency installed in its node_modules) are caught, file and import named.
 */
import assert from 'node:assert/strict';
import { cpSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { bundleClientCore, bundleEnclave } from '../src/build/bundle.js';
import {
  type BundleRules,
  CLIENT_CORE_BUNDLE_RULES,
  checkBundleRules,
  ENCLAVE_BUNDLE_RULES,
  formatViolations,
  type Violation,
} from '../src/build/bundle-rules.js';

const FIXTURES = fileURLToPath(new URL('./fixtures/boundary/', import.meta.url));
let root: string;

before(() => {
  root = mkdtempSync(join(tmpdir(), 'cloister-bundle-rules-'));
  cpSync(join(FIXTURES, 'tree'), root, { recursive: true });
  mkdirSync(join(root, 'node_modules'));
  cpSync(join(FIXTURES, 'fake-net'), join(root, 'node_modules', 'fake-net'), { recursive: true });
});
after(() => rmSync(root, { recursive: true, force: true }));

const pairs = (vs: Violation[]): string[] => vs.map((v) => `${v.file} -> ${v.import}`);

describe('the real bundles', () => {
  test('the enclave bundle (shim + enclave + dependencies) passes the enclave rules', async () => {
    const { metafile, code } = await bundleEnclave();
    const inputs = Object.keys(metafile.inputs);
    assert.ok(inputs.includes('packages/shim/src/entry.ts'));
    assert.ok(inputs.includes('packages/enclave/src/index.ts'));
    assert.ok(inputs.some((i) => i.startsWith('packages/core/')));
    assert.ok(inputs.includes('packages/node-crypto/src/scp.ts'));
    const v = checkBundleRules(metafile, ENCLAVE_BUNDLE_RULES);
    assert.deepEqual(v, [], formatViolations(v));
    assert.deepEqual((await bundleEnclave()).code, code, 'the enclave bundle is deterministic');
  });

  test('the client core bundle passes the client rules', async () => {
    const { metafile } = await bundleClientCore();
    assert.ok(Object.keys(metafile.inputs).includes('packages/core/src/index.ts'));
    const v = checkBundleRules(metafile, CLIENT_CORE_BUNDLE_RULES);
    assert.deepEqual(v, [], formatViolations(v));
  });
});

describe('the client SDK bundled for browsers', () => {
  // "." and "./browser" must reach no Node built-in and nothing of the node's side; "./node" may
  // (ws, files), which also proves the rule fires on the client's own folder.
  const CLIENT_RULES: BundleRules = {
    ...CLIENT_CORE_BUNDLE_RULES,
    name: 'client bundle',
    folders: [
      {
        files: 'packages/client/',
        mayImport: ['packages/core/', 'packages/client/', 'node_modules/'],
        builtins: [],
      },
      ...CLIENT_CORE_BUNDLE_RULES.folders,
    ],
  };
  const client = async (entry: string): Promise<Violation[]> =>
    checkBundleRules((await bundleClientCore({ entry })).metafile, CLIENT_RULES);

  for (const entry of ['packages/client/src/index.ts', 'packages/client/src/browser.ts']) {
    test(`${entry} passes the client rules`, async () => {
      const { metafile } = await bundleClientCore({ entry });
      const inputs = Object.keys(metafile.inputs);
      assert.ok(inputs.includes(entry));
      assert.ok(inputs.includes('packages/core/src/index.ts'));
      const v = checkBundleRules(metafile, CLIENT_RULES);
      assert.deepEqual(v, [], formatViolations(v));
    });
  }

  test('the "./node" entry reaches Node built-ins, and the rules say so', async () => {
    const found = pairs(await client('packages/client/src/node.ts'));
    assert.ok(found.includes('packages/client/src/node.ts -> node:fs'), found.join('\n'));
    assert.ok(found.includes('packages/client/src/node.ts -> node:crypto'), found.join('\n'));
  });
});

describe('fixtures that break a rule are caught', () => {
  const enclave = async (entry: string): Promise<Violation[]> =>
    checkBundleRules((await bundleEnclave({ root, entry })).metafile, ENCLAVE_BUNDLE_RULES);

  test('rule-abiding fixtures pass (no false positives)', async () => {
    assert.deepEqual(await enclave('packages/shim/src/entry.js'), []);
    const client = await bundleClientCore({ root, entry: 'packages/core/src/clean.js' });
    assert.deepEqual(checkBundleRules(client.metafile, CLIENT_CORE_BUNDLE_RULES), []);
  });

  test('an enclave file importing host code', async () => {
    const v = await enclave('packages/enclave/src/imports-host.js');
    assert.deepEqual(pairs(v), [
      'packages/enclave/src/imports-host.js -> packages/host/src/secret.js',
    ]);
    assert.match(v[0]?.rule ?? '', /no file may come from this folder/);
  });

  test('node-crypto (shared with Node clients) importing enclave code', async () => {
    const v = await enclave('packages/enclave/src/uses-node-crypto.js');
    assert.deepEqual(pairs(v), [
      'packages/enclave/src/imports-host.js -> packages/host/src/secret.js',
      'packages/node-crypto/src/imports-enclave.js -> packages/enclave/src/imports-host.js',
    ]);
    assert.match(
      v[1]?.rule ?? '',
      /files under packages\/node-crypto\/ may import only packages\/core\/, packages\/node-crypto\//,
    );
  });

  test('an enclave file importing node:fs', async () => {
    const v = await enclave('packages/enclave/src/imports-fs.js');
    assert.deepEqual(pairs(v), ['packages/enclave/src/imports-fs.js -> node:fs']);
    assert.match(v[0]?.rule ?? '', /files under packages\/enclave\/ may not import node:fs/);
  });

  test('an enclave file importing node:worker_threads (only the shim may)', async () => {
    const v = await enclave('packages/enclave/src/imports-worker.js');
    assert.deepEqual(pairs(v), ['packages/enclave/src/imports-worker.js -> node:worker_threads']);
  });

  test('a dependency reached from enclave code that imports node:net', async () => {
    const v = await enclave('packages/enclave/src/reaches-net.js');
    assert.deepEqual(pairs(v), [
      'node_modules/fake-net/index.js -> node:net',
      'packages/enclave/src/reaches-net.js -> node_modules/fake-net/index.js',
    ]);
    assert.match(v[0]?.rule ?? '', /dependencies may not import node:net/);
    assert.match(v[1]?.rule ?? '', /may import only packages\/core\/, packages\/boundary\//);
  });

  test('a core file importing node:crypto, in the client core bundle', async () => {
    const { metafile } = await bundleClientCore({
      root,
      entry: 'packages/core/src/uses-crypto.js',
    });
    const v = checkBundleRules(metafile, CLIENT_CORE_BUNDLE_RULES);
    assert.deepEqual(pairs(v), ['packages/core/src/uses-crypto.js -> node:crypto']);
    // The enclave rules refuse it too: core must stay isomorphic wherever it is bundled.
    assert.equal(checkBundleRules(metafile, ENCLAVE_BUNDLE_RULES).length, 1);
  });

  test('host code as a bundle entry is caught', async () => {
    const v = await enclave('packages/host/src/secret.js');
    assert.deepEqual(pairs(v), ['packages/host/src/secret.js -> packages/host/src/secret.js']);
  });

  test('CLI code as a bundle entry is caught', async () => {
    const v = await enclave('packages/cli/src/main.js');
    assert.deepEqual(pairs(v), ['packages/cli/src/main.js -> packages/cli/src/main.js']);
  });

  test('an enclave file importing shim code (the shim sits above the enclave)', async () => {
    const v = await enclave('packages/enclave/src/imports-shim.js');
    assert.deepEqual(pairs(v), [
      'packages/enclave/src/imports-shim.js -> packages/shim/src/channel.js',
    ]);
    assert.match(v[0]?.rule ?? '', /files under packages\/enclave\/ may import only/);
  });

  test('node-side code as the client core bundle entry is caught, folder by folder', async () => {
    for (const entry of [
      'packages/host/src/secret.js',
      'packages/enclave/src/clean.js',
      'packages/shim/src/channel.js',
      'packages/cli/src/main.js',
      'packages/node-crypto/src/clean.js',
    ]) {
      const { metafile } = await bundleClientCore({ root, entry });
      const found = pairs(checkBundleRules(metafile, CLIENT_CORE_BUNDLE_RULES));
      assert.ok(found.includes(`${entry} -> ${entry}`), `${entry}:\n${found.join('\n')}`);
    }
  });
});
