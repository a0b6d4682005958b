/// <reference types="node" />
/**
 * One fixed byte vector per frame kind of the catalogue, written by hand from docs/boundary.md
 * (not produced by the codec), kept as literal hex.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { fromHex, toHex } from '@cloister/core';
import { createCodec, type Frame, frameKinds } from '../src/codec.js';
import { encode, receiver } from './frames.js';

const codec = createCodec();
const b = (hex: string): Uint8Array => fromHex(hex.replaceAll(' ', ''));
const s = (text: string): Uint8Array => new TextEncoder().encode(text);

type Vector = {
  readonly type: Frame['type'];
  readonly name: string;
  readonly id: number;
  readonly fields: Record<string, unknown>;
  /** version | kind | call id | fields, written by hand from docs/boundary.md. */
  readonly hex: string;
};

// One vector per frame kind. Layout: 01 | u16 kind | u32 id | fields (big-endian; bytes and
// string = u32 length + content; u53 = 8 bytes; bytesList = u32 count + each as bytes).
const VECTORS: Vector[] = [
  {
    type: 'request',
    name: 'enclave.start',
    id: 1,
    fields: { nodeId: 'n1', sealedNode: b(''), sealedService: b('5e') },
    hex: '01 0105 00000001 00000002 6e31 00000000 00000001 5e',
  },
  {
    type: 'response',
    name: 'enclave.start',
    id: 1,
    fields: { identityPublicKey: b('04aa'), sealedNode: b('ff'), sealedService: b('') },
    hex: '01 8105 00000001 00000002 04aa 00000001 ff 00000000',
  },
  {
    type: 'request',
    name: 'enclave.evidence',
    id: 2,
    fields: { nonce: b('0001020304') },
    hex: '01 0102 00000002 00000005 0001020304',
  },
  {
    type: 'response',
    name: 'enclave.evidence',
    id: 2,
    fields: { evidence: b('d2'), identityPublicKey: b('') },
    hex: '01 8102 00000002 00000001 d2 00000000',
  },
  {
    type: 'request',
    name: 'enclave.ping',
    id: 0xdeadbeef,
    fields: { payload: s('abc') },
    hex: '01 0103 deadbeef 00000003 616263',
  },
  {
    type: 'response',
    name: 'enclave.ping',
    id: 0xdeadbeef,
    fields: { payload: b('') },
    hex: '01 8103 deadbeef 00000000',
  },
  { type: 'request', name: 'enclave.stop', id: 7, fields: {}, hex: '01 0104 00000007' },
  { type: 'response', name: 'enclave.stop', id: 7, fields: {}, hex: '01 8104 00000007' },
  { type: 'request', name: 'service.status', id: 20, fields: {}, hex: '01 0106 00000014' },
  {
    type: 'response',
    name: 'service.status',
    id: 20,
    fields: {
      index: 5,
      term: 1,
      lastSigned: 4,
      stateHash: b('aa'),
      treeRoot: b('bb'),
      serviceIdentity: b('cc'),
      servicePublicKey: b('04'),
      epoch: 2,
      generation: 1,
    },
    hex:
      '01 8106 00000014 0000000000000005 0000000000000001 0000000000000004 00000001 aa ' +
      '00000001 bb 00000001 cc 00000001 04 0000000000000002 00000001',
  },
  {
    type: 'request',
    name: 'service.receipt',
    id: 21,
    fields: { txid: '1.5' },
    hex: '01 0107 00000015 00000003 312e35',
  },
  {
    type: 'response',
    name: 'service.receipt',
    id: 21,
    fields: { receipt: b('a1') },
    hex: '01 8107 00000015 00000001 a1',
  },
  {
    type: 'request',
    name: 'service.consistency',
    id: 22,
    fields: { from: 2, to: 7 },
    hex: '01 0108 00000016 0000000000000002 0000000000000007',
  },
  {
    type: 'response',
    name: 'service.consistency',
    id: 22,
    fields: { proof: [b('01'), b('0203')] },
    hex: '01 8108 00000016 00000002 00000001 01 00000002 0203',
  },
  { type: 'request', name: 'service.tick', id: 23, fields: {}, hex: '01 0109 00000017' },
  { type: 'response', name: 'service.tick', id: 23, fields: {}, hex: '01 8109 00000017' },
  { type: 'request', name: 'service.rotateSecret', id: 24, fields: {}, hex: '01 010a 00000018' },
  {
    type: 'response',
    name: 'service.rotateSecret',
    id: 24,
    fields: { sealedService: b('5e'), txid: '1.9', generation: 1 },
    hex: '01 810a 00000018 00000001 5e 00000003 312e39 00000001',
  },
  { type: 'request', name: 'platform.self', id: 3, fields: {}, hex: '01 0201 00000003' },
  {
    type: 'response',
    name: 'platform.self',
    id: 3,
    fields: {
      platform: 'simulation',
      measurement: b('11'),
      signer: b('2222'),
      product: 1,
      svn: 0x01020304,
    },
    hex: '01 8201 00000003 0000000a 73696d756c6174696f6e 00000001 11 00000002 2222 00000001 01020304',
  },
  {
    type: 'request',
    name: 'platform.sealKey',
    id: 4,
    fields: { policy: 2, svn: 5, keyId: s('k') },
    hex: '01 0202 00000004 02 00000005 00000001 6b',
  },
  {
    type: 'response',
    name: 'platform.sealKey',
    id: 4,
    fields: { key: b('00112233') },
    hex: '01 8202 00000004 00000004 00112233',
  },
  {
    type: 'request',
    name: 'platform.report',
    id: 5,
    fields: { reportData: b('abcd') },
    hex: '01 0203 00000005 00000002 abcd',
  },
  {
    type: 'response',
    name: 'platform.report',
    id: 5,
    fields: { evidence: b('') },
    hex: '01 8203 00000005 00000000',
  },
  {
    type: 'request',
    name: 'platform.counterRead',
    id: 6,
    fields: { name: 'c' },
    hex: '01 0204 00000006 00000001 63',
  },
  {
    type: 'response',
    name: 'platform.counterRead',
    id: 6,
    fields: { value: 2 ** 53 - 1 },
    hex: '01 8204 00000006 001fffffffffffff',
  },
  {
    type: 'request',
    name: 'platform.counterIncrement',
    id: 8,
    fields: { name: 'é' },
    hex: '01 0205 00000008 00000002 c3a9',
  },
  {
    type: 'response',
    name: 'platform.counterIncrement',
    id: 8,
    fields: { value: 2 ** 32 },
    hex: '01 8205 00000008 00000001 00000000',
  },
  {
    type: 'request',
    name: 'host.ping',
    id: 0xffffffff,
    fields: { payload: b('00') },
    hex: '01 0206 ffffffff 00000001 00',
  },
  {
    type: 'response',
    name: 'host.ping',
    id: 0xffffffff,
    fields: { payload: b('0000') },
    hex: '01 8206 ffffffff 00000002 0000',
  },
  {
    type: 'request',
    name: 'store.get',
    id: 10,
    fields: { key: s('k') },
    hex: '01 0207 0000000a 00000001 6b',
  },
  {
    type: 'response',
    name: 'store.get',
    id: 10,
    fields: { found: true, value: s('v') },
    hex: '01 8207 0000000a 01 00000001 76',
  },
  {
    type: 'request',
    name: 'store.getMany',
    id: 11,
    fields: { keys: [b('01'), b('0203')] },
    hex: '01 0208 0000000b 00000002 00000001 01 00000002 0203',
  },
  {
    type: 'response',
    name: 'store.getMany',
    id: 11,
    fields: { found: b('0100'), values: [b('aa'), b('')] },
    hex: '01 8208 0000000b 00000002 0100 00000002 00000001 aa 00000000',
  },
  {
    type: 'request',
    name: 'store.write',
    id: 12,
    fields: { types: b('0001'), keys: [b('01'), b('02')], values: [b('ff')], sync: true },
    hex: '01 0209 0000000c 00000002 0001 00000002 00000001 01 00000001 02 00000001 00000001 ff 01',
  },
  { type: 'response', name: 'store.write', id: 12, fields: {}, hex: '01 8209 0000000c' },
  {
    type: 'request',
    name: 'store.iterate',
    id: 13,
    fields: { gte: b('01'), lt: b(''), limit: 256 },
    hex: '01 020a 0000000d 00000001 01 00000000 00000100',
  },
  {
    type: 'response',
    name: 'store.iterate',
    id: 13,
    fields: { keys: [b('01')], values: [b('')], done: true },
    hex: '01 820a 0000000d 00000001 00000001 01 00000001 00000000 01',
  },
  {
    type: 'request',
    name: 'service.persist',
    id: 25,
    fields: { sealedService: b('5e5e') },
    hex: '01 020b 00000019 00000002 5e5e',
  },
  { type: 'response', name: 'service.persist', id: 25, fields: {}, hex: '01 820b 00000019' },
  { type: 'request', name: 'host.time', id: 26, fields: {}, hex: '01 020c 0000001a' },
  {
    type: 'response',
    name: 'host.time',
    id: 26,
    fields: { ms: 1_795_419_019_566 },
    hex: '01 820c 0000001a 000001a20750192e',
  },
  {
    type: 'request',
    name: 'apps.open',
    id: 30,
    fields: { operatorKey: b('04ab') },
    hex: '01 010b 0000001e 00000002 04ab',
  },
  {
    type: 'response',
    name: 'apps.open',
    id: 30,
    fields: { apps: 2, txid: '1.3' },
    hex: '01 810b 0000001e 00000002 00000003 312e33',
  },
  {
    type: 'request',
    name: 'apps.deploy',
    id: 31,
    fields: { request: b('d2'), module: b('0061736d') },
    hex: '01 010c 0000001f 00000001 d2 00000004 0061736d',
  },
  {
    type: 'response',
    name: 'apps.deploy',
    id: 31,
    fields: { txid: '1.9', app: 'a', codeId: b('aa'), index: 9, migrated: true },
    hex: '01 810c 0000001f 00000003 312e39 00000001 61 00000001 aa 0000000000000009 01',
  },
  {
    type: 'request',
    name: 'apps.info',
    id: 32,
    fields: { app: '' },
    hex: '01 010d 00000020 00000000',
  },
  {
    type: 'response',
    name: 'apps.info',
    id: 32,
    fields: { info: b('80') },
    hex: '01 810d 00000020 00000001 80',
  },
  { type: 'request', name: 'scp.open', id: 33, fields: {}, hex: '01 010e 00000021' },
  {
    type: 'response',
    name: 'scp.open',
    id: 33,
    fields: { session: 7 },
    hex: '01 810e 00000021 0000000000000007',
  },
  {
    type: 'request',
    name: 'scp.frame',
    id: 34,
    fields: { session: 7, frame: b('0501'), ms: 1_764_000_000_000 },
    hex: '01 010f 00000022 0000000000000007 00000002 0501 0000019ab697e800',
  },
  { type: 'response', name: 'scp.frame', id: 34, fields: {}, hex: '01 810f 00000022' },
  {
    type: 'request',
    name: 'scp.close',
    id: 35,
    fields: { session: 7 },
    hex: '01 0110 00000023 0000000000000007',
  },
  { type: 'response', name: 'scp.close', id: 35, fields: {}, hex: '01 8110 00000023' },
  {
    type: 'request',
    name: 'apps.trace',
    id: 36,
    fields: { enable: true },
    hex: '01 0111 00000024 01',
  },
  {
    type: 'response',
    name: 'apps.trace',
    id: 36,
    fields: { enabled: true },
    hex: '01 8111 00000024 01',
  },
  {
    type: 'event',
    name: 'scp.send',
    id: 0,
    fields: { session: 7, frame: b('02ff') },
    hex: '01 0302 00000000 0000000000000007 00000002 02ff',
  },
  {
    type: 'event',
    name: 'scp.end',
    id: 0,
    fields: { session: 7, code: 'OK' },
    hex: '01 0303 00000000 0000000000000007 00000002 4f4b',
  },
  {
    type: 'event',
    name: 'app.trace',
    id: 0,
    fields: { app: 'a', message: 'hi 1' },
    hex: '01 0304 00000000 00000001 61 00000004 68692031',
  },
  {
    type: 'event',
    name: 'log',
    id: 0,
    fields: { level: 30, event: 'a.b' },
    hex: '01 0301 00000000 1e 00000003 612e62',
  },
  {
    type: 'error',
    name: 'error',
    id: 9,
    fields: { code: 'COUNTER', message: 'x' },
    hex: '01 8000 00000009 00000007 434f554e544552 00000001 78',
  },
];

describe('catalogue vectors', () => {
  test('every frame kind of the catalogue has a vector, and no kind is reused', () => {
    const kinds = frameKinds()
      .map((k) => `${k.name} ${k.type}`)
      .sort();
    const vectors = VECTORS.map((v) => `${v.name} ${v.type}`).sort();
    assert.deepEqual(vectors, kinds);
    assert.equal(new Set(frameKinds().map((k) => k.kind)).size, frameKinds().length);
  });

  for (const v of VECTORS) {
    test(`${v.name} ${v.type} encodes to its fixed bytes and decodes back`, () => {
      const hex = v.hex.replaceAll(' ', '');
      assert.equal(toHex(encode(codec, v)), hex);
      const f = codec.decode(fromHex(hex), receiver(v.type, v.name));
      assert.equal(f.type, v.type);
      assert.equal(f.id, v.id);
      if (f.type !== 'error') assert.equal(f.name, v.name);
      assert.deepEqual(f.fields, v.fields);
    });
  }
});
