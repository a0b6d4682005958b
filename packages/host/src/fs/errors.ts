/**
 * Errors about the directories the host keeps its state in: the platform directory
 * (`--platform-dir`) and the node's data directory (`--data`).
 */
import { CloisterError } from '@cloister/core';

/** Which directory an error is about: it selects the error code and the flag named in it. */
export type DirectoryKind = 'platform' | 'data';

/** A directory is missing and cannot be created, is not a directory, or is not writable. */
export class DirectoryError extends CloisterError {
  readonly dir: string;

  constructor(
    kind: DirectoryKind,
    dir: string,
    message: string,
    options?: { cause?: unknown; hint?: string },
  ) {
    super(kind === 'platform' ? 'PLATFORM_DIR' : 'DATA_DIR', message, options);
    this.dir = dir;
  }
}

/** The `code` of a Node system error (`ENOENT`, ...), or undefined. */
export function errorCode(e: unknown): string | undefined {
  if (typeof e === 'object' && e !== null && 'code' in e && typeof e.code === 'string') {
    return e.code;
  }
  return undefined;
}

/** Error codes of a write refused because the disk, or this user's quota on it, is full. */
export function isDiskFull(code: string | undefined): boolean {
  return code === 'ENOSPC' || code === 'EDQUOT';
}

/**
 * A failed write of `path`, a file of the platform or the data directory (written with
 * writeFileAtomic, so it keeps its previous content), as a DirectoryError naming the file, the
 * cause and the next step: a full disk is said to be full, not left as a bare ENOSPC (or, from
 * inside an enclave call, as a generic boundary failure).
 */
export function fileWriteError(kind: DirectoryKind, path: string, e: unknown): DirectoryError {
  const detail = (e as Error | undefined)?.message ?? String(e);
  if (isDiskFull(errorCode(e))) {
    return new DirectoryError(
      kind,
      path,
      `the disk holding ${path} is full (${detail}): free space on it, then run the command again; nothing was lost (the file keeps its previous content)`,
      { cause: e, hint: `Free space on the disk that holds ${path}, then run the command again.` },
    );
  }
  return new DirectoryError(
    kind,
    path,
    `writing ${path} failed (${detail}): check that its disk is healthy and that this user may write there, then run the command again; the file keeps its previous content`,
    { cause: e },
  );
}

/**
 * A state file that exists but cannot be read (EIO, EACCES, EISDIR, …), as a DirectoryError
 * naming it: a bare errno with the "not expected" hint left the operator without the file or
 * the next step.
 */
export function fileReadError(kind: DirectoryKind, path: string, e: unknown): DirectoryError {
  const detail = (e as Error | undefined)?.message ?? String(e);
  return new DirectoryError(
    kind,
    path,
    `reading ${path} failed (${detail}): check that it is a file this user may read and that its disk is healthy, then run the command again; nothing was changed`,
    { cause: e },
  );
}

/** Another process (or another node in this process) holds the directory's lock. */
export class DirectoryLockedError extends CloisterError {
  readonly dir: string;

  constructor(kind: DirectoryKind, dir: string, message: string) {
    super(kind === 'platform' ? 'PLATFORM_LOCKED' : 'DATA_DIR_LOCKED', message);
    this.dir = dir;
  }
}
