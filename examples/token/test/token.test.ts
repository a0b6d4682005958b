/**
 * examples/token on the real runtime (SDK harness): mint only with the issuer's signature, each
 * authorization once; transfers exactly once per request id; balances readable only by their
 * owner. Each test names the attack it rules out.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { before, describe, it } from 'node:test';
import type { LocalApp } from '@cloister/sdk/harness';
import { loadExample, refusal } from '../../lib/load.js';
import { mintAuthorization, newIssuer, signText, testIssuer } from '../../tools/credentials.js';

describe('examples/token', () => {
  let app: LocalApp;
  const issuer = testIssuer();
  let alice: string;
  let bob: string;

  before(async () => {
    app = await loadExample('token');
    alice = ((await app.query('whoami', null, { as: 'alice' })).result as { callerId: string })
      .callerId;
    bob = ((await app.query('whoami', null, { as: 'bob' })).result as { callerId: string })
      .callerId;
  });

  const balanceOf = async (as: string): Promise<number> =>
    ((await app.query('balance', null, { as })).result as { balance: number }).balance;

  it('compiles in the test issuer of tools/credentials.ts (config.ts says so)', () => {
    const config = readFileSync(new URL('../assembly/config.ts', import.meta.url), 'utf8');
    assert.ok(config.includes(`'${issuer.publicKeyHex}'`));
    assert.match(config, /TEST ONLY/);
  });

  it('whoami is the caller id the app sees, different per identity', () => {
    assert.equal(alice, app.callerId('alice'));
    assert.notEqual(alice, bob);
  });

  it('mints what the issuer authorized, to the named recipient only', async () => {
    // The operator submits the authorization: it still credits alice, not the submitter.
    await app.transaction('mint', mintAuthorization(issuer, alice, 1000), { as: 'operator' });
    assert.equal(await balanceOf('alice'), 1000);
    assert.equal(await balanceOf('operator'), 0);
  });

  it('refuses a mint signed by anyone but the compiled-in issuer (the operator cannot mint)', async () => {
    const operator = newIssuer();
    const forged = mintAuthorization(operator, app.callerId('operator'), 1_000_000);
    assert.equal(
      await refusal(app.transaction('mint', forged, { as: 'operator' })),
      'app:bad_signature',
    );
    // The issuer's signature over one text does not cover an edited one.
    const real = mintAuthorization(issuer, alice, 5);
    const edited = { ...real, credential: real.credential.replace('"amount":5', '"amount":5000') };
    assert.equal(await refusal(app.transaction('mint', edited)), 'app:bad_signature');
    // Nor an edit re-signed with a key of the operator's choosing.
    const resigned = {
      credential: edited.credential,
      signature: signText(operator, edited.credential),
    };
    assert.equal(await refusal(app.transaction('mint', resigned)), 'app:bad_signature');
    assert.equal(await balanceOf('operator'), 0);
    assert.equal(await balanceOf('alice'), 1000);
  });

  it('refuses a replayed mint authorization, from any identity or request id', async () => {
    const auth = mintAuthorization(issuer, bob, 70);
    await app.transaction('mint', auth, { as: 'bob', requestId: 'm1' });
    assert.equal(
      await refusal(app.transaction('mint', auth, { as: 'bob', requestId: 'm2' })),
      'app:mint_used',
    );
    assert.equal(await refusal(app.transaction('mint', auth, { as: 'carol' })), 'app:mint_used');
    // The same nonce in a new text (another amount) counts as used too.
    const nonce = JSON.parse(auth.credential).nonce as string;
    const again = mintAuthorization(issuer, bob, 71, nonce);
    assert.equal(await refusal(app.transaction('mint', again)), 'app:mint_used');
    // A non-canonical spelling of a signed text is refused before it could count as new.
    const spaced = auth.credential.replace('{', '{ ');
    const respelled = { credential: spaced, signature: signText(issuer, spaced) };
    assert.equal(await refusal(app.transaction('mint', respelled)), 'app:bad_credential');
    assert.equal(await balanceOf('bob'), 70);
  });

  it('applies a retried transfer once: the platform answers the same request id with the first outcome', async () => {
    const first = await app.transaction('transfer', { to: bob, amount: 100 }, { requestId: 't1' });
    assert.equal(first.repeated, false);
    const retry = await app.transaction('transfer', { to: bob, amount: 100 }, { requestId: 't1' });
    assert.equal(retry.repeated, true);
    assert.deepEqual(retry.result, first.result);
    assert.equal(await balanceOf('alice'), 900);
    assert.equal(await balanceOf('bob'), 170);
    // A new request id is a new transfer.
    await app.transaction('transfer', { to: bob, amount: 100 }, { requestId: 't2' });
    assert.equal(await balanceOf('alice'), 800);
  });

  it('refuses overdrafts, bad amounts and bad recipients without writing anything', async () => {
    assert.equal(
      await refusal(app.transaction('transfer', { to: bob, amount: 801 })),
      'app:insufficient_funds',
    );
    assert.equal(
      await refusal(app.transaction('transfer', { to: bob, amount: -5 })),
      'app:bad_amount',
    );
    assert.equal(
      await refusal(app.transaction('transfer', { to: bob, amount: 1.5 })),
      'app:bad_amount',
    );
    assert.equal(
      await refusal(app.transaction('transfer', { to: bob, amount: '5' })),
      'app:bad_amount',
    );
    assert.equal(
      await refusal(app.transaction('transfer', { to: 'bob', amount: 5 })),
      'app:bad_caller_id',
    );
    assert.equal(
      await refusal(app.transaction('transfer', { to: alice, amount: 5 })),
      'app:self_transfer',
    );
    assert.equal(await balanceOf('alice'), 800);
  });

  it('a second identity learns nothing: balance reads only the caller, and no method names another', async () => {
    // Arguments naming someone else are ignored: the balance is always the caller's own.
    const asked = await app.query('balance', { of: alice, callerId: alice }, { as: 'mallory' });
    assert.deepEqual(asked.result, { balance: 0 });
    // The whole surface: no listing, history or proof method exists.
    assert.deepEqual(
      app.routes.map((r) => r.name),
      ['whoami', 'mint', 'transfer', 'balance'],
    );
    for (const m of ['history', 'balances', 'list', 'prove']) {
      assert.equal(
        await refusal(app.query(m, { of: alice }, { as: 'mallory' })),
        'APP_METHOD_UNKNOWN',
      );
    }
    // A transfer's result says nothing about either balance.
    const r = await app.transaction('transfer', { to: app.callerId('mallory'), amount: 1 });
    assert.deepEqual(r.result, { ok: true });
  });

  it('a balance near 2^53 cannot probe another: the supply is capped, so no transfer overflows', async () => {
    // A fresh app: the issuer mints almost everything to itself, a little to the victim.
    const t = await loadExample('token');
    const MAX = 2 ** 53 - 1;
    const id = (as: string) => t.callerId(as);
    await t.transaction('mint', mintAuthorization(issuer, id('victim'), 123_456));
    await t.transaction('mint', mintAuthorization(issuer, id('issuer'), MAX - 200_000));
    // "Is the victim's balance above 1000?" was a transfer of MAX − 1000 refused too_large when
    // it was, and free. Now the supply bounds every balance: the transfer is a real one.
    const probe = await t.transaction(
      'transfer',
      { to: id('victim'), amount: MAX - 200_000 },
      { as: 'issuer' },
    );
    assert.deepEqual(probe.result, { ok: true });
    assert.equal(
      ((await t.query('balance', null, { as: 'victim' })).result as { balance: number }).balance,
      MAX - 200_000 + 123_456,
    );
    // What cannot be minted is refused by the supply, whoever it would go to.
    assert.equal(
      await refusal(t.transaction('mint', mintAuthorization(issuer, id('other'), 200_000))),
      'app:supply_exhausted',
    );
    await t.transaction('mint', mintAuthorization(issuer, id('other'), 200_000 - 123_456));
  });
});
