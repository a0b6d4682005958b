/** How the CLI reports: results on stdout, errors with their next step on stderr. */
import { CloisterError } from '@cloister/core';

export function printError(e: unknown): void {
  if (e instanceof CloisterError) {
    process.stderr.write(`error [${e.code}]: ${e.message}\n  next step: ${e.hint}\n`);
  } else if (e instanceof Error) {
    process.stderr.write(`error: ${e.message}\n`);
  } else {
    process.stderr.write(`error: ${String(e)}\n`);
  }
}

export function line(label: string, value: string | number): string {
  return `  ${label.padEnd(14)}${value}\n`;
}

/** Times a step and prints its duration, for long work (build, start). */
export async function step<T>(what: string, quiet: boolean, f: () => Promise<T>): Promise<T> {
  const t0 = performance.now();
  if (!quiet) process.stderr.write(`${what}...`);
  try {
    const r = await f();
    if (!quiet) process.stderr.write(` done in ${Math.round(performance.now() - t0)} ms\n`);
    return r;
  } catch (e) {
    if (!quiet) process.stderr.write(' failed\n');
    throw e;
  }
}
