/**
 * `cloister app new NAME [--dir DIR]`: scaffolds an AssemblyScript app project from the SDK's
 * template (packages/sdk/template): an example app with one query and one transaction, its tests,
 * asconfig.json, a README and a package.json whose only dependency is this installation's SDK as a
 * `file:` dependency, so `npm install` needs no network. Its scripts run this installation's
 * `cloister`. Exit 0 when created, 2 when the name or folder cannot be used.
 */
import {
  cpSync,
  existsSync,
  readdirSync,
  readFileSync,
  renameSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { join, resolve } from 'node:path';
import { InvalidInputError } from '@cloister/core';
import { printError } from '../output.js';
import { installRoot } from '../paths.js';
import { sdkDir } from './app-build.js';

/** An app name: a valid npm package name and app id (letters, digits, `-`, `_`, `.`). */
const NAME_RE = /^[a-z0-9][a-z0-9._-]{0,63}$/;

export interface AppNewOptions {
  readonly dir?: string;
}

export interface AppNewResult {
  readonly dir: string;
  readonly files: readonly string[];
}

function projectPackageJson(name: string): string {
  const cli = join(installRoot(), 'packages', 'cli', 'bin', 'cloister.js');
  const pkg = {
    name,
    version: '0.1.0',
    private: true,
    type: 'module',
    description: `${name}: a Cloister app`,
    scripts: {
      build: `node ${JSON.stringify(cli)} app build`,
      test: 'npm run build && node --test',
      // `npm run deploy -- --node URL [--upgrade]`: this installation's CLI, the app's own name.
      deploy: `npm run build && node ${JSON.stringify(cli)} app deploy build/app.wasm --name ${name}`,
      cloister: `node ${JSON.stringify(cli)}`,
    },
    devDependencies: { '@cloister/sdk': `file:${sdkDir()}` },
  };
  return `${JSON.stringify(pkg, null, 2)}\n`;
}

function listFiles(dir: string, prefix = ''): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? listFiles(join(dir, e.name), `${prefix}${e.name}/`) : [`${prefix}${e.name}`],
  );
}

/** Creates the project; throws `InvalidInputError` for a bad name or a non-empty folder. */
export function createApp(name: string, o: AppNewOptions = {}): AppNewResult {
  if (!NAME_RE.test(name)) {
    throw new InvalidInputError(
      `app name '${name}': use 1-64 lowercase letters, digits, '.', '_' or '-', starting with a letter or digit (lowercase: the name is also the project's npm package name${/[A-Z]/.test(name) && NAME_RE.test(name.toLowerCase()) ? `; try '${name.toLowerCase()}'` : ''})`,
    );
  }
  const dir = resolve(o.dir ?? name);
  if (existsSync(dir) && (!statSync(dir).isDirectory() || readdirSync(dir).length > 0)) {
    throw new InvalidInputError(`${dir} already exists and is not an empty folder`);
  }
  const template = join(sdkDir(), 'template');
  cpSync(template, dir, { recursive: true });
  // npm drops .gitignore files from packages, so the template keeps it as `gitignore`.
  renameSync(join(dir, 'gitignore'), join(dir, '.gitignore'));
  const readme = join(dir, 'README.md');
  writeFileSync(readme, readFileSync(readme, 'utf8').replaceAll('__NAME__', name));
  writeFileSync(join(dir, 'package.json'), projectPackageJson(name));
  return { dir, files: listFiles(dir).sort() };
}

export function appNew(name: string, o: AppNewOptions): number {
  try {
    const r = createApp(name, o);
    process.stdout.write(
      `created app ${name} in ${r.dir}\n` +
        r.files.map((f) => `  ${f}\n`).join('') +
        `next:\n  cd ${r.dir}\n  npm install     # offline: the SDK is a file: dependency\n` +
        '  npm test        # builds build/app.wasm and runs the methods on the real runtime\n' +
        '  npm run deploy -- --node http://127.0.0.1:7410   # to a running node (its operator key)\n',
    );
    return 0;
  } catch (e) {
    printError(e);
    return 2;
  }
}
