/**
 * Monotonic counters of the simulated platform, kept in `<platform dir>/counters.json`:
 *
 *   {"format":"cloister-platform-counters","version":1,"counters":{"<name>":<value>,...},
 *    "mac":"<64 hex digits>"}
 *
 * mac = HMAC-SHA256(K_counters, utf8(JSON.stringify(["cloister-platform-counters", 1,
 *        [[name, value], ...]]))) with the pairs sorted by name, and K_counters derived from the
 * root secret (sealing.ts). The MAC catches damage and a file copied from another platform
 * directory; it cannot catch the host restoring an older copy of this one (the host holds the
 * secret). Within one process the store also remembers the highest value it has seen of each
 * counter, and refuses a file that went below it.
 *
 * Readers need no lock (files are replaced by atomic rename); increments take the platform lock,
 * so concurrent increments from several processes are serialised and none is lost.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { fromHex, InvalidInputError, toHex, utf8 } from '@cloister/core';
import { readFileOrUndefined, SECRET_FILE_MODE, writeFileAtomic } from '../fs/atomic.js';
import { DirectoryLockedError } from '../fs/errors.js';
import { lockDirectory, lockHolder, type ReleaseLock } from '../fs/lock.js';
import { CounterError, CounterInUseError } from './errors.js';

export const COUNTERS_FILE = 'counters.json';
/** Where `holdCounter` keeps one lock directory per counter in use. */
export const COUNTERS_IN_USE_DIR = 'in-use';
const FORMAT = 'cloister-platform-counters';
const VERSION = 1;
const NAME = /^[a-z0-9.-]{1,64}$/;

export interface CounterStore {
  read(name: string): number;
  increment(name: string): number;
}

export interface CounterStoreOptions {
  readonly dir: string;
  readonly macKey: Uint8Array;
  /** How long an increment waits for the platform lock, in ms. */
  readonly lockWaitMs: number;
}

/** The bytes of a counters file holding `counters` (used at platform initialisation too). */
export function encodeCounters(
  counters: ReadonlyMap<string, number>,
  macKey: Uint8Array,
): Uint8Array {
  const sorted = [...counters.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  const mac = toHex(macOf(sorted, macKey));
  return utf8(
    `${JSON.stringify({ format: FORMAT, version: VERSION, counters: Object.fromEntries(sorted), mac })}\n`,
  );
}

/** Opens the store; checks the file at once, so damage is reported when the platform opens. */
export function openCounterStore(options: CounterStoreOptions): CounterStore {
  const path = join(options.dir, COUNTERS_FILE);
  // Invariant: for every name, highWater[name] <= the value in the file.
  const highWater = new Map<string, number>();

  const load = (): Map<string, number> => {
    const counters = decodeCounters(path, options.macKey);
    for (const [name, seen] of highWater) {
      const now = counters.get(name) ?? 0;
      if (now < seen) {
        throw new CounterError(
          `Counter ${name} went backwards from ${seen} to ${now} in ${path}: the platform directory was rolled back or replaced.`,
        );
      }
    }
    for (const [name, value] of counters) highWater.set(name, value);
    return counters;
  };
  load();

  return {
    read(name) {
      checkName(name);
      return load().get(name) ?? 0;
    },
    increment(name) {
      checkName(name);
      const release = lockDirectory(options.dir, { what: 'platform', waitMs: options.lockWaitMs });
      try {
        const counters = load();
        const next = (counters.get(name) ?? 0) + 1;
        if (!Number.isSafeInteger(next)) {
          throw new CounterError(`Counter ${name} is at its maximum and cannot be incremented.`);
        }
        counters.set(name, next);
        // A failure (PLATFORM_DIR) leaves the file at its value: the counter did not move (an
        // enclave start that needed this increment finishes it at its next start, logchain §5).
        writeFileAtomic(path, encodeCounters(counters, options.macKey), {
          mode: SECRET_FILE_MODE,
          kind: 'platform',
        });
        highWater.set(name, next);
        return next;
      } finally {
        release();
      }
    },
  };
}

/**
 * Holds counter `name` of the platform in `dir` against other processes until the returned
 * release is called; CounterInUseError when another process holds it. A safety net for honest
 * operators, not a defence: a hostile host can run two instances anyway, and the epoch counter
 * then refuses the older one at its next start (docs/logchain.md §6).
 */
export function holdCounter(dir: string, name: string): ReleaseLock {
  checkName(name);
  const at = join(dir, COUNTERS_IN_USE_DIR, name);
  mkdirSync(at, { recursive: true, mode: 0o700 });
  try {
    // A lost hold (its lock directory removed by hand) stops nothing: it guards starts only.
    return lockDirectory(at, { what: 'platform', waitMs: 0, onCompromised: () => {} });
  } catch (e) {
    if (!(e instanceof DirectoryLockedError)) throw e;
    // The owner file is written just after the lock: without it, the message names no pid.
    const holder = lockHolder(at);
    if (holder !== undefined && !holder.running) {
      // A copied platform directory: its hold names a process that is gone but is not its
      // owner's (another inode), so it is honoured until it goes stale.
      throw new CounterInUseError(
        `the counter ${name} in ${dir} is held by a lock that names process ${holder.pid}, which is not running: the platform directory (or its in-use/ folder) was copied while a node ran. The lock goes stale within 10 s; start again then, or remove ${at} if no node of this service runs.`,
      );
    }
    const who = holder === undefined ? 'another process' : `process ${holder.pid}`;
    throw new CounterInUseError(
      `${who} on this machine is running the same service (its counter ${name} in ${dir} is in use): a service runs on one node at a time. If this data directory is a copy of a running node's, do not start it: the copy would fork the service, and the original would refuse to start ever after (its epoch left behind). Stop the other node first; to audit a copy, run \`cloister log audit\` on it without starting it.`,
    );
  }
}

function decodeCounters(path: string, macKey: Uint8Array): Map<string, number> {
  const bytes = readFileOrUndefined(path);
  if (bytes === undefined) {
    throw new CounterError(
      `The counters file ${path} is missing from an initialised platform directory.`,
    );
  }
  const damaged = (why: string, cause?: unknown): CounterError =>
    new CounterError(`The counters file ${path} is damaged: ${why}.`, { cause });
  let parsed: unknown;
  try {
    parsed = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes));
  } catch (e) {
    throw damaged('it is not valid JSON', e);
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw damaged('it is not a JSON object');
  }
  const { format, version, counters, mac, ...rest } = parsed as Record<string, unknown>;
  if (format !== FORMAT || Object.keys(rest).length > 0) throw damaged('unexpected fields');
  if (version !== VERSION) {
    throw new CounterError(
      `The counters file ${path} has format version ${JSON.stringify(version)}; this Cloister reads version ${VERSION}. Upgrade Cloister.`,
    );
  }
  if (typeof counters !== 'object' || counters === null || Array.isArray(counters)) {
    throw damaged('"counters" is not an object');
  }
  const out = new Map<string, number>();
  for (const [name, value] of Object.entries(counters)) {
    if (!NAME.test(name)) throw damaged(`bad counter name ${JSON.stringify(name)}`);
    if (!Number.isSafeInteger(value) || (value as number) < 0) {
      throw damaged(`counter ${name} has a bad value`);
    }
    out.set(name, value as number);
  }
  if (typeof mac !== 'string' || mac.length !== 64) throw damaged('"mac" is missing');
  let given: Uint8Array;
  try {
    given = fromHex(mac, 'mac');
  } catch (e) {
    throw damaged('"mac" is not hex', e);
  }
  const sorted = [...out.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  if (!timingSafeEqual(given, macOf(sorted, macKey))) {
    throw damaged('its MAC does not verify (edited, or copied from another platform directory)');
  }
  return out;
}

function macOf(sorted: [string, number][], macKey: Uint8Array): Uint8Array {
  const body = JSON.stringify([FORMAT, VERSION, sorted]);
  return new Uint8Array(createHmac('sha256', macKey).update(body, 'utf8').digest());
}

function checkName(name: string): void {
  if (typeof name !== 'string' || !NAME.test(name)) {
    throw new InvalidInputError(
      `counter name ${JSON.stringify(name)} must be 1 to 64 characters of a-z, 0-9, '.', '-'`,
    );
  }
}
