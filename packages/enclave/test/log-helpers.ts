/// <reference types="node" />
/**
 * Test kit of the logchain service: a fake platform with real sealing keys (HMAC of a root
 * secret over policy, svn and key id), counters kept in memory (shared by copies, like a platform
 * directory) and simulation evidence signed by a platform key; a node identity; start helpers.
 */
import { createHmac, generateKeyPairSync, randomBytes, sign } from 'node:crypto';
import {
  ES256_PROTECTED,
  encodeEvidencePayload,
  encodeSign1,
  sign1ToBeSigned,
  toHex,
} from '@cloister/core';
import type { ServicePlatform, ServiceStore, StartServiceOptions } from '../src/log/index.js';
import { startService } from '../src/log/index.js';
import type { NodeIdentity } from '../src/node-state.js';
import { rawPublicKey } from '../src/node-state.js';
import { hostStores, type TestStore } from './ledger-engine-helpers.js';

export const MEASUREMENT = new Uint8Array(32).fill(0x4d);
export const SIGNER = new Uint8Array(32).fill(0x53);
export const CONSTRAINT = `C:${toHex(MEASUREMENT)} SEC:INSECURE`;

export interface FakePlatform extends ServicePlatform {
  readonly counters: Map<string, number>;
  readonly svn: number;
  /** The same platform (same secret and counters) seen by an enclave of another svn. */
  withSvn(svn: number): FakePlatform;
}

export function fakePlatform(
  opts: { svn?: number; secret?: Uint8Array; counters?: Map<string, number> } = {},
): FakePlatform {
  const svn = opts.svn ?? 1;
  const secret = opts.secret ?? new Uint8Array(randomBytes(32));
  const counters = opts.counters ?? new Map<string, number>();
  const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const platformKey = rawPublicKey(privateKey);
  return {
    counters,
    svn,
    withSvn: (s) => fakePlatform({ svn: s, secret, counters }),
    async sealKey(policy, keySvn, keyId) {
      if (keySvn > svn) throw new Error('SEAL_POLICY: svn above the enclave');
      return new Uint8Array(
        createHmac('sha256', secret).update(`${policy}/${keySvn}/`).update(keyId).digest(),
      );
    },
    async report(reportData) {
      const payload = encodeEvidencePayload({
        v: 1,
        platform: 'simulation',
        measurement: MEASUREMENT,
        signer: SIGNER,
        product: 1,
        svn,
        reportData,
        platformKey,
      });
      const signature = new Uint8Array(
        sign('sha256', sign1ToBeSigned(ES256_PROTECTED, payload), {
          key: privateKey,
          dsaEncoding: 'ieee-p1363',
        }),
      );
      return encodeSign1({ protectedBytes: ES256_PROTECTED, payload, signature });
    },
    async counterRead(name) {
      return counters.get(name) ?? 0;
    },
    async counterIncrement(name) {
      const v = (counters.get(name) ?? 0) + 1;
      counters.set(name, v);
      return v;
    },
  };
}

export function newNode(): NodeIdentity {
  const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  return { privateKey, publicKey: rawPublicKey(privateKey) };
}

export async function memoryStore(): Promise<TestStore> {
  return (await hostStores()).createMemoryStore();
}

export interface World {
  platform: FakePlatform;
  node: NodeIdentity;
  store: TestStore;
  sealed: Uint8Array;
}

/** A genesis on a fresh platform and node; on `given` (a store a test watches) or a new one. */
export async function genesis(
  extra: Partial<StartServiceOptions> = {},
  given?: TestStore,
): Promise<World & Awaited<ReturnType<typeof startService>>> {
  const platform = fakePlatform();
  const node = newNode();
  const store = given ?? (await memoryStore());
  const started = await startService({
    platform,
    store: store as unknown as ServiceStore,
    node,
    svn: 1,
    sealedService: new Uint8Array(0),
    engine: { cacheBytes: 1 << 20 },
    ...extra,
  });
  return { platform, node, store, sealed: started.sealedService, ...started };
}

export function restart(
  w: Pick<World, 'platform' | 'node' | 'store' | 'sealed'>,
  extra: Partial<StartServiceOptions> = {},
): ReturnType<typeof startService> {
  return startService({
    platform: w.platform,
    store: w.store as unknown as ServiceStore,
    node: w.node,
    svn: w.platform.svn,
    sealedService: w.sealed,
    engine: { cacheBytes: 1 << 20 },
    ...extra,
  });
}

export const te = (s: string): Uint8Array => new TextEncoder().encode(s);

/** Commits one transaction writing `key` = `value` in ledger "app", table "t". */
export async function put(
  engine: Awaited<ReturnType<typeof startService>>['service']['engine'],
  key: string,
  value: string,
): Promise<{ index: number; txid: string }> {
  const tx = engine.begin();
  tx.set('app', 't', te(key), te(value));
  const r = await tx.commit();
  return { index: r.index, txid: r.txid };
}

export { dump, hex, storeOf, unhex } from './ledger-engine-helpers.js';
