/**
 * State directories: created on first use with mode 0700 (they hold keys and sealed data), and
 * checked up front so that a bad `--platform-dir` or `--data` fails at start with a named error,
 * not half-way through a write.
 */
import { randomBytes } from 'node:crypto';
import {
  accessSync,
  closeSync,
  constants,
  mkdirSync,
  openSync,
  statSync,
  unlinkSync,
} from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { errorCode, SECRET_DIR_MODE } from './atomic.js';
import { DirectoryError, type DirectoryKind, isDiskFull } from './errors.js';

const FLAG: Record<DirectoryKind, string> = { platform: '--platform-dir', data: '--data' };

/**
 * Makes sure `dir` exists (creating it and its parents with mode 0700 if needed), is a directory
 * and is writable by this process (proved by creating and removing a probe file, which also works
 * for root, to whom permission bits do not apply). Returns the absolute path.
 * Throws DirectoryError (PLATFORM_DIR or DATA_DIR, per `kind`) naming the directory and the cause.
 */
export function ensureWritableDir(dir: string, kind: DirectoryKind): string {
  const abs = resolve(dir);
  const name = kind === 'platform' ? 'platform directory' : 'data directory';
  if (!isDirectory(abs)) {
    try {
      mkdirSync(abs, { recursive: true, mode: SECRET_DIR_MODE });
    } catch (e) {
      const why = errorCode(e) ?? (e as Error).message;
      throw new DirectoryError(
        kind,
        abs,
        why === 'EEXIST'
          ? `The ${name} ${abs} exists but is not a directory. Pass another ${FLAG[kind]}.`
          : `Cannot create the ${name} ${abs}${whyNotCreated(abs, why, kind)}`,
        { cause: e },
      );
    }
  }
  const probe = join(abs, `.probe-${process.pid}-${randomBytes(6).toString('hex')}`);
  try {
    closeSync(openSync(probe, 'wx', 0o600));
    unlinkSync(probe);
  } catch (e) {
    const why = errorCode(e) ?? (e as Error).message;
    throw new DirectoryError(
      kind,
      abs,
      why === 'EROFS'
        ? `The ${name} ${abs} is on a read-only file system (EROFS). Pass a ${FLAG[kind]} on a writable one, or mount it read-write.`
        : isDiskFull(why)
          ? `The disk holding the ${name} ${abs} is full (${why}): free space on it, then run the command again.`
          : `The ${name} ${abs} is not writable by this user (${why}). Fix its permissions or pass another ${FLAG[kind]}.`,
      { cause: e },
    );
  }
  return abs;
}

/**
 * Why `abs` could not be created, with what to do: the end of a message that names `abs` (it
 * starts with ": " or " ("). `code` is mkdir's error code, not always the truth: Node's recursive
 * mkdir reports ENOENT where it may not create a directory on a read-only file system. So the
 * nearest existing ancestor is looked at: a file (ENOTDIR), on a read-only file system (EROFS),
 * or one this user may not write in (EACCES). `access` is fs.accessSync (a parameter for tests:
 * a read-only file system cannot be made in a test, and root passes every permission check).
 */
export function whyNotCreated(
  abs: string,
  code: string,
  kind: DirectoryKind,
  access: (path: string, mode: number) => void = accessSync,
): string {
  const flag = FLAG[kind];
  let ancestor = dirname(abs);
  for (;;) {
    let isDir: boolean;
    try {
      isDir = statSync(ancestor).isDirectory();
    } catch {
      const up = dirname(ancestor);
      if (up === ancestor) break;
      ancestor = up;
      continue;
    }
    if (!isDir) {
      return `: ${ancestor} is a file, not a directory (ENOTDIR). Pass another ${flag}, or move that file away.`;
    }
    try {
      access(ancestor, constants.W_OK);
    } catch (e) {
      const denied = errorCode(e);
      if (denied === 'EROFS') {
        return `: ${ancestor} is on a read-only file system (EROFS). Pass a ${flag} on a writable one, or mount it read-write.`;
      }
      if (denied === 'EACCES' || denied === 'EPERM') {
        const uid = process.getuid?.();
        return `: this user${uid === undefined ? '' : ` (uid ${uid})`} may not write in ${ancestor} (${denied}). Create the directory as a user who may and make this user its owner, or pass another ${flag}.`;
      }
    }
    break;
  }
  if (isDiskFull(code)) return `: its disk is full (${code}). Free space on it, then run again.`;
  return ` (${code}). Create it yourself or pass another ${flag}.`;
}

function isDirectory(path: string): boolean {
  try {
    return statSync(path).isDirectory();
  } catch {
    return false;
  }
}
