/**
 * The page's own IndexedDB records: whether an identity exists (the client SDK's "cloister"
 * database, same layout), and the user's transactions (database "cloister-console"), each kept
 * under the public key of the identity that made it so the page shows a user only their own.
 */

/** One of the user's transactions as the page keeps it (no app data beyond what they sent). */
export interface MyTransaction {
  /** Hex of the identity's public key: the owner, and the only identity it is shown to. */
  readonly owner: string;
  readonly txid: string;
  readonly app: string;
  readonly method: string;
  readonly result: string;
}

function done<T>(r: IDBRequest<T>): Promise<T> {
  return new Promise((resolve, reject) => {
    r.onsuccess = () => resolve(r.result);
    r.onerror = () => reject(r.error);
  });
}

/** Opens `name` at version 1 creating `stores` (the SDK's "cloister" db uses the same three). */
function open(name: string, stores: readonly string[]): Promise<IDBDatabase> {
  const r = indexedDB.open(name, 1);
  r.onupgradeneeded = () => {
    for (const s of stores)
      if (!r.result.objectStoreNames.contains(s)) r.result.createObjectStore(s);
  };
  return done(r);
}

/** True when the SDK's IndexedDB holds an identity named `name`. */
export async function identityExists(name: string): Promise<boolean> {
  const db = await open('cloister', ['identities', 'pins', 'roots']);
  try {
    const k = await done(db.transaction('identities').objectStore('identities').getKey(name));
    return k !== undefined;
  } finally {
    db.close();
  }
}

const TXS = 'cloister-console';

/** Records one of the user's transactions. */
export async function saveTransaction(t: MyTransaction): Promise<void> {
  const db = await open(TXS, ['txs']);
  try {
    await done(
      db.transaction('txs', 'readwrite').objectStore('txs').put(t, `${t.owner}/${t.txid}`),
    );
  } finally {
    db.close();
  }
}

/** The transactions of `owner` (hex public key) only, oldest first. */
export async function transactionsOf(owner: string): Promise<MyTransaction[]> {
  const db = await open(TXS, ['txs']);
  try {
    const range = IDBKeyRange.bound(`${owner}/`, `${owner}/\uffff`);
    const all = (await done(
      db.transaction('txs').objectStore('txs').getAll(range),
    )) as MyTransaction[];
    return all.filter((t) => t.owner === owner);
  } finally {
    db.close();
  }
}
