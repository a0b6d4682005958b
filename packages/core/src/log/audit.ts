/**
 * The auditor (docs/receipts.md, "Auditing a log"): checks a copy of the public log with no
 * secret, isomorphically. It never decrypts a write set, so it cannot recompute state hashes;
 * it checks everything else: format, index continuity, the hash chain, the genesis endorsement,
 * every signature against the service key and the recomputed tree, and consistency with a root
 * the auditor already trusts.
 *
 * Errors name the first bad entry (`.index`):
 * - LogEntryAlteredError: an entry does not decode; entry 1 is not a well-formed genesis; a
 *   genesis entry elsewhere; entry 2 is not the signature of genesis; a rotation names no later
 *   generation; a write set is not under the current generation; or entry k's prev is not entryHash(entry k-1). For a chain break
 *   the error names k-1: the usual cause is an altered entry k-1 (its content), which entry k's
 *   prev no longer matches. (Only an altered prev field of k itself is then misattributed by one;
 *   the message says both.) An altered LAST entry breaks no chain: it is caught only when it is
 *   a signature (LogSignatureError) or covered by `trusted`.
 * - LogEntryReorderedError: position k holds an entry carrying index j != k, and entry k exists
 *   later in the input (a swap or move), or j < k (a duplicate or an entry moved back).
 * - LogEntryMissingError: position k holds index j > k and no entry k follows (a gap).
 * - LogGenesisConstraintError (CONSTRAINT_MISMATCH, INSECURE_PLATFORM; index 1): the genesis
 *   evidence verifies (signature, nonce, key binding) but does not satisfy the given constraint
 *   (code or a platform the auditor does not accept), or the log's service is not its SVC:.
 *   APP: clauses cannot be checked from a log; `checked` names them.
 * - LogSignatureError: the genesis endorsement or evidence does not verify (index 1), or a
 *   signature entry does not verify with the service key or signs another tree (term, size, root).
 * - LogTailCutError: `trusted.size` is beyond the end of the log.
 * - RollbackDetectedError: the log's root at `trusted.size` is not `trusted.root`: the log is a
 *   fork of the one the trusted root came from (a root does not tell which entry differs).
 */
import { bytesEqual, constantTimeEqual, toHex } from '../bytes.js';
import { type Constraint, clausesBeyondEvidence, parseConstraint } from '../constraint.js';
import { decodeMinimalSign1, decodeSign1, sign1ToBeSigned, verifyEs256 } from '../cose.js';
import { CloisterError, EncodingError, InvalidInputError } from '../errors.js';
import { decodeEvidencePayload } from '../evidence.js';
import type { PlatformVerifier } from '../verify.js';
import { verifyEvidence } from '../verify.js';
import { entryLeafHash } from './entry-hashes.js';
import {
  LogEntryAlteredError,
  LogEntryMissingError,
  LogEntryReorderedError,
  LogFormatError,
  LogGenesisConstraintError,
  LogSignatureError,
  LogTailCutError,
  RollbackDetectedError,
  StoredLogError,
} from './errors.js';
import { decodeEntry, ENTRY_KIND, entryHash, LOG_TERM, type LogEntry } from './format.js';
import { MerkleLog } from './merkle.js';
import {
  decodeEndorsementPayload,
  decodeSignaturePayload,
  endorsementNonce,
  serviceIdentity,
} from './payloads.js';

/** The state hash after genesis, which writes nothing (docs/ledger-format.md §11.3). */
const EMPTY_STATE = new Uint8Array(32);

export interface AuditOptions {
  /** A root the auditor already trusts (e.g. from a receipt): the log must extend it. */
  readonly trusted?: { readonly size: number; readonly root: Uint8Array };
  /** Applied to the genesis evidence. Without it the evidence is verified (signature, nonce, key
   *  binding) but not constrained, and the report says so. */
  readonly constraint?: Constraint | string;
  /** Platform verifiers, as verifyEvidence takes them (default [simulationVerifier]). */
  readonly verifiers?: readonly PlatformVerifier[];
}

export interface AuditReport {
  /** Number of entries read (the log's size). */
  readonly entries: number;
  /** Number of signature entries, all verified. */
  readonly signatures: number;
  /** Tree size covered by the last signature (entries 1..lastSigned are signed); 0 if none. */
  readonly lastSigned: number;
  /** Root of the whole log (size `entries`). */
  readonly root: Uint8Array;
  /** Root the last signature signed (size lastSigned). */
  readonly signedRoot: Uint8Array;
  /** State hash the last signature signed (not recomputable without secrets). */
  readonly stateHash?: Uint8Array;
  /** Service identity hash: SHA-256 of the genesis service key. */
  readonly service: Uint8Array;
  readonly servicePublicKey: Uint8Array;
  /** What was verified, one line each, for printing. */
  readonly checked: string[];
}

async function signedBy(sign1Bytes: Uint8Array, key: Uint8Array): Promise<Uint8Array | undefined> {
  try {
    const s = decodeMinimalSign1(sign1Bytes);
    const ok = await verifyEs256(key, sign1ToBeSigned(s.protectedBytes, s.payload), s.signature);
    return ok ? s.payload : undefined;
  } catch (e) {
    if (e instanceof EncodingError) return undefined;
    throw e;
  }
}

/** Checks genesis (entry 1): its endorsement by the node key, the evidence binding that key. */
async function checkGenesis(
  e: LogEntry,
  options: AuditOptions,
  checked: string[],
): Promise<Uint8Array> {
  if (e.kind !== ENTRY_KIND.genesis) {
    throw new LogEntryAlteredError(1, `entry 1 is of kind ${e.kind}, not genesis (1)`);
  }
  const svc = e.meta.svc as Uint8Array;
  const end = e.meta.end as Uint8Array;
  const ev = e.meta.ev as Uint8Array;
  let node: Uint8Array;
  try {
    const endorsed = decodeEndorsementPayload(decodeMinimalSign1(end).payload);
    if (!bytesEqual(endorsed.servicePublicKey, svc)) {
      throw new LogSignatureError(
        1,
        'the genesis endorsement endorses another service key than meta.svc',
      );
    }
    node = endorsed.nodePublicKey;
  } catch (err) {
    if (err instanceof LogFormatError || err instanceof EncodingError) {
      throw new LogSignatureError(1, `the genesis endorsement is malformed: ${err.message}`, {
        cause: err,
      });
    }
    throw err;
  }
  if ((await signedBy(end, node)) === undefined) {
    throw new LogSignatureError(
      1,
      'the genesis endorsement is not signed by the node key it names',
    );
  }
  checked.push(
    `entry 1: genesis endorsement of service key ${toHex(serviceIdentity(svc))} signed by node key`,
  );
  let constraint: Constraint;
  const constrained = options.constraint !== undefined;
  if (options.constraint !== undefined) {
    constraint =
      typeof options.constraint === 'string'
        ? parseConstraint(options.constraint)
        : options.constraint;
  } else {
    // Verify signature, nonce and key binding, but accept whatever code it measures: pin the
    // evidence's own (unverified until verifyEvidence passes) measurement, admit insecure.
    try {
      const claims = decodeEvidencePayload(decodeSign1(ev).payload);
      constraint = parseConstraint(`C:${toHex(claims.measurement)} SEC:INSECURE`);
    } catch (err) {
      if (!(err instanceof CloisterError)) throw err;
      throw new LogSignatureError(1, `the genesis evidence is malformed: ${err.message}`, {
        cause: err,
      });
    }
  }
  const verify = (c: Constraint) =>
    verifyEvidence(ev, {
      nonce: endorsementNonce(svc),
      identityPublicKey: node,
      constraint: c,
      ...(options.verifiers === undefined ? {} : { verifiers: options.verifiers }),
    });
  /** The evidence's own failure (not the auditor's policy): tampering, LOG_SIGNATURE. */
  const notGenuine = (err: unknown): unknown =>
    err instanceof CloisterError && err.code !== 'INVALID_INPUT' && err.code !== 'CONSTRAINT_SYNTAX'
      ? new LogSignatureError(1, `the genesis evidence does not verify: ${err.message}`, {
          cause: err,
        })
      : err;
  const policy = (code: 'CONSTRAINT_MISMATCH' | 'INSECURE_PLATFORM', why: string, cause: unknown) =>
    new LogGenesisConstraintError(
      code,
      `the genesis evidence verifies (signature, nonce, key binding) but does not satisfy the constraint: ${why}`,
      { cause },
    );
  let v: Awaited<ReturnType<typeof verifyEvidence>>;
  try {
    v = await verify(constraint);
  } catch (err) {
    // CONSTRAINT_MISMATCH comes after the nonce and key binding passed; INSECURE_PLATFORM before
    // them, so the evidence is checked again admitting insecure platforms before the log is
    // called genuine: a genesis entry carrying someone else's evidence is tampering.
    if (constrained && err instanceof CloisterError && err.code === 'CONSTRAINT_MISMATCH') {
      throw policy('CONSTRAINT_MISMATCH', err.message, err);
    }
    if (constrained && err instanceof CloisterError && err.code === 'INSECURE_PLATFORM') {
      try {
        await verify({ ...constraint, allowInsecure: true });
      } catch (again) {
        if (!(again instanceof CloisterError && again.code === 'CONSTRAINT_MISMATCH')) {
          throw notGenuine(again);
        }
      }
      throw policy('INSECURE_PLATFORM', err.message, err);
    }
    throw notGenuine(err);
  }
  // The clauses evidence cannot show: SVC: is the genesis's own service key, checked here; the
  // code id of an app is not in the log's public part, so APP: clauses are named as unchecked.
  if (constrained && constraint.service !== undefined) {
    const shown = serviceIdentity(svc);
    if (!constantTimeEqual(shown, constraint.service)) {
      throw policy(
        'CONSTRAINT_MISMATCH',
        `the log's service identity ${toHex(shown)} does not match SVC:${toHex(constraint.service)}`,
        undefined,
      );
    }
  }
  const what = `platform ${v.platform} (${v.secure ? 'secure' : 'INSECURE'}, root of trust ${v.rootOfTrust}), measurement ${toHex(v.measurement)}, svn ${v.svn}`;
  checked.push(
    constrained
      ? `entry 1: genesis evidence binds the node key and satisfies the constraint${constraint.service === undefined ? '' : ', its SVC: clause included'}: ${what}`
      : `entry 1: genesis evidence binds the node key (signature, nonce, key binding): ${what}; NOT checked against a constraint (none given)`,
  );
  const apps = clausesBeyondEvidence(constraint, { serviceChecked: true });
  if (constrained && apps.length > 0) {
    checked.push(
      `NOT checked: ${apps.join(' ')} (a log shows no app's code id in the clear; a client checks APP: clauses when it calls)`,
    );
  }
  return svc;
}

/**
 * The next entry while reading on from position `k`. An input that fails further on (a store
 * key out of place, say) cannot tell a move from a gap any more: the audit ends at `k`, the
 * first position found wrong, with the later failure named in the message (and as the cause).
 */
async function readOn(
  it: AsyncIterator<Uint8Array> | Iterator<Uint8Array>,
  k: number,
  seen: number,
): Promise<IteratorResult<Uint8Array>> {
  try {
    return await it.next();
  } catch (e) {
    if (!(e instanceof StoredLogError)) throw e;
    throw new LogEntryMissingError(
      k,
      `entry ${k} is not at position ${k} (it holds entry ${seen}), and reading on to find it stopped at position ${e.index}: ${e.message}`,
      { cause: e },
    );
  }
}

/** Drains the rest of the input to tell a reordering from a gap at position `k`. */
async function gapOrMove(
  it: AsyncIterator<Uint8Array> | Iterator<Uint8Array>,
  k: number,
  seen: number,
): Promise<never> {
  for (let r = await readOn(it, k, seen); !r.done; r = await readOn(it, k, seen)) {
    try {
      if (decodeEntry(r.value).index === k) {
        throw new LogEntryReorderedError(
          k,
          `position ${k} holds entry ${seen}; entry ${k} comes later`,
        );
      }
    } catch (e) {
      if (!(e instanceof LogFormatError)) throw e;
    }
  }
  throw new LogEntryMissingError(
    k,
    `entry ${k} is missing: the log goes from entry ${k - 1} to entry ${seen}`,
  );
}

/**
 * Audits `entries` (entry CBOR bytes in index order, 1, 2, 3 …). Resolves with what was verified;
 * rejects with the named error of the first bad entry (see the module comment).
 */
export async function auditLog(
  entries: AsyncIterable<Uint8Array> | Iterable<Uint8Array>,
  options: AuditOptions = {},
): Promise<AuditReport> {
  const trusted = options.trusted;
  if (trusted !== undefined) {
    if (!Number.isSafeInteger(trusted.size) || trusted.size < 0) {
      throw new InvalidInputError('trusted.size must be an unsigned integer');
    }
    if (!(trusted.root instanceof Uint8Array) || trusted.root.length !== 32) {
      throw new InvalidInputError('trusted.root must be 32 bytes');
    }
  }
  const it =
    Symbol.asyncIterator in entries
      ? (entries as AsyncIterable<Uint8Array>)[Symbol.asyncIterator]()
      : (entries as Iterable<Uint8Array>)[Symbol.iterator]();
  const checked: string[] = [];
  const tree = new MerkleLog();
  let svc: Uint8Array | undefined;
  let prevHash: Uint8Array = new Uint8Array(32);
  let signatures = 0;
  let lastSigned = 0;
  let stateHash: Uint8Array | undefined;
  // The write sets' secret generation: the origin's (0) until a rotation entry names a later one.
  let generation = 0;
  let k = 0;
  for (let r = await it.next(); !r.done; r = await it.next()) {
    k++;
    const bytes = r.value;
    if (!(bytes instanceof Uint8Array)) throw new InvalidInputError('entries must be Uint8Array');
    let e: LogEntry;
    try {
      e = decodeEntry(bytes);
    } catch (err) {
      if (!(err instanceof LogFormatError)) throw err;
      throw new LogEntryAlteredError(k, `entry ${k} does not decode: ${err.message}`, {
        cause: err,
      });
    }
    if (e.index < k) {
      throw new LogEntryReorderedError(
        k,
        `position ${k} holds entry ${e.index} (moved or duplicated)`,
      );
    }
    if (e.index > k) await gapOrMove(it, k, e.index);
    if (!bytesEqual(e.prev, prevHash)) {
      throw new LogEntryAlteredError(
        k - 1,
        `entry ${k - 1} does not hash to the prev recorded in entry ${k}: entry ${k - 1} (or the prev of entry ${k}) was altered`,
      );
    }
    if (e.term !== LOG_TERM) {
      // Restart verification refuses it too: until consensus, every entry is of term 1.
      throw new LogEntryAlteredError(
        k,
        `entry ${k} has term ${e.term}; every entry is of term ${LOG_TERM}`,
      );
    }
    if (k === 1) svc = await checkGenesis(e, options, checked);
    else if (e.kind === ENTRY_KIND.genesis) {
      throw new LogEntryAlteredError(k, `entry ${k} is a second genesis entry`);
    }
    if (k === 2 && e.kind !== ENTRY_KIND.signature) {
      throw new LogEntryAlteredError(
        2,
        'entry 2 is not a signature entry: a service signs its genesis before it serves anything',
      );
    }
    if (e.kind === ENTRY_KIND.rotation) {
      if ((e.meta.rot as number) <= generation) {
        throw new LogEntryAlteredError(
          k,
          `rotation entry ${k} names secret generation ${e.meta.rot}, not one after ${generation}`,
        );
      }
      generation = e.meta.rot as number;
    }
    if (e.meta.gen !== undefined && e.meta.gen !== generation) {
      throw new LogEntryAlteredError(
        k,
        `entry ${k}'s write set is under secret generation ${e.meta.gen}, not ${generation}, the current one there`,
      );
    }
    if (e.kind === ENTRY_KIND.signature) {
      const payload = await signedBy(e.sig, svc as Uint8Array);
      if (payload === undefined) {
        throw new LogSignatureError(k, `signature entry ${k} does not verify with the service key`);
      }
      let p: ReturnType<typeof decodeSignaturePayload>;
      try {
        p = decodeSignaturePayload(payload);
      } catch (err) {
        if (!(err instanceof LogFormatError)) throw err;
        throw new LogSignatureError(k, `signature entry ${k}: ${err.message}`, { cause: err });
      }
      if (p.size !== k - 1 || p.term !== e.term) {
        throw new LogSignatureError(
          k,
          `signature entry ${k} signs term ${p.term} size ${p.size}, not term ${e.term} size ${k - 1}`,
        );
      }
      if (!bytesEqual(p.treeRoot, tree.root(k - 1))) {
        throw new LogSignatureError(
          k,
          `signature entry ${k} signs a tree root that is not the root of entries 1..${k - 1}`,
        );
      }
      if (k === 2 && !bytesEqual(p.stateHash, EMPTY_STATE)) {
        throw new LogSignatureError(
          2,
          'signature entry 2 signs a state hash other than the empty state (32 zero bytes), which follows genesis',
        );
      }
      signatures++;
      lastSigned = k - 1;
      stateHash = p.stateHash;
    }
    tree.append(entryLeafHash(e));
    prevHash = entryHash(bytes);
  }
  if (svc === undefined)
    throw new LogEntryMissingError(1, 'the log is empty: entry 1 (genesis) is missing');
  if (k === 1) {
    throw new LogEntryMissingError(
      2,
      'entry 2 is missing: every started service has signed its genesis (entry 2); a log of genesis alone is a store copied, or stopped, before genesis finished',
    );
  }
  checked.push(`entries 1..${k}: formats, index continuity and hash chain`);
  checked.push(
    signatures === 0
      ? 'no signature entry: nothing is signed'
      : `${signatures} signature entries verified with the service key, each over the recomputed tree root; entries 1..${lastSigned} are signed`,
  );
  if (k > lastSigned) {
    checked.push(
      `entries ${lastSigned + 1}..${k} are not covered by a signature (the unsigned tail)`,
    );
  }
  if (trusted !== undefined) {
    if (trusted.size > k) {
      throw new LogTailCutError(
        k + 1,
        `the log ends at entry ${k}, the trusted root covers ${trusted.size} entries`,
      );
    }
    if (!bytesEqual(tree.root(trusted.size), trusted.root)) {
      throw new RollbackDetectedError(
        `the log's root at size ${trusted.size} is not the trusted root ${toHex(trusted.root)}: it is a fork of the trusted log`,
      );
    }
    checked.push(
      `the log extends the trusted root of size ${trusted.size} (${toHex(trusted.root)})`,
    );
  }
  checked.push(
    `service identity ${toHex(serviceIdentity(svc))}; the state hashes are not recomputed (no secrets)`,
  );
  return {
    entries: k,
    signatures,
    lastSigned,
    root: tree.root(),
    signedRoot: tree.root(lastSigned),
    ...(stateHash === undefined ? {} : { stateHash }),
    service: serviceIdentity(svc),
    servicePublicKey: svc.slice(),
    checked,
  };
}
