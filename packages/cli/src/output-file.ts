/**
 * Files the CLI writes for the user (receipts, generated types): never over a file that is not
 * one of its own kind (an identity key given by mistake as `--receipt` was overwritten), checked
 * before any work when the work cannot be undone (a transaction), and written atomically.
 */
import { readFileSync, statSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { decodeReceipt, InvalidInputError } from '@cloister/core';
import { PUBLIC_FILE_MODE, writeFileAtomic } from '@cloister/host';

/** What may be replaced: a test of the existing file's bytes, and its kind for messages. */
export interface OutputKind {
  /** "a receipt", "generated types": what the file is meant to hold. */
  readonly what: string;
  /** True when the existing content is of this kind, so replacing it loses nothing. */
  readonly replaces: (existing: Uint8Array) => boolean;
}

/** Largest existing file read to decide whether it may be replaced. */
const MAX_EXISTING_BYTES = 8 * 1024 * 1024;

/**
 * What is wrong with the folder a new file at `file` (absolute) would go in, or undefined when it
 * is a folder: the CLI never makes one (a missing folder is most often a typo).
 */
export function folderProblem(
  file: string,
): 'does not exist' | 'is a file, not a folder' | undefined {
  const dir = statSync(dirname(file), { throwIfNoEntry: false });
  if (dir === undefined) return 'does not exist';
  return dir.isDirectory() ? undefined : 'is a file, not a folder';
}

/**
 * Checks that `path` can take the output: its folder exists, and it is absent or holds `kind`
 * already. Returns the absolute path. InvalidInputError naming the path and what to do otherwise.
 */
export function checkOutputFile(path: string, kind: OutputKind, option: string): string {
  const file = resolve(path);
  if (folderProblem(file) !== undefined) {
    throw new InvalidInputError(
      `${option} ${file}: the folder ${dirname(file)} does not exist; create it, or give another path`,
    );
  }
  let existing: ReturnType<typeof statSync> | undefined;
  try {
    existing = statSync(file);
  } catch {
    return file; // absent: fine
  }
  if (!existing.isFile()) {
    throw new InvalidInputError(`${option} ${file} is not a file; give a file path`);
  }
  let ours = false;
  if (existing.size <= MAX_EXISTING_BYTES) {
    try {
      ours = kind.replaces(new Uint8Array(readFileSync(file)));
    } catch {
      ours = false;
    }
  }
  if (!ours) {
    throw new InvalidInputError(
      `${option} ${file} exists and does not hold ${kind.what}: it is not overwritten; give another file name, or move that file away first`,
    );
  }
  return file;
}

/** Writes `bytes` to `path` after checkOutputFile, atomically (a temporary file renamed). */
export function writeOutputFile(
  path: string,
  bytes: Uint8Array | string,
  kind: OutputKind,
  option: string,
): string {
  const file = checkOutputFile(path, kind, option);
  try {
    writeFileAtomic(file, typeof bytes === 'string' ? new TextEncoder().encode(bytes) : bytes, {
      mode: PUBLIC_FILE_MODE,
    });
  } catch (e) {
    throw new InvalidInputError(`${option} ${file} could not be written: ${(e as Error).message}`);
  }
  return file;
}

/** A receipt file: may replace one holding a receipt (a retried request), nothing else. */
export const RECEIPT_FILE: OutputKind = {
  what: 'a receipt',
  replaces: (b) => {
    decodeReceipt(b);
    return true;
  },
};
