/**
 * Test app for the SDK's ledger, context, crypto, notify and fail wrappers
 * (packages/cli/test/app-sdk.test.ts), run on the real runtime.
 */
import {
  Context,
  Crypto,
  fail,
  fromHex,
  fromUtf8,
  Json,
  KeyKind,
  Ledger,
  notify,
  Table,
  toHex,
  utf8,
} from '@cloister/sdk';

const items = new Table('items');

@transaction
export function put(args: Json): void {
  items.set(args.getString('key'), args.getString('value'));
  notify(Json.obj().setString('put', args.getString('key')));
}

@transaction
export function del(args: Json): void {
  items.remove(args.getString('key'));
}

@query
export function read(args: Json): Json {
  const v = items.get(args.getString('key'));
  return v === null ? Json.null() : Json.str(v);
}

@query
export function history(args: Json): Json {
  const versions = items.history(args.getString('key'), <i32>args.getI64('limit', 10));
  const out = Json.arr();
  for (let i = 0; i < versions.length; i++) {
    const v = versions[i];
    const text = v.text();
    out.push(
      Json.obj()
        .setI64('index', <i64>v.index)
        .set('value', text === null ? Json.null() : Json.str(text)),
    );
  }
  return out;
}

/** Every entry, paging with `limit` per page. */
@query
export function listAll(args: Json): Json {
  const limit = <i32>args.getI64('limit', 2);
  const entries = Json.obj();
  let cursor: Uint8Array | null = null;
  let pages = 0;
  do {
    const page = items.list(cursor, limit);
    for (let i = 0; i < page.entries.length; i++) {
      entries.setString(page.entries[i].keyText(), page.entries[i].valueText());
    }
    cursor = page.cursor;
    pages++;
  } while (cursor !== null);
  return Json.obj().set('entries', entries).setI64('pages', pages);
}

/**
 * One page for a client that pages itself: the cursor travels as hex in JSON (`fromHex` of the
 * previous page's `cursor`); a cursor that is not hex is the app's error `bad_cursor`.
 */
@query
export function listPage(args: Json): Json {
  const given = args.getString('cursor', '');
  let cursor: Uint8Array | null = null;
  if (given.length > 0) {
    cursor = fromHex(given);
    if (cursor === null) return fail<Json>('bad_cursor', 'the cursor is not hex');
  }
  const page = items.list(cursor, <i32>args.getI64('limit', 2));
  const keys = Json.arr();
  for (let i = 0; i < page.entries.length; i++) keys.push(Json.str(page.entries[i].keyText()));
  const next = page.cursor;
  return Json.obj()
    .set('keys', keys)
    .set('cursor', next === null ? Json.null() : Json.str(toHex(next)));
}

/** `fromHex` on each of `texts`: the bytes as hex again, or null where it refused. */
@query
export function hexRoundTrip(args: Json): Json {
  const texts = args.get('texts');
  const out = Json.arr();
  if (texts === null) return out;
  for (let i = 0; i < texts.length; i++) {
    const b = fromHex((texts.at(i) as Json).asString());
    out.push(b === null ? Json.null() : Json.str(toHex(b)));
  }
  return out;
}

@query
export function prove(args: Json): Json {
  return Json.obj()
    .setString('proof', toHex(items.prove(args.getString('key'))))
    .setString('stateHash', toHex(Ledger.stateHash()));
}

function context(): Json {
  const id = Context.requestId();
  return Json.obj()
    .setBool('query', Context.isQuery())
    .setBool('transaction', Context.isTransaction())
    .setString('caller', Context.callerHex())
    .set('requestId', id === null ? Json.null() : Json.str(id))
    .setI64('index', Context.index())
    .setI64('time', Context.time());
}

@query
export function contextQuery(): Json {
  return context();
}

@transaction
export function contextTransaction(): Json {
  return context();
}

@transaction
export function createKeys(): Json {
  const created = Crypto.createKey(KeyKind.EcdsaP256, 'signer');
  const again = Crypto.createKey(KeyKind.EcdsaP256, 'signer');
  Crypto.createKey(KeyKind.AesGcm, 'box');
  return Json.obj().setBool('created', created).setBool('again', again);
}

@query
export function useKeys(args: Json): Json {
  const msg = utf8(args.getString('message'));
  const pub = Crypto.publicKey('signer');
  const sig = Crypto.sign('signer', msg);
  const sealed = Crypto.encrypt('box', msg, utf8('aad'));
  const opened = Crypto.decrypt('box', sealed, utf8('aad'));
  return Json.obj()
    .setString('publicKey', toHex(pub))
    .setString('signature', toHex(sig))
    .setBool('verifies', Crypto.verify(pub, msg, sig))
    .setBool('otherMessage', Crypto.verify(pub, utf8('other'), sig))
    .setI64('sealedLength', sealed.length)
    .set('opened', opened === null ? Json.null() : Json.str(fromUtf8(opened)))
    .setBool('wrongAad', Crypto.decrypt('box', sealed, utf8('x')) === null)
    .setString('sha256', toHex(Crypto.sha256Text(args.getString('message'))))
    .setI64('random', Crypto.randomBytes(16).length);
}

@query
export function missingKey(): Json {
  return Json.str(toHex(Crypto.publicKey('nope')));
}

@query
export function writeInQuery(): void {
  items.set('x', 'y');
}

@transaction
export function failAfterWrite(): void {
  items.set('ghost', 'boo');
  fail('refused', 'not today');
}
