/**
 * examples/salary-benchmark on the real runtime (SDK harness): nothing comes out of an open
 * round; a close by its owner releases count, mean and median over at least k contributors, or
 * nothing; a credential contributes once, to one round, so no sequence of queries or rounds
 * differences down to one contributor. Each test names the attack.
 */
import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import type { LocalApp } from '@cloister/sdk/harness';
import { loadExample, refusal } from '../../lib/load.js';
import { newIssuer, type Signed, salaryCredential, testIssuer } from '../../tools/credentials.js';

describe('examples/salary-benchmark', () => {
  let app: LocalApp;
  const issuer = testIssuer();

  before(async () => {
    app = await loadExample('salary-benchmark');
  });

  const open = (round: string, k: number, as = 'owner') =>
    app.transaction('open', { round, k }, { as });
  const contribute = (round: string, c: Signed, as: string) =>
    app.transaction('contribute', { round, ...c }, { as });
  const view = async (round: string, as = 'anyone'): Promise<string> =>
    (await app.query('round', { round }, { as })).resultText;

  it('refuses a threshold below 5', async () => {
    assert.equal(await refusal(open('tiny', 4)), 'app:bad_k');
    assert.equal(await refusal(open('tiny', 1)), 'app:bad_k');
  });

  it('a query sequence during an open round reveals nothing: the record never changes', async () => {
    await open('q1', 5);
    const seen = [await view('q1')];
    const salaries = [50_000, 61_000, 58_000, 72_000, 49_000, 90_000];
    for (let i = 0; i < salaries.length; i++) {
      await contribute('q1', salaryCredential(issuer, salaries[i]!), `member${i}`);
      // After every contribution, as anyone — the owner, the operator, a contributor.
      for (const who of ['owner', 'operator', `member${i}`]) seen.push(await view('q1', who));
    }
    assert.equal(new Set(seen).size, 1);
    assert.deepEqual(JSON.parse(seen[0]!).result, null);
    for (const m of ['aggregate', 'mean', 'history', 'list', 'prove', 'query']) {
      assert.equal(
        await refusal(app.query(m, { round: 'q1', filter: { member: 'member0' } })),
        'APP_METHOD_UNKNOWN',
      );
    }
  });

  it('refuses a close by anyone but the owner: the operator cannot release early', async () => {
    for (const who of ['operator', 'member0']) {
      assert.equal(
        await refusal(app.transaction('close', { round: 'q1' }, { as: who })),
        'app:not_owner',
      );
    }
  });

  it("the owner's close releases count, mean and median over at least k, and nothing per person", async () => {
    const r = (await app.transaction('close', { round: 'q1' }, { as: 'owner' })).result as {
      result: unknown;
    };
    // 49000 50000 58000 61000 72000 90000: mean 63333 (floor), median (58000 + 61000) / 2.
    assert.deepEqual(r.result, { released: true, count: 6, mean: 63_333, median: 59_500 });
    assert.deepEqual(JSON.parse(await view('q1')).result, r.result);
    assert.equal(
      await refusal(contribute('q1', salaryCredential(issuer, 1), 'late')),
      'app:round_closed',
    );
    assert.equal(
      await refusal(app.transaction('close', { round: 'q1' }, { as: 'owner' })),
      'app:round_closed',
    );
  });

  it('a round with fewer than k contributors closes without releasing anything', async () => {
    await open('small', 5);
    for (let i = 0; i < 4; i++)
      await contribute('small', salaryCredential(issuer, 40_000 + i), `m${i}`);
    const r = (await app.transaction('close', { round: 'small' }, { as: 'owner' })).result as {
      result: unknown;
    };
    assert.deepEqual(r.result, { released: false });
  });

  it('differencing fails: a credential cannot contribute twice, to this or a later round', async () => {
    // The attack: rounds A = {x1..x5} and B = {x1..x5, target} would give
    // target = 6·mean(B) − 5·mean(A).
    await open('A', 5);
    await open('B', 5);
    const five = Array.from({ length: 5 }, (_, i) => salaryCredential(issuer, 50_000 + i));
    for (let i = 0; i < 5; i++) await contribute('A', five[i]!, `colluder${i}`);
    for (let i = 0; i < 5; i++) {
      assert.equal(
        await refusal(contribute('B', five[i]!, `colluder${i}`)),
        'app:already_contributed',
      );
      // Nor under a second identity, in the same round.
      assert.equal(
        await refusal(contribute('A', five[i]!, `sybil${i}`)),
        'app:already_contributed',
      );
    }
    await contribute('B', salaryCredential(issuer, 123_456), 'target');
    await app.transaction('close', { round: 'A' }, { as: 'owner' });
    const b = (await app.transaction('close', { round: 'B' }, { as: 'owner' })).result as {
      result: unknown;
    };
    // B had one contributor: nothing about the target comes out.
    assert.deepEqual(b.result, { released: false });
  });

  it('refuses credentials of any other issuer, even one the owner names, and edited ones', async () => {
    // The sybil attack: an owner who could pick the issuer would sign k − 1 salaries of their
    // own and read the last one off the mean.
    const other = newIssuer();
    const r = await app.transaction(
      'open',
      { round: 'C', k: 5, issuer: other.publicKeyHex },
      { as: 'owner' },
    );
    assert.equal((r.result as { issuer: string }).issuer, issuer.publicKeyHex);
    for (let i = 0; i < 4; i++) {
      assert.equal(
        await refusal(contribute('C', salaryCredential(other, 1), 'owner')),
        'app:bad_signature',
      );
    }
    assert.equal(
      await refusal(contribute('C', salaryCredential(other, 1_000_000), 'operator')),
      'app:bad_signature',
    );
    const c = salaryCredential(issuer, 50_000);
    const edited = { ...c, credential: c.credential.replace('50000', '950000') };
    assert.equal(await refusal(contribute('C', edited, 'member')), 'app:bad_signature');
  });

  it('a round takes at most 1,000 contributions, so its close always fits the fuel', async () => {
    await open('full', 5);
    for (let i = 0; i < 1000; i++) {
      await contribute('full', salaryCredential(issuer, 40_000 + i), `m${i}`);
    }
    assert.equal(
      await refusal(contribute('full', salaryCredential(issuer, 1), 'late')),
      'app:round_full',
    );
    const closed = (await app.transaction('close', { round: 'full' }, { as: 'owner' })).result as {
      result: { released: boolean; count: number };
    };
    assert.deepEqual([closed.result.released, closed.result.count], [true, 1000]);
  });
});
