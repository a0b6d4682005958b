/**
 * The simulation platform: the TEE services of DESIGN.md §2 and §7, implemented in the host.
 * Same formats, same checks and same key rules as hardware; no protection at all, because the
 * host holds the platform key and the root secret (docs/platform.md, "What simulation does not
 * protect"). Verifiers therefore treat its evidence as insecure, whatever it contains.
 */
import { homedir } from 'node:os';
import { join } from 'node:path';
import {
  ES256_PROTECTED,
  encodeEvidencePayload,
  encodeSign1,
  InvalidInputError,
  sign1ToBeSigned,
  wipe,
} from '@cloister/core';
import { verifyManifest } from '../build/manifest.js';
import { type CounterStore, openCounterStore } from './counters.js';
import { loadOrInitPlatform } from './files.js';
import { signEs256 } from './p256.js';
import { deriveCountersMacKey, deriveSealingKey } from './sealing.js';
import type { EnclaveIdentity, SealPolicy, SimulationPlatform } from './types.js';

/** Where the CLI keeps the platform directory unless given --platform-dir. */
export function defaultPlatformDir(): string {
  return join(homedir(), '.cloister', 'platform');
}

export interface OpenSimulationPlatformOptions {
  /**
   * The platform directory, created on first use. It must live outside every data directory:
   * it plays the part of the machine, which outlives (and is shared by) the nodes on it.
   */
  readonly dir: string;
  /** How long a write waits for another process's platform lock, in ms (default 30 000). */
  readonly lockWaitMs?: number;
}

const REPORT_DATA_LENGTH = 64;

/**
 * Opens (creating on first use) the simulation platform in `options.dir`. Throws DirectoryError
 * (PLATFORM_DIR), DirectoryLockedError (PLATFORM_LOCKED), PlatformStateError (PLATFORM_STATE) or
 * CounterError (COUNTER) naming the file and what to do.
 */
export function openSimulationPlatform(options: OpenSimulationPlatformOptions): SimulationPlatform {
  const lockWaitMs = options.lockWaitMs ?? 30_000;
  const material = loadOrInitPlatform(options.dir, lockWaitMs);
  const { privateKey, rootSecret } = material;
  const publicKey = new Uint8Array(material.publicKey);
  const macKey = deriveCountersMacKey(rootSecret);
  let counters: CounterStore;
  try {
    counters = openCounterStore({ dir: material.dir, macKey, lockWaitMs });
  } catch (e) {
    wipe(rootSecret);
    wipe(macKey);
    throw e;
  }
  // The platform's own copies of the identities it admitted: report and sealKey use these,
  // never the caller's (mutable) object.
  const admitted = new WeakMap<EnclaveIdentity, EnclaveIdentity>();
  let closed = false;

  const open = (): void => {
    if (closed) throw new InvalidInputError('The simulation platform was closed.');
  };
  const own = (enclave: EnclaveIdentity): EnclaveIdentity => {
    open();
    const id = admitted.get(enclave);
    if (id === undefined) {
      throw new InvalidInputError(
        'This platform did not admit this enclave identity: pass the object returned by admit().',
      );
    }
    return id;
  };

  return {
    platform: 'simulation',
    publicKey,
    dir: material.dir,
    admit(bundle: Uint8Array, manifest: Uint8Array): EnclaveIdentity {
      open();
      const v = verifyManifest(manifest, bundle);
      const identity = (): EnclaveIdentity => ({
        platform: 'simulation',
        measurement: new Uint8Array(v.measurement),
        signer: new Uint8Array(v.signer),
        product: v.claims.product,
        svn: v.claims.svn,
        bundleHash: new Uint8Array(v.bundleHash),
      });
      const handle = identity();
      admitted.set(handle, Object.freeze(identity()));
      return handle;
    },
    report(enclave: EnclaveIdentity, reportData: Uint8Array): Uint8Array {
      const id = own(enclave);
      if (!(reportData instanceof Uint8Array) || reportData.length !== REPORT_DATA_LENGTH) {
        throw new InvalidInputError(`reportData must be exactly ${REPORT_DATA_LENGTH} bytes`);
      }
      const payload = encodeEvidencePayload({
        v: 1,
        platform: 'simulation',
        measurement: id.measurement,
        signer: id.signer,
        product: id.product,
        svn: id.svn,
        reportData: new Uint8Array(reportData),
        platformKey: publicKey,
      });
      // RFC 9052 §4.4: the signature covers Sig_structure ["Signature1", protected, h'', payload].
      const signature = signEs256(privateKey, sign1ToBeSigned(ES256_PROTECTED, payload));
      return encodeSign1({ protectedBytes: ES256_PROTECTED, payload, signature });
    },
    sealKey(
      enclave: EnclaveIdentity,
      policy: SealPolicy,
      svn: number,
      keyId: Uint8Array,
    ): Uint8Array {
      return deriveSealingKey(rootSecret, own(enclave), policy, svn, keyId);
    },
    counterRead(name: string): number {
      open();
      return counters.read(name);
    },
    counterIncrement(name: string): number {
      open();
      return counters.increment(name);
    },
    close(): void {
      if (closed) return;
      closed = true;
      wipe(rootSecret);
      wipe(macKey);
    },
  };
}
