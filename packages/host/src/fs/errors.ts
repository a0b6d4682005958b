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

  constructor(kind: DirectoryKind, dir: string, message: string, options?: { cause?: unknown }) {
    super(kind === 'platform' ? 'PLATFORM_DIR' : 'DATA_DIR', message, options);
    this.dir = dir;
  }
}

/** Another process (or another node in this process) holds the directory's lock. */
export class DirectoryLockedError extends CloisterError {
  readonly dir: string;

  constructor(kind: DirectoryKind, dir: string, message: string) {
    super(kind === 'platform' ? 'PLATFORM_LOCKED' : 'DATA_DIR_LOCKED', message);
    this.dir = dir;
  }
}
