export {
  errorCode,
  fsyncDirectory,
  PUBLIC_FILE_MODE,
  readFileOrUndefined,
  SECRET_DIR_MODE,
  SECRET_FILE_MODE,
  type WriteFileAtomicOptions,
  writeFileAtomic,
} from './atomic.js';
export { ensureWritableDir, whyNotCreated } from './dirs.js';
export { DirectoryError, type DirectoryKind, DirectoryLockedError } from './errors.js';
export {
  DEFAULT_STALE_MS,
  LOCK_NAME,
  LOCK_OWNER_NAME,
  type LockDirectoryOptions,
  lockDirectory,
  type ReleaseLock,
  sleepSync,
} from './lock.js';
