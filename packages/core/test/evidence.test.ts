import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  ConstraintMismatchError,
  EvidenceFormatError,
  EvidenceSignatureError,
  EvidenceVersionError,
  InsecurePlatformError,
  KeyBindingError,
  NonceMismatchError,
  UnknownPlatformError,
} from '../src/attestation-errors.js';
import { decodeCbor, encodeCbor } from '../src/cbor.js';
import { decodeSign1, sign1ToBeSigned, verifyEs256 } from '../src/cose.js';
import { type CloisterError, InvalidInputError } from '../src/errors.js';
import type { EvidenceClaims } from '../src/evidence.js';
import {
  computeMeasurement,
  computeReportData,
  decodeEvidencePayload,
  encodeEvidencePayload,
} from '../src/evidence.js';
import { sha256 } from '../src/hash.js';
import type { PlatformVerifier } from '../src/verify.js';
import { simulationVerifier, verifyEvidence } from '../src/verify.js';
import type { Scenario, TestKey } from './helpers.js';
import { envelope, flip, hex, newKey, payloadMap, scenario, signEnvelope } from './helpers.js';

type ErrorClass = new (...args: never[]) => CloisterError;

/** A test-only "sev-snp" verifier with its own root key: evidence must be signed by that root. */
function testSevSnpVerifier(root: TestKey): PlatformVerifier {
  return {
    platform: 'sev-snp',
    async verify(sign1, _claims) {
      const data = sign1ToBeSigned(sign1.protectedBytes, sign1.payload);
      if (!(await verifyEs256(root.publicKey, data, sign1.signature))) {
        throw new EvidenceSignatureError('not signed by the test sev-snp root');
      }
      return { secure: true, rootOfTrust: `test-sev-snp:${hex(sha256(root.publicKey))}` };
    },
  };
}

const s = scenario();
const opts = (sc: Scenario, constraint = sc.fullConstraint) => ({
  nonce: sc.nonce,
  identityPublicKey: sc.identityPublicKey,
  constraint,
});

/** The scenario's evidence with payload fields replaced, re-signed by `signer` or not at all. */
function altered(changes: Record<string, unknown>, signer?: TestKey): Uint8Array {
  const payload = encodeCbor(payloadMap({ ...s.claims, ...changes }));
  if (signer !== undefined) return signEnvelope(payload, signer);
  return envelope(payload, decodeSign1(s.evidence).signature);
}

async function refused(
  p: Promise<unknown>,
  cls: ErrorClass,
  match?: RegExp,
): Promise<CloisterError> {
  try {
    await p;
  } catch (e) {
    assert.ok(e instanceof cls, `expected ${cls.name}, got ${String(e)}`);
    if (match !== undefined) assert.match(e.message, match);
    return e;
  }
  assert.fail(`expected ${cls.name}, but the evidence was accepted`);
}

describe('payload format', () => {
  test('encode/decode roundtrip and exact key set', () => {
    const bytes = encodeEvidencePayload(s.claims);
    assert.deepEqual(decodeEvidencePayload(bytes), s.claims);
    const map = decodeCbor(bytes) as Map<string, unknown>;
    assert.deepEqual(
      [...map.keys()],
      ['v', 'svn', 'signer', 'product', 'platform', 'reportData', 'measurement', 'platformKey'],
    );
  });

  const bad: [string, Record<string, unknown>, ErrorClass][] = [
    ['v 2', { v: 2 }, EvidenceVersionError],
    ['v 0', { v: 0 }, EvidenceVersionError],
    ['v text', { v: '1' }, EvidenceVersionError],
    ['no v', { v: undefined }, EvidenceFormatError],
    ['unknown key', { extra: 1 }, EvidenceFormatError],
    ['missing svn', { svn: undefined }, EvidenceFormatError],
    ['measurement 31 bytes', { measurement: new Uint8Array(31) }, EvidenceFormatError],
    ['signer 33 bytes', { signer: new Uint8Array(33) }, EvidenceFormatError],
    ['reportData 63 bytes', { reportData: new Uint8Array(63) }, EvidenceFormatError],
    ['platformKey 64 bytes', { platformKey: new Uint8Array(64) }, EvidenceFormatError],
    [
      'platformKey compressed',
      { platformKey: flip(s.claims.platformKey, 0, 0x06) },
      EvidenceFormatError,
    ],
    ['product 2^32', { product: 2 ** 32 }, EvidenceFormatError],
    ['svn negative', { svn: -1 }, EvidenceFormatError],
    ['svn float', { svn: 1.5 }, EvidenceFormatError],
    // -0 passes Number.isInteger, but it is the float f98000: two encodings of "svn 0".
    ['svn -0.0', { svn: -0 }, EvidenceFormatError],
    ['product -0.0', { product: -0 }, EvidenceFormatError],
    ['svn as bytes', { svn: new Uint8Array(1) }, EvidenceFormatError],
    ['platform empty', { platform: '' }, EvidenceFormatError],
    ['platform uppercase', { platform: 'SIMULATION' }, EvidenceFormatError],
    ['platform as bytes', { platform: new Uint8Array(3) }, EvidenceFormatError],
    ['platform with a trailing uppercase letter', { platform: 'simulationX' }, EvidenceFormatError],
    ['platform of 33 characters', { platform: 'a'.repeat(33) }, EvidenceFormatError],
  ];
  for (const [name, changes, cls] of bad) {
    test(`decodeEvidencePayload refuses ${name} with ${cls.name}`, () => {
      const m = payloadMap({ ...s.claims, ...changes });
      for (const [k, v] of m) if (v === undefined) m.delete(k);
      assert.throws(() => decodeEvidencePayload(encodeCbor(m)), cls);
    });
  }

  test('decodeEvidencePayload refuses non-map, integer keys and non-deterministic CBOR', () => {
    assert.throws(() => decodeEvidencePayload(encodeCbor([1])), EvidenceFormatError);
    assert.throws(() => decodeEvidencePayload(encodeCbor(new Map([[1, 1]]))), EvidenceFormatError);
    const bytes = encodeEvidencePayload(s.claims);
    assert.equal(hex(bytes.subarray(0, 4)), 'a8617601'); // {"v": 1, ...
    const long = new Uint8Array([...bytes.subarray(0, 3), 0x18, ...bytes.subarray(3)]); // 1 as 1801
    assert.throws(() => decodeEvidencePayload(long), EvidenceFormatError);
  });

  test('encodeEvidencePayload refuses malformed claims', () => {
    const c = { ...s.claims, svn: 2 ** 32 } as EvidenceClaims;
    assert.throws(() => encodeEvidencePayload(c), InvalidInputError);
  });

  test('computeReportData and computeMeasurement follow the contract', () => {
    const te = new TextEncoder();
    const rd = computeReportData(s.identityPublicKey, s.nonce);
    assert.deepEqual(
      rd.subarray(0, 32),
      sha256(te.encode('cloister/v1/identity-key'), s.identityPublicKey),
    );
    assert.deepEqual(rd.subarray(32), sha256(te.encode('cloister/v1/nonce'), s.nonce));
    const bh = new Uint8Array(32).fill(1);
    const m = computeMeasurement(bh, 0x01020304, 5);
    assert.deepEqual(
      m,
      sha256(te.encode('cloister/v1/measurement'), bh, new Uint8Array([1, 2, 3, 4, 0, 0, 0, 5])),
    );
    assert.throws(
      () => computeReportData(s.identityPublicKey, new Uint8Array(65)),
      InvalidInputError,
    );
    assert.deepEqual(computeReportData(s.identityPublicKey, new Uint8Array(0)).length, 64);
    assert.throws(() => computeMeasurement(bh, -1, 0), InvalidInputError);
  });

  test('the identity key bound into reportData is 65 bytes, uncompressed (first byte 04)', () => {
    const compressed = Uint8Array.from(s.identityPublicKey);
    compressed[0] = 0x02; // 65 bytes, but not the uncompressed form
    assert.throws(() => computeReportData(compressed, s.nonce), /must be uncompressed/);
    assert.throws(
      () => computeReportData(s.identityPublicKey.subarray(0, 64), s.nonce),
      /must be 65 bytes/,
    );
  });
});

describe('verifyEvidence accepts good evidence', () => {
  test('simulation, with SEC:INSECURE: insecure, rooted in the platform key', async () => {
    const v = await verifyEvidence(s.evidence, opts(s));
    assert.equal(v.platform, 'simulation');
    assert.equal(v.secure, false);
    assert.equal(v.rootOfTrust, `simulation:${hex(sha256(s.platformKey.publicKey))}`);
    assert.deepEqual(v.measurement, s.claims.measurement);
    assert.deepEqual(v.signer, s.claims.signer);
    assert.equal(v.product, 7);
    assert.equal(v.svn, 3);
    assert.deepEqual(v.platformKey, s.platformKey.publicKey);
  });

  test('a constraint object works as well as its text', async () => {
    const { parseConstraint } = await import('../src/constraint.js');
    await verifyEvidence(s.evidence, { ...opts(s), constraint: parseConstraint(s.fullConstraint) });
  });
});

describe('(a) each field altered WITHOUT re-signing: EvidenceSignatureError', () => {
  const other = newKey();
  const sev = testSevSnpVerifier(newKey());
  const cases: [string, Record<string, unknown>][] = [
    ['measurement', { measurement: flip(s.claims.measurement, 0) }],
    ['signer', { signer: flip(s.claims.signer, 31) }],
    ['product', { product: 8 }],
    ['svn', { svn: 4 }],
    ['reportData (identity half)', { reportData: flip(s.claims.reportData, 1) }],
    ['reportData (nonce half)', { reportData: flip(s.claims.reportData, 40) }],
    ['platformKey (another valid key)', { platformKey: other.publicKey }],
    ['platformKey (corrupted, not a point)', { platformKey: flip(s.claims.platformKey, 20) }],
  ];
  for (const [name, changes] of cases) {
    test(name, async () => {
      await refused(verifyEvidence(altered(changes), opts(s)), EvidenceSignatureError);
    });
  }
  test('platform, to one with a registered verifier (sev-snp)', async () => {
    const ev = altered({ platform: 'sev-snp' });
    const o = { ...opts(s), verifiers: [simulationVerifier, sev] };
    await refused(verifyEvidence(ev, o), EvidenceSignatureError);
  });
  test('platform, to one with no verifier: UnknownPlatformError (not believed either)', async () => {
    await refused(verifyEvidence(altered({ platform: 'sgx' }), opts(s)), UnknownPlatformError);
  });
  test('v: EvidenceVersionError, since the version decides the format (checked first)', async () => {
    await refused(verifyEvidence(altered({ v: 2 }), opts(s)), EvidenceVersionError);
  });
  test('the signature itself', async () => {
    const sign1 = decodeSign1(s.evidence);
    const ev = envelope(sign1.payload, flip(sign1.signature, 10));
    await refused(verifyEvidence(ev, opts(s)), EvidenceSignatureError);
  });
  test('the envelope: protected or unprotected header changed: EvidenceFormatError', async () => {
    const sign1 = decodeSign1(s.evidence);
    const prot = envelope(
      sign1.payload,
      sign1.signature,
      Uint8Array.of(0xa2, 0x01, 0x26, 0x03, 0x00),
    );
    await refused(verifyEvidence(prot, opts(s)), EvidenceFormatError);
    const unprot = envelope(
      sign1.payload,
      sign1.signature,
      undefined,
      new Map([[4, new Uint8Array(1)]]),
    );
    await refused(verifyEvidence(unprot, opts(s)), EvidenceFormatError);
  });
});

describe("(b) each field altered and RE-SIGNED: that check's own error", () => {
  const k = s.platformKey;
  const cases: [string, Record<string, unknown>, TestKey, ErrorClass, RegExp][] = [
    [
      'measurement',
      { measurement: flip(s.claims.measurement, 0) },
      k,
      ConstraintMismatchError,
      /C:/,
    ],
    ['signer', { signer: flip(s.claims.signer, 0) }, k, ConstraintMismatchError, /S:/],
    ['product', { product: 8 }, k, ConstraintMismatchError, /PROD:7/],
    ['svn below the minimum', { svn: 2 }, k, ConstraintMismatchError, /SVN:3/],
    [
      'reportData nonce half',
      { reportData: flip(s.claims.reportData, 63) },
      k,
      NonceMismatchError,
      /nonce/,
    ],
    [
      'reportData identity half',
      { reportData: flip(s.claims.reportData, 0) },
      k,
      KeyBindingError,
      /identity key/,
    ],
    ['v', { v: 2 }, k, EvidenceVersionError, /version 2/],
    ['platform sgx', { platform: 'sgx' }, k, UnknownPlatformError, /"sgx"/],
  ];
  for (const [name, changes, key, cls, match] of cases) {
    test(`${name}: ${cls.name}`, async () => {
      await refused(verifyEvidence(altered(changes, key), opts(s)), cls, match);
    });
  }
  test('platformKey (signed by the new key): ConstraintMismatchError on SIM:', async () => {
    const key = newKey();
    const e = await refused(
      verifyEvidence(altered({ platformKey: key.publicKey }, key), opts(s)),
      ConstraintMismatchError,
    );
    assert.match((e as ConstraintMismatchError).clause, /^SIM:/);
    assert.equal((e as ConstraintMismatchError).seen, hex(sha256(key.publicKey)));
  });
  test('svn above the minimum is accepted', async () => {
    await verifyEvidence(altered({ svn: 9 }, k), opts(s));
  });
});

describe('(c) simulation keys cannot claim another platform', () => {
  const root = newKey();
  const sev = testSevSnpVerifier(root);
  const claimsSev = { platform: 'sev-snp' };

  test('refused with EvidenceSignatureError when a sev-snp verifier is registered', async () => {
    const ev = altered(claimsSev, s.platformKey); // signed by the simulation key
    const o = { ...opts(s, s.secureConstraint), verifiers: [simulationVerifier, sev] };
    await refused(verifyEvidence(ev, o), EvidenceSignatureError);
  });
  test('refused as unknown when none is', async () => {
    await refused(verifyEvidence(altered(claimsSev, s.platformKey), opts(s)), UnknownPlatformError);
  });
  test('signed by the sev-snp root: secure, accepted without SEC:INSECURE', async () => {
    const o = { ...opts(s, s.secureConstraint), verifiers: [simulationVerifier, sev] };
    const v = await verifyEvidence(altered(claimsSev, root), o);
    assert.equal(v.secure, true);
    assert.match(v.rootOfTrust, /^test-sev-snp:/);
  });
  test('the simulation verifier itself refuses non-simulation claims', async () => {
    const sign1 = decodeSign1(s.evidence);
    await refused(
      simulationVerifier.verify(sign1, { ...s.claims, platform: 'sev-snp' }),
      EvidenceSignatureError,
    );
  });
});

describe('order of checks and security level', () => {
  test('without SEC:INSECURE, simulation is refused and the message says it is insecure', async () => {
    const e = await refused(
      verifyEvidence(s.evidence, opts(s, s.secureConstraint)),
      InsecurePlatformError,
      /insecure/,
    );
    assert.equal(e.code, 'INSECURE_PLATFORM');
    assert.match(e.message, /"simulation" is insecure/);
  });
  test('signature before security level, security level before nonce', async () => {
    await refused(
      verifyEvidence(altered({ svn: 4 }), opts(s, s.secureConstraint)),
      EvidenceSignatureError,
    );
    await refused(
      verifyEvidence(s.evidence, { ...opts(s, s.secureConstraint), nonce: new Uint8Array(1) }),
      InsecurePlatformError,
    );
  });
  test('nonce before key binding, key binding before constraint', async () => {
    const wrong = { ...opts(s, `C:${'00'.repeat(32)} SEC:INSECURE`) };
    await refused(
      verifyEvidence(s.evidence, {
        ...wrong,
        nonce: new Uint8Array(1),
        identityPublicKey: newKey().publicKey,
      }),
      NonceMismatchError,
    );
    await refused(
      verifyEvidence(s.evidence, { ...wrong, identityPublicKey: newKey().publicKey }),
      KeyBindingError,
    );
    await refused(verifyEvidence(s.evidence, wrong), ConstraintMismatchError, /C:0{64}/);
  });
  test("the caller's own arguments are checked first", async () => {
    await refused(
      verifyEvidence(new Uint8Array(1), { ...opts(s), nonce: new Uint8Array(65) }),
      InvalidInputError,
    );
    await refused(
      verifyEvidence(new Uint8Array(1), { ...opts(s), identityPublicKey: new Uint8Array(64) }),
      InvalidInputError,
    );
    const { ConstraintSyntaxError } = await import('../src/attestation-errors.js');
    await refused(verifyEvidence(new Uint8Array(1), opts(s, 'C:zz')), ConstraintSyntaxError);
    await refused(verifyEvidence(new Uint8Array(1), opts(s)), EvidenceFormatError);
    await refused(verifyEvidence(new Uint8Array(65537), opts(s)), EvidenceFormatError, /longer/);
  });
  test('two verifiers for one platform is a caller error', async () => {
    const o = { ...opts(s), verifiers: [simulationVerifier, simulationVerifier] };
    await refused(verifyEvidence(s.evidence, o), InvalidInputError);
  });
});

describe('acceptance edges (mutation round 13)', () => {
  test('the key-binding half is compared whole: its last byte altered and re-signed', async () => {
    const ev = altered({ reportData: flip(s.claims.reportData, 31) }, s.platformKey);
    await refused(verifyEvidence(ev, opts(s)), KeyBindingError);
  });
  test('the nonce half is compared whole: its first byte altered and re-signed', async () => {
    const ev = altered({ reportData: flip(s.claims.reportData, 32) }, s.platformKey);
    await refused(verifyEvidence(ev, opts(s)), NonceMismatchError);
  });
  test('a verifier is picked by its exact platform name, never by a prefix of it', async () => {
    const root = newKey();
    const sev = { ...testSevSnpVerifier(root), platform: 'sev' };
    const ev = altered({ platform: 'sev-snp' }, root);
    const o = { ...opts(s, s.secureConstraint), verifiers: [simulationVerifier, sev] };
    await refused(verifyEvidence(ev, o), UnknownPlatformError, /"sev-snp"/);
  });
  test('a hand-built constraint is re-validated: one naming no code identity is refused', async () => {
    const { ConstraintSyntaxError } = await import('../src/attestation-errors.js');
    const noCode = { measurements: [], allowInsecure: true, simulationKeys: [] };
    await refused(verifyEvidence(s.evidence, opts(s, noCode as never)), ConstraintSyntaxError);
  });
  test('a hand-built allowInsecure other than true admits no insecure platform', async () => {
    const c = { measurements: [s.claims.measurement], allowInsecure: 'false', simulationKeys: [] };
    await refused(verifyEvidence(s.evidence, opts(s, c as never)), InsecurePlatformError);
  });
  test('a verdict whose secure is not a boolean is refused, never taken as truthy', async () => {
    const root = newKey();
    const odd: PlatformVerifier = {
      platform: 'sev-snp',
      async verify(sign1, claims) {
        await testSevSnpVerifier(root).verify(sign1, claims);
        return { secure: 'false' as unknown as boolean, rootOfTrust: 'odd' };
      },
    };
    const ev = altered({ platform: 'sev-snp' }, root);
    const o = { ...opts(s, s.secureConstraint), verifiers: [simulationVerifier, odd] };
    await refused(verifyEvidence(ev, o), InvalidInputError, /malformed verdict/);
  });
});

describe('the verifier boundary (coverage gaps)', () => {
  test("a verifier's own crash is a refused signature, never an accepted one or a raw error", async () => {
    const root = newKey();
    const crashing: PlatformVerifier = {
      platform: 'sev-snp',
      async verify() {
        throw new TypeError('cannot read the VCEK chain');
      },
    };
    const ev = altered({ platform: 'sev-snp' }, root);
    const o = { ...opts(s, s.secureConstraint), verifiers: [simulationVerifier, crashing] };
    const e = await refused(
      verifyEvidence(ev, o),
      EvidenceSignatureError,
      /the sev-snp verifier failed/,
    );
    assert.ok(e.cause instanceof TypeError);
  });
  test('verifiers that are not an array, or a constraint that is neither text nor object: caller errors', async () => {
    const notArray = { ...opts(s), verifiers: simulationVerifier as never };
    await refused(
      verifyEvidence(s.evidence, notArray),
      InvalidInputError,
      /verifiers must be an array/,
    );
    for (const c of [null, 7]) {
      await refused(
        verifyEvidence(s.evidence, opts(s, c as never)),
        InvalidInputError,
        /constraint must be a Constraint or its text/,
      );
    }
  });
});
