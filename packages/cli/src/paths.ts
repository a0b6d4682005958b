/**
 * Default locations. Everything lives under the Cloister home (`--home`, or `CLOISTER_HOME`, or
 * `~/.cloister`): the simulation platform directory, the builder's signer key and the default
 * data directory. The enclave build lives in the installation (`<install>/build/enclave`).
 */
import { existsSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export function cloisterHome(flag?: string): string {
  // An empty CLOISTER_HOME is unset (it would otherwise resolve to the working directory).
  return resolve(flag ?? (process.env.CLOISTER_HOME || undefined) ?? join(homedir(), '.cloister'));
}

export function defaultPaths(home: string): {
  platformDir: string;
  signerKey: string;
  dataDir: string;
} {
  return {
    platformDir: join(home, 'platform'),
    signerKey: join(home, 'signer.pem'),
    dataDir: join(home, 'data'),
  };
}

/** The installation root: the nearest folder above this file whose package.json is the monorepo. */
export function installRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const pkg = join(dir, 'package.json');
    if (existsSync(pkg)) {
      const name = (JSON.parse(readFileSync(pkg, 'utf8')) as { name?: string }).name;
      if (name === 'cloister-monorepo') return dir;
    }
    const up = dirname(dir);
    if (up === dir) throw new Error('cannot find the Cloister installation root');
    dir = up;
  }
}

export function defaultEnclaveDir(): string {
  return join(installRoot(), 'build', 'enclave');
}
