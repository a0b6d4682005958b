import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { CloisterError } from '../src/errors.js';
import { decodeEvidencePayload, encodeEvidencePayload } from '../src/evidence.js';
import { verifyEvidence } from '../src/verify.js';
import { flip, hex, scenario } from './helpers.js';

const s = scenario();
const opts = {
  nonce: s.nonce,
  identityPublicKey: s.identityPublicKey,
  constraint: s.fullConstraint,
};

describe('(e) properties', () => {
  const claimsArb = fc.record({
    v: fc.constant(1 as const),
    platform: fc.stringMatching(/^[a-z0-9][a-z0-9-]{0,31}$/),
    measurement: fc.uint8Array({ minLength: 32, maxLength: 32 }),
    signer: fc.uint8Array({ minLength: 32, maxLength: 32 }),
    product: fc.nat({ max: 2 ** 32 - 1 }),
    svn: fc.nat({ max: 2 ** 32 - 1 }),
    reportData: fc.uint8Array({ minLength: 64, maxLength: 64 }),
    platformKey: fc
      .uint8Array({ minLength: 64, maxLength: 64 })
      .map((b) => new Uint8Array([4, ...b])),
  });

  test('decodeEvidencePayload(encodeEvidencePayload(x)) roundtrips', () => {
    fc.assert(
      fc.property(claimsArb, (c) => {
        assert.deepEqual(decodeEvidencePayload(encodeEvidencePayload(c)), { ...c });
      }),
      { numRuns: 300 },
    );
  });

  const mutation = fc.oneof(
    fc.record({
      kind: fc.constant('xor' as const),
      at: fc.nat(),
      mask: fc.integer({ min: 1, max: 255 }),
    }),
    fc.record({ kind: fc.constant('cut' as const), at: fc.nat(), mask: fc.constant(0) }),
    fc.record({ kind: fc.constant('insert' as const), at: fc.nat(), mask: fc.nat({ max: 255 }) }),
  );

  function mutate(ev: Uint8Array, m: { kind: string; at: number; mask: number }): Uint8Array {
    const at = m.at % ev.length;
    if (m.kind === 'xor') return flip(ev, at, m.mask);
    if (m.kind === 'cut') return ev.slice(0, at);
    return new Uint8Array([...ev.subarray(0, at), m.mask, ...ev.subarray(at)]);
  }

  test('random mutations of valid evidence never verify and throw only CloisterErrors', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(mutation, { minLength: 1, maxLength: 3 }), async (ms) => {
        let ev = s.evidence;
        for (const m of ms) ev = mutate(ev, m);
        fc.pre(!ev.every((b, i) => b === s.evidence[i]) || ev.length !== s.evidence.length);
        try {
          await verifyEvidence(ev, opts);
        } catch (e) {
          assert.ok(e instanceof CloisterError, `not a CloisterError: ${String(e)}`);
          return;
        }
        assert.fail(`a mutated evidence verified: ${hex(ev)}`);
      }),
      { numRuns: 400 },
    );
  });
});
