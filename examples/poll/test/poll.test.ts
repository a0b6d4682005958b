/**
 * examples/poll on the real runtime (SDK harness): only credentials of the poll's issuer vote,
 * each once (whoever presents it, however its signature is spelled); nothing about the votes
 * comes out before the creator's close; then only totals. Each test names the attack.
 */
import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import type { LocalApp } from '@cloister/sdk/harness';
import { loadExample, refusal } from '../../lib/load.js';
import { newIssuer, signText, voterCredential } from '../../tools/credentials.js';

/** The other valid ECDSA signature of the same text: (r, n − s). */
function malleate(signature: string): string {
  const n = BigInt('0xffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551');
  const s = BigInt(`0x${signature.slice(64)}`);
  return signature.slice(0, 64) + (n - s).toString(16).padStart(64, '0');
}

describe('examples/poll', () => {
  let app: LocalApp;
  const issuer = newIssuer();
  const creds = Array.from({ length: 5 }, () => voterCredential(issuer));

  before(async () => {
    app = await loadExample('poll');
    await app.transaction(
      'create',
      {
        poll: 'p1',
        question: 'Lunch?',
        options: ['pizza', 'salad', 'soup'],
        issuer: issuer.publicKeyHex,
      },
      { as: 'creator' },
    );
  });

  it("counts votes with the poll issuer's credentials; the answer says nothing of the choice", async () => {
    const choices = [0, 1, 1, 2];
    for (let i = 0; i < choices.length; i++) {
      const r = await app.transaction(
        'vote',
        { poll: 'p1', option: choices[i], ...creds[i] },
        { as: `voter${i}` },
      );
      assert.deepEqual(r.result, { voted: true });
    }
  });

  it('refuses a credential replayed by a second identity, re-signed malleably, or via a new request id', async () => {
    const c = creds[0]!;
    assert.equal(
      await refusal(
        app.transaction(
          'vote',
          { poll: 'p1', option: 2, ...c },
          { as: 'voter0', requestId: 'again' },
        ),
      ),
      'app:already_voted',
    );
    assert.equal(
      await refusal(app.transaction('vote', { poll: 'p1', option: 2, ...c }, { as: 'sybil' })),
      'app:already_voted',
    );
    const malleated = { credential: c.credential, signature: malleate(c.signature) };
    assert.equal(
      await refusal(
        app.transaction('vote', { poll: 'p1', option: 2, ...malleated }, { as: 'sybil2' }),
      ),
      'app:already_voted',
    );
    // The same credential id in a re-issued text still counts as voted.
    const id = JSON.parse(c.credential).id as string;
    assert.equal(
      await refusal(
        app.transaction(
          'vote',
          { poll: 'p1', option: 2, ...voterCredential(issuer, id) },
          { as: 'sybil3' },
        ),
      ),
      'app:already_voted',
    );
  });

  it('refuses credentials of another issuer, edited ones, and other kinds', async () => {
    const other = newIssuer();
    assert.equal(
      await refusal(
        app.transaction(
          'vote',
          { poll: 'p1', option: 0, ...voterCredential(other) },
          { as: 'operator' },
        ),
      ),
      'app:bad_signature',
    );
    const c = creds[4]!;
    const edited = {
      credential: c.credential.replace(/"id":"./, '"id":"0'),
      signature: c.signature,
    };
    if (edited.credential !== c.credential) {
      assert.equal(
        await refusal(app.transaction('vote', { poll: 'p1', option: 0, ...edited })),
        'app:bad_signature',
      );
    }
    const wrongKind = JSON.stringify({
      kind: 'cloister-example/salary/v1',
      id: '00112233445566778899',
      salary: 5,
    });
    assert.equal(
      await refusal(
        app.transaction('vote', {
          poll: 'p1',
          option: 0,
          credential: wrongKind,
          signature: signText(issuer, wrongKind),
        }),
      ),
      'app:wrong_credential',
    );
    assert.equal(
      await refusal(app.transaction('vote', { poll: 'p1', option: 3, ...c })),
      'app:bad_option',
    );
  });

  it('cannot be probed for who voted: a refused vote answers the same for a used and an unused credential', async () => {
    // creds[0] voted above, creds[4] never did: a vote that fails for another reason (a bad
    // option) must not say which (it answered already_voted for one and bad_option for the other,
    // and being refused, consumed nothing).
    const used = await refusal(app.transaction('vote', { poll: 'p1', option: 99, ...creds[0]! }));
    const fresh = await refusal(app.transaction('vote', { poll: 'p1', option: 99, ...creds[4]! }));
    assert.equal(used, 'app:bad_option');
    assert.equal(fresh, used);
  });

  it('reveals nothing while open: results refused, the record unchanged by votes', async () => {
    const before = (await app.query('poll', { poll: 'p1' }, { as: 'anyone' })).resultText;
    for (const who of ['creator', 'operator', 'voter1']) {
      assert.equal(
        await refusal(app.query('results', { poll: 'p1' }, { as: who })),
        'app:poll_open',
      );
    }
    await app.transaction('vote', { poll: 'p1', option: 0, ...creds[4] }, { as: 'voter4' });
    assert.equal((await app.query('poll', { poll: 'p1' }, { as: 'anyone' })).resultText, before);
    for (const m of ['history', 'tallies', 'list', 'prove', 'votes']) {
      assert.equal(await refusal(app.query(m, { poll: 'p1' })), 'APP_METHOD_UNKNOWN');
    }
  });

  it('refuses a close by anyone but the creator: the operator cannot close it early', async () => {
    for (const who of ['operator', 'voter0']) {
      assert.equal(
        await refusal(app.transaction('close', { poll: 'p1' }, { as: who })),
        'app:not_creator',
      );
    }
  });

  it('the creator closes it: only the totals come out, and no more votes count', async () => {
    const closed = await app.transaction('close', { poll: 'p1' }, { as: 'creator' });
    const expected = {
      question: 'Lunch?',
      options: ['pizza', 'salad', 'soup'],
      totals: [2, 2, 1],
      votes: 5,
    };
    assert.deepEqual(closed.result, expected);
    assert.deepEqual(
      (await app.query('results', { poll: 'p1' }, { as: 'anyone' })).result,
      expected,
    );
    const late = voterCredential(issuer);
    assert.equal(
      await refusal(app.transaction('vote', { poll: 'p1', option: 0, ...late })),
      'app:poll_closed',
    );
  });

  it('a credential votes once per poll, and its use in one poll is not linkable to another', async () => {
    await app.transaction(
      'create',
      { poll: 'p2', question: 'Tea?', options: ['yes', 'no'], issuer: issuer.publicKeyHex },
      { as: 'creator' },
    );
    await app.transaction('vote', { poll: 'p2', option: 1, ...creds[0] }, { as: 'voter0' });
    assert.equal(
      await refusal(
        app.transaction('vote', { poll: 'p2', option: 1, ...creds[0] }, { as: 'voter0' }),
      ),
      'app:already_voted',
    );
    assert.equal(
      await refusal(
        app.transaction('create', {
          poll: 'p3',
          question: 'x',
          options: ['a'],
          issuer: issuer.publicKeyHex,
        }),
      ),
      'app:bad_options',
    );
    assert.equal(
      await refusal(
        app.transaction('create', {
          poll: 'p3',
          question: 'x',
          options: ['a', 'b'],
          issuer: 'beef',
        }),
      ),
      'app:bad_public_key',
    );
  });
});
