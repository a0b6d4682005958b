import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import {
  copyFileSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  unlinkSync,
  writeFileSync,
} from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import {
  computeMeasurement,
  computeReportData,
  decodeEvidencePayload,
  decodeSign1,
  ES256_PROTECTED,
  encodeEvidencePayload,
  encodeSign1,
  InsecurePlatformError,
  isCloisterError,
  sha256,
  sign1ToBeSigned,
  toHex,
  verifyEs256,
  verifyEvidence,
} from '@cloister/core';
import { signManifest } from '../src/build/manifest.js';
import { encodeCounters } from '../src/platform/counters.js';
import {
  COUNTERS_FILE,
  CounterError,
  deriveSealingKey,
  FORMAT_FILE,
  generateP256,
  KEY_FILE,
  openSimulationPlatform,
  PlatformStateError,
  privateKeyToPem,
  publicKeyBytes,
  SECRET_FILE,
  SealPolicyError,
  type SimulationPlatform,
} from '../src/platform/index.js';
import { deriveCountersMacKey } from '../src/platform/sealing.js';
import { fixture, runChild } from './fixtures/platform/children.js';

const root = mkdtempSync(join(tmpdir(), 'cloister-platform-'));
after(() => rmSync(root, { recursive: true, force: true }));
let n = 0;
const freshDir = (): string => join(root, `p${n++}`);
const opened: SimulationPlatform[] = [];
after(() => {
  for (const p of opened) p.close();
});
const open = (dir: string): SimulationPlatform => {
  const p = openSimulationPlatform({ dir, lockWaitMs: 5000 });
  opened.push(p);
  return p;
};

const signerKey = generateP256();
const bundle = new TextEncoder().encode('"use strict"; /* an enclave */');
const manifestFor = (b: Uint8Array, svn: number, product = 1, key = signerKey): Uint8Array =>
  signManifest({ bundleHash: sha256(b), product, svn }, key);
const kid = (i = 0): Uint8Array => new Uint8Array(16).fill(i);

const counterError =
  (words: string) =>
  (e: unknown): boolean =>
    e instanceof CounterError && isCloisterError(e, 'COUNTER') && e.message.includes(words);

describe('platform directory', () => {
  test('first use creates the format file, a 0600 key, a 0600 32-byte secret and counters', () => {
    const dir = freshDir();
    const p = open(dir);
    assert.equal(p.platform, 'simulation');
    assert.equal(p.publicKey.length, 65);
    assert.equal(p.publicKey[0], 4);
    assert.equal(statSync(dir).mode & 0o777, 0o700);
    for (const f of [KEY_FILE, SECRET_FILE, COUNTERS_FILE, FORMAT_FILE]) {
      assert.equal(statSync(join(dir, f)).mode & 0o777, 0o600, f);
    }
    assert.equal(readFileSync(join(dir, SECRET_FILE)).length, 32);
    assert.match(readFileSync(join(dir, KEY_FILE), 'utf8'), /^-----BEGIN PRIVATE KEY-----\n/);
    const format = JSON.parse(readFileSync(join(dir, FORMAT_FILE), 'utf8'));
    assert.equal(format.version, 1);
    assert.equal(format.publicKey, toHex(p.publicKey));
  });

  test('reopening keeps the same key and the same sealing keys', () => {
    const dir = freshDir();
    const a = open(dir);
    const ia = a.admit(bundle, manifestFor(bundle, 1));
    const b = open(dir);
    const ib = b.admit(bundle, manifestFor(bundle, 1));
    assert.deepEqual(b.publicKey, a.publicKey);
    assert.deepEqual(b.sealKey(ib, 'signer', 1, kid()), a.sealKey(ia, 'signer', 1, kid()));
  });

  test('processes initialising one directory together create one key', async () => {
    const dir = freshDir();
    const runs = await Promise.all(
      [0, 1, 2, 3].map(() => runChild(fixture('platform-opener.ts'), [dir])),
    );
    for (const r of runs) assert.equal(r.code, 0, r.stderr);
    const keys = new Set(runs.map((r) => r.stdout.trim()));
    assert.equal(keys.size, 1);
    assert.equal([...keys][0], toHex(open(dir).publicKey));
  });

  const corrupt = (
    name: string,
    damage: (dir: string) => void,
    check: (e: unknown) => boolean,
  ): void => {
    test(name, () => {
      const dir = freshDir();
      open(dir).close();
      const key = readFileSync(join(dir, KEY_FILE));
      const secret = readFileSync(join(dir, SECRET_FILE));
      damage(dir);
      assert.throws(() => openSimulationPlatform({ dir }), check);
      // Never regenerated: whatever was there is left for the operator to restore.
      if (!name.includes('key')) assert.deepEqual(readFileSync(join(dir, KEY_FILE)), key);
      if (!name.includes('secret')) assert.deepEqual(readFileSync(join(dir, SECRET_FILE)), secret);
    });
  };
  const stateError =
    (file: string, words: string) =>
    (e: unknown): boolean =>
      e instanceof PlatformStateError &&
      isCloisterError(e, 'PLATFORM_STATE') &&
      e.file === file &&
      e.message.includes(words);
  corrupt(
    'a damaged key file is PLATFORM_STATE',
    (d) => writeFileSync(join(d, KEY_FILE), '-----BEGIN PRIVATE KEY-----\ngarbage\n'),
    stateError(KEY_FILE, 'damaged'),
  );
  corrupt(
    'a replaced key file is PLATFORM_STATE',
    (d) => writeFileSync(join(d, KEY_FILE), privateKeyToPem(generateP256())),
    stateError(KEY_FILE, 'not the key recorded'),
  );
  corrupt(
    'a missing key file is PLATFORM_STATE',
    (d) => unlinkSync(join(d, KEY_FILE)),
    stateError(KEY_FILE, 'missing'),
  );
  corrupt(
    'a truncated secret is PLATFORM_STATE',
    (d) => writeFileSync(join(d, SECRET_FILE), new Uint8Array(31)),
    stateError(SECRET_FILE, '31 bytes'),
  );
  corrupt(
    'a flipped secret byte is PLATFORM_STATE',
    (d) => {
      const s = readFileSync(join(d, SECRET_FILE));
      s[7] = (s[7] ?? 0) ^ 1;
      writeFileSync(join(d, SECRET_FILE), s);
    },
    stateError(SECRET_FILE, 'not the secret recorded'),
  );
  corrupt(
    'an unknown format version is refused by name',
    (d) => {
      const f = JSON.parse(readFileSync(join(d, FORMAT_FILE), 'utf8'));
      writeFileSync(join(d, FORMAT_FILE), JSON.stringify({ ...f, version: 2 }));
    },
    stateError(FORMAT_FILE, 'format version 2'),
  );
  corrupt(
    'a format file with a field more is PLATFORM_STATE',
    (d) => {
      const f = JSON.parse(readFileSync(join(d, FORMAT_FILE), 'utf8'));
      writeFileSync(join(d, FORMAT_FILE), JSON.stringify({ ...f, note: 'x' }));
    },
    stateError(FORMAT_FILE, 'unexpected fields'),
  );
  corrupt(
    'a damaged format file is PLATFORM_STATE',
    (d) => writeFileSync(join(d, FORMAT_FILE), '{"format":'),
    stateError(FORMAT_FILE, 'not valid JSON'),
  );
  corrupt(
    'platform files without a format file, after a node moved a counter, are refused, not overwritten',
    (d) => {
      const p = openSimulationPlatform({ dir: d });
      p.counterIncrement('epoch');
      p.close();
      unlinkSync(join(d, FORMAT_FILE));
    },
    (e) =>
      stateError(FORMAT_FILE, 'no platform.json: it was deleted')(e) &&
      /Never initialise it again/.test((e as { hint: string }).hint),
  );

  test('a first initialisation killed before its last file is set aside and done again', () => {
    const dir = freshDir();
    open(dir).close();
    const key = readFileSync(join(dir, KEY_FILE));
    // What a kill between the first files and platform.json leaves (no counter ever moved).
    unlinkSync(join(dir, FORMAT_FILE));
    const again = open(dir);
    try {
      assert.notDeepEqual(readFileSync(join(dir, KEY_FILE)), key, 'a new platform key');
      const aside = readdirSync(dir).filter((f) => f.includes('.interrupted-'));
      assert.equal(aside.length, 3, aside.join(', '));
      assert.deepEqual(
        readFileSync(join(dir, aside.find((f) => f.startsWith(KEY_FILE)) as string)),
        key,
        'the old files are kept, renamed',
      );
    } finally {
      again.close();
    }
  });
  corrupt(
    'a damaged counters file is COUNTER',
    (d) => writeFileSync(join(d, COUNTERS_FILE), 'not json'),
    counterError('not valid JSON'),
  );
  corrupt(
    'an edited counters file is COUNTER',
    (d) => {
      const c = JSON.parse(readFileSync(join(d, COUNTERS_FILE), 'utf8'));
      writeFileSync(join(d, COUNTERS_FILE), JSON.stringify({ ...c, counters: { epoch: 9 } }));
    },
    counterError('MAC does not verify'),
  );
  corrupt(
    'a missing counters file is COUNTER',
    (d) => unlinkSync(join(d, COUNTERS_FILE)),
    counterError('missing'),
  );
  test('a counters file from another platform directory is COUNTER', () => {
    const a = freshDir();
    const b = freshDir();
    open(a).counterIncrement('epoch');
    open(b).close();
    copyFileSync(join(a, COUNTERS_FILE), join(b, COUNTERS_FILE));
    assert.throws(() => openSimulationPlatform({ dir: b }), counterError('another platform'));
  });
});

describe('counters', () => {
  /** Writes `counters` (or what `edit` makes of its JSON) under the directory's own MAC key. */
  const writeSigned = (
    dir: string,
    counters: [string, number][],
    edit: (o: Record<string, unknown>) => Record<string, unknown> = (o) => o,
  ): void => {
    const macKey = deriveCountersMacKey(new Uint8Array(readFileSync(join(dir, SECRET_FILE))));
    const text = new TextDecoder().decode(encodeCounters(new Map(counters), macKey));
    writeFileSync(join(dir, COUNTERS_FILE), JSON.stringify(edit(JSON.parse(text))));
  };

  test('a counters file whose MAC verifies is still COUNTER with a bad name, value, field or version', () => {
    const cases: [
      string,
      [string, number][],
      (o: Record<string, unknown>) => Record<string, unknown>,
    ][] = [
      ['bad counter name "Epoch"', [['Epoch', 1]], (o) => o],
      ['counter epoch has a bad value', [['epoch', -1]], (o) => o],
      ['unexpected fields', [['epoch', 1]], (o) => ({ ...o, note: 'x' })],
      ['has format version 2', [['epoch', 1]], (o) => ({ ...o, version: 2 })],
    ];
    for (const [words, counters, edit] of cases) {
      const dir = freshDir();
      open(dir).close();
      writeSigned(dir, counters, edit);
      assert.throws(() => openSimulationPlatform({ dir }), counterError(words), words);
    }
  });

  test('a counter at 2^53 - 1 cannot be incremented', () => {
    const dir = freshDir();
    open(dir).close();
    writeSigned(dir, [['epoch', Number.MAX_SAFE_INTEGER]]);
    const p = open(dir);
    assert.throws(() => p.counterIncrement('epoch'), counterError('at its maximum'));
    assert.equal(p.counterRead('epoch'), Number.MAX_SAFE_INTEGER);
  });

  test('start at 0, increment by one, are independent, and survive reopening', () => {
    const dir = freshDir();
    const p = open(dir);
    assert.equal(p.counterRead('epoch'), 0);
    assert.equal(p.counterIncrement('epoch'), 1);
    assert.equal(p.counterIncrement('epoch'), 2);
    assert.equal(p.counterIncrement('other.counter-2'), 1);
    assert.equal(p.counterRead('epoch'), 2);
    const q = open(dir);
    assert.equal(q.counterRead('epoch'), 2);
    assert.equal(q.counterIncrement('epoch'), 3);
    assert.equal(p.counterRead('epoch'), 3);
  });

  test('names outside [a-z0-9.-]{1,64} are refused', () => {
    const p = open(freshDir());
    for (const bad of ['', 'Epoch', 'a/b', 'x'.repeat(65), 'é']) {
      assert.throws(
        () => p.counterIncrement(bad),
        (e: unknown) => isCloisterError(e, 'INVALID_INPUT'),
      );
      assert.throws(
        () => p.counterRead(bad),
        (e: unknown) => isCloisterError(e, 'INVALID_INPUT'),
      );
    }
    assert.equal(p.counterIncrement('x'.repeat(64)), 1);
  });

  test('a counters file rolled back under a running platform is COUNTER', () => {
    const dir = freshDir();
    const p = open(dir);
    p.counterIncrement('epoch');
    copyFileSync(join(dir, COUNTERS_FILE), join(dir, 'old'));
    p.counterIncrement('epoch');
    copyFileSync(join(dir, 'old'), join(dir, COUNTERS_FILE));
    assert.throws(() => p.counterRead('epoch'), counterError('went backwards from 2 to 1'));
    assert.throws(() => p.counterIncrement('epoch'), counterError('went backwards'));
  });

  test('a node holds its counters: a second holder is refused until the first closes; others share', () => {
    const dir = freshDir();
    open(dir).close();
    const a = openSimulationPlatform({ dir, holdCounters: true });
    const b = openSimulationPlatform({ dir, holdCounters: true });
    const shared = openSimulationPlatform({ dir });
    a.counterRead('svc.epoch');
    assert.throws(
      () => b.counterIncrement('svc.epoch'),
      (e: unknown) =>
        isCloisterError(e, 'COUNTER_IN_USE') &&
        /process \d+ on this machine is running the same service/.test((e as Error).message),
    );
    assert.throws(
      () => b.counterRead('svc.epoch'),
      (e: unknown) => isCloisterError(e, 'COUNTER_IN_USE'),
    );
    assert.equal(b.counterIncrement('other.epoch'), 1, 'another counter is free');
    assert.equal(shared.counterIncrement('svc.epoch'), 1, 'a handle that holds nothing shares');
    a.close();
    assert.equal(b.counterRead('svc.epoch'), 1);
    b.close();
    shared.close();
  });

  test('a copied hold naming a process that is gone says so, not that it runs', () => {
    const dir = freshDir();
    open(dir).close();
    // As `cp -r` of a platform directory while a node held its counter: a fresh lock directory
    // (another inode than its owner file names) whose owner process has exited.
    const gone = spawnSync(process.execPath, ['-e', 'process.exit(0)']).pid as number;
    const at = join(dir, 'in-use', 'svc.epoch');
    mkdirSync(join(at, 'lock'), { recursive: true });
    writeFileSync(join(at, 'lock.owner'), JSON.stringify({ pid: gone, host: hostname(), ino: 1 }));
    const p = openSimulationPlatform({ dir, holdCounters: true });
    assert.throws(
      () => p.counterRead('svc.epoch'),
      (e: unknown) =>
        isCloisterError(e, 'COUNTER_IN_USE') &&
        (e as Error).message.includes(`names process ${gone}, which is not running`) &&
        /goes stale within 10 s/.test((e as Error).message),
    );
    p.close();
  });

  test('processes incrementing one counter together never lose an increment', async () => {
    const dir = freshDir();
    open(dir).close();
    const children = 4;
    const each = 30;
    const runs = await Promise.all(
      Array.from({ length: children }, () =>
        runChild(fixture('counter-child.ts'), [dir, 'race', String(each)]),
      ),
    );
    const all: number[] = [];
    for (const r of runs) {
      assert.equal(r.code, 0, r.stderr);
      const values = JSON.parse(r.stdout) as number[];
      assert.deepEqual(
        values,
        [...values].sort((a, b) => a - b),
        'increasing within a process',
      );
      all.push(...values);
    }
    all.sort((a, b) => a - b);
    assert.deepEqual(
      all,
      Array.from({ length: children * each }, (_, i) => i + 1),
    );
    assert.equal(open(dir).counterRead('race'), children * each);
  });
});

describe('sealing keys', () => {
  const dir = freshDir();
  const p = open(dir);
  const e1 = p.admit(bundle, manifestFor(bundle, 1));
  const e2 = p.admit(bundle, manifestFor(bundle, 2));
  const e3 = p.admit(bundle, manifestFor(bundle, 3));
  const policyError = (e: unknown): boolean =>
    e instanceof SealPolicyError && isCloisterError(e, 'SEAL_POLICY');

  test('same identity, policy, svn and key id give the same 32-byte key', () => {
    const k = p.sealKey(e2, 'signer', 2, kid());
    assert.equal(k.length, 32);
    assert.deepEqual(p.sealKey(e2, 'signer', 2, kid()), k);
    assert.deepEqual(p.sealKey(p.admit(bundle, manifestFor(bundle, 2)), 'signer', 2, kid()), k);
    assert.deepEqual(p.sealKey(e2, 'code', 2, kid()), p.sealKey(e2, 'code', 2, kid()));
  });

  test('a newer enclave derives the older version key; an older one cannot', () => {
    const own2 = p.sealKey(e2, 'signer', 2, kid());
    assert.deepEqual(p.sealKey(e3, 'signer', 2, kid()), own2);
    assert.throws(() => p.sealKey(e1, 'signer', 2, kid()), policyError);
    assert.throws(() => p.sealKey(e1, 'code', 2, kid()), policyError);
    assert.notDeepEqual(p.sealKey(e1, 'signer', 1, kid()), own2);
  });

  test('keys differ by key id, policy, product, signer and code', () => {
    const base = p.sealKey(e2, 'signer', 2, kid(0));
    const other = (k: Uint8Array): void => assert.notDeepEqual(k, base);
    other(p.sealKey(e2, 'signer', 2, kid(1)));
    other(p.sealKey(e2, 'code', 2, kid(0)));
    other(p.sealKey(p.admit(bundle, manifestFor(bundle, 2, 7)), 'signer', 2, kid(0)));
    const otherSigner = p.admit(bundle, manifestFor(bundle, 2, 1, generateP256()));
    other(p.sealKey(otherSigner, 'signer', 2, kid(0)));
    // The code policy follows the measurement, which leaves the signer out (as MRENCLAVE does).
    assert.deepEqual(p.sealKey(otherSigner, 'code', 2, kid()), p.sealKey(e2, 'code', 2, kid()));
    const changed = new TextEncoder().encode('"use strict"; /* an enclave! */');
    const e2b = p.admit(changed, manifestFor(changed, 2));
    assert.notDeepEqual(p.sealKey(e2b, 'code', 2, kid()), p.sealKey(e2, 'code', 2, kid()));
    assert.deepEqual(p.sealKey(e2b, 'signer', 2, kid()), base);
  });

  test('another platform directory derives different keys', () => {
    const q = open(freshDir());
    const e2q = q.admit(bundle, manifestFor(bundle, 2));
    assert.notDeepEqual(q.sealKey(e2q, 'signer', 2, kid()), p.sealKey(e2, 'signer', 2, kid()));
    assert.notDeepEqual(q.sealKey(e2q, 'code', 2, kid()), p.sealKey(e2, 'code', 2, kid()));
    assert.throws(() => q.sealKey(e2, 'signer', 2, kid()), /did not admit/);
  });

  test('only identities this platform admitted count, and their fields cannot be edited', () => {
    const forged = { ...e1, svn: 9 };
    assert.throws(() => p.sealKey(forged, 'signer', 9, kid()), /did not admit/);
    const e = p.admit(bundle, manifestFor(bundle, 1));
    const before = p.sealKey(e, 'code', 1, kid());
    e.measurement.fill(0);
    (e as { svn: number }).svn = 9;
    assert.deepEqual(p.sealKey(e, 'code', 1, kid()), before);
    assert.throws(() => p.sealKey(e, 'signer', 2, kid()), policyError);
  });

  test('derivation matches the vector of docs/platform.md', () => {
    const secret = Uint8Array.from({ length: 32 }, (_, i) => i);
    const id = {
      measurement: new Uint8Array(32).fill(0x11),
      signer: new Uint8Array(32).fill(0x22),
      product: 1,
      svn: 3,
    };
    const keyId = new Uint8Array(16).fill(0x33);
    const code = toHex(deriveSealingKey(secret, id, 'code', 3, keyId));
    const signer = toHex(deriveSealingKey(secret, id, 'signer', 2, keyId));
    // Computed independently (Python hmac, RFC 5869) when the vector was made.
    assert.equal(code, '26d9bf2b21538801afb82ffd06d8bf472037c1e86b8c45c038b8a5190d2bcf5b');
    assert.equal(signer, '20b53dd429f6f6ae956c7978a5806390ec76debb29deff9b242de05f46c1f1c5');
    const doc = readFileSync(new URL('../../../docs/platform.md', import.meta.url), 'utf8');
    assert.ok(doc.includes(`code,   svn 3   ${code}`));
    assert.ok(doc.includes(`signer, svn 2   ${signer}`));
  });

  test('malformed requests are INVALID_INPUT', () => {
    const bad = (f: () => unknown): void => {
      assert.throws(f, (e: unknown) => isCloisterError(e, 'INVALID_INPUT'));
    };
    bad(() => p.sealKey(e2, 'signer', 1, new Uint8Array(15)));
    bad(() => p.sealKey(e2, 'signer', -1, kid()));
    bad(() => p.sealKey(e2, 'signer', 1.5, kid()));
    bad(() => p.sealKey(e2, 'mrenclave' as 'code', 1, kid()));
  });
});

describe('admit and report', () => {
  const p = open(freshDir());
  const identityKey = publicKeyBytes(generateP256());
  const nonce = new Uint8Array(32).fill(7);

  test('admit returns the identity of the exact bundle and manifest', () => {
    const id = p.admit(bundle, manifestFor(bundle, 4, 9));
    assert.equal(id.platform, 'simulation');
    assert.deepEqual(id.bundleHash, sha256(bundle));
    assert.deepEqual(id.measurement, computeMeasurement(sha256(bundle), 9, 4));
    assert.deepEqual(id.signer, sha256(publicKeyBytes(signerKey)));
    assert.equal(id.product, 9);
    assert.equal(id.svn, 4);
  });

  test('evidence decodes and verifies with core, insecure, bound to the identity key', async () => {
    const id = p.admit(bundle, manifestFor(bundle, 3, 2));
    const evidence = await p.report(id, computeReportData(identityKey, nonce));
    const claims = decodeEvidencePayload(decodeSign1(evidence).payload);
    assert.equal(claims.platform, 'simulation');
    assert.deepEqual(claims.platformKey, p.publicKey);
    assert.deepEqual(claims.measurement, id.measurement);
    assert.deepEqual(claims.signer, id.signer);
    assert.equal(claims.product, 2);
    assert.equal(claims.svn, 3);
    const constraint = `C:${toHex(id.measurement)} SEC:INSECURE`;
    const v = await verifyEvidence(evidence, { nonce, identityPublicKey: identityKey, constraint });
    assert.equal(v.secure, false);
    assert.deepEqual(v.measurement, id.measurement);
    await assert.rejects(
      verifyEvidence(evidence, {
        nonce,
        identityPublicKey: identityKey,
        constraint: `C:${toHex(id.measurement)}`,
      }),
      InsecurePlatformError,
    );
  });

  test('every report is the plain encoding of its claims, whatever the report data', async () => {
    // report() fills a pre-encoded template; it must give exactly what encoding from scratch gives.
    const id = p.admit(bundle, manifestFor(bundle, 5, 6));
    for (const fill of [0x00, 0x18, 0x58, 0xa1, 0xff, -1]) {
      const reportData =
        fill < 0 ? crypto.getRandomValues(new Uint8Array(64)) : new Uint8Array(64).fill(fill);
      const evidence = await p.report(id, reportData);
      const sign1 = decodeSign1(evidence);
      const expected = encodeEvidencePayload({
        v: 1,
        platform: 'simulation',
        measurement: id.measurement,
        signer: id.signer,
        product: id.product,
        svn: id.svn,
        reportData,
        platformKey: p.publicKey,
      });
      assert.deepEqual(sign1.payload, expected);
      assert.deepEqual(
        evidence,
        encodeSign1({
          protectedBytes: ES256_PROTECTED,
          payload: expected,
          signature: sign1.signature,
        }),
      );
      assert.ok(
        await verifyEs256(p.publicKey, sign1ToBeSigned(ES256_PROTECTED, expected), sign1.signature),
      );
    }
  });

  test('reportData must be 64 bytes; a closed platform refuses every call', async () => {
    const q = open(freshDir());
    const id = q.admit(bundle, manifestFor(bundle, 1));
    await assert.rejects(q.report(id, new Uint8Array(63)), /64 bytes/);
    q.close();
    q.close();
    await assert.rejects(q.report(id, new Uint8Array(64)), /closed/);
    assert.throws(() => q.sealKey(id, 'code', 1, kid()), /closed/);
    assert.throws(() => q.counterRead('epoch'), /closed/);
    assert.throws(() => q.admit(bundle, manifestFor(bundle, 1)), /closed/);
  });
});
