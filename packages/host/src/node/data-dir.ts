/**
 * The node's data directory: `node.json` (public: format version and the node id),
 * `sealed/node.sealed` (the enclave's sealed node state) and `sealed/service.sealed` (the sealed
 * logchain service state: service key, ledger secrets, checkpoint epoch), both opaque to the
 * host, and `store/` (the record store, LevelDB). The directory is locked for the node's
 * lifetime so two nodes (or a node and `cloister ledger rotate-secret`) can never share it.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import {
  DirectoryError,
  ensureWritableDir,
  lockDirectory,
  PUBLIC_FILE_MODE,
  readFileOrUndefined,
  SECRET_DIR_MODE,
  SECRET_FILE_MODE,
  writeFileAtomic,
} from '../fs/index.js';

const FORMAT = 1;

export interface DataDir {
  readonly dir: string;
  readonly nodeId: string;
  /** The sealed node state, or an empty array on a node's first start. */
  readSealedNode(): Uint8Array;
  writeSealedNode(blob: Uint8Array): void;
  /** The sealed service state, or an empty array before the service's genesis. */
  readSealedService(): Uint8Array;
  /** Atomic and durable (write, fsync, rename, fsync the directory) before it returns. */
  writeSealedService(blob: Uint8Array): void;
  close(): void;
}

function readNodeJson(path: string): string | undefined {
  const raw = readFileOrUndefined(path, 'data');
  if (raw === undefined) return undefined;
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(raw).toString('utf8'));
  } catch {
    throw new DirectoryError('data', path, `${path} is not valid JSON; restore it from backup`);
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new DirectoryError('data', path, `${path} is not a JSON object; restore it from backup`);
  }
  const p = parsed as { format?: unknown; nodeId?: unknown };
  if (p.format !== FORMAT) {
    throw new DirectoryError(
      'data',
      path,
      `${path} has data format ${String(p.format)}; this node reads format ${FORMAT}`,
    );
  }
  if (typeof p.nodeId !== 'string' || !/^[a-z0-9][a-z0-9-]{0,63}$/.test(p.nodeId)) {
    throw new DirectoryError('data', path, `${path} has no valid nodeId; restore it from backup`);
  }
  return p.nodeId;
}

/**
 * Opens (creating on first use) and locks a data directory. `onLockLost` runs if the lock is
 * lost while held (another process took it over while this one was paused, then removed it):
 * the node should stop; without it, the lock's timer throws (lock.ts), killing the process.
 */
export function openDataDir(dir: string, onLockLost?: (error: Error) => void): DataDir {
  ensureWritableDir(dir, 'data');
  const release = lockDirectory(dir, {
    what: 'data',
    ...(onLockLost === undefined ? {} : { onCompromised: onLockLost }),
  });
  try {
    const nodeJson = join(dir, 'node.json');
    const sealedDir = join(dir, 'sealed');
    const sealedPath = join(sealedDir, 'node.sealed');
    const servicePath = join(sealedDir, 'service.sealed');
    let nodeId = readNodeJson(nodeJson);
    if (nodeId === undefined) {
      // A node's state without its node.json: a new id would be written, and the sealed state
      // (bound to the old id) would never open again. Refuse before writing anything.
      const orphan = [sealedPath, servicePath].find((p) => existsSync(p));
      if (orphan !== undefined) {
        throw new DirectoryError(
          'data',
          dir,
          `${nodeJson} is missing, but ${dir} holds a node's sealed state (${orphan}), which belongs to the node id node.json named: restore node.json from backup (nothing was written); a new node needs a new data directory`,
        );
      }
      nodeId = `n${randomBytes(8).toString('hex')}`;
      const body = `${JSON.stringify({ format: FORMAT, nodeId }, null, 2)}\n`;
      writeFileAtomic(nodeJson, Buffer.from(body), { mode: PUBLIC_FILE_MODE, kind: 'data' });
    }
    mkdirSync(sealedDir, { recursive: true, mode: SECRET_DIR_MODE });
    return {
      dir,
      nodeId,
      readSealedNode: () => readFileOrUndefined(sealedPath, 'data') ?? new Uint8Array(0),
      writeSealedNode: (blob) =>
        writeFileAtomic(sealedPath, blob, { mode: SECRET_FILE_MODE, kind: 'data' }),
      readSealedService: () => readFileOrUndefined(servicePath, 'data') ?? new Uint8Array(0),
      writeSealedService: (blob) =>
        writeFileAtomic(servicePath, blob, { mode: SECRET_FILE_MODE, kind: 'data' }),
      close: release,
    };
  } catch (e) {
    release();
    throw e;
  }
}
