/**
 * State directories: created on first use with mode 0700 (they hold keys and sealed data), and
 * checked up front so that a bad `--platform-dir` or `--data` fails at start with a named error,
 * not half-way through a write.
 */
import { randomBytes } from 'node:crypto';
import { closeSync, mkdirSync, openSync, statSync, unlinkSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { errorCode, SECRET_DIR_MODE } from './atomic.js';
import { DirectoryError, type DirectoryKind } from './errors.js';

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
          : `Cannot create the ${name} ${abs} (${why}). Create it yourself or pass another ${FLAG[kind]}.`,
        { cause: e },
      );
    }
  }
  const probe = join(abs, `.probe-${process.pid}-${randomBytes(6).toString('hex')}`);
  try {
    closeSync(openSync(probe, 'wx', 0o600));
    unlinkSync(probe);
  } catch (e) {
    throw new DirectoryError(
      kind,
      abs,
      `The ${name} ${abs} is not writable by this user (${errorCode(e) ?? (e as Error).message}). Fix its permissions or pass another ${FLAG[kind]}.`,
      { cause: e },
    );
  }
  return abs;
}

function isDirectory(path: string): boolean {
  try {
    return statSync(path).isDirectory();
  } catch {
    return false;
  }
}
