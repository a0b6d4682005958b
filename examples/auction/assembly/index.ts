/**
 * A sealed-bid auction (examples/auction/README.md). A seller opens an auction; bids stay inside
 * the app until the seller closes it with a transaction (never by the clock); the close reveals
 * the winner's caller id and the price and deletes every bid. Price rule: first price — the
 * winner pays their own bid. (A second-price rule would publish the runner-up's bid, a losing
 * bid.) Ties go to the earlier bid.
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

/** The bids of one auction: bidder caller id → fixedHex(amount) ‖ fixedHex(sequence). */
function bidsOf(id: string): Table {
  return new Table('bids/' + id);
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

/** Places (or replaces) the caller's sealed bid of `amount`; the answer says only that it is. */
@transaction
export function bid(args: Json): Json {
  const id = nameArg(args, 'auction');
  const amount = amountArg(args, 'amount');
  const a = load(id);
  if (!a.getBool('open')) return fail<Json>('auction_closed', 'auction ' + id + ' is closed');
  const me = Context.callerHex();
  if (a.getString('seller') == me) return fail<Json>('seller_bid', 'the seller cannot bid');
  const seq = parseFixedHex(sequence.get(id));
  sequence.set(id, fixedHex(seq + 1));
  bidsOf(id).set(me, fixedHex(amount) + fixedHex(seq));
  return Json.obj().setBool('placed', true);
}

/** The caller's own bid in an open auction (null when none); nobody can ask for another's. */
@query
export function myBid(args: Json): Json {
  const id = nameArg(args, 'auction');
  load(id);
  const v = bidsOf(id).get(Context.callerHex());
  if (v === null) return Json.obj().set('amount', Json.null());
  return Json.obj().setI64('amount', <i64>parseFixedHex(v.substring(0, 16)));
}

/**
 * Closes the auction: only its seller, by this transaction. Picks the highest bid (the earliest
 * among equal ones), records winner and price, and removes every bid from the current state.
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
  const bids = bidsOf(id);
  let winner = '';
  let price: u64 = 0;
  let firstSeq: u64 = U64.MAX_VALUE;
  const bidders: string[] = [];
  let cursor: Uint8Array | null = null;
  for (;;) {
    const page = bids.list(cursor, 1000);
    for (let i = 0; i < page.entries.length; i++) {
      const e = page.entries[i];
      const v = e.valueText();
      const amount = parseFixedHex(v.substring(0, 16));
      const seq = parseFixedHex(v.substring(16, 32));
      bidders.push(e.keyText());
      if (amount > price || (amount == price && seq < firstSeq)) {
        winner = e.keyText();
        price = amount;
        firstSeq = seq;
      }
    }
    if (page.done) break;
    cursor = page.cursor;
  }
  for (let i = 0; i < bidders.length; i++) bids.remove(bidders[i]);
  a.setBool('open', false);
  if (winner.length > 0) {
    a.setString('winner', winner);
    a.setI64('price', <i64>price);
  }
  auctions.setJson(id, a);
  sequence.remove(id);
  return a;
}

/** The auction's public record: item, seller, open; after the close, the winner and the price. */
@query
export function auction(args: Json): Json {
  return load(nameArg(args, 'auction'));
}
