/**
 * The service (docs/logchain.md): the ledger engine with its logchain, the service identity key
 * and ledger secrets (sealed service state), the endorsement of the service key by the node key,
 * epochs on a platform counter, receipts and secret rotation.
 *
 * Genesis (empty sealed state, empty store): new service state sealed under the signer policy;
 * epoch e = counter + 1 written into every checkpoint from the first root record on; entry 1 =
 * genesis (service key, endorsement, evidence); entry 2 = a signature; then the counter is
 * incremented to e.
 *
 * Restart: unseal, open the engine (the log verifies every stored entry against the sealed
 * checkpoint), then compare the checkpoint's epoch e with the counter v: e == v is a clean stop;
 * e == v + 1 is a crash between sealing a checkpoint of a new epoch and bumping the counter, so
 * the bump is finished; anything else is a rollback (RollbackDetectedError). A new epoch begins:
 * checkpoint sealed with e + 1 FIRST, then the counter incremented to e + 1 (the reverse order
 * would let a crash brick the node: counter ahead of every checkpoint).
 */
import { createSecretKey, type KeyObject, randomBytes } from 'node:crypto';
import {
  bytesEqual,
  computeReportData,
  concatBytes,
  type EvidenceClaims,
  EvidenceFormatError,
  endorsementNonce,
  endorsementPayload,
  InvalidInputError,
  KeyBindingError,
  parseEvidence,
  RollbackDetectedError,
  serviceIdentity,
  utf8,
} from '@cloister/core';
import { AEAD_TAG_BYTES, aesGcmOpen, aesGcmSeal } from '@cloister/node-crypto';
import type { LedgerSecret } from '../ledger/crypto.js';
import {
  createLedgerEngine,
  type LedgerEngine,
  type LedgerEngineOptions,
  type LedgerStore,
  openLedgerEngine,
  ROOT_STORE_KEY,
  type RootSeal,
} from '../ledger/ledger/index.js';
import type { NodeIdentity } from '../node-state.js';
import type { SealKeySource } from '../seal.js';
import type { IterateOptions, StoreEntry } from '../store/store.js';
import { StoreFormatError } from './errors.js';
import { signCose } from './log-crypto.js';
import { createLogchain, DEFAULT_SIGN_EVERY, type Logchain } from './logchain.js';
import {
  newServiceState,
  openServiceState,
  type ServiceState,
  sealServiceState,
  serviceStateOwner,
  withNewSecret,
} from './service-state.js';

/** What enclave.ts has of the platform, plus counters. */
export interface ServicePlatform extends SealKeySource {
  report(reportData: Uint8Array): Promise<Uint8Array>;
  counterRead(name: string): Promise<number>;
  counterIncrement(name: string): Promise<number>;
}

/** The host's record store as the service uses it (the boundary store client). */
export interface ServiceStore extends LedgerStore {
  iterate(options?: IterateOptions): AsyncIterable<StoreEntry>;
}

/** Fixed event names the service logs: never data, keys or identities. */
export type ServiceEvent =
  | 'service.genesis'
  | 'service.opened'
  | 'service.upgraded'
  | 'service.epoch-recovered'
  | 'service.epoch-begun'
  | 'service.epoch-failed'
  | 'service.secret-rotated'
  | 'service.signature-failed'
  | 'ledger.stopped'
  | 'service.closed';

export interface StartServiceOptions {
  readonly platform: ServicePlatform;
  readonly store: ServiceStore;
  readonly node: NodeIdentity;
  /** The enclave's own security version (seals at it; refuses state sealed above it). */
  readonly svn: number;
  /** Empty = genesis (the store must be empty too). */
  readonly sealedService: Uint8Array;
  /** A signature after this many unsigned entries (default 1000). */
  readonly signEvery?: number;
  /**
   * A new epoch (checkpoint sealed with e + 1, then the counter bumped) every this many
   * signatures while running; 0 (default) = only at each start. Bounds what a restore of the
   * whole data directory can cut without being detected (docs/logchain.md).
   */
  readonly epochEvery?: number;
  readonly log?: (level: number, event: ServiceEvent) => void;
  /** Entries per read range when the log is verified at start (default 4096; tests). */
  readonly logReadRange?: number;
  /** Engine tuning passed through (tests, benchmarks). */
  readonly engine?: Pick<LedgerEngineOptions, 'cacheBytes' | 'maxGroup' | 'limits'>;
}

export interface ServiceStatus {
  /** Index of the last committed entry. */
  readonly index: number;
  readonly term: number;
  /** Tree size the last signature covers (its entry is lastSigned + 1). */
  readonly lastSigned: number;
  readonly stateHash: Uint8Array;
  /** Tree root of all committed entries. */
  readonly treeRoot: Uint8Array;
  readonly epoch: number;
  /** Secret generation of new write sets and records. */
  readonly generation: number;
}

export interface RotationResult {
  /** The new sealed service state (already handed to `persist` when one was given). */
  readonly sealedService: Uint8Array;
  /** The rotation entry. */
  readonly txid: string;
  readonly generation: number;
}

export interface Service {
  readonly engine: LedgerEngine;
  /** The logchain (entries, write sets, proofs). */
  readonly log: Logchain;
  readonly servicePublicKey: Uint8Array;
  /** SHA-256 of the service public key. */
  readonly serviceIdentity: Uint8Array;
  /** The current endorsement (COSE_Sign1 by the node key) and the evidence binding it. */
  endorsement(): { readonly end: Uint8Array; readonly ev: Uint8Array };
  status(): ServiceStatus;
  /** encodeReceipt(…); ReceiptNotReadyError (not yet signed) / UnknownTransactionError. */
  receipt(txid: string): Uint8Array;
  /** RFC 9162 consistency proof between two sizes at most the last signed size. */
  consistency(oldSize: number, newSize: number): Uint8Array[];
  /** The host's timer: signs iff unsigned entries exist. */
  tick(): Promise<void>;
  /**
   * New ledger secret generation. Order: the new state is sealed; `persist` (the host writing
   * service.sealed durably) is awaited; only then does the rotation entry commit. Without
   * `persist` the caller must write the returned blob before anything else; a crash before it
   * does loses the new generation's data (docs/logchain.md, "Secret rotation").
   */
  rotateSecret(persist?: (sealedService: Uint8Array) => Promise<void>): Promise<RotationResult>;
  close(): void;
}

const ROOT_AAD = utf8('cloister/log/v1/root-record');
const NONCE_BYTES = 12;

/** The root record seal: AES-256-GCM under the sealed service state's root key. */
export function createRootSeal(rootKey: Uint8Array): RootSeal {
  const key: KeyObject = createSecretKey(rootKey);
  return {
    seal(plaintext) {
      const nonce = new Uint8Array(randomBytes(NONCE_BYTES));
      return concatBytes(nonce, aesGcmSeal(key, nonce, ROOT_AAD, plaintext));
    },
    open(sealed) {
      if (sealed.length < NONCE_BYTES + AEAD_TAG_BYTES) throw new Error('root record too short');
      const p = aesGcmOpen(
        key,
        sealed.subarray(0, NONCE_BYTES),
        ROOT_AAD,
        sealed.subarray(NONCE_BYTES),
      );
      if (p === undefined) throw new Error('root record does not authenticate');
      return p;
    },
  };
}

/**
 * Refuses evidence from `platform.report` that is not evidence v1 of `reportData`. The host
 * relays the report: junk or another report's evidence went into the genesis entry, where every
 * audit of the log checks it (LogSignatureError at index 1, for good), and into every receipt
 * and handshake of this run. The platform's signature is not checked here (its root of trust is
 * the verifier's, outside); a well-formed report of the right data is all the enclave can ask.
 */
function checkOwnEvidence(ev: Uint8Array, reportData: Uint8Array): void {
  let claims: EvidenceClaims;
  try {
    claims = parseEvidence(ev).claims;
  } catch (e) {
    throw new EvidenceFormatError(
      `platform.report answered with ${ev.length} bytes that are not evidence v1 (${(e as Error).message}): the platform, or the host relaying it, is broken`,
      { cause: e },
    );
  }
  if (!bytesEqual(claims.reportData, reportData)) {
    throw new KeyBindingError(
      'platform.report answered with evidence of another report (its report data is not the one asked for): the platform, or the host relaying it, is broken',
    );
  }
}

/** The service endorsement (COSE_Sign1 by the node key) and the node's evidence binding it. */
export async function endorseService(
  platform: Pick<ServicePlatform, 'report'>,
  node: NodeIdentity,
  servicePublicKey: Uint8Array,
): Promise<{ end: Uint8Array; ev: Uint8Array }> {
  const end = signCose(node.privateKey, endorsementPayload(servicePublicKey, node.publicKey));
  const reportData = computeReportData(node.publicKey, endorsementNonce(servicePublicKey));
  const ev = await platform.report(reportData);
  checkOwnEvidence(ev, reportData);
  return { end, ev };
}

/**
 * The store's data-format record (docs/logchain.md §1): public, written first at genesis,
 * checked first at every start, so a store from another format is refused by name before
 * anything in it is read.
 */
export const STORE_FORMAT_KEY: Uint8Array = concatBytes(
  Uint8Array.of(0x00),
  new TextEncoder().encode('cloister/store/format'),
);
/** The data format this build writes and reads. */
export const STORE_FORMAT = 1;

function checkStoreFormat(store: ServiceStore): void {
  const v = store.get(STORE_FORMAT_KEY);
  const found =
    v === undefined
      ? undefined
      : v.length === 4
        ? (v[0] ?? 0) * 2 ** 24 + ((v[1] ?? 0) << 16) + ((v[2] ?? 0) << 8) + (v[3] ?? 0)
        : undefined;
  if (found !== STORE_FORMAT) throw new StoreFormatError(found, STORE_FORMAT);
}

async function storeIsEmpty(store: ServiceStore): Promise<boolean> {
  for await (const _ of store.iterate({ limit: 1 })) return false;
  return true;
}

/** Starts (genesis) or restarts the service; see the module comment for the order of steps. */
export async function startService(
  o: StartServiceOptions,
): Promise<{ service: Service; sealedService: Uint8Array }> {
  const { platform, store, node, svn } = o;
  const emit = o.log ?? (() => {});
  const owner = serviceStateOwner(node.publicKey);
  const genesis = o.sealedService.length === 0;
  let state: ServiceState;
  let sealedOut: Uint8Array;
  if (genesis) {
    if (!(await storeIsEmpty(store))) {
      throw new InvalidInputError(
        'no sealed service state was given but the store is not empty: restore service.sealed, ' +
          'or remove the store if a genesis was interrupted before service.sealed was written',
      );
    }
    state = newServiceState();
    sealedOut = await sealServiceState(platform, owner, svn, state);
  } else {
    checkStoreFormat(store);
    if (store.get(ROOT_STORE_KEY) === undefined) {
      throw new InvalidInputError(
        'a sealed service state was given but the store holds no ledger: restore the store ' +
          'directory that goes with service.sealed',
      );
    }
    const opened = await openServiceState(platform, owner, svn, o.sealedService);
    state = opened.state;
    sealedOut = opened.resealed ?? new Uint8Array(0);
    if (opened.resealed) emit(30, 'service.upgraded');
  }

  let endorsement = await endorseService(platform, node, state.servicePublicKey);
  let engine: LedgerEngine | undefined;
  let closed = false;
  let signing: Promise<void> | undefined;
  let signAgain = false;
  const signEvery = o.signEvery ?? DEFAULT_SIGN_EVERY;
  const epochEvery = o.epochEvery ?? 0;
  if (!Number.isSafeInteger(epochEvery) || epochEvery < 0) {
    throw new InvalidInputError('epochEvery must be a whole number >= 0');
  }
  let signaturesThisEpoch = 0;
  // Set once the start's own epoch has begun: later epochs are the running ones.
  let started = false;
  // Epoch changes run one at a time; after a failed one none runs again (a second bump over a
  // counter that missed one would make the next start see a rollback).
  let epochs: Promise<void> = Promise.resolve();
  let epochFailed = false;

  function nextEpoch(): Promise<void> {
    signaturesThisEpoch = 0;
    epochs = epochs.then(async () => {
      const e = engine;
      if (!e || closed || epochFailed) return;
      try {
        const next = log.epoch + 1;
        log.setEpoch(next);
        await e.writeCheckpoint();
        await bump(next);
        emit(30, 'service.epoch-begun');
      } catch {
        epochFailed = true;
        emit(50, 'service.epoch-failed');
      }
    });
    return epochs;
  }

  function sign(): Promise<void> {
    if (signing) {
      signAgain = true;
      return signing;
    }
    const e = engine;
    if (!e || closed) return Promise.resolve();
    signAgain = false;
    const p = e.append({ kind: 'signature', writes: [] }).then(
      () => {
        signaturesThisEpoch++;
        if (epochEvery > 0 && signaturesThisEpoch >= epochEvery && started) void nextEpoch();
      },
      () => emit(50, 'service.signature-failed'),
    );
    signing = p.finally(() => {
      signing = undefined;
      if (signAgain && log.unsigned >= signEvery) void sign();
    });
    return signing;
  }

  const log = createLogchain({
    store,
    serviceKey: state.serviceKey,
    servicePublicKey: state.servicePublicKey,
    secrets: state.secrets,
    signEvery,
    svn,
    ...(o.logReadRange !== undefined ? { readRange: o.logReadRange } : {}),
    endorsement: () => endorsement,
    onSignatureDue: () => {
      try {
        void sign();
      } catch {
        emit(50, 'service.signature-failed');
      }
    },
  });
  const [origin, ...later] = state.secrets as [LedgerSecret, ...LedgerSecret[]];
  const engineOptions: LedgerEngineOptions = {
    ...o.engine,
    store,
    secret: origin,
    ...(later.length > 0 ? { secrets: later } : {}),
    rootSeal: createRootSeal(state.rootKey),
    log,
    // A failed store write stops the ledger for good: the host stops the node on this event.
    onStopped: () => emit(60, 'ledger.stopped'),
  };
  const counter = state.counter;

  async function bump(expected: number): Promise<void> {
    const v = await platform.counterIncrement(counter);
    if (v !== expected) {
      throw new RollbackDetectedError(
        `the epoch counter moved to ${v}, expected ${expected}: another instance runs this service`,
      );
    }
  }

  if (genesis) {
    const v = await platform.counterRead(counter);
    log.setEpoch(v + 1);
    const format = Uint8Array.of(0, 0, 0, STORE_FORMAT);
    await store.write([{ type: 'put', key: STORE_FORMAT_KEY, value: format }], { sync: true });
    engine = await createLedgerEngine(engineOptions);
    await engine.append({ kind: 'genesis', writes: [] });
    await sign();
    await bump(v + 1);
    emit(30, 'service.genesis');
  } else {
    engine = await openLedgerEngine(engineOptions);
    // The host receives service.sealed only after genesis returned, so a started service's log
    // holds at least the genesis entry and the signature after it. A store with fewer is a copy
    // taken during genesis: starting on it would write entry 1 as a transaction, a log that no
    // later start and no auditor accepts.
    if (log.size < 2) {
      throw new RollbackDetectedError(
        `the store holds ${log.size} log entries, fewer than every started service has (its genesis entry and the signature after it): it is a copy taken before genesis finished (or genesis was interrupted): start on the data directory the service ran on, not on a copy`,
      );
    }
    const e = log.epoch;
    const v = await platform.counterRead(counter);
    if (e === v + 1) {
      // Crash after the checkpoint of epoch e was sealed, before the counter reached e.
      await bump(e);
      emit(40, 'service.epoch-recovered');
    } else if (e !== v) {
      throw new RollbackDetectedError(
        e < v
          ? `the store was rolled back: its sealed checkpoint is of epoch ${e}, the platform counter is at ${v}; start on the data directory the service last ran on (an older copy never starts; docs/logchain.md §7)`
          : `the platform counter (${v}) is behind the store's epoch (${e}): the platform's counters were rolled back or this is another platform`,
      );
    }
    log.setEpoch(e + 1);
    await engine.writeCheckpoint();
    await bump(e + 1);
    emit(30, 'service.opened');
  }
  emit(30, 'service.epoch-begun');
  started = true;
  signaturesThisEpoch = 0;
  const eng = engine;
  let rotating = false;

  function live(): void {
    if (closed) throw new InvalidInputError('the service is closed');
  }

  const service: Service = {
    engine: eng,
    log,
    servicePublicKey: state.servicePublicKey,
    serviceIdentity: serviceIdentity(state.servicePublicKey),
    endorsement: () => endorsement,
    status() {
      return {
        index: eng.index,
        term: eng.term,
        lastSigned: log.lastSigned,
        stateHash: eng.stateHash,
        treeRoot: log.root(),
        epoch: log.epoch,
        generation: log.generation,
      };
    },
    receipt(txid) {
      live();
      return log.receipt(txid);
    },
    consistency(oldSize, newSize) {
      live();
      return log.consistency(oldSize, newSize);
    },
    async tick() {
      live();
      if (signing) await signing;
      if (log.unsigned > 0) await sign();
      await epochs;
    },
    async rotateSecret(persist) {
      live();
      if (rotating) throw new InvalidInputError('a secret rotation is already running');
      rotating = true;
      try {
        const { state: next, secret } = withNewSecret(state);
        const blob = await sealServiceState(platform, owner, svn, next);
        if (persist) await persist(blob);
        state = next;
        log.addSecret(secret);
        const r = await eng.rotate(secret);
        emit(30, 'service.secret-rotated');
        return { sealedService: blob, txid: r.txid, generation: secret.generation };
      } finally {
        rotating = false;
      }
    },
    close() {
      if (closed) return;
      closed = true;
      endorsement = { end: new Uint8Array(0), ev: new Uint8Array(0) };
      emit(30, 'service.closed');
    },
  };
  return { service, sealedService: sealedOut };
}
