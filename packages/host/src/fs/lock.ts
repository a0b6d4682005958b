/**
 * Directory locks between processes, on proper-lockfile: the lock is a directory `<dir>/lock`
 * created with mkdir (atomic), whose mtime the holder refreshes every `staleMs / 2`. A lock whose
 * mtime is older than `staleMs` belongs to a dead (or frozen) process and is taken over, so a
 * crashed node never blocks the next start for longer than `staleMs`. Sooner, on the same
 * machine: the holder writes `<dir>/lock.owner` (its pid, host name and the lock directory's
 * inode), and a lock whose owner process no longer exists is taken over at once — a node killed
 * with SIGKILL restarts without waiting for its lock to age (a supervisor restarting it at once
 * was refused for 8–12 s).
 *
 * The same mechanism serves two uses:
 * - the data directory, held for the whole life of a node (`waitMs: 0`: a second node on the
 *   same `--data` fails at once with DATA_DIR_LOCKED);
 * - the platform directory, held only around each write (several nodes share it), waiting up to
 *   `waitMs` for the other holder to finish before failing with PLATFORM_LOCKED.
 */
import { randomBytes } from 'node:crypto';
import {
  mkdirSync,
  readFileSync,
  readlinkSync,
  renameSync,
  rmdirSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { lockSync } from 'proper-lockfile';
import { errorCode } from './atomic.js';
import { DirectoryError, type DirectoryKind, DirectoryLockedError } from './errors.js';

/** Name of the lock directory created inside the locked directory. */
export const LOCK_NAME = 'lock';
/** A directory made only while a process takes the lock (or judges its owner dead). */
export const LOCK_GATE_NAME = 'lock.gate';
/** Who holds the lock: `{pid, host, ino}` beside it (not inside: the lock directory is removed with rmdir). */
export const LOCK_OWNER_NAME = 'lock.owner';

interface LockOwner {
  readonly pid: number;
  readonly host: string;
  /** The PID namespace (Linux `/proc/self/ns/pid`): containers sharing a host name do not share pids. */
  readonly ns?: string;
  /** Inode of the lock directory it created: an owner file left by an earlier holder does not match. */
  readonly ino: number;
}

/** This process's PID namespace, where the system says (Linux); undefined elsewhere. */
function pidNamespace(): string | undefined {
  try {
    return readlinkSync('/proc/self/ns/pid');
  } catch {
    return undefined;
  }
}

function writeOwner(dir: string, lockfilePath: string): void {
  const ns = pidNamespace();
  const owner: LockOwner = {
    pid: process.pid,
    host: hostname(),
    ino: statSync(lockfilePath).ino,
    ...(ns === undefined ? {} : { ns }),
  };
  const tmp = join(dir, `${LOCK_OWNER_NAME}.${randomBytes(6).toString('hex')}.tmp`);
  try {
    writeFileSync(tmp, JSON.stringify(owner));
    renameSync(tmp, join(dir, LOCK_OWNER_NAME));
  } catch (e) {
    // A full disk creates the file and refuses its bytes: no empty file left behind per start.
    rmSync(tmp, { force: true });
    throw e;
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return errorCode(e) === 'EPERM'; // exists, another user's
  }
}

/**
 * The process the owner file of the lock on `dir` names, and whether it runs (for messages about
 * a held lock); undefined when there is no readable owner file.
 */
export function lockHolder(dir: string): { pid: number; running: boolean } | undefined {
  try {
    const owner = JSON.parse(
      readFileSync(join(dir, LOCK_OWNER_NAME), 'utf8'),
    ) as Partial<LockOwner>;
    const pid = owner.pid;
    return typeof pid === 'number' && Number.isSafeInteger(pid)
      ? { pid, running: alive(pid) }
      : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Removes `lockfilePath` when its owner file names a process of this machine that no longer
 * exists (and the lock directory is the one that process created); true when it did.
 */
function takeOverDeadOwner(dir: string, lockfilePath: string): boolean {
  let owner: Partial<LockOwner>;
  let ino: number;
  try {
    owner = JSON.parse(readFileSync(join(dir, LOCK_OWNER_NAME), 'utf8')) as Partial<LockOwner>;
    ino = statSync(lockfilePath).ino;
  } catch {
    return false; // no owner file (an older holder, or none written yet): wait for staleness
  }
  if (
    typeof owner.pid !== 'number' ||
    owner.host !== hostname() ||
    owner.ns !== pidNamespace() ||
    owner.ino !== ino ||
    owner.pid === process.pid ||
    alive(owner.pid)
  ) {
    return false;
  }
  // Inside the gate (lockDirectory): no other process takes the lock between this check and the
  // rename, so the lock renamed away is the dead owner's.
  const dead = `${lockfilePath}.dead-${owner.pid}-${randomBytes(4).toString('hex')}`;
  try {
    renameSync(lockfilePath, dead);
  } catch {
    return false;
  }
  rmSync(dead, { recursive: true, force: true });
  return true;
}

export interface LockDirectoryOptions {
  /** Which directory this is: selects the error codes (PLATFORM_* or DATA_DIR*). */
  readonly what: DirectoryKind;
  /** How long to wait for a held lock before failing, in ms. Default 0: fail at once. */
  readonly waitMs?: number;
  /** Age after which a lock not refreshed by its holder is taken over, in ms (min 2000). */
  readonly staleMs?: number;
  /**
   * Called if the lock is lost while held (its lock directory was removed, or not refreshed for
   * `staleMs` because the event loop was blocked). Default: throw a DirectoryLockedError from
   * the refresh timer, which stops the process — two writers on one directory are worse.
   */
  readonly onCompromised?: (error: Error) => void;
}

/** Releases a lock. Idempotent: releasing twice, or after the lock was lost, does nothing. */
export type ReleaseLock = () => void;

export const DEFAULT_STALE_MS = 10_000;

/**
 * Locks `dir` (which must exist) against other processes and other lockers in this process.
 * Returns the release function. Throws DirectoryLockedError (PLATFORM_LOCKED / DATA_DIR_LOCKED)
 * when the lock is held for longer than `waitMs`, and DirectoryError (PLATFORM_DIR / DATA_DIR)
 * when the lock cannot be created at all (missing or read-only directory).
 */
export function lockDirectory(dir: string, options: LockDirectoryOptions): ReleaseLock {
  const { what } = options;
  const lockfilePath = join(dir, LOCK_NAME);
  const staleMs = Math.max(options.staleMs ?? DEFAULT_STALE_MS, 2000);
  const onCompromised =
    options.onCompromised ??
    ((e: Error): void => {
      throw new DirectoryLockedError(
        what,
        dir,
        `The lock on the ${describe(what)} ${dir} was lost while held (${e.message}); stopping so that two processes never write it at once.`,
      );
    });
  const deadline = Date.now() + (options.waitMs ?? 0);
  const gate = join(dir, LOCK_GATE_NAME);
  let pause = 1;
  for (;;) {
    // Every take of the lock, and the owner file that goes with it, happens inside the gate: a
    // process judging an owner dead never sees a lock another one has just taken but not yet
    // written its owner for (the lock directory's inode is reused at once: a review saw two
    // holders at once without it).
    let inside: boolean;
    try {
      inside = enterGate(gate, staleMs);
    } catch (e) {
      throw new DirectoryError(
        what,
        dir,
        `Cannot create the lock ${lockfilePath} in the ${describe(what)}: ${(e as Error).message}`,
        { cause: e },
      );
    }
    if (inside) {
      let release: (() => void) | undefined;
      try {
        try {
          release = lockSync(dir, { lockfilePath, stale: staleMs, realpath: true, onCompromised });
        } catch (e) {
          if (errorCode(e) !== 'ELOCKED') {
            throw new DirectoryError(
              what,
              dir,
              `Cannot create the lock ${lockfilePath} in the ${describe(what)}: ${(e as Error).message}`,
              { cause: e },
            );
          }
          if (takeOverDeadOwner(dir, lockfilePath)) {
            release = lockSync(dir, {
              lockfilePath,
              stale: staleMs,
              realpath: true,
              onCompromised,
            });
          }
        }
        if (release !== undefined) {
          try {
            writeOwner(dir, lockfilePath);
          } catch {
            // Only a faster takeover is lost: the lock holds, and ages as before.
          }
        }
      } finally {
        leaveGate(gate);
      }
      if (release !== undefined) return releaser(dir, lockfilePath, release);
    }
    if (Date.now() >= deadline) throw lockedError(what, dir, lockfilePath, options.waitMs ?? 0);
    sleepSync(pause);
    pause = Math.min(pause * 2, 50);
  }
}

/** The lock's release: its owner file first (when still ours), then the lock directory. */
function releaser(dir: string, lockfilePath: string, release: () => void): ReleaseLock {
  let released = false;
  return () => {
    if (released) return;
    released = true;
    try {
      const owner = JSON.parse(readFileSync(join(dir, LOCK_OWNER_NAME), 'utf8')) as LockOwner;
      if (owner.pid === process.pid && owner.ino === statSync(lockfilePath).ino) {
        rmSync(join(dir, LOCK_OWNER_NAME), { force: true });
      }
    } catch {
      // not ours, or gone: nothing to tidy
    }
    try {
      release();
    } catch (e) {
      if (errorCode(e) !== 'ERELEASED') throw e; // lost earlier: onCompromised already ran
    }
  };
}

/**
 * Enters the gate (`mkdir`, atomic); false when another process is inside. A gate older than
 * `staleMs` belongs to a process that died inside it (it holds it for a few system calls) and
 * is removed, to be entered on the next try.
 */
function enterGate(gate: string, staleMs: number): boolean {
  try {
    mkdirSync(gate);
    return true;
  } catch (e) {
    if (errorCode(e) !== 'EEXIST') throw e;
    try {
      if (Date.now() - statSync(gate).mtimeMs > staleMs) rmdirSync(gate);
    } catch {
      // gone meanwhile
    }
    return false;
  }
}

function leaveGate(gate: string): void {
  try {
    rmdirSync(gate);
  } catch {
    // removed as stale by another process after a long pause: nothing to do
  }
}

function lockedError(
  what: DirectoryKind,
  dir: string,
  lockfilePath: string,
  waitMs: number,
): DirectoryLockedError {
  if (what === 'data') {
    return new DirectoryLockedError(
      what,
      dir,
      `The data directory ${dir} is locked by another running node (lock ${lockfilePath}). Stop that node or start this one with another --data. A lock left by a killed node is taken over at once when its process is gone from this machine, else ${DEFAULT_STALE_MS / 1000} s after it last refreshed it (a copied data directory carries its lock too): start again then.`,
    );
  }
  return new DirectoryLockedError(
    what,
    dir,
    `The platform directory ${dir} stayed locked by another process for ${waitMs} ms (lock ${lockfilePath}). Wait for it to finish, or stop it; a lock left by a dead process is taken over after ${DEFAULT_STALE_MS / 1000} s.`,
  );
}

function describe(what: DirectoryKind): string {
  return what === 'platform' ? 'platform directory' : 'data directory';
}

const sleepCell = new Int32Array(new SharedArrayBuffer(4));

/** Blocks this thread for `ms` milliseconds (the platform API is synchronous, as hardware is). */
export function sleepSync(ms: number): void {
  Atomics.wait(sleepCell, 0, 0, ms);
}
