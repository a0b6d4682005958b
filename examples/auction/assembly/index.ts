/**
 * A sealed-bid auction (examples/auction/README.md). A seller opens an auction; bids stay inside
 * the app until the seller closes it with a transaction (never by the clock); the close reveals
 * the winner's caller id and the price. Price rule: first price — the winner pays their own bid.
 * (A second-price rule would publish the runner-up's bid, a losing bid.) Ties go to the earlier
 * bid. A bidder may raise their bid, never lower it, so the best bid is kept as bids arrive and
 * the close costs the same however many bids there are (a close that walked every bid could be
 * made to run out of fuel by a flood of bids from throwaway identities). After the close, `purge`
 * removes the bids from the current state, a batch per call.
 */
import { Context, fail, Json, Table } from '@cloister/sdk';
import { amountArg, fixedHex, nameArg, parseFixedHex } from '../../common/assembly/signed';

/**
 * auction id → { item, seller, open, winner, price }; winner and price are null until the close.
 * Invariant: while `open`, the record holds nothing that depends on a bid.
 */
const auctions = new Table('auctions');
/** auction id → fixedHex(number of bids placed so far): the tie-break order. */
const sequence = new Table('sequence');
/**
 * auction id → fixedHex(amount) ‖ fixedHex(sequence) ‖ bidder: the best bid so far (the highest,
 * the earliest among equal ones). Rewritten by every bid, changed or not: a write says nothing.
 */
const best = new Table('best');
/** auction id → fixedHex(sequence numbers purged so far), once closed. */
const purged = new Table('purged');
/** Bids `purge` removes per call: a bounded amount of work whatever the number of bids. */
const PURGE_BATCH: u64 = 256;

/** The bids of one auction: bidder caller id → fixedHex(amount) ‖ fixedHex(sequence). */
function bidsOf(id: string): Table {
  return new Table('bids/' + id);
}

/** The bids of one auction in the order placed: fixedHex(sequence) → bidder caller id. */
function orderOf(id: string): Table {
  return new Table('order/' + id);
}

/**
 * True when bid `v` (fixedHex(amount) ‖ fixedHex(sequence) …) beats `best` (the same form, or
 * null for none): higher, or as high and earlier. Fixed-width lowercase hex compares as numbers.
 */
function beats(v: string, best: string | null): bool {
  if (best === null) return true;
  const a = v.substring(0, 16);
  const b = best.substring(0, 16);
  return a > b || (a == b && v.substring(16, 32) < best.substring(16, 32));
}

function load(id: string): Json {
  const a = auctions.getJson(id);
  if (a === null) return fail<Json>('no_auction', 'no auction ' + id + ': check the id');
  return a;
}

/** Opens auction `auction` selling `item`; the caller is its seller, the only one who can close. */
@transaction
export function open(args: Json): Json {
  const id = nameArg(args, 'auction');
  const item = args.getString('item');
  if (item.length == 0 || item.length > 256) {
    return fail<Json>('bad_item', 'describe the item in 1–256 characters');
  }
  if (auctions.has(id)) {
    return fail<Json>('auction_exists', 'auction ' + id + ' exists: choose another id');
  }
  const record = Json.obj()
    .setString('item', item)
    .setString('seller', Context.callerHex())
    .setBool('open', true)
    .set('winner', Json.null())
    .set('price', Json.null());
  auctions.setJson(id, record);
  sequence.set(id, fixedHex(0));
  return record;
}

/**
 * Places the caller's sealed bid of `amount`, or raises it (a lower or equal new bid is refused:
 * the caller learns only about their own bid); the answer says only that it is placed.
 */
@transaction
export function bid(args: Json): Json {
  const id = nameArg(args, 'auction');
  const amount = amountArg(args, 'amount');
  const a = load(id);
  if (!a.getBool('open')) return fail<Json>('auction_closed', 'auction ' + id + ' is closed');
  const me = Context.callerHex();
  if (a.getString('seller') == me) return fail<Json>('seller_bid', 'the seller cannot bid');
  const bids = bidsOf(id);
  const mine = bids.get(me);
  if (mine !== null && amount <= parseFixedHex(mine.substring(0, 16))) {
    return fail<Json>('bid_not_higher', 'a new bid replaces yours only when it is higher');
  }
  const seq = parseFixedHex(sequence.get(id));
  sequence.set(id, fixedHex(seq + 1));
  bids.set(me, fixedHex(amount) + fixedHex(seq));
  orderOf(id).set(fixedHex(seq), me);
  // The best so far: kept when at least as high (it is earlier), else this one.
  const b = best.get(id);
  const placed = fixedHex(amount) + fixedHex(seq);
  best.set(id, beats(placed, b) ? placed + me : (b as string));
  return Json.obj().setBool('placed', true);
}

/** The caller's own bid in an open auction (null when none, or closed); nobody can ask another's. */
@query
export function myBid(args: Json): Json {
  const id = nameArg(args, 'auction');
  const a = load(id);
  const v = a.getBool('open') ? bidsOf(id).get(Context.callerHex()) : null;
  if (v === null) return Json.obj().set('amount', Json.null());
  return Json.obj().setI64('amount', <i64>parseFixedHex(v.substring(0, 16)));
}

/**
 * Closes the auction: only its seller, by this transaction. Records the best bid kept as bids
 * arrived as winner and price: the same work however many bids there are. The bids stay in the
 * current state, read by no method (`myBid` answers null once closed), until `purge` removes them.
 */
@transaction
export function close(args: Json): Json {
  const id = nameArg(args, 'auction');
  const a = load(id);
  if (a.getString('seller') != Context.callerHex()) {
    return fail<Json>('not_seller', 'only the seller of auction ' + id + ' can close it');
  }
  if (!a.getBool('open')) {
    return fail<Json>('auction_closed', 'auction ' + id + ' is closed already');
  }
  a.setBool('open', false);
  const b = best.get(id);
  if (b !== null) {
    a.setString('winner', b.substring(32));
    a.setI64('price', <i64>parseFixedHex(b.substring(0, 16)));
    best.remove(id);
  }
  auctions.setJson(id, a);
  purged.set(id, fixedHex(0));
  return a;
}

/**
 * Removes up to PURGE_BATCH bids of closed auction `auction` from the current state (anyone may
 * call it; it changes nothing but removes what no method reads). `{ done }` says whether bids
 * remain; the number of calls a purge takes says how many bids there were, to within 256.
 */
@transaction
export function purge(args: Json): Json {
  const id = nameArg(args, 'auction');
  const a = load(id);
  if (a.getBool('open')) return fail<Json>('auction_open', 'auction ' + id + ' is still open');
  const count = parseFixedHex(sequence.get(id));
  const from = parseFixedHex(purged.get(id));
  if (from >= count) return Json.obj().setBool('done', true);
  const to = from + PURGE_BATCH < count ? from + PURGE_BATCH : count;
  const bids = bidsOf(id);
  const order = orderOf(id);
  for (let s = from; s < to; s++) {
    const key = fixedHex(s);
    const bidder = order.get(key);
    if (bidder !== null) bids.remove(bidder); // a raised bid is listed twice: removed once
    order.remove(key);
  }
  purged.set(id, fixedHex(to));
  return Json.obj().setBool('done', to >= count);
}

/**
 * At an upgrade from the version that kept no best bid: for every open auction, the best bid and
 * the order of bids are built from the bids themselves (closed ones kept none). Once, in the
 * upgrade's transaction.
 */
@migrate
export function migrate(): void {
  let cursor: Uint8Array | null = null;
  do {
    const page = auctions.list(cursor, 1000);
    for (let i = 0; i < page.entries.length; i++) {
      const id = page.entries[i].keyText();
      const a = Json.parse(page.entries[i].valueText());
      if (a === null || !a.getBool('open') || best.has(id)) continue;
      let top = '';
      let bids: Uint8Array | null = null;
      do {
        const p = bidsOf(id).list(bids, 1000);
        for (let j = 0; j < p.entries.length; j++) {
          const bidder = p.entries[j].keyText();
          const v = p.entries[j].valueText(); // fixedHex(amount) ‖ fixedHex(sequence)
          orderOf(id).set(v.substring(16, 32), bidder);
          if (beats(v, top.length == 0 ? null : top)) top = v + bidder;
        }
        bids = p.cursor;
      } while (bids !== null);
      if (top.length > 0) best.set(id, top);
    }
    cursor = page.cursor;
  } while (cursor !== null);
}

/** The auction's public record: item, seller, open; after the close, the winner and the price. */
@query
export function auction(args: Json): Json {
  return load(nameArg(args, 'auction'));
}
