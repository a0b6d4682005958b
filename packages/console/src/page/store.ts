/**
 * The page's own IndexedDB records: the user's transactions (database "cloister-console"), each
 * kept under the public key of the identity that made it so the page shows a user only their own.
 * (Identities live in the client SDK's database, which only the SDK opens: browserIdentityExists.)
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

/** Opens `name` at version 1 creating `stores`. */
function open(name: string, stores: readonly string[]): Promise<IDBDatabase> {
  const r = indexedDB.open(name, 1);
  r.onupgradeneeded = () => {
    for (const s of stores)
      if (!r.result.objectStoreNames.contains(s)) r.result.createObjectStore(s);
  };
  return done(r);
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
