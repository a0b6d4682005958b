/**
 * The `cloister` command as a user runs it: build, measure, node start, attest (issue 2
 * "Must show: cloister attest against a running node").
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';

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
  let url: string;
  let nodeErr = '';

  before(async () => {
    const b = await run(['build', '--out', enclaveDir, '--quiet']);
    assert.equal(b.code, 0, b.err);
    measurement = b.out.trim();
    assert.match(measurement, /^[0-9a-f]{64}$/);
    node = cli(['node', 'start', '--enclave', enclaveDir, '--port', '0', '--log-level', 'silent']);
    url = await new Promise<string>((resolve, reject) => {
      node.stderr!.on('data', (d) => {
        nodeErr += d;
        const m = /listening on (http:\/\/[0-9.]+:\d+)/.exec(nodeErr);
        if (m) resolve(m[1]!);
      });
      node.on('exit', () => reject(new Error(`node exited: ${nodeErr}`)));
    });
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
  });

  it('stops cleanly on SIGTERM', async () => {
    const code = await new Promise<number | null>((resolve) => {
      node.on('exit', (c) => resolve(c));
      node.kill('SIGTERM');
    });
    assert.equal(code, 0);
    assert.match(nodeErr, /SIGTERM: stopping/);
  });
});
