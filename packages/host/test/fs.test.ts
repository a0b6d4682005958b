import assert from 'node:assert/strict';
import fs, {
  chmodSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  rmSync,
  statSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import { syncBuiltinESMExports } from 'node:module';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, mock, test } from 'node:test';
import { isCloisterError } from '@cloister/core';
import {
  DirectoryError,
  DirectoryLockedError,
  ensureWritableDir,
  LOCK_NAME,
  LOCK_OWNER_NAME,
  lockDirectory,
  readFileOrUndefined,
  whyNotCreated,
  writeFileAtomic,
} from '../src/fs/index.js';
import { LOCK_GATE_NAME } from '../src/fs/lock.js';
import { openDataDir } from '../src/node/data-dir.js';
import { fixture, killChild, startChild, waitForLine } from './fixtures/platform/children.js';

const root = mkdtempSync(join(tmpdir(), 'cloister-fs-'));
after(() => rmSync(root, { recursive: true, force: true }));
let n = 0;
const fresh = (): string => {
  const d = join(root, `t${n++}`);
  mkdirSync(d);
  return d;
};

describe('writeFileAtomic', () => {
  test('writes the bytes with the exact mode, whatever the umask', () => {
    const dir = fresh();
    const old = process.umask(0o000);
    try {
      writeFileAtomic(join(dir, 'secret'), new Uint8Array([1, 2, 3]), { mode: 0o600 });
    } finally {
      process.umask(old);
    }
    const wide = process.umask(0o077);
    try {
      writeFileAtomic(join(dir, 'public'), new Uint8Array([4]), { mode: 0o644 });
    } finally {
      process.umask(wide);
    }
    assert.deepEqual([...readFileSync(join(dir, 'secret'))], [1, 2, 3]);
    assert.equal(statSync(join(dir, 'secret')).mode & 0o777, 0o600);
    assert.equal(statSync(join(dir, 'public')).mode & 0o777, 0o644);
  });

  test('replaces an existing file and leaves no temporary file behind', () => {
    const dir = fresh();
    const p = join(dir, 'f');
    writeFileAtomic(p, new Uint8Array([1]), { mode: 0o600 });
    writeFileAtomic(p, new Uint8Array([2, 2]), { mode: 0o600 });
    assert.deepEqual([...readFileSync(p)], [2, 2]);
    assert.deepEqual(readdirSync(dir), ['f']);
  });

  test('exclusive creation refuses an existing file and keeps it intact', () => {
    const dir = fresh();
    const p = join(dir, 'f');
    writeFileAtomic(p, new Uint8Array([1]), { mode: 0o600, exclusive: true });
    assert.throws(
      () => writeFileAtomic(p, new Uint8Array([9]), { mode: 0o600, exclusive: true }),
      (e: NodeJS.ErrnoException) => e.code === 'EEXIST',
    );
    assert.deepEqual([...readFileSync(p)], [1]);
    assert.deepEqual(readdirSync(dir), ['f']);
  });

  test('a missing directory is an ENOENT error, not a partial file', () => {
    const dir = fresh();
    assert.throws(
      () => writeFileAtomic(join(dir, 'no', 'f'), new Uint8Array(1), { mode: 0o600 }),
      (e: NodeJS.ErrnoException) => e.code === 'ENOENT',
    );
  });

  test('a writer killed at any moment leaves the old or the new content, never a mix', async () => {
    const dir = fresh();
    const p = join(dir, 'f');
    const size = 512 * 1024;
    for (let round = 0; round < 6; round++) {
      const child = startChild(fixture('atomic-writer.ts'), [p, String(size)]);
      const target = 5 + round * 7;
      await waitForLine(child, (l) => Number(l) >= target);
      await killChild(child);
      const bytes = readFileSync(p);
      assert.equal(bytes.length, size, `round ${round}: file has ${bytes.length} bytes`);
      const first = bytes[0];
      assert.ok(first === 0x61 || first === 0x62);
      assert.ok(
        bytes.every((b) => b === first),
        `round ${round}: mixed content`,
      );
    }
  });
});

describe('readFileOrUndefined', () => {
  test('returns the bytes, or undefined for a missing file; other errors are thrown', () => {
    const dir = fresh();
    writeFileSync(join(dir, 'f'), 'hi');
    assert.deepEqual(readFileOrUndefined(join(dir, 'f')), new Uint8Array([0x68, 0x69]));
    assert.equal(readFileOrUndefined(join(dir, 'missing')), undefined);
    assert.throws(
      () => readFileOrUndefined(dir),
      (e: NodeJS.ErrnoException) => e.code === 'EISDIR',
    );
  });

  test('with a kind, a file that exists but cannot be read is a DirectoryError naming it', () => {
    const dir = fresh();
    for (const [kind, code] of [
      ['data', 'DATA_DIR'],
      ['platform', 'PLATFORM_DIR'],
    ] as const) {
      assert.throws(
        () => readFileOrUndefined(dir, kind),
        (e: unknown) =>
          e instanceof DirectoryError &&
          e.code === code &&
          e.message.includes(`reading ${dir} failed`) &&
          e.message.includes('EISDIR') &&
          /this user may read/.test(e.message),
      );
      assert.equal(readFileOrUndefined(join(dir, 'missing'), kind), undefined);
    }
  });

  test("a data directory's sealed state that cannot be read is named, not a bare errno", () => {
    const dir = fresh();
    const first = openDataDir(dir);
    first.writeSealedNode(new Uint8Array([1, 2, 3]));
    first.close();
    // A sealed file replaced by a directory: readable as nothing, so not "missing" either.
    const sealed = join(dir, 'sealed', 'node.sealed');
    rmSync(sealed);
    mkdirSync(sealed);
    const again = openDataDir(dir);
    try {
      assert.throws(
        () => again.readSealedNode(),
        (e: unknown) =>
          e instanceof DirectoryError && e.code === 'DATA_DIR' && e.message.includes(sealed),
      );
      assert.deepEqual(again.readSealedService(), new Uint8Array(0));
    } finally {
      again.close();
    }
  });
});

describe('openDataDir', () => {
  test('a node.json whose node id is not [a-z0-9][a-z0-9-]{0,63} is refused by name', () => {
    const dir = fresh();
    openDataDir(dir).close();
    const path = join(dir, 'node.json');
    const good = JSON.parse(readFileSync(path, 'utf8')) as { format: unknown; nodeId: string };
    assert.match(good.nodeId, /^[a-z0-9][a-z0-9-]{0,63}$/);
    for (const nodeId of ['', 'N1', '-n1', 'n1/../x', 'n'.repeat(65), 7]) {
      writeFileSync(path, JSON.stringify({ format: good.format, nodeId }));
      assert.throws(
        () => openDataDir(dir),
        (e: unknown) =>
          e instanceof DirectoryError &&
          e.code === 'DATA_DIR' &&
          e.message === `${path} has no valid nodeId; restore it from backup`,
        JSON.stringify(nodeId),
      );
    }
    // Refused before anything was written, and the lock released: the good one opens again.
    writeFileSync(path, JSON.stringify(good));
    const again = openDataDir(dir);
    assert.equal(again.nodeId, good.nodeId);
    again.close();
  });
});

describe('openDataDir: format, orphaned state, modes', () => {
  test('a node.json of another data format is refused by name, and the lock released', () => {
    const dir = fresh();
    openDataDir(dir).close();
    const path = join(dir, 'node.json');
    const good = JSON.parse(readFileSync(path, 'utf8')) as { format: number; nodeId: string };
    for (const format of [good.format + 1, 0, String(good.format)]) {
      writeFileSync(path, JSON.stringify({ format, nodeId: good.nodeId }));
      assert.throws(
        () => openDataDir(dir),
        (e: unknown) =>
          e instanceof DirectoryError &&
          e.code === 'DATA_DIR' &&
          e.message ===
            `${path} has data format ${String(format)}; this node reads format ${good.format}`,
        JSON.stringify(format),
      );
    }
  });

  test('a missing node.json beside either sealed file alone is refused; no new node id is written', () => {
    for (const orphan of ['node.sealed', 'service.sealed']) {
      const dir = fresh();
      openDataDir(dir).close();
      rmSync(join(dir, 'node.json'));
      writeFileSync(join(dir, 'sealed', orphan), 'sealed state');
      assert.throws(
        () => openDataDir(dir),
        (e: unknown) =>
          e instanceof DirectoryError &&
          e.code === 'DATA_DIR' &&
          e.message.includes(`holds a node's sealed state (${join(dir, 'sealed', orphan)})`),
        orphan,
      );
      assert.equal(existsSync(join(dir, 'node.json')), false, orphan);
    }
  });

  test('the sealed states are written owner-only (0600), in an owner-only folder (0700)', () => {
    const dir = fresh();
    const data = openDataDir(dir);
    try {
      data.writeSealedNode(new Uint8Array([1]));
      data.writeSealedService(new Uint8Array([2]));
      assert.equal(statSync(join(dir, 'sealed')).mode & 0o777, 0o700);
      for (const f of ['node.sealed', 'service.sealed']) {
        assert.equal(statSync(join(dir, 'sealed', f)).mode & 0o777, 0o600, f);
      }
      assert.deepEqual(data.readSealedNode(), new Uint8Array([1]));
      assert.deepEqual(data.readSealedService(), new Uint8Array([2]));
    } finally {
      data.close();
    }
  });
});

describe('lockDirectory', () => {
  test('a held data directory lock is DATA_DIR_LOCKED naming the directory', () => {
    const dir = fresh();
    const release = lockDirectory(dir, { what: 'data' });
    assert.ok(existsSync(join(dir, LOCK_NAME)));
    assert.throws(
      () => lockDirectory(dir, { what: 'data' }),
      (e: unknown) =>
        e instanceof DirectoryLockedError &&
        isCloisterError(e, 'DATA_DIR_LOCKED') &&
        e.message.includes(dir) &&
        e.message.includes('--data'),
    );
    release();
    release(); // idempotent
    assert.ok(!existsSync(join(dir, LOCK_NAME)));
    lockDirectory(dir, { what: 'data' })();
  });

  test('a lock held by another process is PLATFORM_LOCKED; a dead holder is recovered', async () => {
    const dir = fresh();
    const child = startChild(fixture('lock-holder.ts'), [dir, 'platform']);
    await waitForLine(child, (l) => l === 'locked');
    assert.throws(
      () => lockDirectory(dir, { what: 'platform', waitMs: 50 }),
      (e: unknown) => isCloisterError(e, 'PLATFORM_LOCKED') && (e as Error).message.includes(dir),
    );
    await killChild(child); // SIGKILL: the child cannot remove its lock
    assert.ok(existsSync(join(dir, LOCK_NAME)), 'the dead process left its lock behind');
    // Age the lock as if its holder had stopped refreshing it long ago (no waiting on clocks).
    const old = new Date(Date.now() - 60_000);
    utimesSync(join(dir, LOCK_NAME), old, old);
    const release = lockDirectory(dir, { what: 'platform' });
    release();
    assert.ok(!existsSync(join(dir, LOCK_NAME)));
  });

  test('a lock whose holder process is gone is taken over at once, without waiting for it to age', async () => {
    const dir = fresh();
    const child = startChild(fixture('lock-holder.ts'), [dir, 'data']);
    await waitForLine(child, (l) => l === 'locked');
    assert.ok(existsSync(join(dir, LOCK_OWNER_NAME)), 'the holder wrote who it is');
    assert.throws(
      () => lockDirectory(dir, { what: 'data' }),
      (e: unknown) => isCloisterError(e, 'DATA_DIR_LOCKED'),
    );
    await killChild(child); // SIGKILL: the lock and its fresh mtime stay behind
    const release = lockDirectory(dir, { what: 'data' }); // waitMs 0: no waiting at all
    assert.equal(
      JSON.parse(readFileSync(join(dir, LOCK_OWNER_NAME), 'utf8')).pid,
      process.pid,
      'now this process holds it',
    );
    release();
    assert.ok(!existsSync(join(dir, LOCK_NAME)));
    assert.ok(!existsSync(join(dir, LOCK_OWNER_NAME)), 'a clean release leaves no owner file');
    // An owner file that is not the lock's (an earlier holder's, another inode) proves nothing.
    const held = lockDirectory(dir, { what: 'data' });
    const owner = JSON.parse(readFileSync(join(dir, LOCK_OWNER_NAME), 'utf8'));
    writeFileSync(
      join(dir, LOCK_OWNER_NAME),
      JSON.stringify({ ...owner, pid: 2 ** 22 + 7, ino: owner.ino + 1 }),
    );
    const other = startChild(fixture('lock-holder.ts'), [dir, 'data']);
    const out = await new Promise<string>((resolve) => {
      let text = '';
      other.stdout?.on('data', (d) => {
        text += d;
      });
      other.stderr?.on('data', (d) => {
        text += d;
      });
      other.on('exit', () => resolve(text));
    });
    assert.match(out, /DATA_DIR_LOCKED|locked by another running node/);
    held();
  });

  test('an owner file naming a dead process is believed only for the lock directory it names', () => {
    // A lock directory whose holder wrote no owner file yet, beside an earlier holder's owner
    // file: its process is gone, but the inode it names is another directory's.
    const dir = fresh();
    mkdirSync(join(dir, LOCK_NAME));
    const ino = statSync(join(dir, LOCK_NAME)).ino;
    const stale = { pid: 2 ** 22 + 7, host: hostname(), ino: ino + 1 };
    const ns = (() => {
      try {
        return readlinkSync('/proc/self/ns/pid');
      } catch {
        return undefined;
      }
    })();
    const write = (o: object): void =>
      writeFileSync(join(dir, LOCK_OWNER_NAME), JSON.stringify({ ...o, ...(ns ? { ns } : {}) }));
    write(stale);
    assert.throws(
      () => lockDirectory(dir, { what: 'data' }),
      (e: unknown) => isCloisterError(e, 'DATA_DIR_LOCKED'),
    );
    assert.equal(statSync(join(dir, LOCK_NAME)).ino, ino, 'the lock was left alone');
    // The same owner file naming this lock directory: taken over at once.
    write({ ...stale, ino });
    lockDirectory(dir, { what: 'data' })();
    assert.ok(!existsSync(join(dir, LOCK_NAME)));
  });

  test('a gate left by a process that died inside it is removed once stale, then entered', () => {
    const dir = fresh();
    const gate = join(dir, LOCK_GATE_NAME);
    mkdirSync(gate);
    // Fresh: another process is inside (a few system calls), so the lock is busy.
    assert.throws(
      () => lockDirectory(dir, { what: 'data' }),
      (e: unknown) => isCloisterError(e, 'DATA_DIR_LOCKED'),
    );
    const old = new Date(Date.now() - 60_000);
    utimesSync(gate, old, old);
    const release = lockDirectory(dir, { what: 'data', waitMs: 5000 });
    assert.ok(existsSync(join(dir, LOCK_NAME)));
    assert.ok(!existsSync(gate));
    release();
  });

  test('a release removes only its own owner file', () => {
    const dir = fresh();
    const release = lockDirectory(dir, { what: 'platform' });
    const other = { pid: 2 ** 22 + 9, host: hostname(), ino: 1 };
    writeFileSync(join(dir, LOCK_OWNER_NAME), JSON.stringify(other));
    release();
    assert.deepEqual(JSON.parse(readFileSync(join(dir, LOCK_OWNER_NAME), 'utf8')), other);
  });

  test('processes taking over dead owners one after another never hold the lock two at once', async () => {
    // Each child takes the lock and dies holding it; every next one takes a dead owner's lock
    // over. Without the gate around each take, a review saw two holders in 9 of 60 takes (the
    // lock directory's inode is reused at once, so a stale owner file matched a fresh lock).
    const dir = fresh();
    const log = join(dir, '..', `${Date.now()}-takeovers.log`);
    const children = Array.from({ length: 8 }, () =>
      startChild(fixture('lock-and-die.ts'), [dir, log]),
    );
    await Promise.all(children.map((c) => new Promise((r) => c.once('exit', r))));
    const lines = readFileSync(log, 'utf8').trim().split('\n');
    assert.deepEqual(
      lines.filter((l) => l !== 'got'),
      [],
      'no DOUBLE (two holders) and no ERR (a lock never taken over)',
    );
    assert.equal(lines.length, 8);
  });

  test('a lock lost while held calls onCompromised (a node stops cleanly instead of crashing)', async () => {
    const dir = fresh();
    let lost: Error | undefined;
    const release = lockDirectory(dir, {
      what: 'data',
      staleMs: 2000,
      onCompromised: (e) => {
        lost = e;
      },
    });
    // Another start took the lock over as stale, failed, and removed it on its way out.
    rmSync(join(dir, LOCK_NAME), { recursive: true });
    // The holder notices at its next refresh (every staleMs / 2).
    for (let i = 0; i < 60 && lost === undefined; i++) await new Promise((r) => setTimeout(r, 100));
    assert.ok(lost instanceof Error, 'onCompromised ran');
    release(); // already lost: nothing to release, no throw
  });

  test('an owner file a full disk refuses leaves no temporary file behind; the lock holds', () => {
    const dir = fresh();
    const write = fs.writeFileSync;
    mock.method(fs, 'writeFileSync', (...a: Parameters<typeof fs.writeFileSync>) => {
      if (String(a[0]).startsWith(join(dir, `${LOCK_OWNER_NAME}.`))) {
        write(a[0], ''); // created, then no room for its bytes
        throw Object.assign(new Error('ENOSPC: no space left on device, write'), {
          code: 'ENOSPC',
        });
      }
      return write(...a);
    });
    syncBuiltinESMExports();
    try {
      const release = lockDirectory(dir, { what: 'platform' });
      assert.deepEqual(readdirSync(dir), [LOCK_NAME]);
      release();
    } finally {
      mock.restoreAll();
      syncBuiltinESMExports();
    }
    assert.deepEqual(readdirSync(dir), []);
  });

  test('a directory where no lock can be created is a DirectoryError', () => {
    const dir = join(fresh(), 'missing');
    assert.throws(
      () => lockDirectory(dir, { what: 'platform' }),
      (e: unknown) => e instanceof DirectoryError && isCloisterError(e, 'PLATFORM_DIR'),
    );
  });
});

describe('ensureWritableDir', () => {
  test('creates missing directories with mode 0700', () => {
    const dir = join(fresh(), 'a', 'b');
    assert.equal(ensureWritableDir(dir, 'platform'), dir);
    assert.equal(statSync(dir).mode & 0o777, 0o700);
    assert.equal(ensureWritableDir(dir, 'platform'), dir);
  });

  test('an uncreatable directory is a named error with the flag to change', () => {
    const base = fresh();
    writeFileSync(join(base, 'file'), 'x');
    assert.throws(
      () => ensureWritableDir(join(base, 'file', 'sub'), 'data'),
      (e: unknown) =>
        e instanceof DirectoryError &&
        isCloisterError(e, 'DATA_DIR') &&
        e.message.includes('Cannot create') &&
        e.message.includes('--data'),
    );
    assert.throws(
      () => ensureWritableDir(join(base, 'file'), 'platform'),
      (e: unknown) =>
        isCloisterError(e, 'PLATFORM_DIR') &&
        (e as Error).message.includes('not a directory') &&
        (e as Error).message.includes('--platform-dir'),
    );
  });

  test('a data directory under a file names that file (ENOTDIR)', () => {
    const base = fresh();
    const file = join(base, 'file');
    writeFileSync(file, 'x');
    assert.throws(
      () => ensureWritableDir(join(file, 'a', 'data'), 'data'),
      (e: unknown) =>
        isCloisterError(e, 'DATA_DIR') &&
        (e as Error).message ===
          `Cannot create the data directory ${join(file, 'a', 'data')}: ${file} is a file, not a directory (ENOTDIR). Pass another --data, or move that file away.`,
    );
  });

  test('a directory on a read-only file system says so, not ENOENT (access as the kernel answers)', () => {
    const base = fresh();
    const readOnly = (path: string) => {
      throw Object.assign(new Error(`EROFS: read-only file system, access '${path}'`), {
        code: 'EROFS',
      });
    };
    assert.equal(
      whyNotCreated(join(base, 'path', 'data'), 'ENOENT', 'data', readOnly),
      `: ${base} is on a read-only file system (EROFS). Pass a --data on a writable one, or mount it read-write.`,
    );
    const denied = (path: string) => {
      throw Object.assign(new Error(`EACCES: permission denied, access '${path}'`), {
        code: 'EACCES',
      });
    };
    assert.match(
      whyNotCreated(join(base, 'path', 'data'), 'ENOENT', 'platform', denied),
      new RegExp(
        `^: this user \\(uid \\d+\\) may not write in ${base} \\(EACCES\\)\\..* --platform-dir\\.$`,
      ),
    );
    assert.equal(
      whyNotCreated(join(base, 'data'), 'EIO', 'data', () => {}),
      ' (EIO). Create it yourself or pass another --data.',
    );
  });

  test('a data directory under one this user may not write in names it (EACCES)', {
    skip: process.getuid?.() === 0 && 'run as root: permission bits do not bind root',
  }, () => {
    const base = fresh();
    chmodSync(base, 0o500);
    try {
      assert.throws(
        () => ensureWritableDir(join(base, 'path', 'data'), 'data'),
        (e: unknown) =>
          isCloisterError(e, 'DATA_DIR') &&
          (e as Error).message.includes(`may not write in ${base} (EACCES)`),
      );
    } finally {
      chmodSync(base, 0o700);
    }
  });

  test('an existing but unwritable directory is a named error', () => {
    // Permission bits do not bind root; /proc refuses new files even to root.
    let dir = '/proc';
    if (process.getuid?.() !== 0) {
      dir = fresh();
      chmodSync(dir, 0o500);
    }
    assert.throws(
      () => ensureWritableDir(dir, 'platform'),
      (e: unknown) =>
        isCloisterError(e, 'PLATFORM_DIR') && (e as Error).message.includes('not writable'),
    );
    if (dir !== '/proc') chmodSync(dir, 0o700);
  });
  test('the probe file that proved a directory writable is removed', () => {
    const dir = join(fresh(), 'd');
    ensureWritableDir(dir, 'data');
    ensureWritableDir(dir, 'data');
    assert.deepEqual(readdirSync(dir), []);
  });

  test('a probe refused by a read-only file system or a full disk says so, with what to do', () => {
    // The probe is the first file created in the directory: fail its creation as the kernel would.
    const refuse = (code: string) => {
      const open = fs.openSync;
      mock.method(fs, 'openSync', (...a: Parameters<typeof fs.openSync>) => {
        if (String(a[0]).includes('.probe-')) {
          throw Object.assign(new Error(`${code}: refused, open '${String(a[0])}'`), { code });
        }
        return open(...a);
      });
      syncBuiltinESMExports();
    };
    const dir = fresh();
    try {
      refuse('EROFS');
      assert.throws(
        () => ensureWritableDir(dir, 'data'),
        (e: unknown) =>
          isCloisterError(e, 'DATA_DIR') &&
          (e as Error).message ===
            `The data directory ${dir} is on a read-only file system (EROFS). Pass a --data on a writable one, or mount it read-write.`,
      );
      mock.restoreAll();
      refuse('ENOSPC');
      assert.throws(
        () => ensureWritableDir(dir, 'platform'),
        (e: unknown) =>
          isCloisterError(e, 'PLATFORM_DIR') &&
          (e as Error).message ===
            `The disk holding the platform directory ${dir} is full (ENOSPC): free space on it, then run the command again.`,
      );
    } finally {
      mock.restoreAll();
      syncBuiltinESMExports();
    }
  });

  test('an EPERM on the nearest ancestor, and a full disk, are named in why a directory was not created', () => {
    const base = fresh();
    const notPermitted = (path: string) => {
      throw Object.assign(new Error(`EPERM: operation not permitted, access '${path}'`), {
        code: 'EPERM',
      });
    };
    assert.match(
      whyNotCreated(join(base, 'path', 'data'), 'ENOENT', 'data', notPermitted),
      new RegExp(
        `^: this user \\(uid \\d+\\) may not write in ${base} \\(EPERM\\)\\..* --data\\.$`,
      ),
    );
    assert.equal(
      whyNotCreated(join(base, 'data'), 'ENOSPC', 'data', () => {}),
      ': its disk is full (ENOSPC). Free space on it, then run again.',
    );
  });
});
