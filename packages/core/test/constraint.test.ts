import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import {
  ConstraintMismatchError,
  ConstraintSyntaxError,
  InsecurePlatformError,
} from '../src/attestation-errors.js';
import type { ConstraintFacts } from '../src/constraint.js';
import {
  AppCodeMismatchError,
  checkAppClause,
  checkServiceClause,
  clausesBeyondEvidence,
  formatConstraint,
  MAX_CONSTRAINT_LENGTH,
  matchConstraint,
  parseConstraint,
} from '../src/constraint.js';
import { sha256 } from '../src/hash.js';

const hx = (b: Uint8Array): string => Buffer.from(b).toString('hex');
const M = 'aa'.repeat(32);
const M2 = 'ab'.repeat(32);
const SIGNER = 'bb'.repeat(32);
const KEY = new Uint8Array(65).fill(4);
const KEY_HASH = hx(sha256(KEY));

const FACTS: ConstraintFacts = {
  secure: false,
  measurement: Buffer.from(M, 'hex'),
  signer: Buffer.from(SIGNER, 'hex'),
  product: 5,
  svn: 10,
  platformKey: KEY,
};

describe('parseConstraint: syntax errors name the clause, its position and what is expected', () => {
  const errors: [string, number, string, RegExp][] = [
    // text, position, clause, message
    ['', 0, '', /must name a code identity/],
    ['SEC:INSECURE', 0, '', /must name a code identity/],
    ['SVN:3', 0, '', /must name a code identity/],
    ['C:', 1, 'C:', /expected C:<64 hex digits>/],
    [`C:${M}0`, 1, `C:${M}0`, /expected C:<64 hex digits>/],
    [`C:${M.slice(2)}zz`, 1, `C:${M.slice(2)}zz`, /expected C:/],
    [`C:${M} c:${M}`, 2, `c:${M}`, /unknown clause/],
    [`C:${M} X`, 2, 'X', /unknown clause/],
    [`C:${M} FOO:1`, 2, 'FOO:1', /unknown clause; expected one of C:, S:/],
    // Names every object has are not clause kinds.
    [`C:${M} toString:1`, 2, 'toString:1', /unknown clause/],
    [`C:${M} __proto__:1`, 2, '__proto__:1', /unknown clause/],
    [`C:${M} constructor:1`, 2, 'constructor:1', /unknown clause/],
    [`C:${M} C:${M}`, 2, `C:${M}`, /same C: value is given twice/],
    [`C:${M} C:${M.toUpperCase()}`, 2, `C:${M.toUpperCase()}`, /given twice/],
    [`S:${SIGNER}`, 1, `S:${SIGNER}`, /S: needs a PROD:/],
    [`C:${M} PROD:1`, 2, 'PROD:1', /PROD: is only meaningful with an S:/],
    [`S:${SIGNER} PROD:1 PROD:2`, 3, 'PROD:2', /only one PROD: clause/],
    [`S:${SIGNER} S:${M} PROD:1`, 2, `S:${M}`, /only one S: clause/],
    [`S:${SIGNER} PROD:01`, 2, 'PROD:01', /expected PROD:<decimal/],
    [`S:${SIGNER} PROD:-1`, 2, 'PROD:-1', /expected PROD:/],
    [`S:${SIGNER} PROD:4294967296`, 2, 'PROD:4294967296', /expected PROD:/],
    [`C:${M} SVN:1.5`, 2, 'SVN:1.5', /expected SVN:<decimal/],
    [`C:${M} SVN:1 SVN:2`, 3, 'SVN:2', /only one SVN:/],
    [`C:${M} SEC:insecure`, 2, 'SEC:insecure', /expected SEC:INSECURE/],
    [`C:${M} SEC:INSECURE SEC:INSECURE`, 3, 'SEC:INSECURE', /only one SEC:/],
    [`C:${M} SIM:${KEY_HASH}`, 2, `SIM:${KEY_HASH}`, /needs SEC:INSECURE/],
    [`C:${M} SEC:INSECURE SIM:12`, 3, 'SIM:12', /expected SIM:<64 hex digits>/],
    [`C:${M} APP:mail`, 2, 'APP:mail', /expected APP:<app name>=<64 hex digits>/],
    // No `=`: the 64 hex digits are not both an app name and a code id.
    [`C:${M} APP:${M}`, 2, `APP:${M}`, /expected APP:<app name>=<64 hex digits>/],
    [`C:${M} APP:=${M}`, 2, `APP:=${M}`, /expected APP:<app name>=/],
    [`C:${M} APP:-x=${M}`, 2, `APP:-x=${M}`, /expected APP:<app name>=/],
    [`C:${M} APP:${'a'.repeat(65)}=${M}`, 2, `APP:${'a'.repeat(65)}=${M}`, /expected APP:/],
    [`C:${M} APP:mail=${M}0`, 2, `APP:mail=${M}0`, /expected APP:/],
    [
      `C:${M} APP:mail=${M} APP:mail=${M.toUpperCase()}`,
      3,
      `APP:mail=${M.toUpperCase()}`,
      /given twice/,
    ],
    [`APP:mail=${M}`, 0, '', /must name a code identity/],
    [`C:${M} SVC:${M}0`, 2, `SVC:${M}0`, /expected SVC:<64 hex digits>/],
    [`C:${M} SVC:${M} SVC:${M2}`, 3, `SVC:${M2}`, /only one SVC:/],
    [`SVC:${M}`, 0, '', /must name a code identity/],
  ];
  for (const [text, position, clause, message] of errors) {
    test(JSON.stringify(text.length > 50 ? `${text.slice(0, 47)}...` : text), () => {
      try {
        parseConstraint(text);
      } catch (e) {
        assert.ok(e instanceof ConstraintSyntaxError, String(e));
        assert.equal(e.code, 'CONSTRAINT_SYNTAX');
        assert.equal(e.position, position);
        assert.equal(e.clause, clause);
        assert.match(e.message, message);
        if (position > 0) assert.match(e.message, new RegExp(`^constraint clause ${position} `));
        return;
      }
      assert.fail('accepted');
    });
  }

  test('too long, or not text', () => {
    assert.throws(() => parseConstraint(`C:${M} `.repeat(200)), ConstraintSyntaxError);
    // The limit is on the whole text, whitespace included: MAX characters pass, one more does not.
    const exact = `C:${M}`.padEnd(MAX_CONSTRAINT_LENGTH, ' ');
    assert.equal(parseConstraint(exact).measurements.length, 1);
    assert.throws(() => parseConstraint(`${exact} `), /at most 8192 characters/);
    assert.throws(() => parseConstraint(42 as unknown as string), ConstraintSyntaxError);
  });
});

describe('parseConstraint and formatConstraint', () => {
  test('whitespace, hex case and order do not matter; the canonical text is fixed', () => {
    const text = `\n SIM:${KEY_HASH.toUpperCase()}\tSEC:INSECURE SVN:3  C:${M2} PROD:5 S:${SIGNER} C:${M}\r\n`;
    const c = parseConstraint(text);
    assert.equal(
      formatConstraint(c),
      `C:${M} C:${M2} S:${SIGNER} PROD:5 SVN:3 SEC:INSECURE SIM:${KEY_HASH}`,
    );
    assert.deepEqual(parseConstraint(formatConstraint(c)), c);
    assert.equal(c.allowInsecure, true);
    assert.equal(c.product, 5);
    assert.equal(c.minSvn, 3);
    assert.ok(Object.isFrozen(c));
  });

  test('formatConstraint refuses invalid objects', () => {
    const bad = { measurements: [], allowInsecure: false, simulationKeys: [] };
    assert.throws(() => formatConstraint(bad), ConstraintSyntaxError);
    const noProd = { ...bad, signer: new Uint8Array(32) };
    assert.throws(() => formatConstraint(noProd), /PROD/);
    // Fields of the wrong shape are a named error, not a TypeError (verifyEvidence re-validates
    // hand-built objects through formatConstraint).
    const m = [new Uint8Array(32)];
    const shapes: Record<string, unknown>[] = [
      { measurements: 'ab' },
      { measurements: [1] },
      { measurements: m, allowInsecure: true, simulationKeys: 5 },
      { measurements: m, apps: new Map([['a', 'zz']]) },
      { measurements: m, apps: new Map([['a', undefined]]) },
    ];
    for (const c of shapes) {
      assert.throws(
        () => formatConstraint(c as never),
        (e: unknown) =>
          e instanceof ConstraintSyntaxError && /array of byte strings/.test(e.message),
      );
    }
  });

  test('property: parse(format(parse(x))) is stable', () => {
    const hex32 = fc.uint8Array({ minLength: 32, maxLength: 32 }).map(hx);
    const arb = fc.record({
      cs: fc.uniqueArray(hex32, { maxLength: 3 }),
      s: fc.option(fc.tuple(hex32, fc.nat({ max: 2 ** 32 - 1 }))),
      svn: fc.option(fc.nat({ max: 2 ** 32 - 1 })),
      sims: fc.uniqueArray(hex32, { maxLength: 2 }),
      sec: fc.boolean(),
    });
    fc.assert(
      fc.property(arb, ({ cs, s, svn, sims, sec }) => {
        fc.pre(cs.length > 0 || s !== null);
        const parts = cs.map((c) => `C:${c}`);
        if (s !== null) parts.push(`S:${s[0]}`, `PROD:${s[1]}`);
        if (svn !== null) parts.push(`SVN:${svn}`);
        if (sec) parts.push('SEC:INSECURE', ...sims.map((k) => `SIM:${k}`));
        const c = parseConstraint(parts.reverse().join(' '));
        assert.equal(formatConstraint(parseConstraint(formatConstraint(c))), formatConstraint(c));
      }),
    );
  });
});

describe('matchConstraint: match and mismatch for every clause', () => {
  const code = `C:${M}`;
  const rows: [string, string, Partial<ConstraintFacts>, string | undefined, string?][] = [
    // name, constraint, changed facts, failing clause (undefined: matches), value seen
    ['C: matches', `${code} SEC:INSECURE`, {}, undefined],
    ['C: one of several matches', `C:${M2} ${code} SEC:INSECURE`, {}, undefined],
    ['C: mismatch', `C:${M2} SEC:INSECURE`, {}, `C:${M2}`, M],
    [
      'C: none of several',
      `C:${M2} C:${'cc'.repeat(32)} SEC:INSECURE`,
      {},
      `C:${M2} C:${'cc'.repeat(32)}`,
      M,
    ],
    ['S:+PROD: match', `S:${SIGNER} PROD:5 SEC:INSECURE`, {}, undefined],
    ['S: mismatch', `S:${M} PROD:5 SEC:INSECURE`, {}, `S:${M}`, SIGNER],
    ['PROD: mismatch', `S:${SIGNER} PROD:6 SEC:INSECURE`, {}, 'PROD:6', '5'],
    ['SVN: equal is enough', `${code} SVN:10 SEC:INSECURE`, {}, undefined],
    ['SVN: above', `${code} SVN:9 SEC:INSECURE`, {}, undefined],
    ['SVN: below', `${code} SVN:11 SEC:INSECURE`, {}, 'SVN:11', '10'],
    ['SIM: match', `${code} SEC:INSECURE SIM:${KEY_HASH}`, {}, undefined],
    ['SIM: mismatch', `${code} SEC:INSECURE SIM:${M2}`, {}, `SIM:${M2}`, KEY_HASH],
    [
      'SIM: does not apply to secure platforms',
      `${code} SEC:INSECURE SIM:${M2}`,
      { secure: true },
      undefined,
    ],
    ['SEC: secure platforms need no SEC:', code, { secure: true }, undefined],
    ['C: checked before S:', `C:${M2} S:${M} PROD:5 SEC:INSECURE`, {}, `C:${M2}`, M],
    ['S: checked before PROD:', `S:${M} PROD:6 SEC:INSECURE`, {}, `S:${M}`, SIGNER],
    ['PROD: checked before SVN:', `S:${SIGNER} PROD:6 SVN:99 SEC:INSECURE`, {}, 'PROD:6', '5'],
    ['SVN: checked before SIM:', `${code} SVN:99 SEC:INSECURE SIM:${M2}`, {}, 'SVN:99', '10'],
  ];
  for (const [name, text, changes, clause, seen] of rows) {
    test(name, () => {
      const facts = { ...FACTS, ...changes };
      if (clause === undefined) {
        matchConstraint(parseConstraint(text), facts);
        return;
      }
      assert.throws(
        () => matchConstraint(parseConstraint(text), facts),
        (e: unknown) =>
          e instanceof ConstraintMismatchError &&
          e.code === 'CONSTRAINT_MISMATCH' &&
          e.clause === clause &&
          e.seen === seen &&
          e.message.includes(clause) &&
          e.message.includes(seen as string),
      );
    });
  }

  test('SEC: an insecure platform without SEC:INSECURE is InsecurePlatformError', () => {
    assert.throws(() => matchConstraint(parseConstraint(code), FACTS), InsecurePlatformError);
  });
});

describe('APP: and SVC: clauses (checked by SCP, not by matchConstraint)', () => {
  const H = (h: string): Uint8Array => Buffer.from(h, 'hex');
  const C3 = 'cc'.repeat(32);

  test('parse: apps grouped by name with sorted code ids, service, canonical text', () => {
    const c = parseConstraint(
      `SVC:${C3.toUpperCase()} APP:zeta=${M2} APP:mail.v2=${M2} C:${M} APP:mail.v2=${M}`,
    );
    assert.deepEqual([...(c.apps?.keys() ?? [])], ['mail.v2', 'zeta']);
    assert.deepEqual(c.apps?.get('mail.v2')?.map(hx), [M, M2]);
    assert.deepEqual(c.apps?.get('zeta')?.map(hx), [M2]);
    assert.equal(hx(c.service as Uint8Array), C3);
    const canonical = `C:${M} APP:mail.v2=${M} APP:mail.v2=${M2} APP:zeta=${M2} SVC:${C3}`;
    assert.equal(formatConstraint(c), canonical);
    assert.deepEqual(parseConstraint(canonical), c);
    const plain = parseConstraint(`C:${M}`);
    assert.equal(plain.apps?.size, 0);
    assert.equal(plain.service, undefined);
  });

  test('a parsed constraint cannot be changed: its apps map refuses set, delete and clear', () => {
    const c = parseConstraint(`C:${M} APP:mail=${M}`);
    const apps = c.apps as Map<string, readonly Uint8Array[]>;
    assert.ok(apps instanceof Map);
    assert.throws(() => apps.set('evil', [H(M2)]), /read-only/);
    assert.throws(() => apps.delete('mail'), /read-only/);
    assert.throws(() => apps.clear(), /read-only/);
    assert.throws(() => (apps.get('mail') as Uint8Array[]).push(H(M2)), TypeError);
    assert.equal(formatConstraint(c), `C:${M} APP:mail=${M}`);
    assert.throws(() => checkAppClause(c, 'mail', H(M2)), /APP_CODE_MISMATCH|mail/);
  });

  test('matchConstraint ignores APP: and SVC: (they are not evidence facts)', () => {
    matchConstraint(parseConstraint(`C:${M} SEC:INSECURE APP:mail=${M2} SVC:${M2}`), FACTS);
  });

  test('checkServiceClause: match, mismatch names the clause, no clause admits any', () => {
    const c = parseConstraint(`C:${M} SVC:${C3}`);
    checkServiceClause(c, H(C3));
    assert.throws(
      () => checkServiceClause(c, H(M2)),
      (e: unknown) =>
        e instanceof ConstraintMismatchError &&
        e.code === 'CONSTRAINT_MISMATCH' &&
        e.clause === `SVC:${C3}` &&
        e.seen === M2,
    );
    checkServiceClause(parseConstraint(`C:${M}`), H(M2));
  });

  test('checkAppClause: any listed code id; another is APP_CODE_MISMATCH; unnamed apps free', () => {
    const c = parseConstraint(`C:${M} APP:mail=${M} APP:mail=${M2}`);
    checkAppClause(c, 'mail', H(M));
    checkAppClause(c, 'mail', H(M2));
    checkAppClause(c, 'other', H(C3));
    assert.throws(
      () => checkAppClause(c, 'mail', H(C3)),
      (e: unknown) =>
        e instanceof AppCodeMismatchError &&
        e.code === 'APP_CODE_MISMATCH' &&
        e.clause === `APP:mail=${M} APP:mail=${M2}` &&
        e.seen === C3 &&
        e.message.includes('"mail"'),
    );
  });

  test('formatConstraint validates hand-built apps and service', () => {
    const base = { measurements: [H(M)], allowInsecure: false, simulationKeys: [] };
    assert.equal(
      formatConstraint({ ...base, apps: new Map([['a', [H(M2)]]]), service: H(C3) }),
      `C:${M} APP:a=${M2} SVC:${C3}`,
    );
    assert.throws(() => formatConstraint({ ...base, service: new Uint8Array(3) }), /SVC:/);
    assert.throws(
      () => formatConstraint({ ...base, apps: new Map([['bad name', [H(M2)]]]) }),
      /APP:/,
    );
  });
});

test('clausesBeyondEvidence: APP: clauses in canonical order, then SVC: unless checked', () => {
  const a = 'aa'.repeat(32);
  const b = 'bb'.repeat(32);
  const s = 'cc'.repeat(32);
  const c = parseConstraint(`C:${'11'.repeat(32)} APP:zed=${b} APP:abc=${b} APP:abc=${a} SVC:${s}`);
  assert.deepEqual(clausesBeyondEvidence(c, { serviceChecked: false }), [
    `APP:abc=${a}`,
    `APP:abc=${b}`,
    `APP:zed=${b}`,
    `SVC:${s}`,
  ]);
  assert.equal(clausesBeyondEvidence(c, { serviceChecked: true }).length, 3);
  const plain = parseConstraint(`C:${'11'.repeat(32)}`);
  assert.deepEqual(clausesBeyondEvidence(plain, { serviceChecked: false }), []);
});

describe('acceptance edges (mutation round 13): whole values and exact app names', () => {
  const H = (h: string): Uint8Array => Buffer.from(h, 'hex');
  const lastByte = (h: string): string => `${h.slice(0, 62)}${h.slice(62) === '00' ? '01' : '00'}`;

  test('C:, SIM: and APP: match whole values: one differing in its last byte is refused', () => {
    const measurement = H(lastByte(M));
    assert.throws(
      () => matchConstraint(parseConstraint(`C:${M} SEC:INSECURE`), { ...FACTS, measurement }),
      ConstraintMismatchError,
    );
    const other = H(lastByte(KEY_HASH));
    const sim = parseConstraint(`C:${M} SEC:INSECURE SIM:${hx(other)}`);
    assert.throws(() => matchConstraint(sim, FACTS), ConstraintMismatchError);
    const app = parseConstraint(`C:${M} APP:mail=${M}`);
    assert.throws(() => checkAppClause(app, 'mail', H(lastByte(M))), AppCodeMismatchError);
  });

  test('SVC: matches the whole service identity: one differing in its last byte is refused', () => {
    const svc = 'cc'.repeat(32);
    const c = parseConstraint(`C:${M} SVC:${svc}`);
    assert.throws(() => checkServiceClause(c, H(lastByte(svc))), ConstraintMismatchError);
  });

  test('APP: names are exact, case included: APP:Mail restricts Mail', () => {
    const c = parseConstraint(`C:${M} APP:Mail=${M}`);
    checkAppClause(c, 'Mail', H(M));
    assert.throws(() => checkAppClause(c, 'Mail', H(M2)), AppCodeMismatchError);
  });
});
