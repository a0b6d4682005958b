/// <reference types="node" />
/**
 * Test kit of the ledger engine: the host's stores (loaded at run time: enclave code may not
 * import host code, and this package's type check does not include it), a fake root seal
 * (AES-256-GCM under a fixed test key), a store dump and a Map-of-Maps model.
 */
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import type { LedgerSecret } from '../src/ledger/crypto.js';
import type { LedgerEngineOptions, LedgerStore, RootSeal } from '../src/ledger/ledger/index.js';

export interface TestStore extends LedgerStore {
  write(
    batch: readonly (
      | { type: 'put'; key: Uint8Array; value: Uint8Array }
      | { type: 'del'; key: Uint8Array }
    )[],
    options: { readonly sync: boolean },
  ): Promise<void>;
  iterate(): AsyncIterable<{ key: Uint8Array; value: Uint8Array }>;
  close(): Promise<void>;
}

export interface FaultyTestStore extends TestStore {
  powerCut(options?: { keep?: 'none' | 'prefix' }): Promise<FaultyTestStore>;
}

interface HostStores {
  createMemoryStore(): TestStore;
  createFaultyStore(
    inner: TestStore,
    options?: { seed?: number; writeFailureRate?: number },
  ): FaultyTestStore;
}

const HOST_STORE = '../../host/src/store/index.js';

/** The host's store module (packages/host/src/store), imported at run time. */
export async function hostStores(): Promise<HostStores> {
  return (await import(HOST_STORE)) as HostStores;
}

const SEAL_KEY = new Uint8Array(32).fill(0x5e);

/** AES-256-GCM stand-in for the platform sealing of issue 2: nonce(12) ‖ ciphertext ‖ tag(16). */
export const fakeSeal: RootSeal = {
  seal(plaintext) {
    const nonce = randomBytes(12);
    const c = createCipheriv('aes-256-gcm', SEAL_KEY, nonce);
    return new Uint8Array(Buffer.concat([nonce, c.update(plaintext), c.final(), c.getAuthTag()]));
  },
  open(sealed) {
    const d = createDecipheriv('aes-256-gcm', SEAL_KEY, sealed.subarray(0, 12));
    d.setAuthTag(sealed.subarray(sealed.length - 16));
    return new Uint8Array(
      Buffer.concat([d.update(sealed.subarray(12, sealed.length - 16)), d.final()]),
    );
  },
};

export const SECRET: LedgerSecret = { generation: 0, secret: new Uint8Array(32).fill(7) };

export function options(
  store: LedgerStore,
  extra: Partial<LedgerEngineOptions> = {},
): LedgerEngineOptions {
  return { store, secret: SECRET, rootSeal: fakeSeal, cacheBytes: 1 << 20, ...extra };
}

export const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');
export const unhex = (s: string): Uint8Array => new Uint8Array(Buffer.from(s, 'hex'));
export const te = (s: string): Uint8Array => new TextEncoder().encode(s);

/** Every entry of a store: key hex → value hex. */
export async function dump(store: TestStore): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for await (const e of store.iterate()) out.set(hex(e.key), hex(e.value));
  return out;
}

/** A memory store holding exactly `entries`. */
export async function storeOf(entries: ReadonlyMap<string, string>): Promise<TestStore> {
  const s = (await hostStores()).createMemoryStore();
  const batch = [...entries].map(([k, v]) => ({
    type: 'put' as const,
    key: unhex(k),
    value: unhex(v),
  }));
  await s.write(batch, { sync: true });
  return s;
}

/** Model: ledger → table → key hex → value hex (live values only). */
export type Model = Map<string, Map<string, Map<string, string>>>;

export function cloneModel(m: Model): Model {
  return new Map([...m].map(([l, ts]) => [l, new Map([...ts].map(([t, ks]) => [t, new Map(ks)]))]));
}

export function modelSet(
  m: Model,
  ledger: string,
  table: string,
  key: string,
  value?: string,
): void {
  let ts = m.get(ledger);
  if (!ts) {
    ts = new Map();
    m.set(ledger, ts);
  }
  let ks = ts.get(table);
  if (!ks) {
    ks = new Map();
    ts.set(table, ks);
  }
  if (value === undefined) ks.delete(key);
  else ks.set(key, value);
}
