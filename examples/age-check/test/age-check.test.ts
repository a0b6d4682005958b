/**
 * examples/age-check on the real runtime (SDK harness): a claim "over 18 as of D" comes only from
 * a credential of the compiled-in issuer showing 18 years on D; it verifies offline with the
 * app's public key (WebCrypto) and carries nothing else about the person. Each test names the
 * attack it rules out.
 */
import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import type { LocalApp } from '@cloister/sdk/harness';
import { loadExample, refusal } from '../../lib/load.js';
import { birthDateCredential, KIND, newIssuer, testIssuer } from '../../tools/credentials.js';

/** The node's clock in these tests: 2026-11-23, noon UTC. */
const NOW = Date.UTC(2026, 10, 23, 12);

async function verifyOffline(
  publicKeyHex: string,
  claim: string,
  signature: string,
): Promise<boolean> {
  const key = await crypto.subtle.importKey(
    'raw',
    Buffer.from(publicKeyHex, 'hex'),
    { name: 'ECDSA', namedCurve: 'P-256' },
    false,
    ['verify'],
  );
  return crypto.subtle.verify(
    { name: 'ECDSA', hash: 'SHA-256' },
    key,
    Buffer.from(signature, 'hex'),
    new TextEncoder().encode(claim),
  );
}

describe('examples/age-check', () => {
  let app: LocalApp;
  let appKey: string;
  const issuer = testIssuer();
  const adult = birthDateCredential(issuer, '2000-05-17');

  before(async () => {
    app = await loadExample('age-check', { now: () => NOW });
  });

  it('init creates the claim key once; publicKey returns it', async () => {
    assert.equal(await refusal(app.query('publicKey')), 'app:key_not_found');
    const first = (await app.transaction('init', null, { as: 'operator' })).result as {
      publicKey: string;
      created: boolean;
    };
    assert.equal(first.created, true);
    assert.match(first.publicKey, /^04[0-9a-f]{128}$/);
    // A second init (by anyone, the operator included) cannot replace the key.
    const again = (await app.transaction('init', null, { as: 'mallory' })).result as {
      publicKey: string;
      created: boolean;
    };
    assert.deepEqual(again, { publicKey: first.publicKey, created: false });
    appKey = (
      (await app.query('publicKey', null, { as: 'verifier' })).result as { publicKey: string }
    ).publicKey;
    assert.equal(appKey, first.publicKey);
  });

  it('issues "over 18 as of D", verifiable offline, holding nothing else about the person', async () => {
    const r = await app.query(
      'check',
      { ...adult, asOf: '2026-11-23', challenge: 'c0ffee' },
      { as: 'person' },
    );
    const { claim, signature } = r.result as { claim: string; signature: string };
    assert.deepEqual(Object.keys(r.result as object), ['claim', 'signature']);
    assert.equal(
      claim,
      JSON.stringify({ kind: KIND.over18, asOf: '2026-11-23', challenge: 'c0ffee' }),
    );
    assert.equal(await verifyOffline(appKey, claim, signature), true);
    // A claim edited to another date or challenge does not verify.
    assert.equal(
      await verifyOffline(appKey, claim.replace('2026-11-23', '2026-11-24'), signature),
      false,
    );
    assert.equal(await verifyOffline(appKey, claim.replace('c0ffee', 'c0ffef'), signature), false);
    // Nothing of the credential — birth date, id — is in the answer.
    const id = JSON.parse(adult.credential).id as string;
    for (const secret of ['2000', '05-17', id]) assert.ok(!r.resultText.includes(secret), secret);
    // Two people born years apart get the same claim text: it cannot single anyone out.
    const older = birthDateCredential(issuer, '1950-01-01');
    const r2 = await app.query(
      'check',
      { ...older, asOf: '2026-11-23', challenge: 'c0ffee' },
      { as: 'other' },
    );
    assert.equal((r2.result as { claim: string }).claim, claim);
  });

  it('counts 18 years to the day, and from 1 March for a 29 February birthday', async () => {
    const on = (birth: string, asOf: string) =>
      app.query('check', { ...birthDateCredential(issuer, birth), asOf });
    await on('2008-11-23', '2026-11-23');
    assert.equal(await refusal(on('2008-11-24', '2026-11-23')), 'app:not_over_18');
    assert.equal(await refusal(on('2008-02-29', '2026-02-28')), 'app:not_over_18');
    await on('2008-02-29', '2026-03-01');
  });

  it('a minor gets a refusal that does not repeat the birth date', async () => {
    const minor = birthDateCredential(issuer, '2010-06-01');
    try {
      await app.query('check', { ...minor, asOf: '2026-11-23' });
      assert.fail('a minor got a claim');
    } catch (e) {
      const err = e as { appCode?: string; message: string };
      assert.equal(err.appCode, 'not_over_18');
      assert.ok(!err.message.includes('2010'));
    }
  });

  it('refuses a date more than one day ahead of the node clock, but a past date is fine', async () => {
    await app.query('check', { ...adult, asOf: '2026-11-24' });
    assert.equal(
      await refusal(app.query('check', { ...adult, asOf: '2026-11-25' })),
      'app:date_in_future',
    );
    assert.equal(
      await refusal(app.query('check', { ...adult, asOf: '2999-01-01' })),
      'app:date_in_future',
    );
    await app.query('check', { ...adult, asOf: '2020-01-01' });
    assert.equal(
      await refusal(app.query('check', { ...adult, asOf: '2026-02-30' })),
      'app:bad_date',
    );
  });

  it("refuses credentials of any other issuer (the operator's) and edited ones", async () => {
    const forged = birthDateCredential(newIssuer(), '1970-01-01');
    assert.equal(
      await refusal(app.query('check', { ...forged, asOf: '2026-11-23' }, { as: 'operator' })),
      'app:bad_signature',
    );
    const minor = birthDateCredential(issuer, '2010-06-01');
    const edited = { ...minor, credential: minor.credential.replace('2010-06-01', '2000-06-01') };
    assert.equal(
      await refusal(app.query('check', { ...edited, asOf: '2026-11-23' })),
      'app:bad_signature',
    );
  });

  it('stores nothing: the check is a query, and no method lists or proves anything', async () => {
    assert.deepEqual(
      app.routes.map((r) => `${r.kind}:${r.name}`),
      ['transaction:init', 'query:publicKey', 'query:check'],
    );
    for (const m of ['history', 'list', 'prove', 'credentials']) {
      assert.equal(await refusal(app.query(m)), 'APP_METHOD_UNKNOWN');
    }
  });
});
