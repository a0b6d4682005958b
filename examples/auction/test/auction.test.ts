/**
 * examples/auction on the real runtime (SDK harness): bids are sealed until the seller's close;
 * only the winner and the first price come out; nobody else can close, early or at all; no
 * query, listing, history or proof method exposes a losing bid. Each test names the attack.
 */
import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import type { LocalApp } from '@cloister/sdk/harness';
import { loadExample, refusal } from '../../lib/load.js';

describe('examples/auction', () => {
  let app: LocalApp;

  before(async () => {
    app = await loadExample('auction');
  });

  it('opens an auction whose record shows no bid information while open', async () => {
    const r = await app.transaction(
      'open',
      { auction: 'lot-1', item: 'a painting' },
      { as: 'seller' },
    );
    assert.deepEqual(r.result, {
      item: 'a painting',
      seller: app.callerId('seller'),
      open: true,
      winner: null,
      price: null,
    });
    const before = (await app.query('auction', { auction: 'lot-1' }, { as: 'anyone' })).resultText;
    for (const [who, amount] of [
      ['alice', 300],
      ['bob', 500],
      ['carol', 450],
    ] as const) {
      const b = await app.transaction('bid', { auction: 'lot-1', amount }, { as: who });
      assert.deepEqual(b.result, { placed: true });
    }
    // A query sequence around the bids: the public record did not change at all.
    const after = (await app.query('auction', { auction: 'lot-1' }, { as: 'anyone' })).resultText;
    assert.equal(after, before);
  });

  it('refuses a malformed auction id by name, in a sentence', async () => {
    const e = await app.query('auction', { auction: 'no spaces' }).then(
      () => assert.fail('a malformed id was accepted'),
      (e: unknown) => e as { code?: string; appCode?: string; appMessage?: string },
    );
    assert.equal(e.code, 'APP_ERROR');
    assert.equal(e.appCode, 'bad_auction_id');
    assert.equal(e.appMessage, 'an auction id is 1–64 characters of [A-Za-z0-9_-]');
  });

  it('lets each bidder read only their own bid', async () => {
    assert.deepEqual((await app.query('myBid', { auction: 'lot-1' }, { as: 'alice' })).result, {
      amount: 300,
    });
    // The seller, the operator or a second identity asking about someone else get their own (none).
    for (const who of ['seller', 'operator', 'mallory']) {
      const r = await app.query(
        'myBid',
        { auction: 'lot-1', bidder: app.callerId('bob') },
        { as: who },
      );
      assert.deepEqual(r.result, { amount: null });
    }
  });

  it('refuses a close by anyone but the seller: the operator cannot end it early', async () => {
    for (const who of ['operator', 'alice', 'bob']) {
      assert.equal(
        await refusal(app.transaction('close', { auction: 'lot-1' }, { as: who })),
        'app:not_seller',
      );
    }
    assert.equal(
      await refusal(app.transaction('bid', { auction: 'lot-1', amount: 1 }, { as: 'seller' })),
      'app:seller_bid',
    );
    // No clock closes it: it is still open, whatever the time.
    assert.equal(
      ((await app.query('auction', { auction: 'lot-1' })).result as { open: boolean }).open,
      true,
    );
  });

  it('the seller closes it: the winner and the first price, and nothing else', async () => {
    // Bob raises his bid; only the latest counts. Dave ties with it later and loses the tie.
    await app.transaction('bid', { auction: 'lot-1', amount: 520 }, { as: 'bob' });
    await app.transaction('bid', { auction: 'lot-1', amount: 520 }, { as: 'dave' });
    const closed = await app.transaction('close', { auction: 'lot-1' }, { as: 'seller' });
    const expected = {
      item: 'a painting',
      seller: app.callerId('seller'),
      open: false,
      winner: app.callerId('bob'),
      price: 520,
    };
    assert.deepEqual(closed.result, expected);
    assert.deepEqual(
      (await app.query('auction', { auction: 'lot-1' }, { as: 'anyone' })).result,
      expected,
    );
    // Losing bids are gone from the current state, even for their own bidders.
    for (const who of ['alice', 'bob', 'carol', 'dave']) {
      const r = await app.query('myBid', { auction: 'lot-1' }, { as: who });
      assert.deepEqual(r.result, { amount: null });
    }
    const text = JSON.stringify(closed);
    for (const losing of ['300', '450', '500']) assert.ok(!text.includes(losing), losing);
  });

  it('no history, listing or proof request reaches a bid', async () => {
    assert.deepEqual(
      app.routes.map((r) => `${r.kind}:${r.name}`),
      [
        'transaction:open',
        'transaction:bid',
        'query:myBid',
        'transaction:close',
        'transaction:purge',
        'query:auction',
      ],
    );
    for (const m of ['history', 'bids', 'list', 'prove', 'proof']) {
      assert.equal(await refusal(app.query(m, { auction: 'lot-1' })), 'APP_METHOD_UNKNOWN');
    }
    assert.equal(
      await refusal(app.transaction('close', { auction: 'lot-1' }, { as: 'seller' })),
      'app:auction_closed',
    );
    assert.equal(
      await refusal(app.transaction('bid', { auction: 'lot-1', amount: 900 }, { as: 'eve' })),
      'app:auction_closed',
    );
  });

  it('an auction without bids closes with no winner', async () => {
    await app.transaction('open', { auction: 'lot-2', item: 'a chair' }, { as: 'seller' });
    assert.equal(
      await refusal(app.transaction('open', { auction: 'lot-2', item: 'x' }, { as: 'mallory' })),
      'app:auction_exists',
    );
    const r = await app.transaction('close', { auction: 'lot-2' }, { as: 'seller' });
    assert.deepEqual(r.result, {
      item: 'a chair',
      seller: app.callerId('seller'),
      open: false,
      winner: null,
      price: null,
    });
  });

  it('a bid can be raised, never lowered (the best bid is kept as bids arrive)', async () => {
    await app.transaction('open', { auction: 'lot-5', item: 'a clock' }, { as: 'seller' });
    await app.transaction('bid', { auction: 'lot-5', amount: 40 }, { as: 'alice' });
    for (const amount of [40, 39]) {
      assert.equal(
        await refusal(app.transaction('bid', { auction: 'lot-5', amount }, { as: 'alice' })),
        'app:bid_not_higher',
      );
    }
    await app.transaction('bid', { auction: 'lot-5', amount: 41 }, { as: 'alice' });
    assert.deepEqual((await app.query('myBid', { auction: 'lot-5' }, { as: 'alice' })).result, {
      amount: 41,
    });
  });

  it('a flood of bids cannot stop the close: its cost does not grow; purge clears them in batches', async () => {
    const a = await loadExample('auction');
    await a.transaction('open', { auction: 'big', item: 'a boat' }, { as: 'seller' });
    const small = await a.transaction('bid', { auction: 'big', amount: 5 }, { as: 'early' });
    assert.deepEqual(small.result, { placed: true });
    for (let i = 0; i < 600; i++) {
      await a.transaction('bid', { auction: 'big', amount: 1 }, { as: `sybil${i}` });
    }
    await a.transaction('bid', { auction: 'big', amount: 5 }, { as: 'late' }); // a tie: later
    // The close reads the kept best bid: a fuel budget far below a walk over 602 bids is enough.
    const closed = await a.transaction(
      'close',
      { auction: 'big' },
      { as: 'seller', fuel: 2_000_000 },
    );
    const r = closed.result as { winner: string; price: number };
    assert.equal(r.winner, a.callerId('early'));
    assert.equal(r.price, 5);
    // Purge: anyone, 256 bids a call, then done; bids are gone for their bidders too. A batch
    // costs about 41 M fuel (160 K a bid: 80 K of it the two removed keys' share of the commit,
    // since 2026-11-25; 20.5 M before): a budget of 50 M, half the default 100 M a call, holds it
    // whatever the number of bids.
    const calls: boolean[] = [];
    for (let i = 0; i < 5; i++) {
      const p = await a.transaction(
        'purge',
        { auction: 'big' },
        { as: 'anyone', fuel: 50_000_000 },
      );
      calls.push((p.result as { done: boolean }).done);
    }
    assert.deepEqual(calls, [false, false, true, true, true]);
    assert.deepEqual((await a.query('myBid', { auction: 'big' }, { as: 'early' })).result, {
      amount: null,
    });
    // Before a close there is nothing to purge.
    await a.transaction('open', { auction: 'later', item: 'x' }, { as: 'seller' });
    assert.equal(await refusal(a.transaction('purge', { auction: 'later' })), 'app:auction_open');
  });

  it('bids in one auction never mix with another', async () => {
    await app.transaction('open', { auction: 'lot-3', item: 'a lamp' }, { as: 'seller2' });
    await app.transaction('open', { auction: 'lot-4', item: 'a rug' }, { as: 'seller2' });
    await app.transaction('bid', { auction: 'lot-3', amount: 10 }, { as: 'alice' });
    await app.transaction('bid', { auction: 'lot-4', amount: 99 }, { as: 'bob' });
    const r = (await app.transaction('close', { auction: 'lot-3' }, { as: 'seller2' })).result as {
      winner: string;
      price: number;
    };
    assert.equal(r.winner, app.callerId('alice'));
    assert.equal(r.price, 10);
    assert.deepEqual((await app.query('myBid', { auction: 'lot-4' }, { as: 'bob' })).result, {
      amount: 99,
    });
  });
});
