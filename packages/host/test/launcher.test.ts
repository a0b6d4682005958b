import assert from 'node:assert/strict';
import { describe, type TestContext, test } from 'node:test';
import { MessageChannel, type MessagePort, Worker } from 'node:worker_threads';
import {
  BoundaryError,
  createCodec,
  createHostRpc,
  type HostCallHandlers,
  RemoteError,
} from '@cloister/boundary';
import { CloisterError, fromHex, fromUtf8, utf8 } from '@cloister/core';
import {
  createWorkerHostPort,
  DEFAULT_RESOURCE_LIMITS,
  EnclaveFailedError,
  type EnclaveWorker,
  type LaunchOptions,
  launchEnclaveWorker,
} from '../src/launcher/index.js';
import { probeBundle, probeCommand, realBundle } from './fixtures/boundary/probe.js';

const codec = createCodec();

async function launch(
  t: TestContext,
  code: Uint8Array,
  extra: Partial<LaunchOptions> = {},
): Promise<{
  w: EnclaveWorker;
  errors: BoundaryError[];
  exits: { exitCode: number; requested: boolean }[];
}> {
  const errors: BoundaryError[] = [];
  const exits: { exitCode: number; requested: boolean }[] = [];
  const w = await launchEnclaveWorker({
    code,
    ocalls: {},
    onProtocolError: (e) => errors.push(e),
    onExit: (i) => exits.push(i),
    ...extra,
  });
  t.after(() => w.terminate()); // also when the test fails: a live worker would hang the run
  return { w, errors, exits };
}

function isFailed(e: unknown): boolean {
  assert.ok(e instanceof EnclaveFailedError, `expected EnclaveFailedError, got ${e}`);
  assert.equal(e.code, 'ENCLAVE_FAILED');
  return true;
}

describe('the real enclave bundle', () => {
  test('answers enclave.ping; terminate fires onExit and later calls fail by name', async (t) => {
    const { w, exits } = await launch(t, await realBundle());
    const payload = new Uint8Array(64).map((_, i) => i);
    assert.deepEqual((await w.call('enclave.ping', { payload })).payload, payload);
    // Large frames are transferred rather than copied; the caller's bytes stay intact.
    const big = new Uint8Array(32 * 1024).map((_, i) => i % 251);
    assert.deepEqual((await w.call('enclave.ping', { payload: big })).payload, big);
    assert.equal(big.length, 32 * 1024);
    await w.terminate();
    assert.deepEqual(exits, [{ exitCode: 1, requested: true }]);
    await assert.rejects(w.call('enclave.ping', { payload }), isFailed);
  });
});

describe('calls through the real shim (probe enclave)', () => {
  test('synchronous host.ping from inside the enclave, served by an async host handler', async (t) => {
    let served = 0;
    const ocalls: HostCallHandlers = {
      'host.ping': async (req) => {
        await new Promise((r) => setImmediate(r));
        served++;
        return { payload: req.payload };
      },
    };
    const { w, errors } = await launch(t, await probeBundle(), { ocalls });
    assert.equal(await probeCommand(w, 'sync-ping:300'), 300);
    assert.equal(await probeCommand(w, 'async-ping:20'), 20);
    assert.equal(served, 320);
    assert.deepEqual(errors, []);
    await w.terminate();
  });

  test('a host handler error reaches enclave code with its code, sync and async', async (t) => {
    const ocalls: HostCallHandlers = {
      'platform.counterRead': (req) => {
        throw new CloisterError('COUNTER', `counter ${req.name} was rolled back`);
      },
    };
    const { w } = await launch(t, await probeBundle(), { ocalls });
    const r = (await probeCommand(w, 'sync-error:votes')) as Record<string, Record<string, string>>;
    for (const way of ['sync', 'async']) {
      assert.equal(r[way]?.name, 'RemoteError');
      assert.equal(r[way]?.code, 'COUNTER');
      assert.equal(r[way]?.message, 'counter votes was rolled back');
    }
    await w.terminate();
  });

  test('an enclave handler error reaches the host as code and message only', async (t) => {
    const { w } = await launch(t, await probeBundle());
    await assert.rejects(
      w.call('enclave.ping', { payload: utf8('throw-cloister') }),
      (e: unknown) => {
        assert.ok(e instanceof RemoteError);
        assert.equal(e.code, 'INVALID_INPUT');
        assert.equal(e.message, 'the probe was asked to fail');
        return true;
      },
    );
    await assert.rejects(w.call('enclave.ping', { payload: utf8('throw-plain') }), (e: unknown) => {
      assert.ok(e instanceof RemoteError);
      assert.equal(e.code, 'BOUNDARY');
      assert.equal(e.message, 'the handler failed');
      assert.doesNotMatch(`${e.message} ${e.stack}`, /secret/);
      return true;
    });
    await w.terminate();
  });

  test('malformed frames from the enclave are reported and the host keeps serving', async (t) => {
    const { w, errors } = await launch(t, await probeBundle());
    assert.equal(await probeCommand(w, 'junk'), 'posted');
    assert.equal(errors.length, 3);
    assert.ok(errors.every((e) => e instanceof BoundaryError && e.code === 'BOUNDARY'));
    assert.equal(await probeCommand(w, 'echo:still here'), 'still here');
    await w.terminate();
  });

  test('enclave output is captured and dropped, never forwarded', async (t) => {
    let dropped = 0;
    const { w } = await launch(t, await probeBundle(), { onOutputDropped: (n) => (dropped += n) });
    assert.equal(await probeCommand(w, 'console'), 'written');
    await w.terminate();
    assert.equal(w.outputDropped, 0, 'lockdown silences console inside the enclave');
    const raw = utf8("process.stdout.write('hello'); process.stderr.write('oops');");
    const exited = new Promise<void>((resolve) => {
      void launchEnclaveWorker({
        code: raw,
        ocalls: {},
        onOutputDropped: (n) => (dropped += n),
        onExit: () => resolve(),
      });
    });
    await exited;
    assert.equal(dropped, 9);
  });
});

/** The exit code of raw `code` run by the launcher (it exits as soon as it has looked). */
async function exitCodeOf(code: string, extra: Partial<LaunchOptions> = {}): Promise<number> {
  return new Promise<number>((resolve, reject) => {
    launchEnclaveWorker({
      code: utf8(code),
      ocalls: {},
      onExit: (i) => resolve(i.exitCode),
      ...extra,
    }).catch(reject);
  });
}

describe('what the worker gets', () => {
  // Exit code bits: 1 an environment, 2 Node flags, 4 heap limits other than `want`.
  const look = (want: object): string => `
    const { resourceLimits } = require('node:worker_threads');
    const want = ${JSON.stringify(want)};
    let bad = 0;
    if (Object.keys(process.env).length !== 0) bad |= 1;
    if (process.execArgv.length !== 0) bad |= 2;
    for (const [k, v] of Object.entries(want)) if (resourceLimits[k] !== v) bad |= 4;
    process.exit(bad);`;

  test('an empty environment, no Node flags, and DEFAULT_RESOURCE_LIMITS unless overridden', async () => {
    const bits = (n: number) => `exit code ${n}: 1 env, 2 flags, 4 limits`;
    const n = await exitCodeOf(look(DEFAULT_RESOURCE_LIMITS));
    assert.equal(n, 0, bits(n));
    const m = await exitCodeOf(look({ ...DEFAULT_RESOURCE_LIMITS, stackSizeMb: 8 }), {
      resourceLimits: { stackSizeMb: 8 },
    });
    assert.equal(m, 0, `an override of one limit keeps the others: ${bits(m)}`);
  });

  test("enclave output never reaches the host's own stdout or stderr", async () => {
    const marker = 'cloister-enclave-output-marker';
    const seen: string[] = [];
    const out = process.stdout.write;
    const err = process.stderr.write;
    const spy = (orig: typeof out) =>
      function (this: NodeJS.WriteStream, chunk: unknown, ...rest: unknown[]): boolean {
        if (String(chunk).includes(marker)) {
          seen.push(String(chunk));
          return true;
        }
        return (orig as (...a: unknown[]) => boolean).call(this, chunk, ...rest);
      };
    process.stdout.write = spy(out) as typeof out;
    process.stderr.write = spy(err) as typeof err;
    try {
      let dropped = 0;
      const code = `process.stdout.write('${marker}'); process.stderr.write('${marker}');`;
      assert.equal(await exitCodeOf(code, { onOutputDropped: (b) => (dropped += b) }), 0);
      // A few turns for a pipe to the host's streams, had there been one, to deliver.
      for (let i = 0; i < 5; i++) await new Promise((r) => setImmediate(r));
      assert.deepEqual(seen, [], 'enclave output was forwarded to the host');
      assert.equal(dropped, 2 * marker.length, 'both writes were counted and dropped');
    } finally {
      process.stdout.write = out;
      process.stderr.write = err;
    }
  });
});

/** A worker started as the launcher does, with the host port exposed so a test can misbehave. */
async function rawHost(t: TestContext, code: Uint8Array) {
  const signal = new SharedArrayBuffer(4);
  const sync = new MessageChannel();
  const worker = new Worker(fromUtf8(code), {
    eval: true,
    env: {},
    execArgv: [],
    stdout: true,
    workerData: { syncPort: sync.port2, signal },
    transferList: [sync.port2 as unknown as MessagePort],
  });
  const port = createWorkerHostPort(
    worker,
    sync.port1 as unknown as MessagePort,
    new Int32Array(signal),
  );
  const frames: Uint8Array[] = [];
  const logs: string[] = [];
  const state = { junkSyncReply: false };
  const rpc = createHostRpc(
    {
      post: (b) => port.post(b),
      onMessage: (h) =>
        port.onMessage((b) => {
          frames.push(b);
          h(b);
        }),
      onSyncCall: (h) =>
        port.onSyncCall((b, reply) => (state.junkSyncReply ? reply(fromHex('0101')) : h(b, reply))),
    },
    { 'host.ping': (r) => ({ payload: r.payload }), log: (ev) => logs.push(ev.event) },
    { onProtocolError: () => {} },
  );
  await new Promise((r) => worker.once('online', r));
  const stop = async (): Promise<void> => {
    port.close();
    await worker.terminate();
  };
  t.after(stop);
  return { worker, sync: sync.port1, rpc, frames, logs, state, stop };
}

describe('a malicious host', () => {
  test('bad frames to the enclave are refused; a readable request is answered; it keeps serving', async (t) => {
    const h = await rawHost(t, await probeBundle());
    const ping = async (text: string): Promise<unknown> => {
      const r = await h.rpc.call('enclave.ping', { payload: utf8(text) });
      return JSON.parse(fromUtf8(r.payload));
    };
    assert.equal(await ping('echo:a'), 'a');
    h.worker.postMessage(new Uint8Array([1, 2, 3]));
    h.worker.postMessage({ not: 'bytes' });
    h.worker.postMessage('text');
    h.worker.postMessage(fromHex('01010300000063000000')); // enclave.ping #0x63, truncated body
    // A valid frame over shared memory is copied before it is read (the host could change it).
    const frame = codec.encodeRequest('enclave.ping', 0x64, { payload: utf8('echo:shared') });
    const shared = new Uint8Array(new SharedArrayBuffer(frame.length));
    shared.set(frame);
    h.worker.postMessage(shared);
    assert.equal(await ping('echo:b'), 'b');
    assert.deepEqual(h.logs, Array(4).fill('boundary.malformed'));
    const answers = h.frames.map((f) => codec.decode(f, 'host'));
    const to63 = answers.find((f) => f.id === 0x63);
    assert.equal(to63?.type, 'error');
    assert.equal(to63?.fields.code, 'BOUNDARY');
    const to64 = answers.find((f) => f.id === 0x64);
    assert.equal(to64?.type, 'response');
    assert.equal(fromUtf8(to64?.fields.payload as Uint8Array), '"shared"');
    await h.stop();
  });

  test('bad and stale sync replies fail that call only; sync calls keep working', async (t) => {
    const h = await rawHost(t, await probeBundle());
    h.state.junkSyncReply = true;
    await assert.rejects(
      h.rpc.call('enclave.ping', { payload: utf8('sync-ping:1') }),
      (e: unknown) => {
        assert.ok(e instanceof RemoteError);
        assert.equal(e.code, 'BOUNDARY');
        assert.match(e.message, /shorter than its header/);
        return true;
      },
    );
    h.state.junkSyncReply = false;
    h.sync.postMessage(codec.encodeResponse('host.ping', 1, { payload: new Uint8Array() })); // stale
    h.sync.postMessage(fromHex('ffff')); // unsolicited junk
    const r = await h.rpc.call('enclave.ping', { payload: utf8('sync-ping:5') });
    assert.equal(fromUtf8(r.payload), '5');
    await h.stop();
  });
});

describe('the worker stops', () => {
  test('a crash rejects pending calls with ENCLAVE_FAILED and fires onExit', async (t) => {
    const { w, exits } = await launch(t, await probeBundle());
    const pending = w.call('enclave.ping', { payload: utf8('hang') });
    void w.call('enclave.ping', { payload: utf8('crash') }).catch(() => {});
    await assert.rejects(
      pending,
      (e: unknown) => isFailed(e) && /crashed/.test((e as Error).message),
    );
    assert.equal(exits.length, 1);
    assert.equal(exits[0]?.requested, false);
    await assert.rejects(w.call('enclave.stop', {}), isFailed);
    await w.terminate();
  });

  test('terminate rejects pending calls, even with the enclave blocked in a sync call', async (t) => {
    let asked!: () => void;
    const blocked = new Promise<void>((r) => {
      asked = r;
    });
    const ocalls: HostCallHandlers = {
      'host.ping': () => {
        asked();
        return new Promise(() => {}); // never answers
      },
    };
    const { w, exits } = await launch(t, await probeBundle(), { ocalls });
    const hang = assert.rejects(w.call('enclave.ping', { payload: utf8('hang') }), isFailed);
    const syncHang = assert.rejects(
      w.call('enclave.ping', { payload: utf8('sync-hang') }),
      isFailed,
    );
    await blocked;
    await w.terminate();
    await hang;
    await syncHang;
    assert.deepEqual(exits, [{ exitCode: 1, requested: true }]);
  });

  test('code that throws at its top level: calls fail with ENCLAVE_FAILED', async (t) => {
    let exited = false;
    try {
      const w = await launchEnclaveWorker({
        code: utf8('throw new Error("boom")'),
        ocalls: {},
        onExit: () => (exited = true),
      });
      t.after(() => w.terminate());
      await assert.rejects(w.call('enclave.ping', { payload: new Uint8Array() }), isFailed);
    } catch (e) {
      isFailed(e);
    }
    assert.ok(exited);
  });

  test('a worker that stops before it starts rejects the launch, by the time it has exited', async () => {
    let exited!: (code: number) => void;
    const exit = new Promise<number>((r) => {
      exited = r;
    });
    // A 1 MiB heap: the worker cannot finish starting.
    const launching = launchEnclaveWorker({
      code: utf8('1'),
      ocalls: {},
      resourceLimits: { maxOldGenerationSizeMb: 1, maxYoungGenerationSizeMb: 1 },
      onExit: (i) => exited(i.exitCode),
    });
    const settled = launching.then(
      (w) => {
        void w.terminate();
        return 'started';
      },
      (e: unknown) => e,
    );
    await exit;
    // The rejection follows the exit within the same turn (promise jobs, no timer).
    const outcome = await Promise.race([
      settled,
      new Promise((r) => setImmediate(() => r('still pending after the exit'))),
    ]);
    assert.ok(isFailed(outcome), `the launch: ${String(outcome)}`);
    assert.match((outcome as Error).message, /stopped before it started/, 'named');
  });

  test('code that is not UTF-8 is refused before any worker starts', async () => {
    await assert.rejects(
      launchEnclaveWorker({ code: fromHex('2f2fff'), ocalls: {} }),
      (e: unknown) => isFailed(e) && /not valid UTF-8/.test((e as Error).message),
    );
  });

  test('code that is not a Uint8Array (an ArrayBuffer, text) is refused before any worker starts', async () => {
    for (const code of [new TextEncoder().encode('1').buffer, '1']) {
      await assert.rejects(
        launchEnclaveWorker({ code: code as unknown as Uint8Array, ocalls: {} }),
        (e: unknown) => isFailed(e) && /must be bytes/.test((e as Error).message),
      );
    }
  });

  test('the bundle refuses to run outside the launcher', async (t) => {
    const w = new Worker(fromUtf8(await realBundle()), { eval: true, env: {}, execArgv: [] });
    t.after(() => w.terminate());
    const err = await new Promise<Error>((r) => w.once('error', r));
    assert.match(err.message, /must be started by the Cloister launcher/);
  });
});
