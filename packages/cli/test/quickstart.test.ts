/**
 * `cloister quickstart` (what `npm start` runs) as a user meets it: a child process, offline, with
 * CI=true; it prints the node URL, the constraint and the console URL; a client calls an example
 * over SCP with exactly that constraint, and a tampered APP: clause is refused; SIGINT stops it
 * with exit code 0. A second start on the same home skips the unchanged examples. deployIfChanged
 * deploys, skips and upgrades by code id.
 */
import assert from 'node:assert/strict';
import { type ChildProcessWithoutNullStreams, spawn } from 'node:child_process';
import {
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { type AddressInfo, createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { connect, fileState, generateIdentity, scpUrl } from '@cloister/client/node';
import { fromHex } from '@cloister/core';
import { testBuild } from '../../host/test/helpers.js';
import { buildKey, deployIfChanged, QUICKSTART_EXAMPLES } from '../src/commands/quickstart.js';

const entry = fileURLToPath(new URL('./fixtures/run.ts', import.meta.url));
const root = fileURLToPath(new URL('../../..', import.meta.url));
const tmp = mkdtempSync(join(tmpdir(), 'cloister-quickstart-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

interface Started {
  readonly child: ChildProcessWithoutNullStreams;
  readonly out: () => string;
  readonly err: () => string;
  readonly exit: Promise<number>;
  readonly url: string;
  readonly constraint: string;
  readonly consoleLine: string;
}

/** Starts quickstart and waits for its "press Ctrl-C" line (or its exit, which fails the test). */
function start(args: string[]): Promise<Started> {
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', '--conditions=source', entry, ...args],
    {
      cwd: root,
      env: { ...process.env, CI: 'true', NODE_OPTIONS: '', NODE_TEST_CONTEXT: undefined },
      stdio: ['pipe', 'pipe', 'pipe'],
    },
  );
  let out = '';
  let err = '';
  const exit = new Promise<number>((resolve) => child.on('close', (c) => resolve(c ?? -1)));
  return new Promise((resolve, reject) => {
    child.stderr.on('data', (d) => {
      err += d;
    });
    child.stdout.on('data', (d) => {
      out += d;
      if (!out.includes('press Ctrl-C to stop')) return;
      const field = (name: string) =>
        (out.split('\n').find((l) => l.startsWith(`${name}: `)) ?? '').slice(name.length + 2);
      resolve({
        child,
        out: () => out,
        err: () => err,
        exit,
        url: field('node').split(' ')[0] as string,
        constraint: field('constraint'),
        consoleLine: field('console'),
      });
    });
    void exit.then((code) => reject(new Error(`quickstart exited (${code}) early:\n${err}`)));
  });
}

/** A server holding a free port on 127.0.0.1 (close it to free the port again). */
async function holdPort(): Promise<{ server: Server; port: number }> {
  const server = createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { server, port: (server.address() as AddressInfo).port };
}

describe('cloister quickstart', () => {
  let enclave: string;
  const home = join(tmp, 'home');
  before(async () => {
    enclave = (await testBuild()).outDir;
  });

  it('prints the node, the constraint and the console; an example answers over SCP; SIGINT stops it', async () => {
    const s = await start([
      '--home',
      home,
      'quickstart',
      '--port',
      '0',
      '--console-port',
      '0',
      '--enclave',
      enclave,
    ]);
    try {
      assert.match(s.url, /^http:\/\/127\.0\.0\.1:\d+$/);
      assert.match(
        s.constraint,
        /^C:[0-9a-f]{64} SEC:INSECURE SIM:[0-9a-f]{64}( APP:\S+=[0-9a-f]{64}){5}$/,
      );
      for (const name of QUICKSTART_EXAMPLES) {
        assert.match(s.constraint, new RegExp(` APP:${name}=[0-9a-f]{64}`));
        assert.match(s.err(), new RegExp(`  ${name}: deployed [0-9a-f]{64}`));
      }
      assert.match(s.consoleLine, /^http:\/\/127\.0\.0\.1:\d+\/ /);
      assert.match(s.err(), /starting the node… \d/);
      const page = await fetch(s.consoleLine.split(' ')[0] as string);
      assert.equal(page.status, 200);

      const client = await connect(s.url, {
        constraint: s.constraint,
        identity: await generateIdentity(),
      });
      try {
        const r = await client.app('token').query('whoami');
        assert.match(JSON.stringify(r.result), /"callerId":"[0-9a-f]{64}"/);
      } finally {
        await client.close();
      }

      // A client pinning other code for the app is refused before anything is sent.
      const wrong = s.constraint.replace(/APP:poll=[0-9a-f]{64}/, `APP:poll=${'0'.repeat(64)}`);
      const other = await connect(s.url, { constraint: wrong, identity: await generateIdentity() });
      try {
        await assert.rejects(other.app('poll').query('results', {}), {
          code: 'APP_CODE_MISMATCH',
        });
      } finally {
        await other.close();
      }

      // Deploy, skip and upgrade by code id, against the running node with its operator key.
      const cache = join(home, 'examples-cache');
      const wasm = (name: string) =>
        join(cache, readdirSync(cache).find((f) => f.startsWith(`${name}-`)) as string);
      const first = await deployIfChanged(s.url, 'extra', wasm('token'), { home });
      assert.equal(first.outcome, 'deployed');
      assert.equal(
        (await deployIfChanged(s.url, 'extra', wasm('token'), { home })).outcome,
        'unchanged',
      );
      const up = await deployIfChanged(s.url, 'extra', wasm('auction'), { home });
      assert.equal(up.outcome, 'upgraded');
      assert.notEqual(up.codeId, first.codeId);
    } finally {
      s.child.kill('SIGINT');
    }
    assert.equal(await s.exit, 0, s.err());
    assert.match(s.err(), /SIGINT: stopping/);
  });

  it('a second start on the same home skips the unchanged examples', async () => {
    const s = await start([
      '--home',
      home,
      'quickstart',
      '--port',
      '0',
      '--enclave',
      enclave,
      '--no-console',
    ]);
    s.child.kill('SIGINT');
    assert.equal(await s.exit, 0, s.err());
    for (const name of QUICKSTART_EXAMPLES) {
      assert.match(s.err(), new RegExp(`  ${name}: unchanged \\(same code id\\), skipped`));
    }
    assert.match(s.consoleLine, /^run `npx cloister console http:\/\/127\.0\.0\.1:\d+/);
  });

  it('a start whose service is not the one pinned for its URL says so, with the identity to accept', async () => {
    // As `npm start` going back to an earlier build's data directory: the client state of the
    // home pins the service the last start (on another data directory) showed on this URL.
    const { server, port } = await holdPort();
    await new Promise((r) => server.close(r));
    const url = `http://127.0.0.1:${port}`;
    const earlier = 'ab'.repeat(32);
    await fileState(home).pins.put(scpUrl(url), fromHex(earlier), null);
    const args = [
      '--home',
      home,
      'quickstart',
      '--port',
      String(port),
      '--data',
      join(tmp, 'other-data'),
      '--enclave',
      enclave,
      '--no-console',
    ];
    const s = await start(args);
    let service: string;
    try {
      service = (
        (await (await fetch(new URL('/v1/status', s.url))).json()) as { serviceIdentity: string }
      ).serviceIdentity;
    } finally {
      s.child.kill('SIGINT');
    }
    assert.equal(await s.exit, 0, s.err());
    assert.match(
      s.err(),
      new RegExp(
        `note: this node's service \\(${service}, kept in .*other-data\\) is not the one pinned for ${url} in .*client-state\\.json \\(${earlier}\\).*SERVICE_CHANGED.*--accept-service ${service}\n`,
      ),
    );
    // Once the pin is this service (the client accepted it), a start says nothing more.
    await fileState(home).pins.put(scpUrl(url), fromHex(service), fromHex(earlier));
    const again = await start(args);
    again.child.kill('SIGINT');
    assert.equal(await again.exit, 0, again.err());
    assert.doesNotMatch(again.err(), /note: /);
  });

  it('a console port in use fails before the node starts, naming --console-port', async () => {
    const { server, port } = await holdPort();
    const h = join(tmp, 'h3');
    try {
      const s = start([
        '--home',
        h,
        'quickstart',
        '--port',
        '0',
        '--console-port',
        String(port),
        '--data',
        join(tmp, 'd3'),
        '--enclave',
        enclave,
      ]);
      await assert.rejects(
        s,
        new RegExp(
          `exited \\(2\\) early:[\\s\\S]*PORT_IN_USE[\\s\\S]*port ${port} on 127\\.0\\.0\\.1 is in use[\\s\\S]*next step: Choose another port for the console with --console-port`,
        ),
      );
      await assert.rejects(s, (e: Error) => !/starting the node/.test(e.message));
      assert.equal(existsSync(join(tmp, 'd3')), false, 'no data directory was created');
      // The same port for the node and the console is refused by name, before anything starts.
      const same = start([
        '--home',
        h,
        'quickstart',
        '--port',
        '7433',
        '--console-port',
        '7433',
        '--enclave',
        enclave,
      ]);
      await assert.rejects(same, /exited \(2\) early:[\s\S]*both listen on port 7433/);
    } finally {
      await new Promise((r) => server.close(r));
    }
  });

  it('a missing enclave build fails with the next step, before anything starts', async () => {
    const s = start([
      '--home',
      join(tmp, 'h2'),
      'quickstart',
      '--port',
      '0',
      '--enclave',
      join(tmp, 'none'),
    ]);
    await assert.rejects(s, /exited \(1\) early:[\s\S]*next step:[\s\S]*cloister build/);
    assert.equal(existsSync(join(tmp, 'h2', 'quickstart')), false);
  });
});

describe('the examples cache key', () => {
  it('changes with any byte of an input, not with the folder or with build/ and test/', () => {
    const root = join(tmp, 'key-a');
    const put = (r: string, file: string, text: string) => {
      mkdirSync(join(r, file, '..'), { recursive: true });
      writeFileSync(join(r, file), text);
    };
    put(root, 'node_modules/assemblyscript/package.json', '{ "version": "1.0.0" }');
    put(root, 'examples/token/assembly/index.ts', 'export const a = 1;\n');
    put(root, 'examples/common/lib.ts', 'export const c = 1;\n');
    const key = buildKey(root, 'token');
    assert.match(key, /^[0-9a-f]{64}$/);
    // The same files in another folder: the same key (paths are taken relative to the root).
    const copy = join(tmp, 'key-b');
    cpSync(root, copy, { recursive: true });
    assert.equal(buildKey(copy, 'token'), key);
    // What the build does not read: the same key.
    put(copy, 'examples/token/build/app.wasm', 'old module');
    put(copy, 'examples/token/test/t.test.ts', 'a test');
    assert.equal(buildKey(copy, 'token'), key);
    // One byte of a source, of common/, or another compiler: another key.
    put(copy, 'examples/token/assembly/index.ts', 'export const a = 2;\n');
    const changed = buildKey(copy, 'token');
    assert.notEqual(changed, key);
    put(copy, 'examples/common/lib.ts', 'export const c = 2;\n');
    assert.notEqual(buildKey(copy, 'token'), changed);
    put(root, 'node_modules/assemblyscript/package.json', '{ "version": "1.0.1" }');
    assert.notEqual(buildKey(root, 'token'), key);
  });
});
