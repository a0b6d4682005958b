/// <reference types="node" />
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { CloisterError, fromHex, InvalidInputError } from '@cloister/core';
import { createCodec } from '../src/codec.js';
import { BoundaryError, RemoteError } from '../src/errors.js';
import type { HostPort, Port } from '../src/port.js';
import {
  createEnclaveRpc,
  createHostRpc,
  type EnclaveHandlers,
  type HostHandlers,
  type RpcOptions,
} from '../src/rpc.js';

const codec = createCodec();
const tick = (): Promise<void> => new Promise((r) => setImmediate(r));

/** An in-memory boundary: frames delivered asynchronously, sync calls served in place. */
function wire(opts: {
  enclave?: EnclaveHandlers;
  host?: HostHandlers;
  enclaveOptions?: RpcOptions;
  hostOptions?: RpcOptions;
  /** Replaces the host as the answer to the enclave's sync calls. */
  syncReply?: (bytes: Uint8Array) => Uint8Array;
  /** Sees (and may rewrite or multiply) every frame the enclave posts. */
  tap?: (bytes: Uint8Array) => Uint8Array[];
}) {
  let toEnclave: ((b: Uint8Array) => void) | undefined;
  let toHost: ((b: Uint8Array) => void) | undefined;
  let hostSync: ((b: Uint8Array, reply: (r: Uint8Array) => void) => void) | undefined;
  const fromEnclave: Uint8Array[] = [];
  const port: Port = {
    post: (b) => {
      fromEnclave.push(b);
      for (const f of opts.tap ? opts.tap(b) : [b]) queueMicrotask(() => toHost?.(f));
    },
    onMessage: (h) => {
      toEnclave = h;
    },
    callSync: (b) => {
      if (opts.syncReply) return opts.syncReply(b);
      let reply: Uint8Array | undefined;
      hostSync?.(b, (r) => {
        reply = r;
      });
      if (reply === undefined)
        throw new Error('the in-memory host can answer sync calls only synchronously');
      return reply;
    },
  };
  const hostPort: HostPort = {
    post: (b) => queueMicrotask(() => toEnclave?.(b)),
    onMessage: (h) => {
      toHost = h;
    },
    onSyncCall: (h) => {
      hostSync = h;
    },
  };
  const enclaveErrors: BoundaryError[] = [];
  const hostErrors: BoundaryError[] = [];
  const enclave = createEnclaveRpc(port, opts.enclave ?? {}, {
    onProtocolError: (e) => enclaveErrors.push(e),
    ...opts.enclaveOptions,
  });
  const host = createHostRpc(hostPort, opts.host ?? {}, {
    onProtocolError: (e) => hostErrors.push(e),
    ...opts.hostOptions,
  });
  return {
    enclave,
    host,
    enclaveErrors,
    hostErrors,
    fromEnclave,
    toEnclave: (b: Uint8Array) => toEnclave?.(b),
    toHost: (b: Uint8Array) => toHost?.(b),
    hostSync: (b: Uint8Array) => {
      let reply: Uint8Array | undefined;
      hostSync?.(b, (r) => {
        reply = r;
      });
      return reply;
    },
  };
}

const ping = { 'enclave.ping': (r: { payload: Uint8Array }) => ({ payload: r.payload }) };

async function rejectsWith(
  p: Promise<unknown>,
  cls: abstract new (...args: never[]) => Error,
  code: string,
  message?: RegExp,
): Promise<void> {
  await assert.rejects(p, (e: unknown) => {
    assert.ok(e instanceof cls, `expected ${cls.name}, got ${e}`);
    assert.equal((e as CloisterError).code, code);
    if (message) assert.match((e as Error).message, message);
    return true;
  });
}

describe('calls', () => {
  test('host -> enclave and enclave -> host, async and sync, and events', async () => {
    const logs: [number, string][] = [];
    const w = wire({
      enclave: ping,
      host: {
        'host.ping': (r) => ({ payload: r.payload }),
        'platform.counterRead': async (r) => ({ value: r.name.length }),
        log: (ev) => logs.push([ev.level, ev.event]),
      },
    });
    const r = await w.host.call('enclave.ping', { payload: new Uint8Array([1, 2]) });
    assert.deepEqual(r.payload, new Uint8Array([1, 2]));
    assert.deepEqual((await w.enclave.call('platform.counterRead', { name: 'abc' })).value, 3);
    assert.deepEqual(
      w.enclave.callSync('host.ping', { payload: new Uint8Array([9]) }).payload,
      new Uint8Array([9]),
    );
    w.enclave.emit('log', { level: 30, event: 'enclave.started' });
    await tick();
    assert.deepEqual(logs, [[30, 'enclave.started']]);
    assert.deepEqual([w.enclaveErrors, w.hostErrors], [[], []]);
  });

  test('many concurrent calls each get their own answer', async () => {
    const w = wire({ enclave: { 'enclave.ping': async (r) => ({ payload: r.payload }) } });
    const all = await Promise.all(
      Array.from({ length: 100 }, (_, i) =>
        w.host.call('enclave.ping', { payload: new Uint8Array([i]) }),
      ),
    );
    assert.deepEqual(
      all.map((r) => r.payload[0]),
      Array.from({ length: 100 }, (_, i) => i),
    );
  });

  test('types come from the catalogue', () => {
    const w = wire({});
    const never = (f: () => unknown): void => assert.ok(typeof f === 'function');
    // @ts-expect-error: wrong field name
    never(() => w.host.call('enclave.ping', { data: new Uint8Array() }));
    never(() =>
      w.host.call('enclave.start', {
        // @ts-expect-error: wrong field type
        nodeId: 1,
        sealedNode: new Uint8Array(),
        sealedService: new Uint8Array(),
      }),
    );
    // @ts-expect-error: the host does not answer its own calls
    never(() => w.enclave.call('enclave.ping', { payload: new Uint8Array() }));
    // @ts-expect-error: the enclave makes no host -> enclave calls
    never(() => w.host.call('host.ping', { payload: new Uint8Array() }));
    // @ts-expect-error: a handler must return the response fields
    never(() => wire({ enclave: { 'enclave.ping': () => ({ nope: 1 }) } }));
    never(async () => {
      const r = await w.enclave.call('platform.counterIncrement', { name: 'c' });
      const v: number = r.value;
      // @ts-expect-error: the response has no such field
      return r.other ?? v;
    });
  });
});

describe('errors cross as code and message only', () => {
  test('an enclave handler error: CloisterError keeps code and message, others are generic', async () => {
    const w = wire({
      enclave: {
        'enclave.ping': () => {
          throw new InvalidInputError('payload too short');
        },
        'enclave.evidence': async () => {
          throw new Error('secret-1234 at /enclave/keys');
        },
        'enclave.stop': () => ({ extra: 1 }) as never,
      },
    });
    await rejectsWith(
      w.host.call('enclave.ping', { payload: new Uint8Array() }),
      RemoteError,
      'INVALID_INPUT',
      /^payload too short$/,
    );
    await assert.rejects(
      w.host.call('enclave.evidence', { nonce: new Uint8Array() }),
      (e: unknown) => {
        assert.ok(e instanceof RemoteError);
        assert.equal(e.code, 'BOUNDARY');
        assert.equal(e.message, 'the handler failed');
        assert.equal(e.call, 'enclave.evidence');
        assert.doesNotMatch(String(e.stack), /secret|keys/);
        return true;
      },
    );
    await rejectsWith(
      w.host.call('enclave.start', {
        nodeId: 'n',
        sealedNode: new Uint8Array(),
        sealedService: new Uint8Array(),
      }),
      RemoteError,
      'BOUNDARY',
      /enclave\.start is not handled/,
    );
    // enclave.stop's response has no fields, so a handler returning extra ones still encodes.
    assert.deepEqual(await w.host.call('enclave.stop', {}), {});
  });

  test('a handler returning a wrong value answers BOUNDARY naming the field', async () => {
    const w = wire({ enclave: { 'enclave.ping': () => ({ payload: 'no' }) as never } });
    await rejectsWith(
      w.host.call('enclave.ping', { payload: new Uint8Array() }),
      RemoteError,
      'BOUNDARY',
      /field payload must be a Uint8Array/,
    );
  });

  test('a host handler error reaches the enclave with its code, async and sync', async () => {
    const w = wire({
      host: {
        'platform.counterRead': () => {
          throw new CloisterError('COUNTER', 'counter c was rolled back');
        },
      },
    });
    await rejectsWith(
      w.enclave.call('platform.counterRead', { name: 'c' }),
      RemoteError,
      'COUNTER',
      /rolled back/,
    );
    assert.throws(
      () => w.enclave.callSync('platform.counterRead', { name: 'c' }),
      (e: unknown) => e instanceof RemoteError && e.code === 'COUNTER',
    );
  });

  test('an error reply with an unknown code is a BoundaryError', async () => {
    const w = wire({ syncReply: () => codec.encodeError(1, { code: 'NOPE', message: 'x' }) });
    assert.throws(
      () => w.enclave.callSync('host.ping', { payload: new Uint8Array() }),
      /unknown code/,
    );
  });
});

describe('a misbehaving other side', () => {
  test('replies to nothing and duplicate replies are reported; the host keeps serving', async () => {
    const w = wire({ enclave: ping, tap: (b) => [b, b] });
    await w.host.call('enclave.ping', { payload: new Uint8Array([1]) });
    await tick();
    w.toHost(codec.encodeResponse('enclave.ping', 4242, { payload: new Uint8Array() }));
    assert.equal(w.hostErrors.length, 2);
    assert.match(w.hostErrors[0]?.message ?? '', /not pending/);
    assert.match(w.hostErrors[1]?.message ?? '', /call id 4242/);
    assert.deepEqual(
      (await w.host.call('enclave.ping', { payload: new Uint8Array([2]) })).payload,
      new Uint8Array([2]),
    );
  });

  test('a reply of the wrong call fails that call', async () => {
    const w = wire({
      enclave: ping,
      tap: (b) => {
        const f = codec.decode(b, 'host');
        return [codec.encodeResponse('enclave.stop', f.id, {})];
      },
    });
    await rejectsWith(
      w.host.call('enclave.ping', { payload: new Uint8Array() }),
      BoundaryError,
      'BOUNDARY',
      /enclave\.stop reply to a enclave\.ping call/,
    );
  });

  test('malformed frames from the host: dropped, readable requests answered, enclave keeps serving', async () => {
    const w = wire({ enclave: ping });
    w.toEnclave(fromHex('ffff'));
    w.toEnclave(fromHex('01010300000063000000')); // enclave.ping #0x63 with a truncated body
    w.toEnclave(codec.encodeResponse('host.ping', 7, { payload: new Uint8Array() })); // to nothing
    assert.equal(w.enclaveErrors.length, 3);
    const answer = codec.decode(w.fromEnclave.at(-1) ?? new Uint8Array(), 'host');
    assert.equal(answer.type, 'error');
    assert.equal(answer.id, 0x63);
    assert.equal(answer.fields.code, 'BOUNDARY');
    assert.deepEqual(
      (await w.host.call('enclave.ping', { payload: new Uint8Array([5]) })).payload,
      new Uint8Array([5]),
    );
  });

  test('by default the enclave reports a malformed frame as a boundary.malformed warning', async () => {
    const logs: string[] = [];
    const w = wire({
      enclave: ping,
      enclaveOptions: { onProtocolError: undefined },
      host: { log: (ev) => logs.push(`${ev.level} ${ev.event}`) },
    });
    w.toEnclave(fromHex('00'));
    await tick();
    assert.deepEqual(logs, ['40 boundary.malformed']);
  });

  test('a malformed sync reply, a reply to another call, or a wrong kind throws BoundaryError', () => {
    const replies: Uint8Array[] = [
      fromHex('0102'),
      codec.encodeResponse('host.ping', 99, { payload: new Uint8Array() }),
      codec.encodeResponse('platform.report', 1, { evidence: new Uint8Array() }),
    ];
    for (const reply of replies) {
      const w = wire({ syncReply: () => reply });
      assert.throws(
        () => w.enclave.callSync('host.ping', { payload: new Uint8Array() }),
        BoundaryError,
      );
    }
  });

  test("a sync reply replayed from an earlier call is refused, not taken as this call's", () => {
    // The host answers every call with the reply to call 1: right for call 1, a replay for 2.
    const first = codec.encodeResponse('host.ping', 1, { payload: Uint8Array.of(7) });
    const w = wire({ syncReply: () => first });
    const r = w.enclave.callSync('host.ping', { payload: new Uint8Array() });
    assert.deepEqual(r.payload, Uint8Array.of(7));
    assert.throws(
      () => w.enclave.callSync('host.ping', { payload: new Uint8Array() }),
      (e: unknown) =>
        e instanceof BoundaryError && /sync reply for call id 1, not 2/.test(e.message),
    );
  });

  test('a readable reply of the right call with a malformed body fails that call, never leaves it pending (coverage gap)', async () => {
    const w = wire({ enclave: ping, tap: (b) => [b.subarray(0, b.length - 1)] });
    const outcome = await Promise.race([
      w.host.call('enclave.ping', { payload: new Uint8Array([1, 2, 3]) }).then(
        () => 'answered',
        (e: unknown) => e,
      ),
      tick()
        .then(tick)
        .then(tick)
        .then(() => 'still pending'),
    ]);
    assert.ok(outcome instanceof BoundaryError, `expected a BoundaryError, got ${String(outcome)}`);
    assert.equal(outcome.code, 'BOUNDARY');
    assert.equal(w.hostErrors.length, 1);
    assert.equal(w.hostErrors[0], outcome);
  });

  test('a reply posted as a synchronous call is answered with an error naming it (coverage gap)', () => {
    const w = wire({ host: { 'host.ping': (r) => ({ payload: r.payload }) } });
    const reply = w.hostSync(
      codec.encodeResponse('enclave.ping', 3, { payload: new Uint8Array() }),
    );
    assert.ok(reply, 'no reply');
    const f = codec.decode(reply, 'enclave');
    assert.equal(f.type, 'error');
    assert.equal(f.id, 3);
    assert.equal(f.fields.code, 'BOUNDARY');
    assert.equal(f.fields.message, 'a response frame arrived as a synchronous call');
    assert.equal(w.hostErrors.length, 1);
  });

  test('the host answers every sync frame exactly once, even undecodable ones', () => {
    const w = wire({ host: { 'host.ping': (r) => ({ payload: r.payload }) } });
    const bad = [
      fromHex(''),
      fromHex('01020600000005'),
      codec.encodeResponse('platform.self', 3, {
        platform: 's',
        measurement: new Uint8Array(),
        signer: new Uint8Array(),
        product: 0,
        svn: 0,
      }),
    ];
    for (const b of bad) {
      const reply = w.hostSync(b);
      assert.ok(reply, 'no reply');
      const f = codec.decode(reply, 'enclave');
      assert.equal(f.type, 'error');
    }
    assert.equal(w.hostErrors.length, 3);
  });

  test('events: the enclave refuses data-like log events; the host drops them', async () => {
    const seen: string[] = [];
    const w = wire({ host: { log: (ev) => seen.push(ev.event) } });
    assert.throws(() => w.enclave.emit('log', { level: 35, event: 'x' }), /log level/);
    assert.throws(
      () => w.enclave.emit('log', { level: 30, event: 'user alice@example.com' }),
      /fixed event name/,
    );
    assert.throws(
      () => w.enclave.emit('log', { level: 30, event: 'a'.repeat(65) }),
      /fixed event name/,
    );
    w.toHost(codec.encodeEvent('log', { level: 30, event: 'Bad Name' }));
    w.toHost(codec.encodeEvent('log', { level: 30, event: 'ok.name_1' }));
    assert.deepEqual(seen, ['ok.name_1']);
    assert.equal(w.hostErrors.length, 1);
  });
});

test('close rejects pending and later calls and ignores later frames', async () => {
  const w = wire({ enclave: { 'enclave.ping': () => new Promise(() => {}) } });
  const pending = w.host.call('enclave.ping', { payload: new Uint8Array() });
  w.host.close(new CloisterError('ENCLAVE_FAILED', 'gone'));
  await rejectsWith(pending, CloisterError, 'ENCLAVE_FAILED');
  await rejectsWith(w.host.call('enclave.stop', {}), CloisterError, 'ENCLAVE_FAILED');
  w.toHost(fromHex('00'));
  assert.equal(w.hostErrors.length, 0);
});
