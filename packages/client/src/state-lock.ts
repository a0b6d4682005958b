/**
 * The Node entry's lock on a client-state directory, shared by every process using it (several
 * `cloister call` runs at once, or an app and the CLI on one home). Pins and signed roots are
 * read, checked and written back; without it two processes could each read the file, and the
 * second writer would silently drop the first one's pin or put an older signed root back, which
 * weakens the pin and the rollback check (docs/scp.md §11, "Client state shared between processes").
 *
 * proper-lockfile (the host's directory locks use it too): a lock directory created with mkdir
 * (atomic), its mtime refreshed by the holder; a lock not refreshed for STALE_MS (its holder died
 * or froze) is taken over. Within this process the lock is re-entrant: sections that overlap in
 * time share one hold (each write is a synchronous read-modify-write, so they cannot interleave
 * inside it); the first takes the lock directory, the last releases it.
 */
import { mkdirSync } from 'node:fs';
import { lock as lockDirectory } from 'proper-lockfile';
import { StateLockedError } from './errors.js';

/** How long a section waits for another process's hold before CLIENT_STATE_LOCKED. */
export const STATE_LOCK_WAIT_MS = 15_000;
/** Age after which a hold its process stopped refreshing is taken over (proper-lockfile's stale). */
export const STATE_LOCK_STALE_MS = 10_000;

interface Hold {
  /** Sections running under this hold. */
  count: number;
  /** Settles once the lock directory is taken (or could not be). */
  readonly taken: Promise<() => Promise<void>>;
}

// Lock path → this process's hold. Invariant: present iff count > 0 or the take is pending.
const holds = new Map<string, Hold>();

const pause = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

async function take(
  dir: string,
  lockfilePath: string,
  waitMs: number,
): Promise<() => Promise<void>> {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const deadline = Date.now() + waitMs;
  for (let wait = 5; ; wait = Math.min(wait * 2, 100)) {
    try {
      return await lockDirectory(dir, {
        lockfilePath,
        realpath: false,
        stale: STATE_LOCK_STALE_MS,
        // Taken over while held (this event loop was blocked for STALE_MS): the section ends as
        // it would have; the default (throwing from a timer) would kill the user's process.
        onCompromised: () => undefined,
      });
    } catch (e) {
      if ((e as { code?: unknown }).code !== 'ELOCKED') throw e;
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
 * Runs `f` holding the lock `lockfilePath` (a path inside `dir`, created if needed) against
 * other processes. Throws StateLockedError when another process holds it for longer than
 * `waitMs`, and the file system's error when the lock cannot be made at all.
 */
export async function withStateLock<T>(
  dir: string,
  lockfilePath: string,
  f: () => Promise<T>,
  waitMs = STATE_LOCK_WAIT_MS,
): Promise<T> {
  let hold = holds.get(lockfilePath);
  if (hold === undefined) {
    const taken = take(dir, lockfilePath, waitMs);
    const h: Hold = { count: 0, taken };
    hold = h;
    holds.set(lockfilePath, h);
    // A failed take leaves no hold behind: the next section tries again.
    taken.catch(() => {
      if (holds.get(lockfilePath) === h) holds.delete(lockfilePath);
    });
  }
  hold.count++;
  try {
    await hold.taken;
    return await f();
  } finally {
    hold.count--;
    if (hold.count === 0 && holds.get(lockfilePath) === hold) {
      holds.delete(lockfilePath);
      const release = await hold.taken.catch(() => undefined);
      await release?.().catch(() => undefined);
    }
  }
}
