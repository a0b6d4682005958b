/**
 * The "./node" adapters: identity PEM files (mode 0600, never overwritten, group/world-readable
 * refused, imported non-extractable), the JSON state file (atomic, 0600, a damaged file refused
 * by name) and the ws transport (binary frames in order; a text frame closes the socket).
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHmac, createPrivateKey, generateKeyPairSync, hkdfSync } from 'node:crypto';
import {
  chmodSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import { createServer as createHttpServer } from 'node:http';
import { type AddressInfo, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import {
  isCloisterError,
  leafHash,
  MAX_FRAME,
  MerkleLog,
  sha256,
  toHex,
  utf8,
  webCryptoScp,
} from '@cloister/core';
import { WebSocketServer } from 'ws';
import { connect as connectWith } from '../src/client.js';
import { generateIdentity } from '../src/identity.js';
import {
  claimsSaltFor,
  createIdentityFile,
  fileState,
  IdentityFileError,
  loadIdentity,
  wsTransport,
} from '../src/node.js';
import { STATE_LOCK_STALE_MS, withStateLock } from '../src/state-lock.js';
import { CONSTRAINT, FakeNode } from './fake-node.js';

const tmp = mkdtempSync(join(tmpdir(), 'cloister-client-node-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

const refused = (pattern: RegExp) => (e: unknown) => {
  assert.ok(isCloisterError(e, 'INVALID_INPUT'), String(e));
  assert.match(e.message, pattern);
  return true;
};

describe('the entry', () => {
  it('exports the error base class and the registry a caller branches on', async () => {
    // docs/scp.md §7: every failure is a CloisterError; `instanceof` needs the class exported.
    const sdk = await import('../src/node.js');
    const core = await import('@cloister/core');
    assert.equal(sdk.CloisterError, core.CloisterError);
    assert.equal(sdk.isCloisterError, core.isCloisterError);
    assert.equal(sdk.ERROR_CODES, core.ERROR_CODES);
    assert.ok(new sdk.NetworkError('x') instanceof sdk.CloisterError);
    // No options at all: named (it was a TypeError reading `transport` of undefined).
    await assert.rejects(sdk.connect('http://127.0.0.1:1', undefined as never), {
      code: 'INVALID_INPUT',
      message: 'connect needs options { constraint, identity }',
    });
  });

  it("an app's refusal carries its own code and message (docs/app-abi.md §13)", async () => {
    const { nodeError } = await import('../src/errors.js');
    const sdk = await import('../src/node.js');
    const e = nodeError(
      'APP_ERROR',
      'the app refused the call: insufficient_funds: have 3: need 5',
    );
    assert.ok(e instanceof sdk.AppCallError);
    assert.equal(e.code, 'APP_ERROR');
    assert.equal((e as InstanceType<typeof sdk.AppCallError>).appCode, 'insufficient_funds');
    assert.equal((e as InstanceType<typeof sdk.AppCallError>).appMessage, 'have 3: need 5');
    // Worded otherwise (an older node, a clipped code): still APP_ERROR, without the parts.
    const other = nodeError('APP_ERROR', 'refused');
    assert.equal(other.code, 'APP_ERROR');
    assert.ok(!(other instanceof sdk.AppCallError));
    // A code outside [A-Za-z0-9_.-] (no app can fail with one) is not read as the app's.
    const odd = nodeError('APP_ERROR', 'the app refused the call: E!X: m');
    assert.ok(!(odd instanceof sdk.AppCallError), 'an app code of other characters');
    // A code outside the registry is the node's protocol fault, named with the code it sent.
    const unknown = nodeError('NOT_A_CODE', 'whatever');
    assert.equal(unknown.code, 'SCP_PROTOCOL', 'an unregistered code is not passed on');
    assert.match(unknown.message, /unknown error code "NOT_A_CODE": whatever/, 'the code is named');
  });
});

describe('identity files', () => {
  it('creates a 0600 PKCS#8 file, loads the same key, and signs verifiably', async () => {
    const file = join(tmp, 'keys', 'me.pem');
    const made = await createIdentityFile(file);
    assert.equal(statSync(file).mode & 0o777, 0o600);
    const loaded = await loadIdentity(file);
    assert.deepEqual(loaded.publicKey, made.publicKey);
    assert.equal(loaded.publicKey.length, 65);
    const data = utf8('hello');
    assert.ok(await webCryptoScp.verify(made.publicKey, data, await loaded.sign(data)));
    assert.deepEqual(
      readdirSync(join(tmp, 'keys')),
      ['me.pem'],
      'no temporary file is left behind',
    );
  });

  it('claimsSaltFor: 32 bytes, the same for the same inputs, another for any other input', async () => {
    const a = join(tmp, 'salt-a.pem');
    const b = join(tmp, 'salt-b.pem');
    await createIdentityFile(a);
    await createIdentityFile(b);
    const svc = new Uint8Array(65).fill(4);
    const other = new Uint8Array(65).fill(5);
    const s = claimsSaltFor(a, svc, 'shop', 'order-1');
    assert.equal(s.length, 32);
    assert.deepEqual(claimsSaltFor(a, svc, 'shop', 'order-1'), s, 'deterministic');
    const variants = [
      claimsSaltFor(b, svc, 'shop', 'order-1'),
      claimsSaltFor(a, other, 'shop', 'order-1'),
      claimsSaltFor(a, svc, 'shop2', 'order-1'),
      claimsSaltFor(a, svc, 'shop', 'order-2'),
      // The app/request boundary is length-prefixed: "shop"+"x1" is not "shopx"+"1".
      claimsSaltFor(a, svc, 'shopx', '1'),
    ];
    const seen = new Set([toHex(s), ...variants.map(toHex)]);
    assert.equal(seen.size, variants.length + 1);
    assert.notDeepEqual(claimsSaltFor(a, svc, 'shop', 'x1'), claimsSaltFor(a, svc, 'shopx', '1'));
    assert.throws(() => claimsSaltFor(a, svc, 'shop', ''), refused(/request id/));
    assert.throws(() => claimsSaltFor(a, svc, '', 'order-1'), refused(/app name/));
    // Its length is two bytes (mutation round 15: A7): 65,536 bytes would wrap to a prefix of 0.
    assert.throws(
      () => claimsSaltFor(a, new Uint8Array(0x10000), 'shop', 'order-1'),
      refused(/^a service identity is the bytes of client\.service\.identity$/),
    );
    assert.equal(claimsSaltFor(a, new Uint8Array(0xffff), 'shop', 'order-1').length, 32);
    chmodSync(a, 0o644);
    assert.throws(() => claimsSaltFor(a, svc, 'shop', 'order-1'), refused(/chmod 600/));
  });

  it('claimsSaltFor is the documented construction (docs/scp.md §6), byte for byte', async () => {
    const file = join(tmp, 'salt-kat.pem');
    await createIdentityFile(file);
    const svc = Uint8Array.from({ length: 65 }, (_, i) => i);
    // Built here from the specification, independently of the code under test.
    const jwk = createPrivateKey(readFileSync(file)).export({ format: 'jwk' });
    const d = Buffer.from(jwk.d as string, 'base64url');
    const info = utf8('cloister/client/claims-salt-key/v1');
    const key = Buffer.from(hkdfSync('sha256', d, new Uint8Array(0), info, 32));
    const message = Buffer.concat([
      Buffer.from([0, 65]),
      svc,
      Buffer.from([0, 4]),
      Buffer.from('shop'),
      Buffer.from('order-1'),
    ]);
    const expected = createHmac('sha256', key).update(message).digest('hex');
    assert.equal(toHex(claimsSaltFor(file, svc, 'shop', 'order-1')), expected);
    // Both bytes of the lengths (mutation round 15: A2): an app name of 300 bytes is 01 2c.
    const long = 'a'.repeat(300);
    const longMessage = Buffer.concat([
      Buffer.from([0, 65]),
      svc,
      Buffer.from([0x01, 0x2c]),
      Buffer.from(long),
      Buffer.from('order-1'),
    ]);
    assert.equal(
      toHex(claimsSaltFor(file, svc, long, 'order-1')),
      createHmac('sha256', key).update(longMessage).digest('hex'),
    );
  });

  it('refuses to overwrite an existing file; a folder, or a file used as one, is named as such', async () => {
    const file = join(tmp, 'exists.pem');
    writeFileSync(file, 'precious', { mode: 0o600 });
    await assert.rejects(createIdentityFile(file), refused(/already exists/));
    // Both were "already exists: it is refused to overwrite a key".
    const folder = join(tmp, 'a-folder');
    mkdirSync(folder);
    await assert.rejects(
      createIdentityFile(folder),
      refused(/a-folder is a folder: give the path of a new file in it \(e\.g\. .*identity\.pem\)/),
    );
    await assert.rejects(
      createIdentityFile(join(file, 'identity.pem')),
      refused(/exists\.pem is a file, not a folder/),
    );
  });

  it('a key file the system cannot create is IdentityFileError naming path and cause (coverage gap)', async () => {
    // (Missing folders are created; as root, permissions do not stop a write: a name too long does.)
    const path = join(tmp, `${'k'.repeat(300)}.pem`);
    await assert.rejects(createIdentityFile(path), (e: unknown) => {
      assert.ok(e instanceof IdentityFileError, String(e));
      assert.ok(e.message.startsWith(`cannot write ${path}: `), e.message);
      assert.match(e.message, /ENAMETOOLONG/);
      return true;
    });
  });

  it('refuses a group- or world-readable file, naming the fix', async () => {
    const file = join(tmp, 'open.pem');
    await createIdentityFile(file);
    chmodSync(file, 0o644);
    await assert.rejects(loadIdentity(file), refused(/chmod 600/));
    chmodSync(file, 0o640);
    await assert.rejects(loadIdentity(file), refused(/mode 640/));
    // Others' bits alone count too (a check of the group's only let 604 through).
    chmodSync(file, 0o604);
    await assert.rejects(loadIdentity(file), refused(/mode 604/));
  });

  it('a missing file names `cloister keys new`; a non-key or another curve is refused', async () => {
    await assert.rejects(loadIdentity(join(tmp, 'none.pem')), refused(/cloister keys new/));
    const junk = join(tmp, 'junk.pem');
    writeFileSync(junk, 'not a key', { mode: 0o600 });
    await assert.rejects(
      loadIdentity(junk),
      refused(/not a PEM private key \(it holds no PEM block\)/),
    );
    // What it holds is said before any advice about its mode (a receipt given by mistake was
    // told to `chmod 600`), and OpenSSL's decoder text is not shown.
    const receiptLike = join(tmp, 'r.cbor');
    writeFileSync(receiptLike, Uint8Array.of(0xd2, 0x84, 0x43), { mode: 0o644 });
    await assert.rejects(loadIdentity(receiptLike), (e: unknown) => {
      assert.match((e as Error).message, /not a PEM private key \(it holds no PEM block\)/);
      assert.doesNotMatch((e as Error).message, /chmod|error:1E/);
      return true;
    });
    const pub = join(tmp, 'pub.pem');
    const pair = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    writeFileSync(pub, pair.publicKey.export({ type: 'spki', format: 'pem' }), { mode: 0o600 });
    await assert.rejects(loadIdentity(pub), refused(/it holds a public key, not the private key/));
    writeFileSync(join(tmp, 'empty.pem'), '', { mode: 0o600 });
    await assert.rejects(loadIdentity(join(tmp, 'empty.pem')), refused(/the file is empty/));
    const p384 = join(tmp, 'p384.pem');
    const k = generateKeyPairSync('ec', { namedCurve: 'P-384' });
    writeFileSync(p384, k.privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600 });
    await assert.rejects(loadIdentity(p384), refused(/not a P-256/));
    // A directory was told to `chmod 600` (its mode is 755): it is named as a directory.
    const dir = join(tmp, 'a-dir');
    mkdirSync(dir);
    await assert.rejects(
      loadIdentity(dir),
      refused(/is a directory: give the identity's PEM file/),
    );
  });

  it('accepts a SEC1 "EC PRIVATE KEY" file and imports the key non-extractable', async () => {
    const file = join(tmp, 'sec1.pem');
    const k = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    writeFileSync(file, k.privateKey.export({ type: 'sec1', format: 'pem' }), { mode: 0o600 });
    const subtle = globalThis.crypto.subtle;
    const original = subtle.importKey.bind(subtle);
    const imports: { format: string; extractable: boolean }[] = [];
    subtle.importKey = ((format: string, ...rest: unknown[]) => {
      imports.push({ format, extractable: rest[2] as boolean });
      return (original as (...a: unknown[]) => Promise<CryptoKey>)(format, ...rest);
    }) as typeof subtle.importKey;
    try {
      await loadIdentity(file);
    } finally {
      subtle.importKey = original;
    }
    assert.deepEqual(
      imports.find((i) => i.format === 'pkcs8'),
      { format: 'pkcs8', extractable: false },
    );
  });
});

describe('the state file', () => {
  it('keeps pins and roots across instances, mode 0600', async () => {
    const dir = join(tmp, 'state');
    const a = fileState(dir);
    const svc = sha256(utf8('service'));
    assert.equal(await a.pins.get('ws://x/v1/scp'), undefined);
    await a.pins.put('ws://x/v1/scp', svc);
    await a.roots.put({ service: svc, size: 9, root: sha256(utf8('root')) });
    const b = fileState(dir);
    assert.deepEqual(await b.pins.get('ws://x/v1/scp'), svc);
    assert.deepEqual(await b.roots.get(svc), { service: svc, size: 9, root: sha256(utf8('root')) });
    assert.equal(statSync(join(dir, 'client-state.json')).mode & 0o777, 0o600);
    assert.deepEqual(readdirSync(dir), ['client-state.json']);
  });

  it('puts with `previous` are compare-and-sets (another process may have written meanwhile)', async () => {
    const dir = join(tmp, 'cas');
    const state = fileState(dir);
    const a = sha256(utf8('a'));
    const b = sha256(utf8('b'));
    const changed = (e: unknown) => isCloisterError(e, 'CLIENT_STATE_LOCKED');
    await state.pins.put('u', a, null);
    await assert.rejects(state.pins.put('u', b, null), changed);
    await assert.rejects(state.pins.put('u', b, b), changed);
    assert.deepEqual(await state.pins.get('u'), a, 'nothing written');
    await state.pins.put('u', b, a);
    assert.deepEqual(await state.pins.get('u'), b);
    const root = (n: number) => ({ service: a, size: n, root: sha256(utf8(`r${n}`)) });
    await state.roots.put(root(5), null);
    await assert.rejects(state.roots.put(root(7), root(4)), changed);
    await assert.rejects(state.roots.put(root(7), null), changed);
    assert.equal((await state.roots.get(a))?.size, 5, 'nothing written');
    await state.roots.put(root(7), root(5));
    assert.equal((await state.roots.get(a))?.size, 7);
  });

  it('a damaged file is refused by name, never reset', async () => {
    const dir = join(tmp, 'damaged');
    await fileState(dir).pins.put('u', sha256(utf8('s')));
    writeFileSync(join(dir, 'client-state.json'), '{"v":1,"pins":');
    await assert.rejects(fileState(dir).pins.get('u'), refused(/client-state\.json is damaged/));
    // Valid JSON of another shape is damaged too: an array of pins read as "never pinned", and
    // every pin written to it was dropped.
    const hex = 'ab'.repeat(32);
    for (const text of [
      // Another version's file (mutation round 15: F4): not read as this one.
      '{"v":2,"pins":{},"roots":{}}',
      '{"pins":{},"roots":{}}',
      '{"v":1,"pins":[],"roots":[]}',
      '{"v":1,"pins":null,"roots":{}}',
      '{"v":1,"pins":{"u":"not hex"},"roots":{}}',
      `{"v":1,"pins":{},"roots":{"${hex}":{"size":-1,"root":"${hex}"}}}`,
      `{"v":1,"pins":{},"roots":{"${hex}":{"size":1,"root":"short"}}}`,
      `{"v":1,"pins":{},"roots":{"short":{"size":1,"root":"${hex}"}}}`,
      '[]',
      'null',
    ]) {
      writeFileSync(join(dir, 'client-state.json'), text);
      await assert.rejects(
        fileState(dir).pins.get('u'),
        refused(/client-state\.json is damaged/),
        text,
      );
      await assert.rejects(
        fileState(dir).pins.put('u', sha256(utf8('s'))),
        refused(/damaged/),
        text,
      );
    }
  });
  it('a state file that cannot be read is an error, never taken as no pins (coverage gap)', async () => {
    const dir = join(tmp, 'unreadable');
    mkdirSync(join(dir, 'client-state.json'), { recursive: true });
    const state = fileState(dir);
    await assert.rejects(state.pins.get('u'), refused(/^cannot read .*client-state\.json: EISDIR/));
    await assert.rejects(state.roots.get(sha256(utf8('s'))), refused(/^cannot read /));
    await assert.rejects(state.pins.put('u', sha256(utf8('s'))), refused(/^cannot read /));
  });
});

describe('the state file shared by processes', () => {
  const writer = fileURLToPath(new URL('./fixtures/state-writer.ts', import.meta.url));
  const run = (dir: string, name: string, n: number) =>
    new Promise<number | null>((resolve, reject) => {
      const p = spawn(process.execPath, ['--import', 'tsx', writer, dir, name, String(n)], {
        stdio: ['ignore', 'ignore', 'inherit'],
      });
      p.on('error', reject);
      p.on('exit', resolve);
    });

  it('four processes writing pins at once lose none; their lock sections never overlap', async () => {
    const dir = join(tmp, 'shared');
    const names = ['a', 'b', 'c', 'd'];
    const codes = await Promise.all(names.map((name) => run(dir, name, 12)));
    assert.deepEqual(codes, [0, 0, 0, 0]);
    const pins = JSON.parse(readFileSync(join(dir, 'client-state.json'), 'utf8')).pins;
    for (const name of names) {
      for (let i = 0; i < 12; i++) {
        assert.equal(pins[`ws://${name}-${i}/v1/scp`], toHex(sha256(utf8(`${name}-${i}`))), name);
      }
    }
    // Sections: enter X, exit X, enter Y, exit Y, ... never two entered at once.
    const lines = readFileSync(join(dir, 'sections.log'), 'utf8').trim().split('\n');
    assert.equal(lines.length, 4 * 12 * 2);
    for (let i = 0; i < lines.length; i += 2) {
      assert.equal(lines[i + 1], lines[i]?.replace('enter', 'exit'), `line ${i}`);
    }
    assert.ok(!readdirSync(dir).includes('client-state.json.lock'), 'the lock is released');
  });

  it('a section inside the lock may write (the hold is shared within the process)', async () => {
    const dir = join(tmp, 'reentrant');
    const state = fileState(dir);
    assert.equal(fileState(dir), state, 'one state object per file in a process');
    const svc = sha256(utf8('s'));
    await state.lock?.(async () => {
      await state.pins.put('u', svc);
      await state.roots.put({ service: svc, size: 1, root: svc });
    });
    assert.deepEqual(await state.pins.get('u'), svc);
  });

  it('a directory this process may not write: reads work under the lock, a change fails by name', async () => {
    const script = fileURLToPath(new URL('./fixtures/state-readonly.ts', import.meta.url));
    // Root writes anywhere: the check runs as another user then (nobody).
    const asOther = process.getuid?.() === 0 ? { uid: 65534, gid: 65534 } : {};
    const out = await new Promise<string>((resolve, reject) => {
      const p = spawn(process.execPath, ['--import', 'tsx', script], {
        ...asOther,
        stdio: ['ignore', 'pipe', 'inherit'],
      });
      let text = '';
      p.stdout.on('data', (d) => {
        text += d;
      });
      p.on('error', reject);
      p.on('exit', (code) => (code === 0 ? resolve(text) : reject(new Error(`exit ${code}`))));
    });
    const r = JSON.parse(out);
    assert.equal(r.readUnderLock, true);
    assert.equal(r.put.code, 'INVALID_INPUT');
    assert.match(r.put.message, /cannot save the client state .* make .* writable/);
    // Its folder not made yet (mutation round 15: S4): the same, not the file system's error.
    assert.equal(r.missingRead, 'none');
    assert.equal(r.missingPut.code, 'INVALID_INPUT');
    assert.match(r.missingPut.message, /cannot save the client state .*not-yet.* make .* writable/);
  });

  it('a node stalling its consistency proof holds up no other process', async () => {
    // The root check fetches the proof before it takes the lock: the other process takes first
    // use of another node's pin at once (before, it waited on the lock until its handshake
    // timed out, and reported NETWORK).
    const dir = join(tmp, 'stall');
    const n = new FakeNode();
    n.apps.set('shop', { codeId: sha256(utf8('shop')) });
    const c = await connectWith('http://node.test:7410', {
      constraint: CONSTRAINT,
      identity: await generateIdentity(),
      transport: n.transport,
      state: fileState(dir),
    });
    const t1 = await c.app('shop').transact('pay', { a: 1 });
    await c.receipt(t1.txid, { wait: true, claims: t1.claims });
    const t2 = await c.app('shop').transact('pay', { a: 2 });
    n.stallConsistency = true;
    const stalled = c.receipt(t2.txid, { wait: true, claims: t2.claims });
    stalled.catch(() => undefined);
    await new Promise((r) => setTimeout(r, 300));
    const script = fileURLToPath(new URL('./fixtures/state-connect.ts', import.meta.url));
    const out = await new Promise<string>((resolve, reject) => {
      const p = spawn(process.execPath, ['--import', 'tsx', script, dir], {
        stdio: ['ignore', 'pipe', 'inherit'],
      });
      let text = '';
      p.stdout.on('data', (d) => {
        text += d;
      });
      p.on('error', reject);
      p.on('exit', () => resolve(text));
    });
    const r = JSON.parse(out) as { code: string; ms: number };
    assert.equal(r.code, 'ok', JSON.stringify(r));
    await c.close();
  });

  it('a process stalled inside its write past a takeover does not put an older root back', async () => {
    const dir = join(tmp, 'stalled');
    const script = fileURLToPath(new URL('./fixtures/state-stalled-writer.ts', import.meta.url));
    const p = spawn(process.execPath, ['--import', 'tsx', script, dir], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let text = '';
    const stalled = new Promise<void>((resolve) => {
      p.stdout.on('data', (d) => {
        text += d;
        if (text.includes('stalling')) resolve();
      });
    });
    const exited = new Promise<void>((resolve) => p.on('exit', () => resolve()));
    await stalled;
    // This process takes the lock over once the stalled one stops refreshing it (5 s), and
    // stores a newer root (30) while the other still holds its older one (20) to write.
    const log = new MerkleLog();
    for (let i = 0; i < 40; i++) log.append(leafHash(Uint8Array.of(i)));
    const service = sha256(utf8('service'));
    const stored = await fileState(dir).roots.get(service);
    await fileState(dir).roots.put({ service, size: 30, root: log.root(30) }, stored ?? null);
    await exited;
    const r = JSON.parse(text.split('\n').find((l) => l.startsWith('{')) ?? '{}');
    assert.equal(r.size, 30, `the newest root stays: ${text}`);
    assert.ok(r.check === 'ok' || r.check === 'CLIENT_STATE_LOCKED', text);
  });

  it('a hold lost while held (its lock removed or taken over) writes nothing', async () => {
    const dir = join(tmp, 'lost');
    const state = fileState(dir);
    const svc = sha256(utf8('s'));
    await assert.rejects(
      state.lock?.(async () => {
        // What another process's takeover looks like to this one: the lock is no longer ours.
        rmSync(join(dir, 'client-state.json.lock'), { recursive: true });
        await new Promise((r) => setTimeout(r, STATE_LOCK_STALE_MS / 2 + 1500));
        await state.pins.put('u', svc);
      }) ?? Promise.resolve(),
      (e: unknown) => {
        assert.ok(isCloisterError(e, 'CLIENT_STATE_LOCKED'), String(e));
        assert.match(e.message, /taken over .* nothing was written/);
        return true;
      },
    );
    assert.equal(await state.pins.get('u'), undefined);
    // The next section takes the lock afresh and writes.
    await state.pins.put('u', svc);
    assert.deepEqual(await state.pins.get('u'), svc);
  });

  it('a lock left by a dead process is taken over; a live one is waited for, then named', async () => {
    const dir = join(tmp, 'stale');
    mkdirSync(dir, { recursive: true });
    const lock = join(dir, 'client-state.json.lock');
    mkdirSync(lock);
    const old = (Date.now() - STATE_LOCK_STALE_MS - 5000) / 1000;
    utimesSync(lock, old, old);
    await fileState(dir).pins.put('u', sha256(utf8('s')));
    assert.ok(!readdirSync(dir).includes('client-state.json.lock'));
    // A fresh lock another process holds (its directory, mtime now): CLIENT_STATE_LOCKED.
    const other = join(tmp, 'held');
    mkdirSync(join(other, 'x.lock'), { recursive: true });
    await assert.rejects(
      withStateLock(join(other, 'x'), join(other, 'x.lock'), async () => 1, 300),
      (e: unknown) => {
        assert.ok(isCloisterError(e, 'CLIENT_STATE_LOCKED'), String(e));
        assert.match(e.message, /x\.lock/);
        return true;
      },
    );
  });
});

describe('the ws transport', () => {
  it('gives up on a server that accepts the connection but never answers the upgrade', async () => {
    const sockets: import('node:net').Socket[] = [];
    const server = createServer((s) => sockets.push(s)); // accepts, reads nothing, answers nothing
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    try {
      const port = (server.address() as AddressInfo).port;
      // Without the open timeout this waited for ever (the test runner's own timeout then).
      await assert.rejects(wsTransport(200)(`ws://127.0.0.1:${port}/v1/scp`), /timed out/i);
    } finally {
      for (const s of sockets) s.destroy();
      await new Promise((r) => server.close(r));
    }
  });

  it("passes on why the node refused the upgrade (a full node's 503 SCP_SESSIONS), clipped", async () => {
    const server = createHttpServer((_req, res) => res.end());
    server.on('upgrade', (_req, socket) => {
      const body = JSON.stringify({
        error: {
          code: 'SCP_SESSIONS',
          message: `this node is full; retry later${'!'.repeat(5000)}`,
        },
      });
      socket.end(
        `HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`,
      );
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    try {
      const port = (server.address() as AddressInfo).port;
      await assert.rejects(wsTransport()(`ws://127.0.0.1:${port}/v1/scp`), (e: unknown) => {
        const m = (e as Error).message;
        assert.match(
          m,
          /^the node refused the connection \(HTTP 503: SCP_SESSIONS: this node is full; retry later!+…\)$/,
        );
        assert.ok(m.length < 400, `${m.length} characters`);
        return true;
      });
    } finally {
      await new Promise((r) => server.close(r));
    }
  });

  it('a refusal whose body drips is given up after the open timeout (a host cannot hold connect)', async () => {
    const sockets: import('node:net').Socket[] = [];
    const server = createHttpServer((_req, res) => res.end());
    server.on('upgrade', (_req, socket) => {
      sockets.push(socket as import('node:net').Socket);
      socket.write('HTTP/1.1 503 Service Unavailable\r\ncontent-length: 100000\r\n\r\n{');
      const drip = setInterval(() => socket.write(' '), 50);
      socket.on('close', () => clearInterval(drip));
      socket.on('error', () => clearInterval(drip));
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    try {
      const port = (server.address() as AddressInfo).port;
      await assert.rejects(
        wsTransport(300)(`ws://127.0.0.1:${port}/v1/scp`),
        /the node refused the connection \(HTTP 503\)/,
      );
    } finally {
      for (const s of sockets) s.destroy();
      await new Promise((r) => server.close(r));
    }
  });

  it('a refusal whose body is long is read up to 4 KiB, not to its end (mutation round 15: F8)', {
    // A client that reads on waits for the end the host never sends: it fails here by name.
    timeout: 60_000,
  }, async () => {
    const sockets: import('node:net').Socket[] = [];
    const server = createHttpServer((_req, res) => res.end());
    server.on('upgrade', (_req, socket) => {
      sockets.push(socket as import('node:net').Socket);
      // 8 KiB of a 1 MB body at once, then nothing until the client goes.
      socket.write(
        `HTTP/1.1 503 Service Unavailable\r\ncontent-length: 1000000\r\n\r\n${' '.repeat(8192)}`,
      );
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    try {
      const port = (server.address() as AddressInfo).port;
      // An open timeout that never comes into it: only the size cap ends the read.
      await assert.rejects(
        wsTransport(2 ** 31 - 1)(`ws://127.0.0.1:${port}/v1/scp`),
        /^Error: the node refused the connection \(HTTP 503\)$/,
      );
    } finally {
      for (const s of sockets) s.destroy();
      await new Promise((r) => server.close(r));
    }
  });

  it('a frame over MAX_FRAME from the node closes the socket, undelivered (mutation round 15: F9)', async () => {
    const wss = new WebSocketServer({ port: 0, host: '127.0.0.1' });
    await new Promise((r) => wss.once('listening', r));
    wss.on('connection', (ws) => {
      ws.on('message', (data) => {
        const size = (data as Buffer)[0] === 1 ? MAX_FRAME : MAX_FRAME + 1;
        ws.send(new Uint8Array(size), { binary: true });
      });
    });
    try {
      const port = (wss.address() as AddressInfo).port;
      const s = await wsTransport()(`ws://127.0.0.1:${port}/v1/scp`);
      const sizes: number[] = [];
      let one: () => void = () => {};
      const first = new Promise<void>((r) => {
        one = r;
      });
      // Whichever comes first after the larger frame: the close, or its delivery.
      const outcome = new Promise<string>((r) => {
        s.onclose = () => r('closed');
        s.onmessage = (f) => {
          sizes.push(f.length);
          if (sizes.length === 1) one();
          else r('delivered');
        };
      });
      s.send(Uint8Array.of(1));
      await first;
      s.send(Uint8Array.of(2));
      assert.equal(await outcome, 'closed');
      assert.deepEqual(sizes, [MAX_FRAME], 'the larger frame was not delivered');
    } finally {
      for (const c of wss.clients) c.terminate();
      await new Promise((r) => wss.close(r));
    }
  });

  it('carries binary frames both ways in order; a text frame closes the socket', async () => {
    const wss = new WebSocketServer({ port: 0, host: '127.0.0.1' });
    await new Promise((r) => wss.once('listening', r));
    wss.on('connection', (ws) => {
      ws.on('message', (data, isBinary) => {
        if ((data as Buffer)[0] === 0xff) ws.send('text is not a frame');
        else ws.send(data, { binary: isBinary });
      });
    });
    try {
      const port = (wss.address() as AddressInfo).port;
      const s = await wsTransport()(`ws://127.0.0.1:${port}/v1/scp`);
      const got: number[][] = [];
      const closed = new Promise<string>((r) => {
        s.onclose = r;
      });
      const two = new Promise<void>((r) => {
        s.onmessage = (f) => {
          got.push([...f]);
          if (got.length === 2) r();
        };
      });
      s.send(Uint8Array.of(1, 2));
      s.send(Uint8Array.of(3));
      await two;
      assert.deepEqual(got, [[1, 2], [3]]);
      s.send(Uint8Array.of(0xff));
      assert.match(await closed, /^1003/);
      assert.equal(got.length, 2, 'the text frame was not delivered');
      await assert.rejects(wsTransport()('ws://127.0.0.1:1/v1/scp'));
    } finally {
      for (const c of wss.clients) c.terminate();
      await new Promise((r) => wss.close(r));
    }
  });

  it("writes one turn's frames at its end, each socket's in order, and a close's frames before the close", async () => {
    const wss = new WebSocketServer({ port: 0, host: '127.0.0.1' });
    await new Promise((r) => wss.once('listening', r));
    // What each server-side socket received, then how it closed.
    const seen: string[][] = [];
    wss.on('connection', (ws) => {
      const mine: string[] = [];
      seen.push(mine);
      ws.on('message', (data) => mine.push(String((data as Buffer)[0])));
      ws.on('close', (code) => mine.push(`close ${code}`));
    });
    try {
      const port = (wss.address() as AddressInfo).port;
      const transport = wsTransport();
      const a = await transport(`ws://127.0.0.1:${port}/v1/scp`);
      const b = await transport(`ws://127.0.0.1:${port}/v1/scp`);
      const closed = new Promise<string>((r) => {
        b.onclose = r;
      });
      const frame = Uint8Array.of(1);
      a.send(frame);
      b.send(Uint8Array.of(7));
      a.send(Uint8Array.of(2));
      b.send(Uint8Array.of(8));
      b.close(); // before the turn's end: its frames are written first
      a.send(Uint8Array.of(3));
      await closed;
      while (
        seen.length < 2 ||
        (seen[0] as string[]).length < 3 ||
        (seen[1] as string[]).length < 3
      ) {
        await new Promise((r) => setTimeout(r, 5));
      }
      assert.deepEqual(seen[0], ['1', '2', '3']);
      assert.deepEqual(seen[1], ['7', '8', 'close 1005']);
      a.close();
    } finally {
      for (const c of wss.clients) c.terminate();
      await new Promise((r) => wss.close(r));
    }
  });
});
