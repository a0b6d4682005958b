/**
 * The Node entry's lock on a client-state file, shared by every process using it (several
 * `cloister call` runs at once, or an app and the CLI on one home). Pins and signed roots are
 * read, checked and written back; without it two processes could each read the file, and the
 * second writer would silently drop the first one's pin or put an older signed root back, which
 * weakens the pin and the rollback check (docs/scp.md §11, "Client state shared between processes").
 *
 * proper-lockfile (the host's directory locks use it too): a lock directory created with mkdir
 * (atomic), its mtime refreshed by the holder; a lock not refreshed for STATE_LOCK_STALE_MS (its
 * holder died or froze) is taken over. Sections are local and short (the SDK fetches over the
 * network before it takes the lock), so the wait is short too, and ends before the client's
 * 10-second handshake budget: a held lock is reported as CLIENT_STATE_LOCKED, not as a network
 * failure. Within this process the lock is re-entrant: sections that overlap in time share one
 * hold (each write is a synchronous read-modify-write, so they cannot interleave inside it); the
 * first takes the lock directory, the last releases it.
 */
import { accessSync, constants, mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { lock as lockFile } from 'proper-lockfile';
import { StateLockedError } from './errors.js';

/** How long a section waits for another process's hold before CLIENT_STATE_LOCKED. */
export const STATE_LOCK_WAIT_MS = 8_000;
/** Age after which a hold its process stopped refreshing is taken over (proper-lockfile's stale). */
export const STATE_LOCK_STALE_MS = 5_000;

/** Errors of a directory this process may not write: no lock is needed, nothing can be written. */
const READ_ONLY = new Set(['EACCES', 'EPERM', 'EROFS']);

interface Hold {
  /** Sections running under this hold. */
  count: number;
  /** Settles once the lock directory is taken (or could not be); set once, when the hold is made. */
  taken: Promise<() => Promise<void>>;
  /** Set when another process took the lock over while this one held it (a blocked event loop). */
  lost: boolean;
}

/**
 * Called by a section just before it writes: throws StateLockedError when the hold was taken
 * over (the section must not write: the other process may have written since this one read).
 */
export type AssertHeld = () => void;

// Lock path → this process's hold. Invariant: present iff count > 0 or the take is pending.
const holds = new Map<string, Hold>();

const pause = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

async function take(
  file: string,
  lockfilePath: string,
  waitMs: number,
  onLost: () => void,
): Promise<() => Promise<void>> {
  const deadline = Date.now() + waitMs;
  for (let wait = 5; ; wait = Math.min(wait * 2, 100)) {
    try {
      // Keyed by the state file (proper-lockfile keeps one hold per path in a process), so a
      // lock the host takes on the same directory is another lock.
      return await lockFile(file, {
        lockfilePath,
        realpath: false,
        stale: STATE_LOCK_STALE_MS,
        // Taken over while held (this event loop was blocked for the stale time): writes of the
        // sections under this hold refuse from now on (AssertHeld); throwing from the refresh
        // timer, the default, would kill the user's process.
        onCompromised: onLost,
      });
    } catch (e) {
      const code = (e as { code?: unknown }).code;
      const denied = typeof code === 'string' && READ_ONLY.has(code);
      // Denied in a directory this process may write (Windows refuses to make a directory that
      // another process is still removing): the lock is busy, not missing.
      if (denied && !writable(dirname(file))) return async () => undefined;
      if (code !== 'ELOCKED' && !denied) throw e;
      if (Date.now() >= deadline) {
        throw new StateLockedError(
          `another process held the client state lock ${lockfilePath} for ${waitMs / 1000} s: wait for it to finish, or stop it (a lock left by a dead process is taken over after ${STATE_LOCK_STALE_MS / 1000} s)`,
        );
      }
      await pause(wait);
    }
  }
}

/**
 * Runs `f` holding the lock of state file `file` (its lock directory `lockfilePath`; the
 * file's directory is created if needed) against other processes. Throws StateLockedError when
 * another process holds it for longer than `waitMs`, and the file system's error when the lock
 * cannot be made for another reason than a directory this process may not write (then `f` runs
 * without it: it can read, and any write fails on its own).
 */
export async function withStateLock<T>(
  file: string,
  lockfilePath: string,
  f: (assertHeld: AssertHeld) => Promise<T>,
  waitMs = STATE_LOCK_WAIT_MS,
): Promise<T> {
  let hold = holds.get(lockfilePath);
  if (hold === undefined) {
    const h: Hold = { count: 0, lost: false, taken: Promise.resolve(async () => undefined) };
    h.taken = prepare(file).then((writable) =>
      writable
        ? take(file, lockfilePath, waitMs, () => {
            h.lost = true;
          })
        : async () => undefined,
    );
    hold = h;
    holds.set(lockfilePath, h);
    // A failed take leaves no hold behind: the next section tries again.
    h.taken.catch(() => {
      if (holds.get(lockfilePath) === h) holds.delete(lockfilePath);
    });
  }
  const mine = hold;
  mine.count++;
  try {
    await mine.taken;
    return await f(() => {
      if (mine.lost) {
        throw new StateLockedError(
          `the client state lock ${lockfilePath} was taken over by another process while this one held it (this process was blocked for over ${STATE_LOCK_STALE_MS / 1000} s): nothing was written; retry`,
        );
      }
    });
  } finally {
    mine.count--;
    if (mine.count === 0 && holds.get(lockfilePath) === mine) {
      holds.delete(lockfilePath);
      const release = await mine.taken.catch(() => undefined);
      await release?.().catch(() => undefined);
    }
  }
}

function writable(dir: string): boolean {
  try {
    accessSync(dir, constants.W_OK);
    return true;
  } catch {
    return false;
  }
}

/** Creates the file's directory if needed; false when this process may not write there. */
async function prepare(file: string): Promise<boolean> {
  try {
    mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
    return true;
  } catch (e) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string' && READ_ONLY.has(code)) return false;
    throw e;
  }
}
