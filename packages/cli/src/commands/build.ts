/**
 * `cloister build` (bundle + signed manifest, written to a directory) and `cloister measure`
 * (bundle in memory, print the measurement: the value a user puts in a `C:` clause).
 */
import { existsSync, statSync } from 'node:fs';
import { resolve } from 'node:path';
import { InvalidInputError, sha256, toHex } from '@cloister/core';
import { buildEnclave, measureBuild } from '@cloister/host';
import { exitCodeOf, line, printError, step } from '../output.js';
import { cloisterHome, defaultEnclaveDir, defaultPaths, installRoot } from '../paths.js';
import { describeSources, type SourceStatus, sourceStatus } from '../sources.js';

/** The bundle's inputs compared with git; each warning written to stderr. */
function sourcesOf(inputs: { readonly inputs: Readonly<Record<string, unknown>> }): {
  status: SourceStatus;
  line: string;
} {
  const status = sourceStatus(installRoot(), Object.keys(inputs.inputs));
  const d = describeSources(status);
  for (const w of d.warnings) process.stderr.write(`warning: ${w}\n`);
  return { status, line: d.line };
}

export interface BuildOptions {
  readonly home?: string;
  readonly out?: string;
  readonly signerKey?: string;
  readonly svn?: number;
  readonly quiet?: boolean;
}

export async function build(o: BuildOptions): Promise<number> {
  const outDir = o.out ?? defaultEnclaveDir();
  const defaultKey = defaultPaths(cloisterHome(o.home)).signerKey;
  const signerKeyPath = o.signerKey ?? defaultKey;
  try {
    if (existsSync(outDir) && !statSync(outDir).isDirectory()) {
      throw new InvalidInputError(
        `--out ${resolve(outDir)} is a file, not a directory: give a directory for the enclave build (it is created if missing)`,
      );
    }
    const r = await step('building the enclave', o.quiet ?? false, () =>
      buildEnclave({
        outDir,
        signerKeyPath,
        // A key named with --signer-key must exist: a typo must not sign with a new key.
        ...(o.signerKey === undefined
          ? {}
          : {
              signerKeyMissing: `give the path of your signer key (it decides the enclave's signer, S:), or leave --signer-key out to use ${defaultKey} (created on first use)`,
            }),
        ...(o.svn !== undefined ? { svn: o.svn } : {}),
      }),
    );
    const sources = sourcesOf(r.inputs);
    if (o.quiet) {
      process.stdout.write(`${toHex(r.measurement)}\n`);
      return 0;
    }
    process.stdout.write(
      `enclave built in ${outDir}\n` +
        line('measurement', toHex(r.measurement)) +
        line('signer', toHex(r.signer)) +
        line('product', r.product) +
        line('svn', r.svn) +
        line('bundle', `${r.bundle.length} bytes, sha256 ${toHex(sha256(r.bundle))}`) +
        line('signer key', signerKeyPath) +
        line('sources', sources.line),
    );
    return 0;
  } catch (e) {
    printError(e);
    return exitCodeOf(e);
  }
}

export interface MeasureOptions {
  readonly json?: boolean;
  readonly svn?: number;
}

export async function measure(o: MeasureOptions): Promise<number> {
  try {
    const m = await measureBuild(o.svn !== undefined ? { svn: o.svn } : {});
    const constraint = `C:${toHex(m.measurement)} SEC:INSECURE`;
    const sources = sourcesOf(m.inputs);
    if (o.json) {
      process.stdout.write(
        `${JSON.stringify({ measurement: toHex(m.measurement), product: m.product, svn: m.svn, constraint, sources: sources.status })}\n`,
      );
      return 0;
    }
    process.stdout.write(
      line('measurement', toHex(m.measurement)) +
        line('product', m.product) +
        line('svn', m.svn) +
        line('constraint', constraint) +
        line('sources', sources.line) +
        '  (SEC:INSECURE admits the simulation platform: for development only)\n',
    );
    return 0;
  } catch (e) {
    printError(e);
    return exitCodeOf(e);
  }
}
