/** Shared test helpers: temporary homes and one enclave build per test process. */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type BuildResult, buildEnclave } from '../src/build/build.js';

const temporary: string[] = [];
process.once('exit', () => {
  for (const dir of temporary) rmSync(dir, { recursive: true, force: true });
});

/** A fresh temporary directory, removed when the test process exits. */
export function tempDir(prefix = 'cloister-test-'): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  temporary.push(dir);
  return dir;
}

let signerDir: string | undefined;

const builds = new Map<string, Promise<BuildResult & { outDir: string }>>();

/**
 * Builds the real enclave (shim + enclave) once per test process for each security version,
 * signed by a per-process signer key.
 */
export function testBuild(svn = 1): Promise<BuildResult & { outDir: string }> {
  let b = builds.get(String(svn));
  if (!b) {
    signerDir ??= tempDir('cloister-signer-');
    const outDir = join(tempDir('cloister-build-'), `enclave-svn${svn}`);
    b = buildEnclave({ outDir, signerKeyPath: join(signerDir, 'signer.pem'), svn }).then((r) => ({
      ...r,
      outDir,
    }));
    builds.set(String(svn), b);
  }
  return b;
}
