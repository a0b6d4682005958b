/**
 * verifyReceipt (src/log/receipt.ts) on real receipts: a service built from the contract with
 * P-256 keys (@noble/curves) and simulation evidence (test/log-kit.ts).
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { toHex } from '../src/bytes.js';
import { decodeCbor, encodeCbor } from '../src/cbor.js';
import { parseConstraint } from '../src/constraint.js';
import { decodeSign1 } from '../src/cose.js';
import { LogFormatError, ReceiptError, type ReceiptFailure } from '../src/log/errors.js';
import { endorsementNonce, endorsementPayload, serviceIdentity } from '../src/log/payloads.js';
import { decodeReceipt, encodeReceipt, verifyReceipt } from '../src/log/receipt.js';
import {
  CONSTRAINT,
  KitService,
  makeClaims,
  p256Key,
  SECURE_CONSTRAINT,
  sign1,
  sign1With,
  simulationEvidence,
  withUnprotected,
} from './log-kit.js';

async function refusedWith(
  p: Promise<unknown>,
  reason: ReceiptFailure,
  message?: RegExp,
): Promise<void> {
  await assert.rejects(p, (e: unknown) => {
    assert.ok(e instanceof ReceiptError, String(e));
    assert.equal(e.reason, reason, e.message);
    assert.equal(e.code, 'RECEIPT');
    if (message) assert.match(e.message, message);
    return true;
  });
}

function build(): { s: KitService; index: number } {
  const s = new KitService();
  s.tx(makeClaims(1));
  const index = s.tx(makeClaims(2));
  s.tx(makeClaims(3));
  s.sign();
  s.tx(makeClaims(4)); // unsigned tail
  return { s, index };
}

describe('verifyReceipt', () => {
  test('a good receipt verifies, with claims and pinned service', async () => {
    const { s, index } = build();
    const v = await verifyReceipt(s.receipt(index), {
      constraint: CONSTRAINT,
      service: serviceIdentity(s.service.publicKey),
      claims: makeClaims(2),
    });
    assert.equal(v.txid, `1.${index}`);
    assert.equal(v.index, index);
    assert.equal(v.kind, 2);
    assert.equal(v.size, 5);
    assert.equal(v.sigIndex, 6);
    assert.deepEqual(v.treeRoot, s.tree.root(5));
    assert.deepEqual(v.stateHash, s.stateHashes[5]);
    assert.deepEqual(v.servicePublicKey, s.service.publicKey);
    assert.deepEqual(v.nodePublicKey, s.node.publicKey);
    assert.equal(v.security.platform, 'simulation');
    assert.equal(v.security.secure, false);
  });

  test('every entry of the log has a verifying receipt (genesis and signatures included)', async () => {
    const { s } = build();
    for (let i = 1; i <= 5; i++) {
      const v = await verifyReceipt(s.receipt(i), { constraint: CONSTRAINT });
      assert.equal(v.index, i);
      assert.equal(v.size, i === 1 ? 1 : 5);
    }
    assert.throws(() => s.receipt(7), /not signed yet/);
  });

  test('round trip is exact; unknown keys and other versions are format errors', async () => {
    const { s, index } = build();
    const bytes = s.receipt(index);
    assert.deepEqual(encodeReceipt(decodeReceipt(bytes)), bytes);
    const r = s.receiptOf(index);
    const map = (extra: [string, unknown][]): Uint8Array =>
      encodeCbor(
        new Map<string, unknown>([
          ['v', 1],
          ['entry', [1, index, 2, r.entry.metaDigest, r.entry.writeSetDigest, r.entry.claims]],
          ['path', [r.size, r.path]],
          ['sig', r.sig],
          ['sigIndex', r.sigIndex],
          ['end', r.end],
          ['ev', r.ev],
          ...extra,
        ]),
      );
    assert.deepEqual(map([]), bytes);
    await refusedWith(
      verifyReceipt(map([['x', 1]]), { constraint: CONSTRAINT }),
      'format',
      /unknown key "x"/,
    );
    await refusedWith(
      verifyReceipt(map([['v', 2]]), { constraint: CONSTRAINT }),
      'format',
      /version 2/,
    );
    await refusedWith(
      verifyReceipt(
        map([
          [
            'entry',
            [1, index, 2, r.entry.metaDigest.subarray(1), r.entry.writeSetDigest, r.entry.claims],
          ],
        ]),
        {
          constraint: CONSTRAINT,
        },
      ),
      'format',
      /metaDigest must be 32 bytes/,
    );
    await refusedWith(verifyReceipt(bytes.subarray(0, 50), { constraint: CONSTRAINT }), 'format');
  });

  test('one byte changed anywhere: refused', async () => {
    const { s, index } = build();
    const bytes = s.receipt(index);
    const claims = makeClaims(2);
    const service = serviceIdentity(s.service.publicKey);
    await fc.assert(
      fc.asyncProperty(
        fc.nat(bytes.length - 1),
        fc.integer({ min: 1, max: 255 }),
        async (i, mask) => {
          const bad = bytes.slice();
          bad[i] = (bad[i] as number) ^ mask;
          await assert.rejects(
            verifyReceipt(bad, { constraint: CONSTRAINT, service, claims }),
            ReceiptError,
          );
        },
      ),
      { numRuns: 300 },
    );
    // And exhaustively with one mask, every byte.
    for (let i = 0; i < bytes.length; i++) {
      const bad = bytes.slice();
      bad[i] = (bad[i] as number) ^ 0x01;
      await assert.rejects(
        verifyReceipt(bad, { constraint: CONSTRAINT, service, claims }),
        ReceiptError,
        `byte ${i}`,
      );
    }
  });

  test('each field altered is refused by its own step', async () => {
    const { s, index } = build();
    const r = s.receiptOf(index);
    const v = (x: typeof r) => verifyReceipt(encodeReceipt(x), { constraint: CONSTRAINT });
    const flip = (b: Uint8Array, i = 0) => {
      const o = b.slice();
      o[i] = (o[i] as number) ^ 1;
      return o;
    };
    await refusedWith(
      v({ ...r, entry: { ...r.entry, writeSetDigest: flip(r.entry.writeSetDigest) } }),
      'inclusion',
    );
    await refusedWith(v({ ...r, entry: { ...r.entry, index: index + 1 } }), 'inclusion');
    await refusedWith(
      v({ ...r, entry: { ...r.entry, index: r.size + 1 } }),
      'inclusion',
      new RegExp(`entry ${r.size + 1} is not in the signed tree of size ${r.size}`),
    );
    await refusedWith(
      v({ ...r, entry: { ...r.entry, term: 2 } }),
      'signature',
      /the signature is for term 1, the entry for term 2/,
    );
    await refusedWith(
      v({ ...r, path: [flip(r.path[0] as Uint8Array), ...r.path.slice(1)] }),
      'inclusion',
    );
    await refusedWith(v({ ...r, size: r.size + 1 }), 'inclusion');
    await refusedWith(
      v({ ...r, sigIndex: r.sigIndex + 1 }),
      'signature',
      /signs tree size 5, not 6/,
    );
    await refusedWith(v({ ...r, sig: flip(r.sig, r.sig.length - 1) }), 'signature');
    await refusedWith(v({ ...r, end: flip(r.end, r.end.length - 1) }), 'endorsement');
    await refusedWith(
      v({ ...r, ev: flip(r.ev, r.ev.length - 1) }),
      'evidence',
      /EVIDENCE|signature/i,
    );
  });

  test('a COSE header the signatures do not cover makes no second accepted receipt', async () => {
    const { s, index } = build();
    const r = s.receiptOf(index);
    const v = (x: typeof r) => verifyReceipt(encodeReceipt(x), { constraint: CONSTRAINT });
    const extra = new Map<unknown, unknown>([[4, Uint8Array.of(0)]]);
    await v(r); // the honest receipt verifies
    await refusedWith(
      v({ ...r, sig: withUnprotected(r.sig, extra) }),
      'signature',
      /unprotected header must be empty/,
    );
    await refusedWith(
      v({ ...r, end: withUnprotected(r.end, extra) }),
      'endorsement',
      /unprotected header must be empty/,
    );
    // Signed with the right keys, but a protected header other than a1 01 26: not our encoding.
    const wide = encodeCbor(
      new Map<number, unknown>([
        [1, -7],
        [3, 0],
      ]),
    );
    const signed = decodeSign1(r.sig).payload;
    await refusedWith(
      v({ ...r, sig: sign1With(s.service, wide, signed) }),
      'signature',
      /exactly \{1: -7\}/,
    );
    const endorsed = decodeSign1(r.end).payload;
    await refusedWith(
      v({ ...r, end: sign1With(s.node, wide, endorsed) }),
      'endorsement',
      /exactly \{1: -7\}/,
    );
  });

  test('the constraint is applied to the evidence', async () => {
    const { s, index } = build();
    await refusedWith(
      verifyReceipt(s.receipt(index), { constraint: SECURE_CONSTRAINT }),
      'evidence',
      /insecure/,
    );
  });

  test('wrong claims, or claims for an entry without claims: refused', async () => {
    const { s, index } = build();
    await refusedWith(
      verifyReceipt(s.receipt(index), { constraint: CONSTRAINT, claims: makeClaims(3) }),
      'claims',
    );
    const other = { ...makeClaims(2), response: new TextEncoder().encode('another response') };
    await refusedWith(
      verifyReceipt(s.receipt(index), { constraint: CONSTRAINT, claims: other }),
      'claims',
    );
    const t = new KitService();
    const noClaims = t.tx();
    t.sign();
    await refusedWith(
      verifyReceipt(t.receipt(noClaims), { constraint: CONSTRAINT, claims: makeClaims(2) }),
      'claims',
      /records no claims/,
    );
  });

  test('a forged service key with valid evidence for another node: refused when the service is pinned', async () => {
    const honest = new KitService();
    // The attacker runs its own node (valid evidence, right code) endorsing its own service key.
    const forged = new KitService();
    const index = forged.tx(makeClaims(2));
    forged.sign();
    const receipt = forged.receipt(index);
    // Unpinned, the receipt is a valid receipt of the attacker's service: pinning is what refuses it.
    const v = await verifyReceipt(receipt, { constraint: CONSTRAINT });
    assert.deepEqual(v.service, serviceIdentity(forged.service.publicKey));
    await refusedWith(
      verifyReceipt(receipt, {
        constraint: CONSTRAINT,
        service: serviceIdentity(honest.service.publicKey),
      }),
      'service',
    );
  });

  test("the constraint's SVC: clause is the same pin: the attacker's service refused, the honest one accepted", async () => {
    const honest = new KitService();
    const hi = honest.tx(makeClaims(1));
    honest.sign();
    const forged = new KitService();
    const fi = forged.tx(makeClaims(1));
    forged.sign();
    const svc = (k: KitService) => `SVC:${toHex(serviceIdentity(k.service.publicKey))}`;
    const pinned = `${CONSTRAINT} ${svc(honest)}`;
    // A clause the receipt could check and did not was a constraint "accepted" in full.
    await refusedWith(
      verifyReceipt(forged.receipt(fi), { constraint: pinned }),
      'service',
      /constraint's SVC:/,
    );
    const v = await verifyReceipt(honest.receipt(hi), { constraint: pinned });
    assert.deepEqual(v.service, serviceIdentity(honest.service.publicKey));
    // The parsed form is held to it too.
    await refusedWith(
      verifyReceipt(forged.receipt(fi), { constraint: parseConstraint(pinned) }),
      'service',
    );
  });

  test("an endorsement by a node key other than the evidence's: refused", async () => {
    const honest = new KitService();
    const attackerNode = p256Key();
    const forgedService = p256Key();
    // The honest node's evidence (for its own service key) next to an endorsement of a forged
    // service key by the attacker's node key.
    const end = sign1(
      attackerNode,
      endorsementPayload(forgedService.publicKey, attackerNode.publicKey),
    );
    const r = { ...honest.receiptOf(1), end };
    await refusedWith(
      verifyReceipt(encodeReceipt(r), { constraint: CONSTRAINT }),
      'evidence',
      /nonce|bind/,
    );
    // Evidence for the attacker's node key but answering the honest service's nonce.
    const ev = simulationEvidence(
      attackerNode.publicKey,
      endorsementNonce(honest.service.publicKey),
    );
    await refusedWith(
      verifyReceipt(encodeReceipt({ ...r, ev }), { constraint: CONSTRAINT }),
      'evidence',
      /nonce/,
    );
    // An endorsement payload naming the honest node's key, signed by the attacker's node key.
    const lying = sign1(
      attackerNode,
      endorsementPayload(honest.service.publicKey, honest.node.publicKey),
    );
    await refusedWith(
      verifyReceipt(encodeReceipt({ ...honest.receiptOf(1), end: lying }), {
        constraint: CONSTRAINT,
      }),
      'endorsement',
      /not signed by the node key/,
    );
  });

  test('an endorsing node key that is not a P-256 point: refused, never taken as signing', async () => {
    // 04 ‖ X ‖ Y off the curve: evidence can bind any 65 bytes (a simulation host signs what it
    // likes), but no signature verifies under it, so the endorsement is refused.
    const offCurve = p256Key().publicKey.slice();
    offCurve[64] = (offCurve[64] as number) ^ 1;
    const service = p256Key();
    const end = sign1(p256Key(), endorsementPayload(service.publicKey, offCurve));
    const ev = simulationEvidence(offCurve, endorsementNonce(service.publicKey));
    const s = new KitService({ end, ev });
    const index = s.tx(makeClaims(1));
    s.sign(service); // by the endorsed service key: only the endorsement's signature is wrong
    await refusedWith(
      verifyReceipt(s.receipt(index), { constraint: CONSTRAINT }),
      'endorsement',
      /not signed by the node key/,
    );
  });

  test('a log signed by a key the evidence does not endorse: refused', async () => {
    const s = new KitService();
    const index = s.tx(makeClaims(1));
    s.sign(p256Key());
    await refusedWith(verifyReceipt(s.receipt(index), { constraint: CONSTRAINT }), 'signature');
  });

  test('a path that is not [size, [hash, …]], or of more than 64 hashes, is a format error', async () => {
    const { s, index } = build();
    const r = s.receiptOf(index);
    const withPath = (path: unknown): Uint8Array => {
      const m = decodeCbor(encodeReceipt(r)) as Map<string, unknown>;
      m.set('path', path);
      return encodeCbor(m);
    };
    for (const path of [[r.size], [r.size, r.path[0]], r.path]) {
      await refusedWith(
        verifyReceipt(withPath(path), { constraint: CONSTRAINT }),
        'format',
        /path must be \[size, \[hash, …\]\]/,
      );
    }
    const long = Array.from({ length: 65 }, () => new Uint8Array(32));
    await refusedWith(
      verifyReceipt(withPath([r.size, long]), { constraint: CONSTRAINT }),
      'format',
      /path has 65 hashes \(at most 64\)/,
    );
    // 64 hashes decode: the bound is the inclusion step's to apply, not a format error.
    await refusedWith(
      verifyReceipt(withPath([r.size, long.slice(1)]), { constraint: CONSTRAINT }),
      'inclusion',
    );
  });

  test('a payload the service key signed that is not a signature payload: refused at the signature step', async () => {
    const { s, index } = build();
    const r = s.receiptOf(index);
    const sig = sign1(s.service, encodeCbor([1, 2]));
    await refusedWith(
      verifyReceipt(encodeReceipt({ ...r, sig }), { constraint: CONSTRAINT }),
      'signature',
      /signature payload/i,
    );
  });

  test("the caller's own mistakes are thrown as they are, never as a refused receipt", async () => {
    const { s, index } = build();
    const bytes = s.receipt(index);
    // A hand-built constraint that names no code: the caller's CONSTRAINT_SYNTAX, not 'evidence'.
    await assert.rejects(
      verifyReceipt(bytes, { constraint: {} as never }),
      (e: unknown) =>
        !(e instanceof ReceiptError) &&
        (e as { code?: string }).code === 'CONSTRAINT_SYNTAX' &&
        /must name a code identity/.test((e as Error).message),
    );
    await assert.rejects(verifyReceipt(bytes, null as never), {
      code: 'INVALID_INPUT',
      message: /verifyReceipt needs options/,
    });
    await assert.rejects(
      verifyReceipt(bytes, { constraint: CONSTRAINT, service: new Uint8Array(31) }),
      { code: 'INVALID_INPUT', message: 'options.service must be a 32-byte service identity hash' },
    );
  });

  test('decodeReceipt reports format errors as ReceiptError, never LogFormatError', () => {
    assert.throws(
      () => decodeReceipt(encodeCbor([1])),
      (e: unknown) => e instanceof ReceiptError && !(e instanceof LogFormatError),
    );
  });
});
