/** How the CLI reports: results on stdout, errors with their next step on stderr. */
import { CloisterError, ERROR_CODES } from '@cloister/core';

export function printError(e: unknown): void {
  if (e instanceof CloisterError) {
    process.stderr.write(`error [${e.code}]: ${e.message}\n  next step: ${e.hint}\n`);
  } else {
    // Not one of ours: still say what to do rather than leave the user at a bare message.
    process.stderr.write(
      `error: ${e instanceof Error ? e.message : String(e)}\n  next step: ${UNEXPECTED_HINT}\n`,
    );
  }
}

/** The next step for a failure no named error describes (the registry's UNEXPECTED). */
export const UNEXPECTED_HINT = ERROR_CODES.UNEXPECTED;

/** A duration for people: "340 ms", "1.2 s", "2 min 5 s". */
export function formatDuration(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)} s`;
  const s = Math.round(ms / 1000);
  return `${Math.floor(s / 60)} min ${s % 60} s`;
}

export function line(label: string, value: string | number): string {
  return `  ${label.padEnd(14)}${value}\n`;
}

/** Times a step and prints its duration, for long work (build, start). */
export async function step<T>(what: string, quiet: boolean, f: () => Promise<T>): Promise<T> {
  const t0 = performance.now();
  if (!quiet) process.stderr.write(`${what}…`);
  try {
    const r = await f();
    if (!quiet) process.stderr.write(` ${formatDuration(performance.now() - t0)}\n`);
    return r;
  } catch (e) {
    if (!quiet) process.stderr.write(` failed after ${formatDuration(performance.now() - t0)}\n`);
    throw e;
  }
}
