/// <reference types="node" />
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { fromHex, toHex } from '@cloister/core';
import fc from 'fast-check';
import { type CallSpec, type EventSpec, MESSAGES } from '../src/catalogue.js';
import {
  type Codec,
  createCatalogueCodec,
  createCodec,
  type Frame,
  frameKinds,
  type Side,
} from '../src/codec.js';
import { BoundaryError } from '../src/errors.js';
import { decodeAgain, encode, receiver } from './frames.js';

const codec = createCodec();
const b = (hex: string): Uint8Array => fromHex(hex.replaceAll(' ', ''));

function rejects(bytes: Uint8Array, side: Side, pattern: RegExp, c: Codec = codec): void {
  assert.throws(
    () => c.decode(bytes, side),
    (e: unknown) => {
      assert.ok(e instanceof BoundaryError, `not a BoundaryError: ${e}`);
      assert.equal(e.code, 'BOUNDARY');
      assert.match(e.message, pattern);
      return true;
    },
  );
}

describe('strict decoding', () => {
  test('header: version, kind, direction, call ids', () => {
    rejects(b('02 0103 00000001 00000000'), 'enclave', /unknown catalogue version 2/);
    rejects(b('01 0999 00000001'), 'enclave', /unknown message kind 0x999/);
    rejects(
      b('01 0103 00000001 00000000'),
      'host',
      /enclave\.ping request may not be sent to the host/,
    );
    rejects(
      b('01 8206 00000001 00000000'),
      'host',
      /host\.ping response may not be sent to the host/,
    );
    rejects(
      b('01 0301 00000000 1e 00000001 61'),
      'enclave',
      /log event may not be sent to the enclave/,
    );
    rejects(b('01 0103 00000000 00000000'), 'enclave', /bad call id 0/);
    // A response too names the call it answers: id 0 answers none.
    rejects(b('01 8103 00000000 00000000'), 'host', /bad call id 0/);
    rejects(b('01 0301 00000001 1e 00000001 61'), 'host', /bad call id 1/);
    rejects(b('01 01'), 'enclave', /shorter than its header/);
    rejects(b(''), 'enclave', /shorter than its header/);
  });

  test('the header of a frame with a bad body is reported, so the call can be answered', () => {
    try {
      codec.decode(b('01 0103 00000063 000000'), 'enclave');
      assert.fail('decoded');
    } catch (e) {
      assert.ok(e instanceof BoundaryError);
      assert.deepEqual(e.header, { kind: 0x0103, id: 0x63 });
    }
  });

  test('truncated, trailing, over the cap', () => {
    rejects(b('01 0103 00000001 00000003 6162'), 'enclave', /field payload is truncated/);
    rejects(b('01 0103 00000001 000000'), 'enclave', /field payload is truncated/);
    rejects(b('01 0103 00000001 00000001 61 00'), 'enclave', /1 trailing bytes/);
    rejects(b('01 0104 00000001 00'), 'enclave', /1 trailing bytes/);
    rejects(b('01 0103 00000001 ffffffff'), 'enclave', /length 4294967295 is over the cap/);
    const small = createCodec({ maxLength: 16 });
    rejects(
      b('01 0103 00000001 00000009 000000000000000000'),
      'enclave',
      /over the 16-byte limit/,
      small,
    );
    rejects(b('01 0103 00000001 00000011'), 'enclave', /length 17 is over the cap/, small);
    // The frame cap is exact: 16 bytes decode, 17 (whose field fits the cap) do not.
    assert.equal(small.decode(b('01 0103 00000001 00000005 0000000000'), 'enclave').id, 1);
    rejects(
      b('01 0103 00000001 00000006 000000000000'),
      'enclave',
      /frame of 17 bytes is over the 16-byte limit/,
      small,
    );
    assert.throws(
      () => small.encodeRequest('enclave.ping', 1, { payload: new Uint8Array(10) }),
      BoundaryError,
    );
    assert.throws(() => createCodec({ maxLength: 3 }), BoundaryError);
  });

  test('u53 over 2^53-1, invalid UTF-8, and values of the wrong type', () => {
    rejects(b('01 8204 00000006 0020000000000000'), 'enclave', /over 2\^53-1/);
    rejects(b('01 0204 00000006 00000001 ff'), 'host', /field name is not valid UTF-8/);
    rejects(b('01 0204 00000006 00000002 c0af'), 'host', /not valid UTF-8/); // overlong '/'
    rejects(b('01 0204 00000006 00000003 eda080'), 'host', /not valid UTF-8/); // a surrogate
    const bad: [string, () => unknown][] = [
      ['u53', () => codec.encodeResponse('platform.counterRead', 1, { value: 2 ** 53 })],
      ['u53', () => codec.encodeResponse('platform.counterRead', 1, { value: -1 })],
      [
        'u32',
        () => codec.encodeRequest('platform.sealKey', 1, { policy: 1, svn: 2 ** 32, keyId: b('') }),
      ],
      [
        'u8',
        () => codec.encodeRequest('platform.sealKey', 1, { policy: 256, svn: 1, keyId: b('') }),
      ],
      ['u8', () => codec.encodeEvent('log', { level: 1.5, event: 'x' })],
      ['Uint8Array', () => codec.encodeRequest('enclave.ping', 1, { payload: 'x' as never })],
      ['string', () => codec.encodeRequest('platform.counterRead', 1, { name: 1 as never })],
      ['well-formed', () => codec.encodeRequest('platform.counterRead', 1, { name: 'a\uD800b' })],
      ['bad call id', () => codec.encodeRequest('enclave.ping', 0, { payload: b('') })],
      ['bad call id', () => codec.encodeRequest('enclave.ping', 2 ** 32, { payload: b('') })],
      ['not a call', () => codec.encodeRequest('log' as never, 1, {} as never)],
      ['needs an object', () => codec.encodeRequest('enclave.stop', 1, null as never)],
    ];
    for (const [what, f] of bad) {
      assert.throws(
        f,
        (e: unknown) => e instanceof BoundaryError && e.message.includes(what),
        what,
      );
    }
  });

  test('not bytes at all', () => {
    rejects('01010300000001' as never, 'enclave', /must be a Uint8Array/);
  });
});

/** A test catalogue: every field type, including `bool`, and a batch call as docs/boundary.md describes. */
const TEST_CATALOGUE = {
  'test.all': {
    type: 'call',
    kind: 0x0701,
    direction: 'enclave->host',
    request: { a: 'u8', b: 'u32', c: 'u53', d: 'bool', e: 'bytes', f: 'string', g: 'bytesList' },
    response: { ok: 'bool' },
  } satisfies CallSpec,
  'test.event': {
    type: 'event',
    kind: 0x0702,
    direction: 'enclave->host',
    fields: { flag: 'bool' },
  } satisfies EventSpec,
} as const;
const testCodec = createCatalogueCodec(TEST_CATALOGUE);

test('bool is one byte, 0 or 1; anything else is refused', () => {
  const bytes = testCodec.encodeResponse('test.all' as never, 1, { ok: true } as never);
  assert.equal(toHex(bytes), '0187010000000101');
  rejects(b('01 8701 00000001 02'), 'enclave', /is not a boolean/, testCodec);
  assert.deepEqual(testCodec.decode(b('01 8701 00000001 00'), 'enclave').fields, { ok: false });
});

describe('bytesList: u32 count, then each element as bytes', () => {
  const list = (hex: string): Uint8Array => b(`01 0208 00000001 ${hex}`);

  test('byte-exact encodings', () => {
    const cases: [Uint8Array[], string][] = [
      [[], '00000000'],
      [[b('')], '00000001 00000000'],
      [[b('abcd'), b(''), b('010203')], '00000003 00000002 abcd 00000000 00000003 010203'],
    ];
    for (const [keys, hex] of cases) {
      const bytes = codec.encodeRequest('store.getMany', 1, { keys });
      assert.equal(toHex(bytes), toHex(list(hex)));
      assert.deepEqual(codec.decode(bytes, 'host').fields, { keys });
    }
  });

  test('strict decoding: counts, truncation, caps, trailing bytes', () => {
    rejects(list('00000002 00000004 aabbccdd 0000'), 'host', /field keys is truncated/);
    rejects(list('00000001 00000003 aabb'), 'host', /field keys is truncated/);
    rejects(list('00100001'), 'host', /field keys count 1048577 is over the cap/);
    // A count the frame cannot hold is refused before anything is allocated: by its own message,
    // not by the element loop's "is truncated" after an array of that many slots was made.
    rejects(
      list('00100000'),
      'host',
      /field keys count 1048576 needs at least 4194304 bytes, 0 are left/,
    );
    rejects(
      list('000fffff 00000000'),
      'host',
      /field keys count 1048575 needs at least 4194300 bytes, 4 are left/,
    );
    rejects(list('00000001'), 'host', /field keys count 1 needs at least 4 bytes, 0 are left/);
    rejects(list('00000002 00000001 aa'), 'host', /count 2 needs at least 8 bytes, 5 are left/);
    rejects(list('00000001 ffffffff'), 'host', /element length 4294967295 is over the cap/);
    rejects(list('00000001 00000000 00'), 'host', /1 trailing bytes/);
  });

  test('encoders refuse what is not a list of Uint8Array', () => {
    const bad: unknown[] = [b('01'), [b('01'), 'x'], [[1]], null];
    for (const keys of bad) {
      assert.throws(
        () => codec.encodeRequest('store.getMany', 1, { keys } as never),
        (e: unknown) =>
          e instanceof BoundaryError && /field keys must be an array of Uint8Array/.test(e.message),
      );
    }
    const small = createCodec({ maxLength: 32 });
    assert.throws(
      () => small.encodeRequest('store.getMany', 1, { keys: [new Uint8Array(40)] }),
      /element longer than 32 bytes/,
    );
  });

  test('decoded elements are fresh copies', () => {
    const bytes = codec.encodeRequest('store.getMany', 1, { keys: [b('0102')] });
    const f = codec.decode(bytes, 'host').fields as { keys: Uint8Array[] };
    bytes[bytes.length - 1] = 9;
    assert.deepEqual(f.keys, [b('0102')]);
  });
});

// Property tests over every frame kind of the real and the test catalogue.
const FIELD: Record<string, fc.Arbitrary<unknown>> = {
  u8: fc.integer({ min: 0, max: 255 }),
  u32: fc.integer({ min: 0, max: 2 ** 32 - 1 }),
  u53: fc.oneof(fc.maxSafeNat(), fc.constantFrom(0, 2 ** 32, 2 ** 53 - 1)),
  bool: fc.boolean(),
  bytes: fc.uint8Array({ maxLength: 80 }),
  string: fc.string({ unit: 'binary', maxLength: 40 }),
  bytesList: fc.array(fc.uint8Array({ maxLength: 24 }), { maxLength: 6 }),
};

type Kind = { codec: Codec; type: Frame['type']; name: string; fields: Record<string, string> };

function kindsOf(c: Codec, messages: Record<string, CallSpec | EventSpec>): Kind[] {
  const out: Kind[] = [
    { codec: c, type: 'error', name: 'error', fields: { code: 'string', message: 'string' } },
  ];
  for (const [name, spec] of Object.entries(messages)) {
    if (spec.type === 'event') out.push({ codec: c, type: 'event', name, fields: spec.fields });
    else {
      out.push({ codec: c, type: 'request', name, fields: spec.request });
      out.push({ codec: c, type: 'response', name, fields: spec.response });
    }
  }
  return out;
}

const KINDS = [...kindsOf(codec, MESSAGES), ...kindsOf(testCodec, TEST_CATALOGUE)];

const frameArb = fc.constantFrom(...KINDS).chain((k) =>
  fc.record({
    kind: fc.constant(k),
    id:
      k.type === 'event'
        ? fc.constant(0)
        : fc.integer({ min: k.type === 'error' ? 0 : 1, max: 2 ** 32 - 1 }),
    fields: fc.record(
      Object.fromEntries(Object.entries(k.fields).map(([f, t]) => [f, FIELD[t] ?? fc.constant(0)])),
    ),
  }),
);

function sideOf(k: Kind): Side {
  if (k.type === 'error') return 'host';
  if (k.name.startsWith('test.')) return k.type === 'response' ? 'enclave' : 'host';
  return receiver(k.type, k.name);
}

describe('properties', () => {
  test('every kind round-trips, and its encoding is the only one decoding to it', () => {
    fc.assert(
      fc.property(frameArb, ({ kind, id, fields }) => {
        const bytes = encode(kind.codec, { type: kind.type, name: kind.name, id, fields });
        const f = kind.codec.decode(bytes, sideOf(kind));
        assert.equal(f.type, kind.type);
        assert.equal(f.id, id);
        assert.deepEqual(f.fields, { ...fields });
        assert.deepEqual(decodeAgain(kind.codec, bytes, sideOf(kind)), bytes);
      }),
      { numRuns: 2000 },
    );
  });

  const onlyBoundaryErrors = (c: Codec, bytes: Uint8Array, side: Side): void => {
    try {
      // Whatever decodes must be canonical: re-encoding gives the same bytes.
      assert.deepEqual(decodeAgain(c, bytes, side), bytes);
    } catch (e) {
      if (!(e instanceof BoundaryError)) throw e;
    }
  };

  test('random bytes only ever decode canonically or throw BoundaryError', () => {
    const header = fc.tuple(
      fc.constantFrom(1, 1, 1, 2),
      fc.constantFrom(...frameKinds().map((k) => k.kind), 0, 0x7fff),
      fc.nat(),
    );
    const arb = fc.oneof(
      fc.uint8Array({ maxLength: 64 }),
      fc.tuple(header, fc.uint8Array({ maxLength: 48 })).map(([[v, k, id], rest]) => {
        const h = new Uint8Array(7);
        const dv = new DataView(h.buffer);
        h[0] = v;
        dv.setUint16(1, k);
        dv.setUint32(3, id >>> 0);
        return new Uint8Array([...h, ...rest]);
      }),
    );
    fc.assert(
      fc.property(arb, fc.constantFrom<Side>('host', 'enclave'), (bytes, side) => {
        onlyBoundaryErrors(codec, bytes, side);
      }),
      { numRuns: 5000 },
    );
  });

  test('mutated valid frames only ever decode canonically or throw BoundaryError', () => {
    const mutation = fc.oneof(
      fc.record({
        op: fc.constant('flip' as const),
        at: fc.nat(),
        bit: fc.integer({ min: 0, max: 7 }),
      }),
      fc.record({ op: fc.constant('cut' as const), at: fc.nat() }),
      fc.record({
        op: fc.constant('append' as const),
        extra: fc.uint8Array({ minLength: 1, maxLength: 8 }),
      }),
      fc.record({
        op: fc.constant('set' as const),
        at: fc.nat(),
        value: fc.integer({ min: 0, max: 255 }),
      }),
    );
    fc.assert(
      fc.property(
        frameArb,
        fc.array(mutation, { minLength: 1, maxLength: 3 }),
        ({ kind, id, fields }, ms) => {
          let bytes = encode(kind.codec, { type: kind.type, name: kind.name, id, fields });
          for (const m of ms) {
            if (m.op === 'append') bytes = new Uint8Array([...bytes, ...m.extra]);
            else if (m.op === 'cut') bytes = bytes.slice(0, m.at % (bytes.length + 1));
            else if (bytes.length > 0) {
              const at = m.at % bytes.length;
              bytes[at] = m.op === 'flip' ? (bytes[at] ?? 0) ^ (1 << m.bit) : m.value;
            }
          }
          onlyBoundaryErrors(kind.codec, bytes, 'host');
          onlyBoundaryErrors(kind.codec, bytes, 'enclave');
        },
      ),
      { numRuns: 5000 },
    );
  });
});
