/**
 * The `cloister` command as a user runs it: build, measure, node start, attest (issue 2
 * "Must show: cloister attest against a running node"); receipt get/verify, log audit and
 * ledger rotate-secret (issue 4).
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer as createHttpServer } from 'node:http';
import { type AddressInfo, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { type LevelStore, openLevelStore } from '@cloister/host';

const entry = fileURLToPath(new URL('./fixtures/run.ts', import.meta.url));
const root = fileURLToPath(new URL('../../..', import.meta.url));
const home = mkdtempSync(join(tmpdir(), 'cloister-cli-'));
after(() => rmSync(home, { recursive: true, force: true }));

function cli(args: string[]): ChildProcess {
  return spawn(
    process.execPath,
    ['--import', 'tsx', '--conditions=source', entry, '--home', home, ...args],
    { cwd: root, env: { ...process.env, CLOISTER_HOME: home }, stdio: ['ignore', 'pipe', 'pipe'] },
  );
}

function run(args: string[]): Promise<{ code: number; out: string; err: string }> {
  return new Promise((resolve) => {
    const p = cli(args);
    let out = '';
    let err = '';
    p.stdout!.on('data', (d) => {
      out += d;
    });
    p.stderr!.on('data', (d) => {
      err += d;
    });
    p.on('close', (code) => resolve({ code: code ?? -1, out, err }));
  });
}

describe('cloister CLI', () => {
  const enclaveDir = join(home, 'enclave');
  let measurement: string;
  let node: ChildProcess;
  let nodeExit: Promise<number | null>;
  let url: string;
  let nodeErr = '';
  // The receipt of the genesis transaction, fetched while the node runs: `log audit` checks the
  // log's consistency with the root it verified.
  const genesisReceipt = join(home, 'genesis-receipt.cbor');
  let stopping: Promise<number | null> | undefined;
  /**
   * Stops the node with SIGTERM, once, and resolves with its exit code when it has exited (at
   * once if it already had): the tests that need the data directory stopped call it first, so
   * each runs alone as well as after the others.
   */
  const stopNode = (): Promise<number | null> => {
    stopping ??= (async () => {
      if (node.exitCode === null && node.signalCode === null) node.kill('SIGTERM');
      return nodeExit;
    })();
    return stopping;
  };

  before(async () => {
    const b = await run(['build', '--out', enclaveDir, '--quiet']);
    assert.equal(b.code, 0, b.err);
    measurement = b.out.trim();
    assert.match(measurement, /^[0-9a-f]{64}$/);
    node = cli([
      ...['node', 'start', '--enclave', enclaveDir, '--port', '0', '--log-level', 'silent'],
      ...['--scp-share-by', 'address'],
    ]);
    nodeExit = new Promise((resolve) => node.once('exit', (code) => resolve(code)));
    url = await new Promise<string>((resolve, reject) => {
      node.stderr!.on('data', (d) => {
        nodeErr += d;
        const m = /listening on (http:\/\/[0-9.]+:\d+)/.exec(nodeErr);
        if (m) resolve(m[1]!);
      });
      node.on('exit', () => reject(new Error(`node exited: ${nodeErr}`)));
    });
    // The body as is, as `receipt get` writes it (the test of receipt get checks that command).
    const r = await fetch(`${url}/v1/receipt?txid=1.1`);
    assert.equal(r.status, 200, await r.clone().text());
    writeFileSync(genesisReceipt, new Uint8Array(await r.arrayBuffer()));
  });
  after(() => {
    if (node.exitCode === null) node.kill('SIGKILL');
  });

  it('measures the same value as the build, from source', async () => {
    const m = await run(['measure', '--json']);
    assert.equal(m.code, 0, m.err);
    const j = JSON.parse(m.out) as { measurement: string; constraint: string };
    assert.equal(j.measurement, measurement);
    assert.equal(j.constraint, `C:${measurement} SEC:INSECURE`);
  });

  it('accepts the node with SEC:INSECURE and the right C:', async () => {
    const r = await run(['attest', url, '--constraint', `C:${measurement} SEC:INSECURE`]);
    assert.equal(r.code, 0, r.out + r.err);
    assert.match(r.out, /verdict: ACCEPTED/);
    assert.match(r.out, /simulation \(INSECURE/);
    assert.match(r.out, new RegExp(`measurement +${measurement}`));
  });

  it("prints the service identity it verified through the node's endorsement (text and --json)", async () => {
    // What `app deploy` and its --service hints send users to `attest` for.
    const st = (await (await fetch(new URL('/v1/status', url))).json()) as {
      serviceIdentity: string;
    };
    assert.match(st.serviceIdentity, /^[0-9a-f]{64}$/);
    const constraint = `C:${measurement} SEC:INSECURE`;
    const r = await run(['attest', url, '--constraint', constraint]);
    assert.equal(r.code, 0, r.out + r.err);
    assert.match(
      r.out,
      new RegExp(
        `\n  service +${st.serviceIdentity} \\(verified: a fresh secure connection to the identity key above shows it\\)\n`,
      ),
    );
    const j = await run(['attest', url, '--json', '--constraint', constraint]);
    assert.equal(j.code, 0, j.out + j.err);
    const parsed = JSON.parse(j.out) as Record<string, unknown>;
    assert.equal(parsed.service, st.serviceIdentity);
    assert.equal(parsed.serviceVerified, true);
    assert.equal(parsed.serviceNote, undefined);
  });

  it('refuses a wrong C:, naming the clause', async () => {
    const wrong = measurement.replace(/^./, (c) => (c === '0' ? '1' : '0'));
    const r = await run(['attest', url, '--constraint', `C:${wrong} SEC:INSECURE`]);
    assert.equal(r.code, 1);
    assert.match(r.out, /verdict: REFUSED \[CONSTRAINT_MISMATCH\]/);
    assert.match(r.out, /C:/);
  });

  it('refuses simulation without SEC:INSECURE, saying so', async () => {
    const r = await run(['attest', url, '--constraint', `C:${measurement}`]);
    assert.equal(r.code, 1);
    assert.match(r.out, /REFUSED \[INSECURE_PLATFORM\]/);
    assert.match(r.out, /SEC:INSECURE/);
  });

  it('names the APP: clauses the evidence cannot show, and checks SVC: against the verified service', async () => {
    const app = `APP:token=${'00'.repeat(32)}`;
    const st = (await (await fetch(new URL('/v1/status', url))).json()) as {
      serviceIdentity: string;
    };
    const svc = `SVC:${st.serviceIdentity}`;
    const constraint = `C:${measurement} SEC:INSECURE ${app} ${svc}`;
    const r = await run(['attest', url, '--constraint', constraint]);
    assert.equal(r.code, 0, r.out + r.err);
    // It said "ACCEPTED under" the whole constraint, clauses it never looked at included.
    assert.match(
      r.out,
      new RegExp(`verdict: ACCEPTED under "C:${measurement} SEC:INSECURE ${svc}"\n`),
    );
    assert.match(r.out, new RegExp(`not checked here: ${app} \\(`));
    const j = await run(['attest', url, '--json', '--constraint', constraint]);
    assert.deepEqual((JSON.parse(j.out) as { unchecked: string[] }).unchecked, [app]);
    // Another service: refused like a client's connect, naming the clause and the service seen.
    const other = `SVC:${'11'.repeat(32)}`;
    const bad = await run([
      'attest',
      url,
      '--constraint',
      `C:${measurement} SEC:INSECURE ${other}`,
    ]);
    assert.equal(bad.code, 1, bad.out + bad.err);
    assert.match(bad.out, /verdict: REFUSED \[CONSTRAINT_MISMATCH\]/);
    assert.match(bad.out, new RegExp(`${st.serviceIdentity} does not match ${other}`));
    // The evidence itself verified: its fields are shown as such, not as unverified claims.
    assert.doesNotMatch(bad.out, /NOT verified|as claimed/i);
    assert.match(bad.out, new RegExp(`measurement +${measurement}\n`));
  });

  it('an SVC: clause it cannot check (the secure connection fails) is refused, not passed over', async () => {
    const st = (await (await fetch(new URL('/v1/status', url))).json()) as {
      serviceIdentity: string;
    };
    // In front of the node: its HTTP answers, but no secure connection (upgrades are dropped).
    const proxy = createHttpServer((req, res) => {
      void fetch(new URL(req.url ?? '/', url)).then(async (r) => {
        res.writeHead(r.status, { 'content-type': r.headers.get('content-type') ?? 'text/plain' });
        res.end(Buffer.from(await r.arrayBuffer()));
      });
    });
    proxy.on('upgrade', (_req, socket) => socket.destroy());
    await new Promise<void>((r) => proxy.listen(0, '127.0.0.1', r));
    try {
      const front = `http://127.0.0.1:${(proxy.address() as AddressInfo).port}`;
      const constraint = `C:${measurement} SEC:INSECURE SVC:${st.serviceIdentity}`;
      const r = await run(['attest', front, '--constraint', constraint]);
      assert.equal(r.code, 1, r.out + r.err);
      assert.match(
        r.out,
        /verdict: REFUSED \[CONSTRAINT_MISMATCH\] SVC:[0-9a-f]{64} could not be checked/,
      );
      // Without SVC: the same node is accepted, its service shown as its unverified word.
      const ok = await run(['attest', front, '--constraint', `C:${measurement} SEC:INSECURE`]);
      assert.equal(ok.code, 0, ok.out + ok.err);
      assert.match(
        ok.out,
        new RegExp(`${st.serviceIdentity} \\(as the node reports it, NOT verified`),
      );
    } finally {
      await new Promise((r) => proxy.close(r));
    }
  });

  it('prints JSON verdicts', async () => {
    const r = await run(['attest', url, '--json', '--constraint', `C:${measurement} SEC:INSECURE`]);
    assert.equal(r.code, 0);
    assert.equal((JSON.parse(r.out) as { verdict: string }).verdict, 'accepted');
  });

  it('exits 2 with a next step on a malformed constraint or an unreachable node', async () => {
    const bad = await run(['attest', url, '--constraint', 'C:xyz']);
    assert.equal(bad.code, 2);
    assert.match(bad.err, /CONSTRAINT_SYNTAX/);
    const gone = await run([
      'attest',
      'http://127.0.0.1:1',
      '--constraint',
      `C:${measurement} SEC:INSECURE`,
    ]);
    assert.equal(gone.code, 2);
    assert.match(gone.err, /NETWORK/);
    assert.match(gone.err, /next step/);
    // With --json, stdout carries the error as JSON too (it was empty), in every command.
    const asJson = await run([
      'attest',
      'http://127.0.0.1:1',
      '--json',
      '--constraint',
      `C:${measurement} SEC:INSECURE`,
    ]);
    assert.equal(asJson.code, 2);
    const parsed = JSON.parse(asJson.out) as { error: { code: string; hint: string } };
    assert.equal(parsed.error.code, 'NETWORK');
    assert.equal(typeof parsed.error.hint, 'string');
    const keyTwice = await run(['keys', 'new', join(home, 'k-twice.pem'), '--json']);
    assert.equal(keyTwice.code, 0, keyTwice.err);
    const again = await run(['keys', 'new', join(home, 'k-twice.pem'), '--json']);
    assert.equal(again.code, 2);
    assert.equal(
      (JSON.parse(again.out) as { error: { code: string } }).error.code,
      'INVALID_INPUT',
    );
    // A port nothing listens on (fetch refuses port 1 outright) is named by its cause.
    const free = createServer();
    await new Promise<void>((r) => free.listen(0, '127.0.0.1', r));
    const port = (free.address() as AddressInfo).port;
    await new Promise((r) => free.close(r));
    const refused = await run([
      'attest',
      `http://127.0.0.1:${port}`,
      '--constraint',
      `C:${measurement} SEC:INSECURE`,
    ]);
    assert.equal(refused.code, 2);
    assert.match(refused.err, /nothing listens there \(ECONNREFUSED\)/);
    // A plain-HTTP node asked over https:// is named as such (it was "fetch failed").
    const tls = await run([
      'attest',
      url.replace('http:', 'https:'),
      '--constraint',
      `C:${measurement} SEC:INSECURE`,
    ]);
    assert.equal(tls.code, 2);
    assert.match(tls.err, /does not speak TLS: .*starts with http:\/\//);
  });

  it('names a missing receipt file, and a bad log level before creating anything', async () => {
    const gone = await run([
      'receipt',
      'verify',
      join(home, 'no-such.cbor'),
      '--constraint',
      `C:${measurement} SEC:INSECURE`,
    ]);
    assert.equal(gone.code, 2);
    assert.match(
      gone.err,
      /INVALID_INPUT.*cannot read the receipt file .*no-such\.cbor \(ENOENT\)/,
    );
    const fresh = join(home, 'fresh-home');
    const level = await run(['--home', fresh, 'node', 'start', '--log-level', 'bogus']);
    // Bad input exits 2 in every command (node start said 1, call and keys 2).
    assert.equal(level.code, 2);
    const half = await run(['--home', fresh, 'node', 'start', '--tls-cert', 'c.pem']);
    assert.equal(half.code, 2);
    assert.match(half.err, /INVALID_INPUT.*give both --tls-cert and --tls-key/);
    assert.match(level.err, /INVALID_INPUT.*log level "bogus" is not one of/);
    const share = await run(['--home', fresh, 'node', 'start', '--scp-share-by', 'client']);
    assert.equal(share.code, 2);
    assert.match(share.err, /INVALID_INPUT.*--scp-share-by "client" is not one of address, socket/);
    assert.equal(existsSync(join(fresh, 'operator.pem')), false, 'no operator key was created');
  });

  it('what is in the way on this machine exits 2 (could not run); a missing build says to build', async () => {
    const fresh = join(home, 'in-the-way');
    const port = new URL(url).port;
    const busy = await run(['--home', fresh, 'node', 'start', '--port', port]);
    assert.equal(busy.code, 2, busy.err);
    assert.match(busy.err, /PORT_IN_USE/);
    // --port 0: the missing build must be what stops it, even with the default port taken.
    const nobuild = await run([
      '--home',
      fresh,
      'node',
      'start',
      '--port',
      '0',
      '--enclave',
      join(home, 'nodir'),
    ]);
    assert.equal(nobuild.code, 1, nobuild.err);
    assert.match(nobuild.err, /no enclave build in .*nodir: run `cloister build` first/);
    assert.match(nobuild.err, /next step: Build the enclave \(`npx cloister build`/);
    assert.doesNotMatch(nobuild.err, /does not match the bundle/);
  });

  it('a usage error in any subcommand exits 2 (1 means the node was refused)', async () => {
    const missing = await run(['attest', url]);
    assert.equal(missing.code, 2, missing.err);
    assert.match(missing.err, /required option '--constraint/);
    const unknown = await run(['node', 'start', '--bogus']);
    assert.equal(unknown.code, 2, unknown.err);
    assert.match(unknown.err, /unknown option '--bogus'/);
    assert.equal((await run(['receipt', 'get', '--help'])).code, 0);
    assert.equal((await run(['help', 'call'])).code, 0);
    assert.equal((await run(['help'])).code, 0);
    const v = await run(['--version']);
    assert.equal(v.code, 0, v.err);
    const pkg = JSON.parse(readFileSync(join(root, 'packages/cli/package.json'), 'utf8')) as {
      version: string;
    };
    assert.equal(v.out.trim(), pkg.version);
  });

  it('receipt get writes a receipt file that receipt verify accepts', async () => {
    const file = join(home, 'r-1.1.cbor');
    const g = await run(['receipt', 'get', url, '1.1', '-o', file]);
    assert.equal(g.code, 0, g.out + g.err);
    const summary = JSON.parse(g.out) as { txid: string; file: string; bytes: number };
    assert.equal(summary.txid, '1.1');
    assert.equal(summary.file, file);
    assert.equal(summary.bytes, readFileSync(file).length);
    const status = (await (await fetch(`${url}/v1/status`)).json()) as { serviceIdentity: string };
    const v = await run([
      'receipt',
      'verify',
      file,
      '--constraint',
      `C:${measurement} SEC:INSECURE`,
      '--service',
      status.serviceIdentity,
    ]);
    assert.equal(v.code, 0, v.out + v.err);
    const verdict = JSON.parse(v.out) as { verdict: string; txid: string; service: string };
    assert.equal(verdict.verdict, 'accepted');
    assert.equal(verdict.txid, '1.1');
    assert.equal(verdict.service, status.serviceIdentity);
    const other = await run([
      'receipt',
      'verify',
      file,
      '--constraint',
      `C:${measurement} SEC:INSECURE`,
      '--service',
      '00'.repeat(32),
    ]);
    assert.equal(other.code, 1);
    assert.match(other.err, /REFUSED \[RECEIPT\].*service/);
    // A constraint that does not admit the node: its next step is about the constraint, not
    // only "altered or forged".
    const strict = await run(['receipt', 'verify', file, '--constraint', `C:${measurement}`]);
    assert.equal(strict.code, 1);
    assert.match(
      strict.err,
      /next step: The receipt's node runs on an insecure platform .*add SEC:INSECURE/,
    );
    const wrong = await run([
      'receipt',
      'verify',
      file,
      '--constraint',
      `C:${'0'.repeat(64)} SEC:INSECURE`,
    ]);
    assert.equal(wrong.code, 1);
    assert.match(
      wrong.err,
      /next step: The receipt's node evidence does not meet .*cloister measure/,
    );
    // The constraint's SVC: clause is held to the receipt too; APP: clauses are named unchecked.
    const svc = await run([
      'receipt',
      'verify',
      file,
      '--constraint',
      `C:${measurement} SEC:INSECURE SVC:${'00'.repeat(32)}`,
    ]);
    assert.equal(svc.code, 1, svc.out);
    assert.match(svc.err, /REFUSED \[RECEIPT\].*constraint's SVC:/);
    const app = `APP:token=${'00'.repeat(32)}`;
    const named = await run([
      'receipt',
      'verify',
      file,
      '--constraint',
      `C:${measurement} SEC:INSECURE SVC:${status.serviceIdentity} ${app}`,
    ]);
    assert.equal(named.code, 0, named.out + named.err);
    const nv = JSON.parse(named.out) as { unchecked: string[]; serviceChecked: boolean };
    assert.deepEqual(nv.unchecked, [app]);
    assert.equal(nv.serviceChecked, true);
    assert.match(named.err, /not checked by a receipt: APP:token=/);
  });

  it('receipt get replaces a receipt but never another file, and names a missing folder', async () => {
    const file = join(home, 'r-again.cbor');
    assert.equal((await run(['receipt', 'get', url, '1.1', '-o', file])).code, 0);
    const again = await run(['receipt', 'get', url, '1.1', '-o', file]);
    assert.equal(again.code, 0, again.err);
    const notes = join(home, 'notes.txt');
    writeFileSync(notes, 'my notes');
    const over = await run(['receipt', 'get', url, '1.1', '-o', notes]);
    assert.equal(over.code, 2);
    assert.match(over.err, /INVALID_INPUT.*exists and does not hold a receipt/);
    assert.equal(readFileSync(notes, 'utf8'), 'my notes');
    const missing = await run(['receipt', 'get', url, '1.1', '-o', join(home, 'nope', 'r.cbor')]);
    assert.equal(missing.code, 2);
    assert.match(missing.err, /INVALID_INPUT.*folder .*nope does not exist/);
  });

  it('receipt verify refuses a file with one byte changed, saying why', async () => {
    // The genesis receipt fetched in `before` (the bytes `receipt get` writes): runs alone too.
    const bytes = readFileSync(genesisReceipt);
    const bad = join(home, 'r-bad.cbor');
    bytes[bytes.length - 30]! ^= 0x01;
    writeFileSync(bad, bytes);
    const r = await run([
      'receipt',
      'verify',
      bad,
      '--constraint',
      `C:${measurement} SEC:INSECURE`,
    ]);
    assert.equal(r.code, 1, r.out + r.err);
    assert.equal((JSON.parse(r.out) as { verdict: string }).verdict, 'refused');
    assert.match(r.err, /receipt REFUSED \[/);
    assert.match(r.err, /next step/);
    // A --service that is not 32 bytes is a usage error (2), before the receipt is read.
    const short = await run([
      'receipt',
      'verify',
      genesisReceipt,
      '--constraint',
      `C:${measurement} SEC:INSECURE`,
      '--service',
      '00'.repeat(31),
    ]);
    assert.equal(short.code, 2, short.out + short.err);
    assert.match(short.err, /INVALID_INPUT.*the service identity is 32 bytes \(64 hex digits\)/);
  });

  it('receipt get names a malformed txid and an unknown one', async () => {
    const bad = await run(['receipt', 'get', url, 'one.five', '-o', join(home, 'x.cbor')]);
    assert.equal(bad.code, 2);
    assert.match(bad.err, /term\.index/);
    assert.ok(!existsSync(join(home, 'x.cbor')));
    // Checked here, before anything is asked: the same with no node at the URL.
    const offline = await run(['receipt', 'get', 'http://127.0.0.1:9', 'one.five']);
    assert.equal(offline.code, 2);
    assert.match(offline.err, /INVALID_INPUT.*term\.index/);
    assert.doesNotMatch(offline.err, /NETWORK/);
    const unknown = await run(['receipt', 'get', url, '1.999999', '-o', join(home, 'x.cbor')]);
    assert.equal(unknown.code, 2);
    // The node's own code and words, not NETWORK with "check the node is running".
    assert.match(unknown.err, /UNKNOWN_TRANSACTION\]: no receipt for 1\.999999: .*HTTP 404/);
    assert.doesNotMatch(unknown.err, /NETWORK/);
  });

  it('a --signer-key or --out that does not exist or is a file is named, and nothing is created', async () => {
    const missing = join(home, 'no-such-dir', 'signer.pem');
    const r = await run(['build', '--out', join(home, 'enc-x'), '--signer-key', missing]);
    assert.equal(r.code, 2);
    assert.match(r.err, /INVALID_INPUT.*no signer key at .*no-such-dir.*leave --signer-key out/);
    assert.ok(!existsSync(join(home, 'no-such-dir')));
    assert.ok(!existsSync(join(home, 'enc-x')));
    const file = join(home, 'a-file.txt');
    writeFileSync(file, 'x');
    const out = await run(['build', '--out', file]);
    assert.equal(out.code, 2);
    assert.match(out.err, /INVALID_INPUT.*--out .*a-file\.txt is a file, not a directory/);
  });

  /** `cloister ledger rotate-secret` on this home's node, quiet, with `extra` flags. */
  const rotateSecret = (...extra: string[]) =>
    run(['ledger', 'rotate-secret', '--enclave', enclaveDir, '--log-level', 'silent', ...extra]);

  it('ledger rotate-secret refuses a running node: stop it first', async () => {
    const r = await rotateSecret();
    // A lock in the way: could not run (2), like every other command's.
    assert.equal(r.code, 2);
    assert.match(r.err, /DATA_DIR_LOCKED/);
    assert.match(r.err, /stop the node first/);
  });

  it('stops cleanly on SIGTERM', async () => {
    assert.equal(await stopNode(), 0);
    assert.match(nodeErr, /SIGTERM: stopping/);
  });

  it('a node whose test process is killed outright stops itself (the run fixture)', {
    timeout: 30_000,
  }, async () => {
    assert.equal(await stopNode(), 0, nodeErr); // this test's node takes the data directory
    // A middle process stands for a test runner: it starts the node through the fixture and is
    // then killed with SIGKILL, so nothing of it stops the node. The node's stderr pipe is ours
    // too; it closes only when the node has exited (or the test times out).
    const nodeArgs = ['--import', 'tsx', '--conditions=source', entry, '--home', home];
    const middle = spawn(
      process.execPath,
      [
        '-e',
        `const c = require('node:child_process').spawn(process.execPath, ${JSON.stringify([
          ...nodeArgs,
          'node',
          'start',
          '--enclave',
          enclaveDir,
          '--port',
          '0',
          '--log-level',
          'silent',
        ])}, { stdio: ['ignore', 'ignore', 'inherit'] }); console.log(c.pid); setInterval(() => {}, 1e6);`,
      ],
      { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let err = '';
    let out = '';
    middle.stdout!.on('data', (d) => {
      out += d;
    });
    const closed = new Promise<void>((resolve) => middle.stderr!.on('close', resolve));
    await new Promise<void>((resolve, reject) => {
      middle.stderr!.on('data', (d) => {
        err += d;
        if (/listening on http/.test(err)) resolve();
      });
      middle.on('exit', () => reject(new Error(`the middle process exited: ${err}`)));
    });
    const pid = Number(out.trim());
    assert.ok(Number.isSafeInteger(pid) && pid > 0, out);
    middle.removeAllListeners('exit');
    middle.kill('SIGKILL');
    await closed;
    assert.match(err, /SIGTERM: stopping/);
    // Gone, or a zombie waiting for whoever adopted it to reap it: not running either way.
    const stat = existsSync(`/proc/${pid}/stat`) ? readFileSync(`/proc/${pid}/stat`, 'utf8') : '';
    assert.ok(stat === '' || /^\d+ \(.*\) Z /.test(stat), stat);
  });

  it('log audit passes on a good copy and prints what it verified', async () => {
    assert.equal(await stopNode(), 0, nodeErr);
    const copy = join(home, 'audit-good');
    cpSync(join(home, 'data'), copy, { recursive: true });
    const r = await run(['log', 'audit', copy, '--constraint', `C:${measurement} SEC:INSECURE`]);
    assert.equal(r.code, 0, r.out + r.err);
    assert.match(r.out, /: VERIFIED\n/);
    assert.match(r.out, /entries +\d+/);
    // Without a constraint the headline says what was not checked.
    const bare = await run(['log', 'audit', copy]);
    assert.equal(bare.code, 0, bare.out + bare.err);
    assert.match(
      bare.out,
      /: VERIFIED \(no --constraint given: the code and the service were not checked\)\n/,
    );
    assert.match(r.out, /signatures +\d+/);
    const j = await run(['log', 'audit', join(copy, 'store'), '--json']);
    assert.equal(j.code, 0, j.out + j.err);
    const report = JSON.parse(j.out) as { verdict: string; entries: number; lastSigned: number };
    assert.equal(report.verdict, 'verified');
    assert.ok(report.entries >= 2);
    assert.ok(report.lastSigned >= 1);
    // Consistency with a root the auditor already trusts: the one its receipt verified.
    const v = await run([
      'receipt',
      'verify',
      genesisReceipt,
      '--constraint',
      `C:${measurement} SEC:INSECURE`,
    ]);
    assert.equal(v.code, 0, v.out + v.err);
    const signed = JSON.parse(v.out) as { treeSize: number; treeRoot: string };
    const trusted = (root: string) =>
      run([
        'log',
        'audit',
        copy,
        '--trusted-size',
        String(signed.treeSize),
        '--trusted-root',
        root,
      ]);
    const ok = await trusted(signed.treeRoot);
    assert.equal(ok.code, 0, ok.out + ok.err);
    const forked = await trusted(signed.treeRoot.replace(/^./, (c) => (c === '0' ? '1' : '0')));
    assert.equal(forked.code, 1, forked.out + forked.err);
    assert.match(forked.err, /log audit FAILED/);
    // Usage errors are 2, before the log is read: a constraint that does not parse, a trusted
    // size without its root, a root that is not 32 bytes.
    const badConstraint = await run(['log', 'audit', copy, '--constraint', 'Q:1']);
    assert.equal(badConstraint.code, 2, badConstraint.out + badConstraint.err);
    assert.match(badConstraint.err, /CONSTRAINT_SYNTAX.*"Q:1": unknown clause/);
    const alone = await run(['log', 'audit', copy, '--trusted-size', String(signed.treeSize)]);
    assert.equal(alone.code, 2, alone.out + alone.err);
    assert.match(alone.err, /INVALID_INPUT.*give --trusted-size and --trusted-root together/);
    const shortRoot = await trusted(signed.treeRoot.slice(2));
    assert.equal(shortRoot.code, 2, shortRoot.out + shortRoot.err);
    assert.match(shortRoot.err, /INVALID_INPUT.*the trusted root is 32 bytes \(64 hex digits\)/);
  });

  it('log audit names the first bad entry of a tampered copy', async () => {
    assert.equal(await stopNode(), 0, nodeErr);
    const copy = join(home, 'audit-bad');
    cpSync(join(home, 'data'), copy, { recursive: true });
    const store = await openLevelStore(join(copy, 'store'), { createIfMissing: false });
    const key = new Uint8Array(9);
    key[0] = 0x02;
    key[8] = 2; // entry 2
    const value = store.get(key);
    assert.ok(value);
    const changed = new Uint8Array(value);
    changed[changed.length - 5]! ^= 0x01;
    await store.write([{ type: 'put', key, value: changed }], { sync: true });
    await store.close();
    const r = await run(['log', 'audit', copy]);
    assert.equal(r.code, 1, r.out + r.err);
    assert.match(r.out, /FAILED at entry 2/);
    assert.match(r.err, /log audit FAILED at entry 2: \[LOG_/);
  });

  it('log audit refuses an entry moved to another key (missing where it belongs) or a foreign key in the log range', async () => {
    assert.equal(await stopNode(), 0, nodeErr);
    const entryKey = (k: number | bigint) => {
      const key = new Uint8Array(9);
      key[0] = 0x02;
      new DataView(key.buffer).setBigUint64(1, BigInt(k));
      return key;
    };
    for (const [name, change] of [
      [
        'moved',
        async (store: LevelStore) => {
          // The last entry under a key far beyond it: same bytes, same order, another key.
          let last = 0;
          for await (const { key } of store.iterate({
            gte: Uint8Array.of(2),
            lt: Uint8Array.of(3),
          }))
            last = Number(new DataView(key.buffer, key.byteOffset).getBigUint64(1));
          const value = store.get(entryKey(last));
          assert.ok(value);
          await store.write(
            [
              { type: 'del', key: entryKey(last) },
              { type: 'put', key: entryKey(last + 1000), value },
            ],
            { sync: true },
          );
          return last;
        },
      ],
      [
        'foreign',
        async (store: LevelStore) => {
          // A two-byte key sorts before every entry key: it takes position 1.
          const value = store.get(entryKey(1));
          assert.ok(value);
          await store.write([{ type: 'put', key: Uint8Array.of(0x02, 0x00), value }], {
            sync: true,
          });
          return 1;
        },
      ],
      [
        'entry0',
        async (store: LevelStore) => {
          // An entry key of index 0, which no log has: it sorts first and takes position 1.
          const value = store.get(entryKey(1));
          assert.ok(value);
          await store.write([{ type: 'put', key: entryKey(0), value }], { sync: true });
          return 1;
        },
      ],
    ] as const) {
      const copy = join(home, `audit-${name}`);
      cpSync(join(home, 'data'), copy, { recursive: true });
      const store = await openLevelStore(join(copy, 'store'), { createIfMissing: false });
      const at = await change(store);
      await store.close();
      const r = await run(['log', 'audit', copy, '--json']);
      assert.equal(r.code, 1, `${name}: ${r.out}${r.err}`);
      const j = JSON.parse(r.out) as { code: string; index: number; message: string };
      assert.equal(j.code, name === 'moved' ? 'LOG_ENTRY_MISSING' : 'LOG_ENTRY_ALTERED', name);
      assert.equal(j.index, at, name);
      assert.match(
        j.message,
        name === 'moved'
          ? /is missing: the next key/
          : name === 'entry0'
            ? /the key of entry 0, which no log has/
            : /is stored under key/,
      );
    }
  });

  it('ledger rotate-secret on the stopped node; the log still audits', async () => {
    assert.equal(await stopNode(), 0, nodeErr);
    const r = await rotateSecret('--json');
    assert.equal(r.code, 0, r.out + r.err);
    const j = JSON.parse(r.out) as { txid: string; generation: number; service: string };
    assert.equal(j.generation, 1);
    assert.match(j.txid, /^1\.\d+$/);
    assert.match(j.service, /^[0-9a-f]{64}$/);
    assert.equal(r.err, '');
    // Without --json, a sentence on stdout naming the next generation and its entry.
    const h = await rotateSecret();
    assert.equal(h.code, 0, h.out + h.err);
    assert.match(
      h.out,
      /^ledger secret rotated: generation 2, rotation entry 1\.\d+\. New entries use the new generation/,
    );
    assert.equal(h.err, '');
    const a = await run(['log', 'audit', home, '--json']);
    assert.equal(a.code, 0, a.out + a.err);
    const report = JSON.parse(a.out) as { entries: number };
    assert.ok(report.entries >= Number(j.txid.split('.')[1]));
  });
});
