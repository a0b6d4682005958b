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
import type { ReleaseLock } from '../fs/lock.js';
import { type CounterStore, holdCounter, openCounterStore } from './counters.js';
import { loadOrInitPlatform } from './files.js';
import { signEs256Async } from './p256.js';
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
  /**
   * Hold each counter this handle reads or increments against other processes until close()
   * (CounterInUseError for the second): for a node, whose counter is its service's epoch. Off
   * for other users of the platform, which may share a counter on purpose.
   */
  readonly holdCounters?: boolean;
}

const REPORT_DATA_LENGTH = 64;
const SIGNATURE_LENGTH = 64;

/**
 * An admitted enclave's evidence, pre-encoded: everything but the report data and the signature
 * is fixed per identity, and both are fixed-length byte strings at fixed offsets of the
 * deterministic encoding. report() fills them in instead of encoding the CBOR three times (the
 * encoding was more than half the cost of a report; bench/evidence.ts).
 */
interface EvidenceTemplate {
  /** Sig_structure with zero report data; the report data goes at `tbsAt`. */
  readonly tbs: Uint8Array;
  readonly tbsAt: number;
  /** COSE_Sign1 with zero report data and signature, filled in at `envelopeAt` and `signatureAt`. */
  readonly envelope: Uint8Array;
  readonly envelopeAt: number;
  readonly signatureAt: number;
}

/** Offset of the single run of `length` bytes where `a` and `b` differ; throws otherwise. */
function differingRun(a: Uint8Array, b: Uint8Array, length: number): number {
  let at = 0;
  while (at < a.length && a[at] === b[at]) at++;
  const same = a.length === b.length && at + length <= a.length;
  for (let i = at + length; same && i < a.length; i++) {
    if (a[i] !== b[i]) throw new Error('evidence template: more than one variable run');
  }
  if (!same) throw new Error('evidence template: unexpected layout');
  return at;
}

function evidenceTemplate(id: EnclaveIdentity, platformKey: Uint8Array): EvidenceTemplate {
  const payloadWith = (fill: number) =>
    encodeEvidencePayload({
      v: 1,
      platform: 'simulation',
      measurement: id.measurement,
      signer: id.signer,
      product: id.product,
      svn: id.svn,
      reportData: new Uint8Array(REPORT_DATA_LENGTH).fill(fill),
      platformKey,
    });
  const [p0, p1] = [payloadWith(0x00), payloadWith(0xff)];
  // RFC 9052 §4.4: the signature covers Sig_structure ["Signature1", protected, h'', payload].
  const tbs = sign1ToBeSigned(ES256_PROTECTED, p0);
  const tbsAt = differingRun(tbs, sign1ToBeSigned(ES256_PROTECTED, p1), REPORT_DATA_LENGTH);
  const envelopeWith = (payload: Uint8Array, fill: number) =>
    encodeSign1({
      protectedBytes: ES256_PROTECTED,
      payload,
      signature: new Uint8Array(SIGNATURE_LENGTH).fill(fill),
    });
  const envelope = envelopeWith(p0, 0x00);
  return {
    tbs,
    tbsAt,
    envelope,
    envelopeAt: differingRun(envelope, envelopeWith(p1, 0x00), REPORT_DATA_LENGTH),
    signatureAt: differingRun(envelope, envelopeWith(p0, 0xff), SIGNATURE_LENGTH),
  };
}

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
  const templates = new WeakMap<EnclaveIdentity, EvidenceTemplate>();
  let closed = false;
  // Counters this platform handle uses, each held against other processes until close(): a
  // counter is one service's epoch (docs/platform.md §3), so a second process reading or bumping
  // it runs the same service — a copy of a running node's data directory, whose start would fork
  // the service and, by moving the epoch on, make the original refuse to start ever after.
  const holds = new Map<string, ReleaseLock>();
  const hold = (name: string): void => {
    if (options.holdCounters !== true || holds.has(name)) return;
    holds.set(name, holdCounter(material.dir, name));
  };

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
    async report(enclave: EnclaveIdentity, reportData: Uint8Array): Promise<Uint8Array> {
      const id = own(enclave);
      if (!(reportData instanceof Uint8Array) || reportData.length !== REPORT_DATA_LENGTH) {
        throw new InvalidInputError(`reportData must be exactly ${REPORT_DATA_LENGTH} bytes`);
      }
      let t = templates.get(id);
      if (t === undefined) {
        t = evidenceTemplate(id, publicKey);
        templates.set(id, t);
      }
      const tbs = t.tbs.slice();
      tbs.set(reportData, t.tbsAt);
      const evidence = t.envelope.slice();
      evidence.set(reportData, t.envelopeAt);
      evidence.set(await signEs256Async(privateKey, tbs), t.signatureAt);
      return evidence;
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
      const value = counters.read(name);
      hold(name);
      return value;
    },
    counterIncrement(name: string): number {
      open();
      hold(name);
      return counters.increment(name);
    },
    close(): void {
      if (closed) return;
      closed = true;
      for (const release of holds.values()) release();
      holds.clear();
      wipe(rootSecret);
      wipe(macKey);
    },
  };
}
