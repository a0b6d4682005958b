/**
 * Logchain formats (src/log/format.ts, entry-hashes.ts, payloads.ts, txid.ts): hand-checked hex
 * vectors (each byte written out from the contract and hashed with Python's hashlib, not with this
 * code) and strictness.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { fromHex, toHex } from '../src/bytes.js';
import { decodeCbor, encodeCbor } from '../src/cbor.js';
import { InvalidInputError } from '../src/errors.js';
import { sha256 } from '../src/hash.js';
import { decodeEntryHashes, encodeEntryHashes, entryLeafHash } from '../src/log/entry-hashes.js';
import { LogFormatError } from '../src/log/errors.js';
import {
  decodeEntry,
  ENTRY_KIND,
  encodeEntry,
  entryHash,
  indexOfKey,
  type LogEntry,
  leafInput,
  logStoreKey,
} from '../src/log/format.js';
import {
  claimsDigest,
  decodeEndorsementPayload,
  decodeSignaturePayload,
  endorsementNonce,
  endorsementPayload,
  serviceIdentity,
  signaturePayload,
} from '../src/log/payloads.js';
import { formatTxid, parseTxid } from '../src/log/txid.js';
import { newKey } from './helpers.js';

const fill = (n: number, b: number): Uint8Array => new Uint8Array(n).fill(b);

/** The hand-checked transaction entry of docs/receipts.md. */
const TX: LogEntry = {
  term: 1,
  index: 2,
  prev: fill(32, 0x11),
  kind: ENTRY_KIND.transaction,
  meta: { gen: 0, size: 3 },
  writeSet: fromHex('aabbcc'),
  claims: fill(32, 0x22),
  sig: new Uint8Array(0),
};
/** A signature entry built on TX (index 3, an 80-byte stand-in signature). */
const SIG: LogEntry = {
  ...TX,
  index: 3,
  kind: ENTRY_KIND.signature,
  meta: {},
  writeSet: new Uint8Array(0),
  claims: new Uint8Array(0),
  sig: fill(80, 9),
};
const TX_HEX =
  '89' + // array(9)
  '01' + // version 1
  '01' + // term 1
  '02' + // index 2
  `5820${'11'.repeat(32)}` + // prev
  '02' + // kind 2 (transaction)
  'a2' + // meta: map(2), keys in bytewise order of their encodings
  '6367656e00' + // "gen": 0
  '6473697a6503' + // "size": 3
  '43aabbcc' + // writeSet
  `5820${'22'.repeat(32)}` + // claims
  '40'; // sig: empty
const TX_HASH = '013f18f620ce5e70d5aea2dc5d01d73e69e8e23882a89efff57ee5c82df1790e';
const TX_LEAF_INPUT =
  '86' + // array(6)
  '010202' + // term 1, index 2, kind 2
  '5820' +
  '17de2fa887a5869142a816e07610f63cbdc4becc56edd9eb8017cb6ad177790c' + // SHA-256(a26367656e006473697a6503)
  '5820' +
  'fa22dfe1da9013b3c1145040acae9089e0c08bc1c1a0719614f4b73add6f6ef5' + // SHA-256(aabbcc)
  `5820${'22'.repeat(32)}`; // claims
const TX_LEAF_HASH = '600d0240a24ece094ee527364b4eba579cbc23c4cbf9456c8effcd1798ada9cb';

describe('hand-checked vectors', () => {
  test('docs/receipts.md §9 shows these vectors', () => {
    const doc = readFileSync(new URL('../../../docs/receipts.md', import.meta.url), 'utf8');
    for (const v of [
      TX_HASH,
      TX_LEAF_HASH,
      '17de2fa887a5869142a816e07610f63cbdc4becc56edd9eb8017cb6ad177790c',
      'fa22dfe1da9013b3c1145040acae9089e0c08bc1c1a0719614f4b73add6f6ef5',
      'd8f24a43be58fd0c37a53a5c5c186b7067660a90b58cc0f98149291ead92bdd1',
    ]) {
      assert.ok(doc.includes(v), v);
    }
  });

  test('a transaction entry, its hash, leaf input and leaf hash', () => {
    const bytes = encodeEntry(TX);
    assert.equal(toHex(bytes), TX_HEX);
    assert.equal(toHex(entryHash(bytes)), TX_HASH);
    assert.equal(toHex(leafInput(TX)), TX_LEAF_INPUT);
    assert.equal(toHex(entryLeafHash(TX)), TX_LEAF_HASH);
    assert.deepEqual(decodeEntry(bytes), TX);
  });

  test('claims digest', () => {
    const d = claimsDigest({
      salt: fill(32, 0x33),
      request: new TextEncoder().encode('req'),
      response: new TextEncoder().encode('resp'),
      codeId: fill(32, 0x44),
    });
    // SHA-256(85 72 "cloister/claims/v1" 5820 33.. 43 "req" 44 "resp" 5820 44..)
    assert.equal(toHex(d), 'd8f24a43be58fd0c37a53a5c5c186b7067660a90b58cc0f98149291ead92bdd1');
  });

  test('signature payload', () => {
    const p = { term: 1, size: 100, treeRoot: fill(32, 0x55), stateHash: fill(32, 0x66) };
    const b = signaturePayload(p);
    assert.equal(
      toHex(b),
      `8575${toHex(new TextEncoder().encode('cloister/signature/v1'))}011864` +
        `5820${'55'.repeat(32)}5820${'66'.repeat(32)}`,
    );
    assert.deepEqual(decodeSignaturePayload(b), p);
  });
});

function genesis(): LogEntry {
  const svc = newKey().publicKey;
  return {
    term: 1,
    index: 1,
    prev: new Uint8Array(32),
    kind: ENTRY_KIND.genesis,
    meta: { svc, end: fill(5, 1), ev: fill(7, 2) },
    writeSet: new Uint8Array(0),
    claims: new Uint8Array(0),
    sig: new Uint8Array(0),
  };
}

/** Re-encodes `entry` as CBOR with one element replaced (bypassing encodeEntry's checks). */
function raw(e: LogEntry, at: number, value: unknown): Uint8Array {
  const meta = new Map(Object.entries(e.meta).filter(([, v]) => v !== undefined));
  const arr: unknown[] = [1, e.term, e.index, e.prev, e.kind, meta, e.writeSet, e.claims, e.sig];
  arr[at] = value;
  return encodeCbor(arr);
}

/** A genesis entry's bytes with meta.svc replaced (bypassing encodeEntry's checks). */
function encodeGenesisWithSvc(g: LogEntry, svc: Uint8Array): Uint8Array {
  return raw(
    g,
    5,
    new Map<string, unknown>([
      ['end', g.meta.end],
      ['ev', g.meta.ev],
      ['svc', svc],
    ]),
  );
}

function refused(bytes: Uint8Array, message: RegExp): void {
  assert.throws(
    () => decodeEntry(bytes),
    (e: unknown) => e instanceof LogFormatError && message.test(e.message),
  );
}

describe('strict entry decoding', () => {
  test('every kind round-trips: decode then re-encode gives the same bytes', () => {
    const g = genesis();
    const sig = SIG;
    const rot: LogEntry = {
      ...sig,
      kind: ENTRY_KIND.rotation,
      meta: { rot: 1 },
      sig: new Uint8Array(0),
    };
    const noClaims: LogEntry = {
      ...TX,
      claims: new Uint8Array(0),
      meta: { gen: 2, size: 3, app: 'shop' },
    };
    for (const e of [g, TX, sig, rot, noClaims]) {
      const b = encodeEntry(e);
      assert.deepEqual(encodeEntry(decodeEntry(b)), b);
      assert.deepEqual(decodeEntry(b), e);
    }
  });

  test('wrong version, shape, lengths and meta are refused with what is wrong', () => {
    refused(raw(TX, 0, 2), /version 2 is not supported/);
    refused(encodeCbor([1, 1, 2]), /must have 9 elements/);
    refused(raw(TX, 3, fill(31, 0)), /prev must be 32 bytes, not 31/);
    refused(raw(TX, 7, fill(31, 0)), /claims must be 32 bytes or empty, not 31/);
    refused(raw(TX, 4, 5), /kind must be 1, 2, 3 or 4/);
    refused(raw(TX, 2, 0), /index must be at least 1/);
    refused(raw(TX, 1, -1), /term must be an unsigned integer/);
    // -0.0 (CBOR f98000) passes Number.isSafeInteger but is a float: a second encoding of 0.
    refused(raw(TX, 1, -0), /term must be an unsigned integer/);
    refused(
      raw(
        TX,
        5,
        new Map([
          ['gen', -0],
          ['size', 3],
        ]),
      ),
      /gen must be an unsigned integer/,
    );
    refused(
      raw(
        TX,
        5,
        new Map([
          ['gen', 0],
          ['size', 3],
          ['colour', 1],
        ]),
      ),
      /unknown key "colour"/,
    );
    refused(raw(TX, 5, new Map([['size', 3]])), /meta.gen must be present exactly when/);
    refused(
      raw({ ...TX, writeSet: new Uint8Array(0) }, 5, new Map([['size', 3]])),
      /meta.size must be present exactly when meta.gen is/,
    );
    refused(
      raw(TX, 5, new Map([['gen', 0]])),
      /meta.size must be present exactly when meta.gen is/,
    );
    // Only a transaction carries writes or claims.
    const g1 = genesis();
    refused(raw(g1, 7, fill(32, 1)), /a genesis entry has empty claims/);
    refused(
      raw({ ...g1, meta: { ...g1.meta, gen: 0, size: 1 } }, 6, Uint8Array.of(1)),
      /a genesis entry has an empty write set/,
    );
    const rotation: LogEntry = {
      ...TX,
      kind: ENTRY_KIND.rotation,
      meta: { rot: 1 },
      writeSet: new Uint8Array(0),
      claims: new Uint8Array(0),
    };
    assert.equal(decodeEntry(encodeEntry(rotation)).kind, ENTRY_KIND.rotation);
    refused(raw(rotation, 7, fill(32, 1)), /a rotation entry has empty claims/);
    refused(
      raw(
        TX,
        5,
        new Map<string, unknown>([
          ['gen', 0],
          ['size', 3],
          ['svc', newKey().publicKey],
        ]),
      ),
      /genesis entries only/,
    );
    refused(raw(TX, 8, fill(64, 1)), /only signature entries carry a signature/);
    refused(
      raw(genesis(), 5, new Map([['svc', newKey().publicKey]])),
      /genesis meta must have "end"/,
    );
    refused(raw(genesis(), 3, fill(32, 1)), /entry 1 must have prev = 32 zero bytes/);
    refused(Uint8Array.of(0x89), /log entry: CBOR/);
    refused(new Uint8Array([...encodeEntry(TX), 0]), /trailing bytes/);
  });

  test('an extra element, meta.app outside a transaction and a compressed service key are refused', () => {
    refused(
      encodeCbor([...(decodeCbor(encodeEntry(TX)) as unknown[]), 0]),
      /a log entry must have 9 elements, not 10/,
    );
    const rotation: LogEntry = {
      ...TX,
      kind: ENTRY_KIND.rotation,
      meta: { rot: 1 },
      writeSet: new Uint8Array(0),
      claims: new Uint8Array(0),
    };
    refused(
      raw(
        rotation,
        5,
        new Map<string, unknown>([
          ['app', 'shop'],
          ['rot', 1],
        ]),
      ),
      /meta.app is for transaction entries only/,
    );
    const g = genesis();
    const svc = new Uint8Array(g.meta.svc as Uint8Array);
    svc[0] = 0x03;
    refused(
      encodeGenesisWithSvc(g, svc),
      /meta.svc must be an uncompressed P-256 point \(first byte 04\)/,
    );
  });

  test('indexOfKey reads only 9-byte keys in the log namespace (0x02)', () => {
    assert.equal(indexOfKey(logStoreKey(7)), 7);
    const other = logStoreKey(7);
    other[0] = 0x01;
    assert.equal(indexOfKey(other), undefined);
    assert.equal(indexOfKey(logStoreKey(7).subarray(0, 8)), undefined);
    assert.equal(indexOfKey(logStoreKey(2 ** 53 - 1)), 2 ** 53 - 1);
    assert.equal(indexOfKey(logStoreKey(2 ** 53)), undefined);
  });

  test('any single changed byte is refused or decodes to a different entry', () => {
    const b = encodeEntry(TX);
    fc.assert(
      fc.property(fc.nat(b.length - 1), fc.integer({ min: 1, max: 255 }), (i, mask) => {
        const bad = b.slice();
        bad[i] = (bad[i] as number) ^ mask;
        try {
          const e = decodeEntry(bad);
          assert.notDeepEqual(encodeEntry(e), b);
          assert.deepEqual(encodeEntry(e), bad);
        } catch (e) {
          assert.ok(e instanceof LogFormatError, String(e));
        }
      }),
      { numRuns: 500 },
    );
  });

  test('encodeEntry refuses what decodeEntry would refuse', () => {
    assert.throws(() => encodeEntry({ ...TX, claims: fill(5, 0) }), InvalidInputError);
    assert.throws(
      () => encodeEntry({ ...TX, meta: { ...TX.meta, extra: 1 } as LogEntry['meta'] }),
      InvalidInputError,
    );
  });
});

describe('one-pass reading and writing (decodeEntryHashes, encodeEntryHashes)', () => {
  const kinds = (): LogEntry[] => {
    const sig = SIG;
    return [
      genesis(),
      TX,
      sig,
      { ...sig, kind: ENTRY_KIND.rotation, meta: { rot: 7 }, sig: new Uint8Array(0) },
      { ...TX, index: 2 ** 40, meta: { gen: 2 ** 33, size: 70_000, app: 'héllo, wörld' } },
      {
        ...TX,
        term: 300,
        index: 65_536,
        claims: new Uint8Array(0),
        meta: { gen: 1, size: 3, app: '' },
      },
      { ...TX, writeSet: new Uint8Array(0), meta: {} },
    ];
  };
  /** What decodeEntryHashes must give: decodeEntry, entryHash, entryLeafHash, or the same error. */
  const reference = (b: Uint8Array): unknown => {
    try {
      const e = decodeEntry(b);
      return { e: encodeEntry(e), h: toHex(entryHash(b)), l: toHex(entryLeafHash(e)) };
    } catch (err) {
      return { error: (err as Error).constructor.name, message: (err as Error).message };
    }
  };
  const oneShot = (b: Uint8Array): unknown => {
    try {
      const r = decodeEntryHashes(b);
      return { e: encodeEntry(r.entry), h: toHex(r.entryHash), l: toHex(r.leafHash) };
    } catch (err) {
      return { error: (err as Error).constructor.name, message: (err as Error).message };
    }
  };

  test('the docs/receipts.md vector', () => {
    const r = decodeEntryHashes(fromHex(TX_HEX));
    assert.equal(toHex(r.entryHash), TX_HASH);
    assert.equal(toHex(r.leafHash), TX_LEAF_HASH);
    const w = encodeEntryHashes(TX);
    assert.equal(toHex(w.bytes), TX_HEX);
    assert.equal(toHex(w.entryHash), TX_HASH);
    assert.equal(toHex(w.leafHash), TX_LEAF_HASH);
  });

  test('every kind: the same entry, hashes and bytes as decodeEntry / encodeEntry', () => {
    for (const e of kinds()) {
      const b = encodeEntry(e);
      assert.deepEqual(oneShot(b), reference(b));
      const w = encodeEntryHashes(e);
      assert.deepEqual(w.bytes, b);
      assert.equal(toHex(w.entryHash), toHex(entryHash(b)));
      assert.equal(toHex(w.leafHash), toHex(entryLeafHash(e)));
    }
  });

  test('changed, cut or extended bytes: accepted and refused exactly as decodeEntry', () => {
    for (const e of kinds()) {
      const b = encodeEntry(e);
      fc.assert(
        fc.property(fc.nat(b.length - 1), fc.integer({ min: 1, max: 255 }), (i, mask) => {
          const bad = b.slice();
          bad[i] = (bad[i] as number) ^ mask;
          assert.deepEqual(oneShot(bad), reference(bad));
        }),
        { numRuns: 300 },
      );
      for (let n = 0; n < b.length; n += 5)
        assert.deepEqual(oneShot(b.subarray(0, n)), reference(b.subarray(0, n)));
      const longer = new Uint8Array([...b, 0]);
      assert.deepEqual(oneShot(longer), reference(longer));
    }
  });

  test('non-shortest heads and a repeated meta key: refused exactly as decodeEntry', () => {
    const head = TX_HEX.slice(0, 6); // array(9), version, term 1
    const rest = TX_HEX.slice(8); // after index 2
    const variants = [
      `${head}1802${rest}`, // index 2 in a 1-byte argument
      `${head}190002${rest}`, // ... a 2-byte one
      `${head}1a00000002${rest}`, // ... a 4-byte one
      `${head}1b0000000000000002${rest}`, // ... an 8-byte one
      TX_HEX.replace('a26367656e00', 'a36367656e006367656e00'), // "gen" twice
    ];
    for (const hex of variants) {
      const b = fromHex(hex);
      assert.ok('error' in (reference(b) as object), hex);
      assert.deepEqual(oneShot(b), reference(b), hex);
    }
  });

  test('a caller-supplied SHA-256 gives the same bytes', () => {
    const counted = { n: 0 };
    const hash = (d: Uint8Array): Uint8Array => {
      counted.n++;
      return sha256(d);
    };
    for (const e of kinds()) {
      const b = encodeEntry(e);
      const r = decodeEntryHashes(b, hash);
      assert.equal(toHex(r.leafHash), toHex(entryLeafHash(e)));
      assert.equal(toHex(r.entryHash), toHex(entryHash(b, hash)));
      assert.equal(toHex(encodeEntryHashes(e, hash).leafHash), toHex(entryLeafHash(e, hash)));
    }
    assert.ok(counted.n > 0);
    assert.throws(() => encodeEntryHashes({ ...TX, claims: fill(5, 0) }), InvalidInputError);
  });
});

describe('payloads and ids', () => {
  test('endorsement payload, nonce and service identity', () => {
    const svc = newKey().publicKey;
    const node = newKey().publicKey;
    const p = endorsementPayload(svc, node);
    assert.deepEqual(decodeEndorsementPayload(p), { servicePublicKey: svc, nodePublicKey: node });
    assert.throws(
      () => decodeEndorsementPayload(encodeCbor(['cloister/endorsement/v2', svc, node])),
      LogFormatError,
    );
    assert.throws(() => endorsementPayload(svc, node.subarray(1)), InvalidInputError);
    assert.equal(endorsementNonce(svc).length, 32);
    assert.notDeepEqual(endorsementNonce(svc), endorsementNonce(node));
    assert.equal(serviceIdentity(svc).length, 32);
  });

  test('signature payload is strict', () => {
    const good = signaturePayload({
      term: 1,
      size: 3,
      treeRoot: fill(32, 1),
      stateHash: fill(32, 2),
    });
    assert.throws(() => decodeSignaturePayload(good.subarray(0, good.length - 1)), LogFormatError);
    assert.throws(
      () =>
        decodeSignaturePayload(
          encodeCbor(['cloister/signature/v1', 1, 3, fill(31, 1), fill(32, 2)]),
        ),
      /treeRoot must be 32 bytes/,
    );
  });

  test('decodeEntry: the remaining rules on stored bytes each name themselves (coverage gap)', () => {
    const sig = SIG;
    refused(encodeCbor(new Map([[1, 1]])), /^a log entry must be a CBOR array$/);
    refused(encodeCbor([]), /^a log entry must be a CBOR array$/);
    refused(raw(TX, 5, new Map<unknown, unknown>([[1, 0]])), /^entry meta keys must be text$/);
    refused(
      raw(TX, 5, new Map<string, unknown>([...Object.entries(TX.meta), ['app', 7]])),
      /^meta\.app must be text$/,
    );
    refused(
      raw(TX, 5, new Map<string, unknown>([...Object.entries(TX.meta), ['ev', fill(7, 2)]])),
      /^meta\.ev is for genesis entries only$/,
    );
    const g = genesis();
    refused(
      raw(
        g,
        5,
        new Map<string, unknown>([
          ['svc', g.meta.svc],
          ['end', g.meta.end],
        ]),
      ),
      /^genesis meta must have "ev"$/,
    );
    refused(raw(sig, 5, new Map([['app', 'shop']])), /^meta\.app is for transaction entries only$/);
    refused(raw(sig, 8, new Uint8Array(0)), /^a signature entry must carry its signature$/);
    assert.deepEqual(decodeEntry(encodeEntry(sig)), sig);
  });

  test('a payload under another label is not a signature payload, whoever signed it (coverage gap)', () => {
    for (const label of ['cloister/endorsement/v1', 'cloister/signature/v2', 1]) {
      assert.throws(
        () => decodeSignaturePayload(encodeCbor([label, 1, 3, fill(32, 1), fill(32, 2)])),
        {
          name: 'LogFormatError',
          message: 'signature payload label must be "cloister/signature/v1"',
        },
      );
    }
  });

  test('"rot" is in the meta of rotation entries and of no other (coverage gap)', () => {
    const rotation: LogEntry = {
      ...TX,
      index: 3,
      kind: ENTRY_KIND.rotation,
      meta: { rot: 1 },
      writeSet: new Uint8Array(0),
      claims: new Uint8Array(0),
    };
    refused(raw(rotation, 5, new Map()), /^rotation meta must have "rot"$/);
    refused(
      raw(TX, 5, new Map<string, unknown>([...Object.entries(TX.meta), ['rot', 1]])),
      /^meta\.rot is for rotation entries only$/,
    );
  });

  test('a txid of more than 2^53 - 1 is refused by name, not rounded (coverage gap)', () => {
    for (const bad of ['9007199254740992.1', '1.9007199254740993']) {
      assert.throws(() => parseTxid(bad), {
        name: 'InvalidInputError',
        message: 'a transaction id term and index must be at most 2^53 - 1',
      });
    }
    assert.deepEqual(parseTxid('1.9007199254740991'), { term: 1, index: 2 ** 53 - 1 });
  });

  test('txids', () => {
    assert.equal(formatTxid(1, 42), '1.42');
    assert.deepEqual(parseTxid('1.42'), { term: 1, index: 42 });
    for (const bad of [
      '1.0',
      '0.1',
      '01.2',
      '1.2.3',
      '1',
      ' 1.2',
      '1.-2',
      '1.99999999999999999',
      '',
    ]) {
      assert.throws(() => parseTxid(bad), InvalidInputError, bad);
    }
    assert.throws(() => formatTxid(0, 1), InvalidInputError);
  });
});
