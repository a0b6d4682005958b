/**
 * `cloister keys new`, `cloister call` and `cloister query` against a real node (the enclave
 * built from source, its SCP server behind the host's /v1/scp relay) with the `cloister app new`
 * counter app deployed: results, notifications, a verified receipt written to a file, a request
 * id that applies once, the default identity created on first use, and clear refusals — a
 * missing app named, bad JSON with its position, an enclave or app code the constraint refuses,
 * a service that differs from the pinned one (and its deliberate re-pin), an unreachable node.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { OutcomeUnknownError, RepeatedRequestCodeError } from '@cloister/client';
import { loadIdentity } from '@cloister/client/node';
import {
  AppCodeMismatchError,
  type CloisterError,
  callerId,
  sha256,
  toHex,
  utf8,
  verifyReceipt,
} from '@cloister/core';
import { createLogger, loadOrCreateOperatorKey, type RunningNode, startNode } from '@cloister/host';
import fc from 'fast-check';
import { testBuild } from '../../host/test/helpers.js';
import { buildApp } from '../src/commands/app-build.js';
import { deployApp } from '../src/commands/app-deploy.js';
import { createApp } from '../src/commands/app-new.js';
import { type CallRun, forTheCommandLine, jsonErrorPosition } from '../src/commands/call.js';
import { jsonError } from '../src/output.js';

const entry = fileURLToPath(new URL('./fixtures/run.ts', import.meta.url));
const root = fileURLToPath(new URL('../../..', import.meta.url));
const tmp = mkdtempSync(join(tmpdir(), 'cloister-scp-cli-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

/**
 * Runs the CLI with `args`; `input` goes to its standard input, `onErr` sees stderr as it grows
 * (with the child, to signal it).
 */
function cli(
  args: string[],
  o: { input?: string; onErr?: (err: string, child: ChildProcess) => void } = {},
): Promise<{ code: number; out: string; err: string }> {
  return new Promise((resolve) => {
    const p = spawn(process.execPath, ['--import', 'tsx', '--conditions=source', entry, ...args], {
      cwd: root,
      env: { ...process.env, NODE_OPTIONS: '', NODE_TEST_CONTEXT: undefined },
      stdio: [o.input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    p.stdout?.on('data', (d) => {
      out += d;
    });
    p.stderr?.on('data', (d) => {
      err += d;
      o.onErr?.(err, p);
    });
    p.on('close', (code) => resolve({ code: code ?? -1, out, err }));
    if (o.input !== undefined) p.stdin?.end(o.input);
  });
}

describe('the position named for bad JSON arguments', () => {
  it('is -1 exactly when JSON.parse accepts, else a position within the text', () => {
    fc.assert(fc.property(fc.jsonValue(), (v) => jsonErrorPosition(JSON.stringify(v)) === -1));
    fc.assert(
      fc.property(fc.string(), (s) => {
        let valid = true;
        try {
          JSON.parse(s);
        } catch {
          valid = false;
        }
        const at = jsonErrorPosition(s);
        return valid ? at === -1 : at >= 0 && at <= s.length;
      }),
    );
    assert.equal(jsonErrorPosition('{"name": a}'), 9);
    assert.equal(jsonErrorPosition('[1,2,]'), 5);
  });
});

describe('an SDK next step in command-line words', () => {
  const run: CallRun = {
    url: 'https://node.example:7410',
    app: 'auction',
    method: 'bid',
    argsJson: `{"lot":"it's","amount":5}`,
    requestId: 'order-7',
    o: { constraint: 'C:ab SEC:INSECURE', identity: '/keys/me.pem', home: '/h' },
  };
  const command = (constraint: string) =>
    `cloister --home /h call https://node.example:7410 auction bid '{"lot":"it'\\''s","amount":5}' --constraint '${constraint}' --identity /keys/me.pem --request-id order-7`;

  it('OUTCOME_UNKNOWN: the exact command that retries with the same request id, not status()', () => {
    const sdk = new OutcomeUnknownError('auction', 'order-7', new Error('socket closed'));
    assert.match(sdk.message, /status\(\{ app, requestId \}\)/, "the SDK's words stay the SDK's");
    const e = forTheCommandLine(sdk, 'transact', run) as CloisterError;
    assert.equal(e.code, 'OUTCOME_UNKNOWN');
    assert.ok(e.message.endsWith(`: ${command('C:ab SEC:INSECURE')}`), e.message);
    assert.match(e.message, /\(socket closed\)/);
    assert.match(e.hint, /the `cloister call` command the message ends with/);
    assert.doesNotMatch(`${e.message} ${e.hint}`, /status\(/);
    // --json names the request id to retry with, as before.
    assert.equal(jsonError(e).requestId, 'order-7');
    // Arguments read from standard input, or too long to repeat, are not printed.
    const stdin = forTheCommandLine(sdk, 'transact', { ...run, argsJson: '-' }) as Error;
    assert.match(stdin.message, / bid - < <the same arguments> --constraint /);
    const long = { ...run, argsJson: JSON.stringify({ a: 'x'.repeat(2000) }) };
    const cut = forTheCommandLine(sdk, 'transact', long) as Error;
    assert.match(cut.message, / bid '<the same JSON arguments>' --constraint /);
  });

  it('a repeated request id refused after an upgrade: the commands to accept it or fetch its receipt', () => {
    const seen = 'aa'.repeat(32);
    const mismatch = new AppCodeMismatchError(`APP:auction=${'bb'.repeat(32)}`, seen, 'x');
    const sdk = new RepeatedRequestCodeError(mismatch, 'auction', 'order-7', '1.42');
    assert.match(sdk.message, /status\(\{ app, requestId \}\)/);
    const e = forTheCommandLine(sdk, 'transact', run) as CloisterError;
    assert.equal(e.code, 'APP_CODE_MISMATCH');
    assert.ok(e.message.includes(command(`C:ab SEC:INSECURE APP:auction=${seen}`)), e.message);
    assert.match(
      e.message,
      /fetch its receipt: cloister receipt get https:\/\/node\.example:7410 1\.42$/,
    );
    assert.doesNotMatch(`${e.message} ${e.hint}`, /status\(|client\.receipt/);
    assert.equal(jsonError(e).code, 'APP_CODE_MISMATCH');
  });
});

describe('cloister keys, call and query against a real node', () => {
  const home = join(tmp, 'home');
  const me = join(tmp, 'me.pem');
  let node: RunningNode | undefined;
  let url: string;
  let constraint: string;
  let codeId: string;

  /** `cloister <kind> <url> …args` under home `h`, with the node's constraint unless given. */
  const call = (
    kind: 'call' | 'query',
    args: string[],
    h = home,
    o: { constraint?: string; input?: string } = {},
  ) =>
    cli(['--home', h, kind, url, '--constraint', o.constraint ?? constraint, ...args], {
      ...(o.input === undefined ? {} : { input: o.input }),
    });

  before(async () => {
    const project = join(tmp, 'counter');
    createApp('counter', { dir: project });
    const built = await buildApp(project);
    const build = await testBuild();
    constraint = `C:${toHex(build.measurement)} SEC:INSECURE`;
    node = await startNode({
      dataDir: join(tmp, 'data'),
      platformDir: join(tmp, 'platform'),
      enclaveDir: build.outDir,
      port: 0,
      logger: createLogger({ level: 'silent' }),
      signIntervalMs: 50,
      operatorPublicKey: loadOrCreateOperatorKey(join(home, 'operator.pem')).publicKey,
    });
    url = node.url;
    codeId = (await deployApp(built.wasmPath, { name: 'counter', node: url, home })).codeId;
  });
  after(async () => {
    await node?.close();
  });

  it('keys new: a 0600 PEM file, its public key printed; never overwritten', async () => {
    const r = await cli(['keys', 'new', me]);
    assert.equal(r.code, 0, r.err);
    assert.match(r.out, /public key\s+04[0-9a-f]{128}/);
    assert.equal(statSync(me).mode & 0o777, 0o600);
    const before = readFileSync(me);
    const again = await cli(['keys', 'new', me]);
    assert.equal(again.code, 2);
    assert.match(again.err, /already exists/);
    assert.deepEqual(readFileSync(me), before);
    // A missing folder is named, not made (it was: a typo left the key where no one looks).
    const typo = join(tmp, 'no-such-folder', 'k.pem');
    const missing = await cli(['keys', 'new', typo]);
    assert.equal(missing.code, 2);
    assert.match(
      missing.err,
      /INVALID_INPUT.*no-such-folder does not exist; give a path in an existing folder/,
    );
    assert.equal(existsSync(join(tmp, 'no-such-folder')), false);
    const file = join(tmp, 'a-file');
    writeFileSync(file, 'x');
    const under = await cli(['keys', 'new', join(file, 'k.pem')]);
    assert.equal(under.code, 2);
    assert.match(under.err, /INVALID_INPUT.*a-file is a file, not a folder/);
    // A path ending in a slash names a folder (it made a file named after the folder).
    const slash = await cli(['keys', 'new', `${join(tmp, 'newdir')}/`]);
    assert.equal(slash.code, 2);
    assert.match(slash.err, /names a folder, not a file: give the path of the new key file/);
    assert.equal(existsSync(join(tmp, 'newdir')), false);
  });

  it('call: a transaction with notifications; --receipt writes a receipt that verifies', async () => {
    const file = join(tmp, 'receipt.cbor');
    const r = await call('call', [
      'counter',
      'increment',
      '{"name":"a","by":2}',
      '--identity',
      me,
      '--receipt',
      file,
      '--json',
      '--constraint',
      `${constraint} APP:counter=${codeId}`,
    ]);
    assert.equal(r.code, 0, r.err);
    const out = JSON.parse(r.out) as {
      result: { value: number };
      notifications: unknown[];
      txid: string;
      codeId: string;
      codeChecked: boolean;
      callerId: string;
      service: string;
      repeated: boolean;
      receipt: { file: string };
    };
    assert.equal(out.result.value, 2);
    assert.deepEqual(out.notifications, [{ counter: 'a', value: 2 }]);
    assert.equal(out.codeId, codeId);
    assert.equal(out.codeChecked, true);
    // The caller's id in the app, as the app computes it (docs/app-abi.md §5.1).
    assert.equal(out.callerId, toHex(callerId('counter', (await loadIdentity(me)).publicKey)));
    assert.equal(out.repeated, false);
    assert.equal(out.receipt.file, file);
    const v = await verifyReceipt(new Uint8Array(readFileSync(file)), { constraint });
    assert.equal(v.txid, out.txid);
    assert.equal(toHex(v.service), out.service);
  });

  it('a request id applies once; query reads the result', async () => {
    const args = ['counter', 'increment', '{"name":"b"}', '--identity', me, '--json'];
    // A second receipt in this home: its root is checked against the first test's, with a
    // consistency proof fetched from the node.
    const r2 = join(tmp, 'receipt2.cbor');
    const first = await call('call', [...args, '--request-id', 'order-7', '--receipt', r2]);
    assert.equal(first.code, 0, first.err);
    assert.ok(existsSync(r2));
    // Another run repeating the request id: the stored answer, and its receipt's claims check
    // (the CLI derives the claims salt from the identity, the service, the app and the id).
    const r3 = join(tmp, 'receipt3.cbor');
    const second = await call('call', [...args, '--request-id', 'order-7', '--receipt', r3]);
    assert.equal(second.code, 0, second.err);
    const [a, b] = [JSON.parse(first.out), JSON.parse(second.out)];
    // No APP:counter clause in this constraint: the output says the code id was not checked.
    assert.equal(a.codeChecked, false);
    assert.equal(b.repeated, true);
    assert.equal(b.txid, a.txid);
    assert.equal(b.receipt.claims, true);
    const v = await verifyReceipt(new Uint8Array(readFileSync(r3)), { constraint });
    assert.equal(v.txid, a.txid);
    // The same request id with other arguments: refused by the node, naming the first call.
    const other = ['counter', 'increment', '{"name":"b","by":5}', '--identity', me];
    const third = await call('call', [...other, '--request-id', 'order-7', '--receipt', r3]);
    assert.equal(third.code, 2);
    assert.match(third.err, /REQUEST_ID_REUSED/);
    assert.ok(third.err.includes(`transaction ${a.txid}`), third.err);
    const q = await call('query', ['counter', 'get', '{"name":"b"}', '--identity', me]);
    assert.equal(q.code, 0, q.err);
    assert.match(q.out, /result\s+1\n/);
    assert.ok(
      q.out.includes(
        `app code id   ${codeId} (NOT checked: the constraint has no APP:counter clause, so any code the operator deploys as counter answers)`,
      ),
      q.out,
    );
    const pinned = await call('query', ['counter', 'get', '{"name":"b"}', '--identity', me], home, {
      constraint: `${constraint} APP:counter=${codeId}`,
    });
    assert.equal(pinned.code, 0, pinned.err);
    assert.match(pinned.out, new RegExp(`app code id\\s+${codeId}\\n`));
    const mine = toHex(callerId('counter', (await loadIdentity(me)).publicKey));
    assert.ok(pinned.out.includes(`caller id     ${mine} (yours in app counter)\n`), pinned.out);
    // A run without --request-id, retried with the id it printed (as after OUTCOME_UNKNOWN):
    // applied once, and the retry's receipt checks, since the salt derives from the id.
    const c1 = ['counter', 'increment', '{"name":"d"}', '--identity', me, '--json'];
    const once = await call('call', c1);
    assert.equal(once.code, 0, once.err);
    const firstRun = JSON.parse(once.out) as { requestId: string; txid: string };
    const r4 = join(tmp, 'receipt4.cbor');
    const retry = await call('call', [...c1, '--request-id', firstRun.requestId, '--receipt', r4]);
    assert.equal(retry.code, 0, retry.err);
    const again = JSON.parse(retry.out) as {
      repeated: boolean;
      txid: string;
      receipt: { claims: boolean };
    };
    assert.equal(again.repeated, true);
    assert.equal(again.txid, firstRun.txid);
    assert.equal(again.receipt.claims, true);
  });

  it('--receipt never overwrites a file that is not a receipt, and is checked before the call', async () => {
    const key = readFileSync(me);
    const before = await call('query', ['counter', 'get', '{"name":"r"}', '--identity', me]);
    const args = ['counter', 'increment', '{"name":"r"}', '--identity', me];
    // The identity file given by mistake as the receipt's path: refused before anything is sent.
    const onKey = await call('call', [...args, '--receipt', me]);
    assert.equal(onKey.code, 2);
    assert.match(onKey.err, /exists and does not hold a receipt: it is not overwritten/);
    assert.deepEqual(readFileSync(me), key, 'the key is untouched');
    // A folder that does not exist: refused before the call too.
    const noDir = await call('call', [...args, '--receipt', join(tmp, 'no-such-dir', 'r.cbor')]);
    assert.equal(noDir.code, 2);
    assert.match(noDir.err, /does not exist; create it/);
    const after = await call('query', ['counter', 'get', '{"name":"r"}', '--identity', me]);
    assert.equal(after.out, before.out, 'neither call applied the transaction');
    // An existing receipt is replaced (a retried request writes its receipt again).
    const file = join(tmp, 'replaced.cbor');
    assert.equal((await call('call', [...args, '--receipt', file])).code, 0);
    const again = await call('call', [...args, '--receipt', file, '--json']);
    assert.equal(again.code, 0, again.err);
    const v = await verifyReceipt(new Uint8Array(readFileSync(file)), { constraint });
    assert.equal(v.txid, JSON.parse(again.out).txid);
  });

  it('arguments given as - are read from standard input (larger than a command line holds)', async () => {
    const big = 'x'.repeat(300_000); // over Linux's 128 KiB per argument
    const r = await call('query', ['counter', 'get', '-', '--identity', me, '--json'], home, {
      input: JSON.stringify({ name: 'stdin', pad: big }),
    });
    assert.equal(r.code, 0, r.err);
    assert.equal(
      (JSON.parse(r.out) as { result: unknown }).result,
      0,
      'a counter never incremented',
    );
  });

  it('without --identity: <home>/identity.pem is created on first use, with a note', async () => {
    const h = join(tmp, 'home2');
    const r = await call('query', ['counter', 'get', '{"name":"a"}'], h);
    assert.equal(r.code, 0, r.err);
    assert.match(r.err, /created your client identity .*identity\.pem/);
    // The first run pins the URL's service and says which one.
    assert.match(r.err, /note: pinned service [0-9a-f]{64} for \S+ \(first use\)/);
    assert.equal(statSync(join(h, 'identity.pem')).mode & 0o777, 0o600);
    const again = await call('query', ['counter', 'get', '{"name":"a"}'], h);
    assert.equal(again.code, 0, again.err);
    assert.doesNotMatch(again.err, /created/);
    assert.doesNotMatch(again.err, /pinned service/, 'a kept pin is not noted');
    assert.ok(existsSync(join(h, 'client-state.json')), 'the service is pinned');
  });

  it('refusals are named: missing app, bad JSON, refused enclave or app code', async () => {
    const id = ['--identity', me];
    const missing = await call('query', ['nope', 'get', '{}', ...id]);
    assert.equal(missing.code, 1);
    assert.match(missing.err, /APP_NOT_FOUND.*nope/);
    // With --json, stdout carries the error as JSON too (it was empty: nothing to parse).
    const asJson = await call('query', ['nope', 'get', '{}', ...id, '--json']);
    assert.equal(asJson.code, 1);
    const e = (JSON.parse(asJson.out) as { error: { code: string; message: string; hint: string } })
      .error;
    assert.equal(e.code, 'APP_NOT_FOUND');
    assert.match(e.message, /nope/);
    assert.equal(typeof e.hint, 'string');
    // A method of the other kind: the next step names the command that runs it.
    const asQuery = await call('query', ['counter', 'increment', '{"name":"k"}', ...id]);
    assert.equal(asQuery.code, 1);
    assert.match(asQuery.err, /APP_METHOD_KIND[\s\S]*next step: .*run it with `cloister call`/);
    const asCall = await call('call', ['counter', 'get', '{"name":"k"}', ...id, '--json']);
    assert.equal(asCall.code, 1);
    const kindErr = (JSON.parse(asCall.out) as { error: { code: string; hint: string } }).error;
    assert.equal(kindErr.code, 'APP_METHOD_KIND');
    assert.match(kindErr.hint, /run it with `cloister query`/);
    const bad = await call('call', ['counter', 'increment', '{"name": a}', ...id]);
    assert.equal(bad.code, 2);
    assert.match(bad.err, /not valid JSON.*position 9/);
    const other = `C:${toHex(sha256(utf8('other')))} SEC:INSECURE`;
    const enclave = await call('query', ['counter', 'get', '{}', ...id], home, {
      constraint: other,
    });
    assert.equal(enclave.code, 1);
    assert.match(enclave.err, /CONSTRAINT_MISMATCH/);
    const app = await call('call', [
      'counter',
      'increment',
      '{"name":"c"}',
      ...id,
      '--constraint',
      `${constraint} APP:counter=${toHex(sha256(utf8('v2')))}`,
    ]);
    assert.equal(app.code, 1);
    assert.match(app.err, /APP_CODE_MISMATCH/);
    const q = await call('query', ['counter', 'get', '{"name":"c"}', ...id]);
    assert.match(q.out, /result\s+0\n/, 'the refused call was never sent');
  });

  it('another service at a pinned URL: SERVICE_CHANGED; an unreachable node: NETWORK', async () => {
    const h = join(tmp, 'home3');
    const first = await call('query', ['counter', 'get', '{}', '--identity', me], h);
    assert.equal(first.code, 0, first.err);
    const file = join(h, 'client-state.json');
    const state = JSON.parse(readFileSync(file, 'utf8')) as { pins: Record<string, string> };
    for (const k of Object.keys(state.pins)) state.pins[k] = toHex(sha256(utf8('impostor')));
    writeFileSync(file, JSON.stringify(state));
    const changed = await call('query', ['counter', 'get', '{}', '--identity', me], h);
    assert.equal(changed.code, 1);
    assert.match(changed.err, /SERVICE_CHANGED/);
    // Re-pinning takes the exact service the message names; another one is still refused.
    const shown = /shows service ([0-9a-f]+)/.exec(changed.err)?.[1] as string;
    assert.match(shown, /^[0-9a-f]{64,}$/);
    const wrong = await call(
      'query',
      ['counter', 'get', '{}', '--identity', me, '--accept-service', toHex(sha256(utf8('x')))],
      h,
    );
    assert.equal(wrong.code, 1);
    assert.match(wrong.err, /SERVICE_CHANGED/);
    // The refusal says the accepted value was not this service (it repeated the first message).
    assert.match(
      wrong.err,
      new RegExp(`change accepted .* was to ${toHex(sha256(utf8('x')))}, not to this service`),
    );
    const bad = await call(
      'query',
      ['counter', 'get', '{}', '--identity', me, '--accept-service', 'nope'],
      h,
    );
    assert.equal(bad.code, 2);
    assert.match(bad.err, /--accept-service takes the 64 hex digits of a service identity/);
    const repinned = await call(
      'query',
      ['counter', 'get', '{}', '--identity', me, '--accept-service', shown],
      h,
    );
    assert.equal(repinned.code, 0, repinned.err);
    const pins = (JSON.parse(readFileSync(file, 'utf8')) as { pins: Record<string, string> }).pins;
    assert.deepEqual(Object.values(pins), [shown], 'the pin is the accepted service');
    const after = await call('query', ['counter', 'get', '{}', '--identity', me], h);
    assert.equal(after.code, 0, 'the new pin holds without the option');
    const down = await cli([
      '--home',
      h,
      'query',
      'http://127.0.0.1:1',
      'counter',
      'get',
      '{}',
      '--identity',
      me,
      '--constraint',
      constraint,
    ]);
    assert.equal(down.code, 2);
    assert.match(down.err, /NETWORK.*127\.0\.0\.1:1/);
  });
});

describe('a committed transaction is never lost while its receipt is awaited', () => {
  const home = join(tmp, 'home-nosign');
  let node: RunningNode | undefined;
  let url: string;
  let constraint: string;

  before(async () => {
    const project = join(tmp, 'counter-nosign');
    createApp('counter', { dir: project });
    const built = await buildApp(project);
    const build = await testBuild();
    constraint = `C:${toHex(build.measurement)} SEC:INSECURE`;
    // Signs only every 1000 entries: a receipt for the next transaction does not come.
    node = await startNode({
      dataDir: join(tmp, 'data-nosign'),
      platformDir: join(tmp, 'platform-nosign'),
      enclaveDir: build.outDir,
      port: 0,
      logger: createLogger({ level: 'silent' }),
      signIntervalMs: 0,
      operatorPublicKey: loadOrCreateOperatorKey(join(home, 'operator.pem')).publicKey,
    });
    url = node.url;
    await deployApp(built.wasmPath, { name: 'counter', node: url, home });
  });
  after(async () => {
    await node?.close();
  });

  /** `call … --receipt` interrupted (SIGINT) once it says it waits for the signature. */
  function interrupted(extra: string[]): Promise<{ code: number; out: string; err: string }> {
    const file = join(tmp, `never-${extra.length}.cbor`);
    return cli(
      [
        '--home',
        home,
        'call',
        url,
        'counter',
        'increment',
        '{"name":"w"}',
        '--constraint',
        constraint,
        '--receipt',
        file,
        ...extra,
      ],
      {
        onErr: (err, child) => {
          if (/waiting up to \d+ s for the node to sign it/.test(err)) child.kill('SIGINT');
        },
      },
    );
  }

  it('Ctrl-C during the wait: the result and txid were printed (text) or are in the JSON with receiptError', async () => {
    const text = await interrupted([]);
    assert.equal(text.code, 130, text.err);
    assert.match(text.out, /result\s+\{"value":1,/);
    const txid = /txid\s+(\d+\.\d+)/.exec(text.out)?.[1];
    assert.ok(txid, text.out);
    assert.match(
      text.err,
      new RegExp(`interrupted: the transaction is committed \\(${txid.replace('.', '\\.')}\\)`),
    );
    const json = await interrupted(['--json']);
    assert.equal(json.code, 130, json.err);
    const o = JSON.parse(json.out) as {
      result: { value: number };
      txid: string;
      requestId: string;
      receiptError: { code: string; message: string };
    };
    assert.equal(o.result.value, 2);
    assert.match(o.txid, /^\d+\.\d+$/);
    assert.equal(typeof o.requestId, 'string');
    assert.equal(o.receiptError.code, 'RECEIPT_NOT_READY');
  });
});
