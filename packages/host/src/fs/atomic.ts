/**
 * Crash-safe file writes. A reader of `path` sees either the old content or the new content in
 * full, never a mix or a truncated file, whatever moment the process or the machine stops at:
 *
 *   1. write the bytes to a fresh temporary file in the same directory (same file system),
 *   2. set its mode exactly (fchmod, so the umask does not matter) and fsync it,
 *   3. rename it over `path` (atomic on POSIX file systems), or, for `exclusive`, hard-link it to
 *      `path` (fails with EEXIST if `path` exists, so two creators cannot overwrite each other),
 *   4. fsync the directory, so the rename itself is durable before the call returns.
 *
 * Temporary files are named `.<name>.tmp-<pid>-<random>`; a crash can leave one behind, never a
 * damaged `path`.
 */
import { randomBytes } from 'node:crypto';
import {
  closeSync,
  fchmodSync,
  fsyncSync,
  linkSync,
  openSync,
  readFileSync,
  renameSync,
  unlinkSync,
  writeSync,
} from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { type DirectoryKind, errorCode, fileReadError, fileWriteError } from './errors.js';

export { errorCode };

/** Mode of files that hold secrets (keys, the platform root secret). */
export const SECRET_FILE_MODE = 0o600;
/** Mode of directories that hold secrets. */
export const SECRET_DIR_MODE = 0o700;
/** Mode of public build outputs (bundle, manifest). */
export const PUBLIC_FILE_MODE = 0o644;

export interface WriteFileAtomicOptions {
  /** Exact mode of the new file (not masked by the umask). */
  readonly mode: number;
  /**
   * Create only: fail with an `EEXIST` error (and leave the existing file untouched) when `path`
   * already exists. Without it, an existing file is replaced atomically.
   */
  readonly exclusive?: boolean;
  /**
   * The directory `path` belongs to: a failure is then a DirectoryError naming the file
   * (fileWriteError: a full disk said so); without it, the Node error as it comes.
   */
  readonly kind?: DirectoryKind;
}

/**
 * Writes `bytes` to `path` atomically and durably (see the module comment). Synchronous: it
 * returns only once the new content and its directory entry are on stable storage.
 * Throws the underlying Node error (ENOENT, EACCES, EEXIST with `exclusive`, ...), or with
 * `kind` a DirectoryError naming the file.
 */
export function writeFileAtomic(
  path: string,
  bytes: Uint8Array,
  options: WriteFileAtomicOptions,
): void {
  if (options.kind === undefined) {
    writeAtomic(path, bytes, options);
    return;
  }
  try {
    writeAtomic(path, bytes, options);
  } catch (e) {
    throw fileWriteError(options.kind, path, e);
  }
}

function writeAtomic(path: string, bytes: Uint8Array, options: WriteFileAtomicOptions): void {
  const dir = dirname(path);
  const tmp = join(dir, `.${basename(path)}.tmp-${process.pid}-${randomBytes(6).toString('hex')}`);
  const fd = openSync(tmp, 'wx', options.mode);
  let renamed = false;
  try {
    try {
      fchmodSync(fd, options.mode);
      let off = 0;
      while (off < bytes.length) off += writeSync(fd, bytes, off, bytes.length - off);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    if (options.exclusive) {
      linkSync(tmp, path); // EEXIST when path exists: create-if-absent without a race
    } else {
      renameSync(tmp, path);
      renamed = true;
    }
  } finally {
    if (!renamed) unlinkQuietly(tmp);
  }
  fsyncDirectory(dir);
}

/**
 * Reads a whole file, or returns undefined when it does not exist. Other errors are thrown: with
 * `kind`, as a DirectoryError naming the file (fileReadError); without, as they come.
 */
export function readFileOrUndefined(path: string, kind?: DirectoryKind): Uint8Array | undefined {
  try {
    const b = readFileSync(path);
    return new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
  } catch (e) {
    if (errorCode(e) === 'ENOENT') return undefined;
    throw kind === undefined ? e : fileReadError(kind, path, e);
  }
}

/** fsyncs a directory, making renames and creations inside it durable. */
export function fsyncDirectory(dir: string): void {
  const fd = openSync(dir, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

function unlinkQuietly(path: string): void {
  try {
    unlinkSync(path);
  } catch {
    // Already gone, or the directory vanished: nothing more to clean up.
  }
}
