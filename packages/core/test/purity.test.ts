/**
 * DESIGN §10: the core imports no Node built-in, checked on what is really bundled (the bundler's
 * list of inputs, dependencies included) and on the source for Node-only globals.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { build } from 'esbuild';

const SRC = new URL('../src/', import.meta.url);

test('the bundle of src/index.ts for browsers resolves no Node built-in', async () => {
  const out = await build({
    entryPoints: [new URL('index.ts', SRC).pathname],
    bundle: true,
    platform: 'browser',
    format: 'esm',
    write: false,
    metafile: true,
    logLevel: 'silent',
  });
  const inputs = Object.keys(out.metafile.inputs);
  assert.ok(inputs.some((i) => i.includes('node_modules/@noble/hashes/')));
  assert.deepEqual(
    inputs.filter((i) => i.startsWith('node:')),
    [],
  );
});

test('src uses no Node-only globals or imports', () => {
  const globals = /\b(Buffer|process|require|__dirname|__filename|setImmediate)\b/;
  const files = readdirSync(SRC, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile() && e.name.endsWith('.ts'))
    .map((e) => join(e.parentPath, e.name));
  assert.ok(files.length > 5);
  for (const f of files) {
    const code = readFileSync(f, 'utf8')
      .replace(/\/\*[\s\S]*?\*\//g, '')
      .replace(/\/\/.*$/gm, '');
    assert.doesNotMatch(code, /(from|import)\s*\(?\s*['"]node:/, `${f} imports a Node built-in`);
    const noStrings = code.replace(/'(?:[^'\\\n]|\\.)*'|`(?:[^`\\]|\\.)*`/g, "''");
    assert.doesNotMatch(noStrings, globals, `${f} uses a Node-only global`);
  }
});
