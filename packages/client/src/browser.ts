/**
 * @cloister/client/browser: the client for browsers — the global WebSocket as transport, an
 * identity whose private key is a non-extractable CryptoKey kept in IndexedDB (script on the page
 * can use it but never read it), and pins and signed roots in IndexedDB. No Node built-in.
 */
import {
  CloisterError,
  fromHex,
  MAX_FRAME,
  type SignedRoot,
  storedRootChanged,
  toHex,
} from '@cloister/core';
import { claimsSaltMessage } from './app.js';
import { type Client, type ConnectOptions, connect as connectWith } from './client.js';
import { NetworkError } from './errors.js';
import { identityOf } from './identity.js';
import {
  type ClientState,
  type Identity,
  pinChanged,
  pinIs,
  rootIs,
  type Socket,
  type Transport,
} from './ports.js';

export * from './index.js';

/** A Transport over the global WebSocket (binary frames only; frames above MAX_FRAME refused). */
export function webSocketTransport(): Transport {
  return (url) =>
    new Promise<Socket>((resolve, reject) => {
      const ws = new WebSocket(url);
      ws.binaryType = 'arraybuffer';
      let open = false;
      const socket: Socket = {
        send(frame) {
          if (ws.readyState === WebSocket.OPEN) ws.send(new Uint8Array(frame));
        },
        close() {
          ws.close();
        },
        onmessage: undefined,
        onclose: undefined,
      };
      ws.onopen = () => {
        open = true;
        resolve(socket);
      };
      ws.onerror = () => {
        if (!open) reject(new NetworkError(`could not open a WebSocket to ${url}`));
      };
      ws.onmessage = (ev: MessageEvent) => {
        if (!(ev.data instanceof ArrayBuffer) || ev.data.byteLength > MAX_FRAME) {
          // 4003: 1003 (unsupported data) in the range a page may send; WebSocket.close throws
          // InvalidAccessError for any code but 1000 and 3000–4999, so 1003 never closed it.
          ws.close(4003, 'SCP frames are binary and at most MAX_FRAME bytes');
          return;
        }
        socket.onmessage?.(new Uint8Array(ev.data));
      };
      ws.onclose = (ev: CloseEvent) => {
        if (!open) reject(new NetworkError(`could not open a WebSocket to ${url} (${ev.code})`));
        socket.onclose?.(`${ev.code}${ev.reason ? ` ${ev.reason}` : ''}`);
      };
    });
}

/** connect() with the global WebSocket unless another transport is given. */
export function connect(
  url: string,
  options: Omit<ConnectOptions, 'transport'> & { readonly transport?: Transport },
): Promise<Client> {
  // connectWith names what is missing; without options it has nothing to spread.
  if (typeof options !== 'object' || options === null) return connectWith(url, options);
  return connectWith(url, { ...options, transport: options.transport ?? webSocketTransport() });
}

/**
 * Object stores of the database. Version 2 added `claimKeys`; the upgrade creates whatever store
 * is missing, so a version-1 database keeps its identities, pins and roots.
 */
const STORES = ['identities', 'pins', 'roots', 'claimKeys'] as const;
const DB_VERSION = 2;

function done<T>(r: IDBRequest<T>): Promise<T> {
  return new Promise((resolve, reject) => {
    r.onsuccess = () => resolve(r.result);
    r.onerror = () => reject(r.error);
  });
}

function openDb(name: string): Promise<IDBDatabase> {
  const r = indexedDB.open(name, DB_VERSION);
  r.onupgradeneeded = () => {
    for (const s of STORES)
      if (!r.result.objectStoreNames.contains(s)) r.result.createObjectStore(s);
  };
  return done(r);
}

async function get<T>(db: string, store: string, key: string): Promise<T | undefined> {
  const d = await openDb(db);
  try {
    return (await done(d.transaction(store).objectStore(store).get(key))) as T | undefined;
  } finally {
    d.close();
  }
}

/**
 * Puts `value` under `key` only if `keep(current)` holds for the value stored there, read in the
 * same readwrite transaction (IndexedDB runs them one at a time per store: a compare-and-set).
 * False when it did not hold (nothing written).
 */
async function putIf(
  db: string,
  store: string,
  key: string,
  value: unknown,
  keep: (current: unknown) => boolean,
): Promise<boolean> {
  const d = await openDb(db);
  try {
    return await new Promise<boolean>((resolve, reject) => {
      const tx = d.transaction(store, 'readwrite');
      const os = tx.objectStore(store);
      let wrote = false;
      const read = os.get(key);
      read.onsuccess = () => {
        if (!keep(read.result)) return;
        wrote = true;
        os.put(value, key);
      };
      tx.oncomplete = () => resolve(wrote);
      tx.onerror = () => reject(tx.error);
      tx.onabort = () => reject(tx.error);
    });
  } finally {
    d.close();
  }
}

/**
 * The identity named `name` in IndexedDB database `db`, created on first use: a P-256 key pair
 * generated non-extractable, stored as CryptoKeys (structured clone keeps them non-extractable).
 */
export async function browserIdentity(name = 'default', db = 'cloister'): Promise<Identity> {
  const found = await get<CryptoKeyPair>(db, 'identities', name);
  if (found !== undefined) return identityOf(found);
  const pair = await crypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, false, [
    'sign',
    'verify',
  ]);
  // Another tab may have created it meanwhile: add() fails then, and its key is used instead.
  const d = await openDb(db);
  try {
    await done(d.transaction('identities', 'readwrite').objectStore('identities').add(pair, name));
  } catch {
    const other = await get<CryptoKeyPair>(db, 'identities', name);
    if (other !== undefined) return identityOf(other);
    throw new CloisterError(
      'STORE',
      `cannot store the identity in IndexedDB database ${db}: allow this site to use storage`,
    );
  } finally {
    d.close();
  }
  return identityOf(pair);
}

/**
 * True when IndexedDB database `db` holds an identity named `name`; creates none. (Pages ask this
 * instead of opening the database themselves: its layout and version are this adapter's.)
 */
export async function browserIdentityExists(name = 'default', db = 'cloister'): Promise<boolean> {
  const d = await openDb(db);
  try {
    return (
      (await done(d.transaction('identities').objectStore('identities').getKey(name))) !== undefined
    );
  } finally {
    d.close();
  }
}

/** The part of the Web Locks API (`navigator.locks`) the state uses. */
export interface WebLocks {
  request<T>(name: string, callback: () => Promise<T>): Promise<T>;
}

/**
 * ClientState in IndexedDB database `db`: pins by URL, signed roots by service identity. Each
 * put writes one record (no read-modify-write of the others). Its `lock` is the Web Locks API
 * lock `cloister-client-state:<db>`, shared by every tab and worker of the origin, so two tabs
 * cannot both take first use of a pin or put an older signed root back; where the API is missing
 * (an insecure context), the state has no `lock` and only this page's calls are ordered.
 */
export function indexedDbState(
  db = 'cloister',
  locks: WebLocks | undefined = (globalThis as { navigator?: { locks?: WebLocks } }).navigator
    ?.locks,
): ClientState {
  const name = `cloister-client-state:${db}`;
  return {
    ...(locks ? { lock: <T>(f: () => Promise<T>) => locks.request(name, f) } : {}),
    pins: {
      async get(url) {
        const hex = await get<string>(db, 'pins', url);
        return hex === undefined ? undefined : fromHex(hex, 'a stored pin');
      },
      async put(url, serviceIdentity, previous) {
        const keep = (cur: unknown) => pinIs(typeof cur === 'string' ? cur : undefined, previous);
        if (!(await putIf(db, 'pins', url, toHex(serviceIdentity), keep))) throw pinChanged(url);
      },
    },
    roots: {
      async get(service): Promise<SignedRoot | undefined> {
        const r = await get<{ size: number; root: string }>(db, 'roots', toHex(service));
        if (r === undefined) return undefined;
        return { service: service.slice(), size: r.size, root: fromHex(r.root, 'a stored root') };
      },
      async put(r, previous) {
        const keep = (cur: unknown) =>
          rootIs(r.service, cur as { size: number; root: string } | undefined, previous);
        const value = { size: r.size, root: toHex(r.root) };
        if (!(await putIf(db, 'roots', toHex(r.service), value, keep))) throw storedRootChanged();
      },
    },
  };
}

/**
 * The claims salt of request `requestId` to `app` of service `serviceIdentity`, for the identity
 * named `name` in IndexedDB database `db`: HMAC-SHA256(k, u16be(|service|) ‖ service ‖
 * u16be(|app|) ‖ app ‖ requestId), the input of the Node entry's claimsSaltFor. The key `k` is
 * not derived from the identity's private key (a non-extractable CryptoKey cannot be) but is an
 * HMAC key of its own, generated non-extractable on first use and kept beside the identity
 * (store `claimKeys`, same name). So a retry of the same request after a reload, or from another
 * tab of the same origin, uses the salt of the first attempt and can check the receipt's claims
 * (pass it as `transact(…, { requestId, salt })`), while the salt stays secret to this origin
 * and differs per service and app. Clearing the site's storage loses the key with the identity.
 */
export async function claimsSaltFor(
  name: string,
  serviceIdentity: Uint8Array,
  app: string,
  requestId: string,
  db = 'cloister',
): Promise<Uint8Array> {
  const input = claimsSaltMessage(serviceIdentity, app, requestId);
  const key = await claimKey(name, db);
  return new Uint8Array(await crypto.subtle.sign('HMAC', key, input));
}

/** The claims-salt key of identity `name`, created non-extractable on first use. */
async function claimKey(name: string, db: string): Promise<CryptoKey> {
  const found = await get<CryptoKey>(db, 'claimKeys', name);
  if (found !== undefined) return found;
  const key = await crypto.subtle.generateKey(
    { name: 'HMAC', hash: 'SHA-256', length: 256 },
    false,
    ['sign'],
  );
  // Another tab may have created it meanwhile: add() fails then, and its key is used instead.
  const d = await openDb(db);
  try {
    await done(d.transaction('claimKeys', 'readwrite').objectStore('claimKeys').add(key, name));
  } catch {
    const other = await get<CryptoKey>(db, 'claimKeys', name);
    if (other !== undefined) return other;
    throw new CloisterError(
      'STORE',
      `cannot store the claims-salt key in IndexedDB database ${db}: allow this site to use storage`,
    );
  } finally {
    d.close();
  }
  return key;
}
