/** How the CLI reports: results on stdout, errors with their next step on stderr. */
import { CloisterError, ERROR_CODES } from '@cloister/core';

/**
 * Characters text from elsewhere (a node's answer, an app's error) may not bring to a terminal:
 * C0 and C1 controls (a newline that forges a "verdict:" or "next step:" line, escape sequences
 * that rewrite the screen) and bidirectional overrides.
 */
const UNSAFE = /[\p{Cc}\u202a-\u202e\u2066-\u2069]/gu;

/**
 * `text` made printable: each unsafe character shown as its \u escape. With `lines`, newlines
 * stay and every line after the first is indented, so none can pass for a line of the CLI's own.
 */
export function printable(text: string, o: { readonly lines?: boolean } = {}): string {
  // String(): an error's `message` is not always a string (anything can be thrown).
  const out = String(text).replace(UNSAFE, (c) =>
    c === '\n' && o.lines === true ? c : `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`,
  );
  return o.lines === true ? out.replaceAll('\n', '\n    ') : out;
}

// Set by main when the command runs with --json (printErrorsAsJson).
let jsonErrors = false;

/** With --json, every error also goes to stdout as one `{"error": {…}}` line (set by main). */
export function printErrorsAsJson(on: boolean): void {
  jsonErrors = on;
}

/**
 * An error as `--json` outputs carry it: its registry code, message and next step; an
 * OUTCOME_UNKNOWN also names the request id to look up or retry with.
 */
export function jsonError(e: unknown): {
  code: string;
  message: string;
  hint: string;
  requestId?: string;
} {
  const c = e instanceof CloisterError ? e : undefined;
  const requestId = (e as { requestId?: unknown } | undefined)?.requestId;
  return {
    code: c?.code ?? 'UNEXPECTED',
    message: e instanceof Error ? e.message : String(e),
    hint: c?.hint ?? ERROR_CODES.UNEXPECTED,
    ...(c?.code === 'OUTCOME_UNKNOWN' && typeof requestId === 'string' ? { requestId } : {}),
  };
}

/**
 * The error and its next step on stderr; with --json (or `json: true`) also `{"error": …}` on
 * stdout, so a script reading stdout always gets JSON it can parse. `json: false`: stderr only
 * (the command printed its own JSON, the error inside it).
 */
export function printError(e: unknown, o: { readonly json?: boolean } = {}): void {
  if (o.json ?? jsonErrors) process.stdout.write(`${JSON.stringify({ error: jsonError(e) })}\n`);
  if (e instanceof CloisterError) {
    process.stderr.write(
      `error [${e.code}]: ${printable(e.message, { lines: true })}\n  next step: ${e.hint}\n`,
    );
  } else {
    // Not one of ours: still say what to do rather than leave the user at a bare message.
    const message = e instanceof Error ? e.message : String(e);
    process.stderr.write(
      `error: ${printable(message, { lines: true })}\n  next step: ${UNEXPECTED_HINT}\n`,
    );
  }
}

/** Codes that mean "could not run" (exit 2) rather than "refused or failed" (exit 1). */
const CANNOT_RUN: ReadonlySet<string> = new Set([
  'INVALID_INPUT',
  'CONSTRAINT_SYNTAX',
  'NETWORK',
  'REQUEST_ID_REUSED',
  // The machine, not a verdict: a directory, lock, port, certificate or key file in the way.
  'DATA_DIR',
  'DATA_DIR_LOCKED',
  'COUNTER_IN_USE',
  'PLATFORM_DIR',
  'PLATFORM_LOCKED',
  'PORT_IN_USE',
  'TLS_CONFIG',
  'OPERATOR_KEY_MISSING',
  'CLIENT_STATE_LOCKED',
]);

/**
 * The exit code of a command that failed with `e`, the same in every command: 2 when it could
 * not run (bad input, the node unreachable), 1 when it ran and was refused or failed.
 */
export function exitCodeOf(e: unknown): 1 | 2 {
  return e instanceof CloisterError && CANNOT_RUN.has(e.code) ? 2 : 1;
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

// The step whose "what…" is on stderr without its end yet, and whether a line broke into it.
let open: { what: string; broken: boolean } | undefined;

/**
 * Writes `text` (whole lines) to stderr; inside a running step, on a line of its own, so notes and
 * log lines do not run into "deploying counter…" and leave its duration dangling.
 */
export function stderrLines(text: string): void {
  if (open !== undefined && !open.broken) {
    open.broken = true;
    process.stderr.write('\n');
  }
  process.stderr.write(text);
}

/** stderr for a logger: its lines go through stderrLines. */
export const stderrForLogs = {
  write(chunk: string | Uint8Array): boolean {
    stderrLines(typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString('utf8'));
    return true;
  },
} as unknown as NodeJS.WritableStream;

/** Times a step and prints its duration, for long work (build, start). */
export async function step<T>(what: string, quiet: boolean, f: () => Promise<T>): Promise<T> {
  const t0 = performance.now();
  if (!quiet) process.stderr.write(`${what}…`);
  const mine = quiet ? undefined : { what, broken: false };
  if (mine) open = mine;
  // Its end on the same line, or (after a note broke into it) on a line naming the step.
  const end = (said: string): void => {
    if (!mine) return;
    if (open === mine) open = undefined;
    process.stderr.write(mine.broken ? `${what}: ${said}\n` : ` ${said}\n`);
  };
  try {
    const r = await f();
    end(formatDuration(performance.now() - t0));
    return r;
  } catch (e) {
    end(`failed after ${formatDuration(performance.now() - t0)}`);
    throw e;
  }
}

/**
 * What the CLI prints when a node stopped on its own (`RunningNode.stopped`), `again` being the
 * command to run once fixed; undefined for a stop it was asked for ('closed').
 */
export function nodeStoppedMessage(why: string, again: string): string | undefined {
  if (why === 'enclave-failed') {
    return `error [ENCLAVE_FAILED]: the enclave stopped; the node has stopped.\n  next step: see the log line before this one and run \`${again}\` again\n`;
  }
  if (why === 'ledger-stopped') {
    return `error [STORE]: the store failed a write and the ledger stopped (no commit could succeed); the node has stopped.\n  next step: check the disk (free space, the open-file limit; the log line store.write-failed names the cause) and run \`${again}\` again: the node verifies its log and resumes\n`;
  }
  if (why === 'data-dir-lock-lost') {
    return 'error [DATA_DIR_LOCKED]: the data directory lock was taken over while this node was paused (another start on the same --data); the node has stopped cleanly. Start it again once no other node uses that directory.\n';
  }
  return undefined;
}
