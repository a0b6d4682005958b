/**
 * `cloister dev` on a copy of the template app: the first build deploys it; a saved change is
 * rebuilt and upgraded (a new code id, the ledger kept); the app's `trace` output reaches the
 * developer as `[trace APP] ...` lines; a compile error prints the compiler's message and keeps
 * watching, and the fix is picked up. The switch is simulation only: an enclave whose platform
 * reports another name refuses apps.trace (and emits nothing), and `--node` refuses a node
 * claiming another platform.
 */
import assert from 'node:assert/strict';
import { type ChildProcessWithoutNullStreams, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { connect, fileState, generateIdentity, scpUrl } from '@cloister/client/node';
import {
  ES256_PROTECTED,
  encodeEvidencePayload,
  encodeSign1,
  toBase64,
  toHex,
} from '@cloister/core';
import { openSimulationPlatform, readBuild } from '@cloister/host';
import { launchEnclaveWorker } from '../../host/src/launcher/index.js';
import { enclaveOcalls } from '../../host/src/node/node.js';
import { createMemoryStore, storeOcalls } from '../../host/src/store/index.js';
import { testBuild } from '../../host/test/helpers.js';
import { createApp } from '../src/commands/app-new.js';
import { assertSimulation, watchTree } from '../src/commands/dev.js';

const entry = fileURLToPath(new URL('./fixtures/run.ts', import.meta.url));
const root = fileURLToPath(new URL('../../..', import.meta.url));
const tmp = mkdtempSync(join(tmpdir(), 'cloister-dev-test-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

/** `cloister --home <home> …args` as a child process, watched. */
function cloisterChild(home: string, ...args: string[]): Watched {
  return new Watched(
    spawn(
      process.execPath,
      ['--import', 'tsx', '--conditions=source', entry, '--home', home, ...args],
      {
        cwd: root,
        env: { ...process.env, CI: 'true', NODE_OPTIONS: '', NODE_TEST_CONTEXT: undefined },
        stdio: ['pipe', 'pipe', 'pipe'],
      },
    ),
  );
}

/** Output of a running child, with a wait for a pattern to appear after a given offset. */
class Watched {
  out = '';
  err = '';
  readonly exit: Promise<number>;
  private waiters: (() => void)[] = [];
  readonly child: ChildProcessWithoutNullStreams;
  constructor(child: ChildProcessWithoutNullStreams) {
    this.child = child;
    const poke = () => {
      for (const w of this.waiters) w();
    };
    child.stdout.on('data', (d) => {
      this.out += d;
      poke();
    });
    child.stderr.on('data', (d) => {
      this.err += d;
      poke();
    });
    this.exit = new Promise((resolve) => child.on('close', (c) => resolve(c ?? -1)));
  }
  /** Resolves with the match of `re` in stdout+stderr after `from` characters of stdout. */
  wait(stream: 'out' | 'err', re: RegExp, from = 0): Promise<RegExpMatchArray> {
    return new Promise((resolve, reject) => {
      const check = () => {
        const m = this[stream].slice(from).match(re);
        if (m) {
          this.waiters = this.waiters.filter((w) => w !== check);
          resolve(m);
        }
      };
      this.waiters.push(check);
      void this.exit.then((c) => reject(new Error(`dev exited (${c}):\n${this.out}\n${this.err}`)));
      check();
    });
  }
}

describe('cloister dev', () => {
  let enclave: string;
  const project = join(tmp, 'counter');
  const source = join(project, 'assembly', 'index.ts');
  before(async () => {
    enclave = (await testBuild()).outDir;
    createApp('counter', { dir: project });
  });

  it('deploys, upgrades on a change with a new code id, streams trace output, survives a compile error', async () => {
    const w = cloisterChild(join(tmp, 'home'), 'dev', project, '--enclave', enclave);
    try {
      const url = (await w.wait('out', /^node: (http:\/\/\S+)/m))[1] as string;
      const first = await w.wait('out', /deployed counter\n {2}code id {6}([0-9a-f]{64})/);
      const firstId = first[1] as string;
      await w.wait('err', /watching .*assembly/);

      // A change: trace the argument, then call the upgraded app with the printed constraint.
      let mark = w.out.length;
      const original = readFileSync(source, 'utf8');
      writeFileSync(
        source,
        original.replace(
          "const name = args.getString('name');",
          "const name = args.getString('name');\n  trace('incrementing ' + name, 1, <f64>name.length);",
        ),
      );
      const up = await w.wait(
        'out',
        /built in .*: upgraded counter\n {2}code id {6}([0-9a-f]{64})\n {2}constraint {3}(.*)\n/,
        mark,
      );
      assert.notEqual(up[1], firstId);
      const client = await connect(url, {
        constraint: up[2] as string,
        identity: await generateIdentity(),
      });
      try {
        const r = await client.app('counter').transact('increment', { name: 'abc' });
        assert.deepEqual((r.result as { value: number }).value, 1);
        await w.wait('err', /\[trace counter\] incrementing abc 3\n/);
      } finally {
        await client.close();
      }

      // A compile error: the message with its place, still watching; the fix is picked up.
      mark = w.err.length;
      writeFileSync(source, `${original}\nexport function broken(: i32 {}\n`);
      await w.wait('err', /index\.ts:\d+:\d+: error .*\n[\s\S]*next step: fix it and save/, mark);
      await w.wait('err', /watching/, mark);
      const outMark = w.out.length;
      writeFileSync(source, original);
      const back = await w.wait('out', /upgraded counter\n {2}code id {6}([0-9a-f]{64})/, outMark);
      assert.equal(back[1], firstId);
    } finally {
      w.child.kill('SIGINT');
    }
    assert.equal(await w.exit, 0, w.err);
  });

  it('a dev node on a URL pinned to an earlier service says so, with the --accept-service to use', async () => {
    // A free port, and a pin for it from an "earlier run" (another service) in a fresh home.
    const port = await new Promise<number>((resolve) => {
      const s = createServer().listen(0, '127.0.0.1', () => {
        const p = (s.address() as AddressInfo).port;
        s.close(() => resolve(p));
      });
    });
    const home = join(tmp, 'home-pinned');
    const earlier = new Uint8Array(32).fill(7);
    await fileState(home).pins.put(scpUrl(`http://127.0.0.1:${port}`), earlier, null);
    const w = cloisterChild(home, 'dev', project, '--enclave', enclave, '--port', String(port));
    try {
      const note = await w.wait(
        'err',
        /note: this dev node is a new service \(([0-9a-f]{64})\); (\S+) is pinned to an earlier one \(([0-9a-f]{64})\) in .*client-state\.json, so `cloister call` and `query` there report SERVICE_CHANGED: accept it once with --accept-service ([0-9a-f]{64})\n/,
      );
      assert.equal(note[2], `http://127.0.0.1:${port}`);
      assert.equal(note[3], toHex(earlier));
      assert.equal(note[4], note[1]);
      assert.notEqual(note[1], toHex(earlier));
    } finally {
      w.child.kill('SIGINT');
    }
    assert.equal(await w.exit, 0, w.err);
  });

  it('the enclave refuses apps.trace unless its platform says simulation, and sends no trace before', async () => {
    const { bundle, manifest } = readBuild(enclave);
    for (const name of ['sev-snp', 'simulation']) {
      const platform = openSimulationPlatform({ dir: join(tmp, `platform-${name}`) });
      const identity = platform.admit(bundle, manifest);
      const base = enclaveOcalls(platform, identity, storeOcalls(createMemoryStore()));
      const traced: string[] = [];
      const worker = await launchEnclaveWorker({
        code: bundle,
        // The host lies about nothing but the platform's name (on hardware it could not).
        ocalls: {
          ...base,
          'platform.self': () => ({
            platform: name,
            measurement: identity.measurement,
            signer: identity.signer,
            product: identity.product,
            svn: identity.svn,
          }),
        },
        events: { 'app.trace': (f) => traced.push(f.message) },
      });
      try {
        await worker.call('enclave.start', {
          nodeId: 'n1',
          sealedNode: new Uint8Array(0),
          sealedService: new Uint8Array(0),
        });
        if (name === 'simulation') {
          assert.deepEqual(await worker.call('apps.trace', { enable: true }), { enabled: true });
          assert.deepEqual(await worker.call('apps.trace', { enable: false }), { enabled: false });
        } else {
          await assert.rejects(worker.call('apps.trace', { enable: true }), {
            code: 'INVALID_INPUT',
            message: /refused on the sev-snp platform/,
          });
        }
        assert.deepEqual(traced, []);
      } finally {
        await worker.terminate();
        platform.close();
      }
    }
  });

  it('--node: refuses a node that says it is not a simulation', async () => {
    const server = createServer((req, res) => {
      res.setHeader('content-type', 'application/json');
      res.end(
        JSON.stringify(
          req.url?.startsWith('/v1/health') ? { status: 'ok', platform: 'sev-snp' } : {},
        ),
      );
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    try {
      await assert.rejects(
        assertSimulation(url),
        /sev-snp platform: `cloister dev` upgrades apps on the simulation platform only/,
      );
    } finally {
      server.close();
    }
  });

  it('--node: a URL that is none, a port nothing listens on, or a server that is no node are named', async () => {
    await assert.rejects(assertSimulation('notaurl'), {
      code: 'INVALID_INPUT',
      message: /--node "notaurl" is not an http\(s\) URL/,
    });
    const free = createServer();
    await new Promise<void>((r) => free.listen(0, '127.0.0.1', r));
    const port = (free.address() as AddressInfo).port;
    await new Promise((r) => free.close(r));
    await assert.rejects(assertSimulation(`http://127.0.0.1:${port}`), {
      code: 'NETWORK',
      message: /nothing listens there \(ECONNREFUSED\)/,
    });
    const html = createServer((_req, res) => res.end('<!DOCTYPE html><p>hello</p>'));
    await new Promise<void>((r) => html.listen(0, '127.0.0.1', r));
    try {
      await assert.rejects(
        assertSimulation(`http://127.0.0.1:${(html.address() as AddressInfo).port}`),
        {
          code: 'NETWORK',
          message: /answered \/v1\/health with HTTP 200 and no JSON: is it a Cloister node\?/,
        },
      );
    } finally {
      html.close();
    }
  });
});

describe('cloister dev: what it refuses before it starts anything', () => {
  it('--node: a node whose evidence names another platform than its health answer is refused', async () => {
    const claims = {
      v: 1 as const,
      platform: 'sev-snp',
      measurement: new Uint8Array(32),
      signer: new Uint8Array(32),
      product: 1,
      svn: 1,
      reportData: new Uint8Array(64),
      platformKey: Uint8Array.from({ length: 65 }, (_, i) => (i === 0 ? 4 : 1)),
    };
    const evidence = encodeSign1({
      protectedBytes: ES256_PROTECTED,
      payload: encodeEvidencePayload(claims),
      signature: new Uint8Array(64),
    });
    // Its health says simulation; the claims inside its evidence say otherwise.
    const server = createServer((req, res) => {
      res.setHeader('content-type', 'application/json');
      res.end(
        JSON.stringify(
          req.url?.startsWith('/v1/health')
            ? { status: 'ok', platform: 'simulation' }
            : { evidence: toBase64(evidence) },
        ),
      );
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    try {
      await assert.rejects(assertSimulation(url), {
        code: 'INVALID_INPUT',
        message: /runs on the sev-snp platform: `cloister dev` upgrades apps on the simulation/,
      });
    } finally {
      server.close();
    }
  });

  it('--node: a URL of another scheme than http(s) is named', async () => {
    await assert.rejects(assertSimulation('ftp://127.0.0.1/'), {
      code: 'INVALID_INPUT',
      message: /--node "ftp:\/\/127\.0\.0\.1\/" is not an http\(s\) URL/,
    });
  });

  it('a folder without assembly/ exits 2 naming it, before it asks any node', async () => {
    const empty = join(tmp, 'not-an-app');
    mkdirSync(empty, { recursive: true });
    const w = cloisterChild(join(tmp, 'home'), 'dev', empty, '--node', 'http://127.0.0.1:1');
    assert.equal(await w.exit, 2, w.err);
    assert.match(w.err, /no assembly\/ folder in .*not-an-app: give an app project/);
    assert.doesNotMatch(w.err, /127\.0\.0\.1:1/, 'the node was not asked');
  });
});

describe('the source watcher of cloister dev', () => {
  it('sees every save, also those made by renaming a temporary file over the source (vim, safe write)', async () => {
    const root = mkdtempSync(join(tmpdir(), 'cloister-watch-'));
    mkdirSync(join(root, 'lib'));
    const file = join(root, 'lib', 'index.ts');
    writeFileSync(file, 'v0');
    let events = 0;
    const w = watchTree(root, () => {
      events++;
    });
    /** Waits (a turn at a time, up to about 2 s) until the watcher reported something new. */
    const seen = async (): Promise<void> => {
      const before = events;
      for (let i = 0; i < 200 && events === before; i++)
        await new Promise((r) => setTimeout(r, 10));
      assert.ok(events > before, 'the change was reported');
    };
    try {
      for (let i = 1; i <= 3; i++) {
        // As an editor saving safely: a new file, renamed over the source.
        const p = seen();
        writeFileSync(`${file}.tmp`, `v${i}`);
        renameSync(`${file}.tmp`, file);
        await p;
      }
      // In place, after the renames (Node 20's recursive watch had stopped reporting by now).
      const p = seen();
      writeFileSync(file, 'v4');
      await p;
      // A folder made later is watched too.
      mkdirSync(join(root, 'lib', 'more'));
      await new Promise((r) => setTimeout(r, 50));
      const q = seen();
      writeFileSync(join(root, 'lib', 'more', 'x.ts'), 'x');
      await q;
    } finally {
      w.close();
      rmSync(root, { recursive: true, force: true });
    }
  });
});
