/**
 * The platform directory (docs/platform.md, "Platform directory"):
 *
 *   platform.json        format marker, written last at initialisation:
 *                        {"format":"cloister-simulation-platform","version":1,
 *                         "publicKey":"<130 hex>","secretCheck":"<64 hex>"}
 *   platform-key.pem     platform signing key, P-256 PKCS#8 PEM, mode 0600
 *   sealing-secret.bin   root sealing secret, 32 random bytes, mode 0600
 *   counters.json        monotonic counters (counters.ts), mode 0600
 *   lock/                present while a process writes (fs/lock.ts)
 *
 * secretCheck = SHA-256(utf8("cloister/v1/platform/secret-check") ‖ secret). publicKey and
 * secretCheck let every open prove that the key and the secret are the ones created with the
 * directory: damage is a PlatformStateError, never a silent new key or secret (sealed data and
 * pinned keys depend on them).
 */

import type { KeyObject } from 'node:crypto';
import { createHash, randomBytes } from 'node:crypto';
import { renameSync } from 'node:fs';
import { join } from 'node:path';
import { bytesEqual, fromHex, toHex, utf8 } from '@cloister/core';
import { readFileOrUndefined, SECRET_FILE_MODE, writeFileAtomic } from '../fs/atomic.js';
import { ensureWritableDir } from '../fs/dirs.js';
import { lockDirectory } from '../fs/lock.js';
import { COUNTERS_FILE, encodeCounters } from './counters.js';
import { PlatformStateError } from './errors.js';
import { generateP256, privateKeyFromPem, privateKeyToPem, publicKeyBytes } from './p256.js';
import { deriveCountersMacKey, KEY_LENGTH } from './sealing.js';

export const FORMAT_FILE = 'platform.json';
export const KEY_FILE = 'platform-key.pem';
export const SECRET_FILE = 'sealing-secret.bin';
export const PLATFORM_FORMAT = 'cloister-simulation-platform';
export const PLATFORM_VERSION = 1;
const SECRET_CHECK_LABEL = 'cloister/v1/platform/secret-check';

/** What an open platform holds in memory. `rootSecret` is wiped on close. */
export interface PlatformMaterial {
  readonly dir: string;
  readonly privateKey: KeyObject;
  readonly publicKey: Uint8Array;
  readonly rootSecret: Uint8Array;
}

/**
 * Opens the platform directory, initialising it on first use (under the lock, so two processes
 * starting together create one key). Throws DirectoryError, DirectoryLockedError or
 * PlatformStateError.
 */
export function loadOrInitPlatform(dir: string, lockWaitMs: number): PlatformMaterial {
  const abs = ensureWritableDir(dir, 'platform');
  const formatPath = join(abs, FORMAT_FILE);
  let formatBytes = readFileOrUndefined(formatPath, 'platform');
  if (formatBytes === undefined) {
    const release = lockDirectory(abs, { what: 'platform', waitMs: lockWaitMs });
    try {
      formatBytes = readFileOrUndefined(formatPath, 'platform');
      if (formatBytes === undefined) formatBytes = initialise(abs);
    } finally {
      release();
    }
  }
  const format = parseFormat(formatPath, formatBytes);
  const privateKey = loadKey(join(abs, KEY_FILE));
  const publicKey = publicKeyBytes(privateKey);
  if (!bytesEqual(publicKey, format.publicKey)) {
    throw new PlatformStateError(
      KEY_FILE,
      `The platform key ${join(abs, KEY_FILE)} is not the key recorded in ${formatPath}: it was replaced or damaged.`,
    );
  }
  const rootSecret = loadSecret(join(abs, SECRET_FILE));
  if (!bytesEqual(secretCheck(rootSecret), format.secretCheck)) {
    throw new PlatformStateError(
      SECRET_FILE,
      `The sealing secret ${join(abs, SECRET_FILE)} is not the secret recorded in ${formatPath}: it was replaced or damaged.`,
    );
  }
  return { dir: abs, privateKey, publicKey, rootSecret };
}

/**
 * True when `dir`'s counters file is absent or counts nothing: no node ever moved a counter, so
 * no node finished a start on this platform (a platform without its format file cannot be opened
 * at all, and a node's first start increments its epoch counter).
 */
function countsNothing(dir: string): boolean {
  const bytes = readFileOrUndefined(join(dir, COUNTERS_FILE), 'platform');
  if (bytes === undefined) return true;
  try {
    const c = (JSON.parse(new TextDecoder().decode(bytes)) as { counters?: unknown }).counters;
    return typeof c === 'object' && c !== null && Object.keys(c).length === 0;
  } catch {
    return false;
  }
}

function initialise(dir: string): Uint8Array {
  const leftovers = [KEY_FILE, SECRET_FILE, COUNTERS_FILE].filter(
    (f) => readFileOrUndefined(join(dir, f), 'platform') !== undefined,
  );
  if (leftovers.length > 0) {
    if (!countsNothing(dir)) {
      throw new PlatformStateError(
        FORMAT_FILE,
        `The platform directory ${dir} holds ${leftovers.join(', ')} and counters a node moved, but no ${FORMAT_FILE}: it was deleted. Restore ${FORMAT_FILE} from a backup of this directory.`,
        {
          hint: `Restore ${FORMAT_FILE} (or the whole platform directory) from a backup. Never initialise it again: data sealed on this platform would no longer open.`,
        },
      );
    }
    // A first initialisation killed before its last file: nothing ever used these. Set aside
    // (not deleted) and initialised again, so a Ctrl-C at the wrong moment needs no hand repair.
    const stamp = `interrupted-${Date.now()}`;
    for (const f of leftovers) renameSync(join(dir, f), join(dir, `${f}.${stamp}`));
  }
  const key = generateP256();
  const secret = new Uint8Array(randomBytes(KEY_LENGTH));
  // A failed write leaves files a next initialisation sets aside (above): only the cause is said.
  const write = (name: string, bytes: Uint8Array): void =>
    writeFileAtomic(join(dir, name), bytes, { mode: SECRET_FILE_MODE, kind: 'platform' });
  try {
    write(KEY_FILE, utf8(privateKeyToPem(key)));
    write(SECRET_FILE, secret);
    const macKey = deriveCountersMacKey(secret);
    write(COUNTERS_FILE, encodeCounters(new Map(), macKey));
    macKey.fill(0);
    const format = utf8(
      `${JSON.stringify({
        format: PLATFORM_FORMAT,
        version: PLATFORM_VERSION,
        publicKey: toHex(publicKeyBytes(key)),
        secretCheck: toHex(secretCheck(secret)),
      })}\n`,
    );
    // Written last: its presence means every other file is complete.
    write(FORMAT_FILE, format);
    return format;
  } finally {
    secret.fill(0);
  }
}

interface Format {
  readonly publicKey: Uint8Array;
  readonly secretCheck: Uint8Array;
}

function parseFormat(path: string, bytes: Uint8Array): Format {
  const damaged = (why: string, cause?: unknown): PlatformStateError =>
    new PlatformStateError(FORMAT_FILE, `The platform format file ${path} is damaged: ${why}.`, {
      cause,
    });
  let parsed: unknown;
  try {
    parsed = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes));
  } catch (e) {
    throw damaged('it is not valid JSON', e);
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw damaged('it is not a JSON object');
  }
  const o = parsed as Record<string, unknown>;
  if (o.format !== PLATFORM_FORMAT) throw damaged(`"format" is not "${PLATFORM_FORMAT}"`);
  if (o.version !== PLATFORM_VERSION) {
    throw new PlatformStateError(
      FORMAT_FILE,
      `The platform directory ${path} has format version ${JSON.stringify(o.version)}; this Cloister supports version ${PLATFORM_VERSION} only. Use the Cloister release that created it, or a newer one.`,
    );
  }
  if (Object.keys(o).length !== 4) throw damaged('unexpected fields');
  const hex = (field: string, length: number): Uint8Array => {
    const v = o[field];
    if (typeof v !== 'string' || v.length !== length * 2) throw damaged(`"${field}" is malformed`);
    try {
      return fromHex(v, field);
    } catch (e) {
      throw damaged(`"${field}" is not hex`, e);
    }
  };
  return { publicKey: hex('publicKey', 65), secretCheck: hex('secretCheck', 32) };
}

function loadKey(path: string): KeyObject {
  const bytes = readFileOrUndefined(path, 'platform');
  if (bytes === undefined) {
    throw new PlatformStateError(KEY_FILE, `The platform key ${path} is missing.`);
  }
  try {
    return privateKeyFromPem(new TextDecoder().decode(bytes), 'it');
  } catch (e) {
    throw new PlatformStateError(
      KEY_FILE,
      `The platform key ${path} is damaged: ${(e as Error).message}.`,
      { cause: e },
    );
  }
}

function loadSecret(path: string): Uint8Array {
  const bytes = readFileOrUndefined(path, 'platform');
  if (bytes === undefined) {
    throw new PlatformStateError(SECRET_FILE, `The sealing secret ${path} is missing.`);
  }
  if (bytes.length !== KEY_LENGTH) {
    throw new PlatformStateError(
      SECRET_FILE,
      `The sealing secret ${path} is damaged: it holds ${bytes.length} bytes, not ${KEY_LENGTH}.`,
    );
  }
  const secret = new Uint8Array(bytes); // own copy, so that close() wipes the only one
  bytes.fill(0);
  return secret;
}

function secretCheck(secret: Uint8Array): Uint8Array {
  const h = createHash('sha256').update(SECRET_CHECK_LABEL, 'utf8').update(secret).digest();
  return new Uint8Array(h);
}
