/**
 * The SCP record layer (docs/scp.md §Records): one AEAD key per direction, implicit sequence
 * numbers, key updates, padding, close. Reflection fails because the two directions have
 * different keys; drops, reorders and replays fail because the sequence number is in the nonce;
 * truncation of a record fails the tag; truncation of the stream is visible as a missing close.
 */
import { wipe } from '../bytes.js';
import { InvalidInputError } from '../errors.js';
import {
  decodePlaintext,
  encodePlaintext,
  frame,
  frameType,
  messageArray,
  withPlaintext,
} from './codec.js';
import { nextTrafficSecret, recordNonce, trafficKey } from './keys.js';
import {
  type AeadKey,
  FRAME,
  MAX_FRAME,
  MSG,
  REKEY_AFTER,
  type ScpCrypto,
  ScpError,
  type ScpLimits,
  type ScpMessage,
  type ScpSession,
  SEQ_LIMIT,
  type SyncAeadKey,
} from './types.js';

const AAD_RECORD = Uint8Array.of(FRAME.RECORD);
const TAG_LENGTH = 16;

/** One direction's current key. Invariant: `seq` records were sealed/opened under `key`. */
interface Direction<K = AeadKey> {
  /** The traffic secret `key` and `iv` derive from (kept for the next key update). */
  ap: Uint8Array;
  key: K;
  iv: Uint8Array;
  seq: number;
}

/** Moves `d` to the keys of `next` (a key update), wiping the secret it replaces. */
function replaceKeys<K>(d: Direction<K>, next: Direction<K>): void {
  wipe(d.ap);
  d.ap = next.ap;
  d.key = next.key;
  d.iv = next.iv;
  d.seq = 0;
}

/** The error every open after the peer's close throws. */
function peerClosed(code: string): ScpError {
  return new ScpError('SCP_CLOSED', `the peer closed the session (${code})`);
}

async function direction(crypto: ScpCrypto, ap: Uint8Array): Promise<Direction> {
  const { key, iv } = trafficKey(ap);
  const aead = await crypto.aeadKey(key);
  wipe(key);
  return { ap, key: aead, iv, seq: 0 };
}

/** Validated limits: never above the defaults, rekeyAfter within [2, seqLimit]. */
export function resolveLimits(l: ScpLimits | undefined): { rekeyAfter: number; seqLimit: number } {
  const seqLimit = l?.seqLimit ?? SEQ_LIMIT;
  const rekeyAfter = l?.rekeyAfter ?? Math.min(REKEY_AFTER, seqLimit);
  if (!Number.isSafeInteger(seqLimit) || seqLimit < 2 || seqLimit > SEQ_LIMIT) {
    throw new InvalidInputError(`limits.seqLimit must be an integer in [2, ${SEQ_LIMIT}]`);
  }
  if (
    !Number.isSafeInteger(rekeyAfter) ||
    rekeyAfter < 2 ||
    rekeyAfter > Math.min(REKEY_AFTER, seqLimit)
  ) {
    throw new InvalidInputError(
      `limits.rekeyAfter must be an integer in [2, min(${REKEY_AFTER}, seqLimit)]`,
    );
  }
  return { rekeyAfter, seqLimit };
}

export interface SessionInit {
  readonly crypto: ScpCrypto;
  readonly sendSecret: Uint8Array;
  readonly recvSecret: Uint8Array;
  readonly sessionHash: Uint8Array;
  readonly peerKey: Uint8Array;
  readonly limits: { rekeyAfter: number; seqLimit: number };
}

export async function createSession(o: SessionInit): Promise<ScpSession> {
  const importSync = o.crypto.aeadKeySync?.bind(o.crypto);
  if (importSync !== undefined) {
    return new SyncRecordSession(
      o,
      syncDirection(importSync, o.sendSecret),
      syncDirection(importSync, o.recvSecret),
      importSync,
    );
  }
  const send = await direction(o.crypto, o.sendSecret);
  const recv = await direction(o.crypto, o.recvSecret);
  return new RecordSession(o, send, recv);
}

/** The plaintext of `message`; throws for a message that does not encode or is too large. */
function recordPlaintext(message: ScpMessage, opts: { pad?: boolean } | undefined): Uint8Array {
  return checkPlaintextSize(encodePlaintext(messageArray(message), opts?.pad === true));
}

/** `pt`, or FRAME_TOO_LARGE when its record would be a frame over MAX_FRAME. */
function checkPlaintextSize(pt: Uint8Array): Uint8Array {
  if (1 + pt.length + TAG_LENGTH > MAX_FRAME) {
    throw new ScpError(
      'FRAME_TOO_LARGE',
      `the message makes a frame over ${MAX_FRAME} bytes: send less`,
    );
  }
  return pt;
}

/** Checks frame `f` before opening it as record `seq` of its direction (throws ScpError). */
function checkRecord(f: Uint8Array, seq: number, seqLimit: number): void {
  const t = frameType(f);
  if (t !== FRAME.RECORD) {
    throw new ScpError('SCP_RECORD', `expected a record (frame type 5), got frame type ${t}`);
  }
  if (f.length < 1 + TAG_LENGTH) {
    throw new ScpError(
      'SCP_RECORD',
      'the record is shorter than its authentication tag (truncated)',
    );
  }
  if (seq >= seqLimit) {
    throw new ScpError(
      'SCP_SEQUENCE',
      `the peer sent ${seq} records under one key without a key update (limit ${seqLimit})`,
    );
  }
}

function authenticationFailed(seq: number, cause: unknown): ScpError {
  return new ScpError(
    'SCP_RECORD',
    `record ${seq} failed authentication: it was altered, dropped, reordered, replayed, reflected or truncated`,
    { cause },
  );
}

/** The error an open failure leaves on the receive side (every later open throws it). */
function openFailure(e: unknown): ScpError {
  return e instanceof ScpError
    ? e
    : new ScpError('SCP_PROTOCOL', 'opening a record failed; the session is closed', { cause: e });
}

function sealFailure(e: unknown): ScpError {
  return new ScpError('SCP_CLOSED', 'a seal failed earlier; the session is closed', { cause: e });
}

class RecordSession implements ScpSession {
  readonly sessionHash: Uint8Array;
  readonly peerKey: Uint8Array;
  readonly #crypto: ScpCrypto;
  readonly #limits: { rekeyAfter: number; seqLimit: number };
  readonly #send: Direction;
  readonly #recv: Direction;
  /** Tail of the seal queue: each seal starts after the previous one settled. */
  #sendQueue: Promise<unknown> = Promise.resolve();
  #recvQueue: Promise<unknown> = Promise.resolve();
  /** Set once a close was sealed or a seal failed: every later seal rejects with it. */
  #sendError: ScpError | undefined;
  /** Set once a close was opened or an open failed: every later open rejects with it. */
  #recvError: ScpError | undefined;

  constructor(o: SessionInit, send: Direction, recv: Direction) {
    this.sessionHash = o.sessionHash.slice();
    this.peerKey = o.peerKey.slice();
    this.#crypto = o.crypto;
    this.#limits = o.limits;
    this.#send = send;
    this.#recv = recv;
  }

  get closed(): boolean {
    return this.#sendError !== undefined || this.#recvError !== undefined;
  }

  seal(message: ScpMessage, opts?: { pad?: boolean }): Promise<Uint8Array[]> {
    let pt: Uint8Array;
    try {
      pt = recordPlaintext(message, opts);
    } catch (e) {
      return Promise.reject(e);
    }
    const run = (): Promise<Uint8Array[]> => this.#seal(pt, message.type === 'close');
    const result = this.#sendQueue.then(run, run);
    this.#sendQueue = result.catch(() => undefined);
    return result;
  }

  async #seal(pt: Uint8Array, isClose: boolean): Promise<Uint8Array[]> {
    if (this.#sendError !== undefined) throw this.#sendError;
    try {
      const frames: Uint8Array[] = [];
      const d = this.#send;
      if (d.seq === this.#limits.rekeyAfter - 1) {
        frames.push(await this.#sealOne(encodePlaintext([MSG.KEY_UPDATE], false)));
        await this.#rotate(d);
      }
      frames.push(await this.#sealOne(pt));
      if (isClose) this.#sendError = new ScpError('SCP_CLOSED', 'this session sent its close');
      return frames;
    } catch (e) {
      this.#sendError = sealFailure(e);
      throw e;
    }
  }

  async #sealOne(pt: Uint8Array): Promise<Uint8Array> {
    const d = this.#send;
    const nonce = recordNonce(d.iv, d.seq);
    d.seq += 1; // consumed even if sealing fails: a nonce is never reused
    return frame(FRAME.RECORD, await d.key.seal(nonce, AAD_RECORD, pt));
  }

  async #rotate(d: Direction): Promise<void> {
    replaceKeys(d, await direction(this.#crypto, nextTrafficSecret(d.ap)));
  }

  open(f: Uint8Array): Promise<ScpMessage[]> {
    const run = (): Promise<ScpMessage[]> => this.#open(f);
    const result = this.#recvQueue.then(run, run);
    this.#recvQueue = result.catch(() => undefined);
    return result;
  }

  async #open(f: Uint8Array): Promise<ScpMessage[]> {
    if (this.#recvError !== undefined) throw this.#recvError;
    try {
      return await this.#openOne(f);
    } catch (e) {
      this.#recvError = openFailure(e);
      throw this.#recvError;
    }
  }

  async #openOne(f: Uint8Array): Promise<ScpMessage[]> {
    const d = this.#recv;
    checkRecord(f, d.seq, this.#limits.seqLimit);
    let pt: Uint8Array;
    try {
      pt = await d.key.open(recordNonce(d.iv, d.seq), AAD_RECORD, f.subarray(1));
    } catch (e) {
      throw authenticationFailed(d.seq, e);
    }
    d.seq += 1;
    const m = decodePlaintext(pt);
    if (m === 'key-update') {
      await this.#rotate(d);
      return [];
    }
    if (m.type === 'close') this.#recvError = peerClosed(m.code);
    return [m];
  }
}

/** One direction's current key, for a synchronous session. */
type SyncDirection = Direction<SyncAeadKey>;

function syncDirection(
  importSync: (raw32: Uint8Array) => SyncAeadKey,
  ap: Uint8Array,
): SyncDirection {
  const { key, iv } = trafficKey(ap);
  const aead = importSync(key);
  wipe(key);
  return { ap, key: aead, iv, seq: 0 };
}

function settled<T>(f: () => T): Promise<T> {
  try {
    return Promise.resolve(f());
  } catch (e) {
    return Promise.reject(e);
  }
}

/**
 * RecordSession over a synchronous AEAD (node:crypto): the same record layer, checks and failure
 * rules, each seal and open done in the call. Every call completes before it returns, so records
 * are sealed and opened in call order without queues, and no promise is made per record unless
 * the caller uses seal()/open().
 */
class SyncRecordSession implements ScpSession {
  readonly sessionHash: Uint8Array;
  readonly peerKey: Uint8Array;
  readonly #importSync: (raw32: Uint8Array) => SyncAeadKey;
  readonly #limits: { rekeyAfter: number; seqLimit: number };
  readonly #send: SyncDirection;
  readonly #recv: SyncDirection;
  /** Set once a close was sealed or a seal failed: every later seal throws it. */
  #sendError: ScpError | undefined;
  /** Set once a close was opened or an open failed: every later open throws it. */
  #recvError: ScpError | undefined;

  constructor(
    o: SessionInit,
    send: SyncDirection,
    recv: SyncDirection,
    importSync: (raw32: Uint8Array) => SyncAeadKey,
  ) {
    this.sessionHash = o.sessionHash.slice();
    this.peerKey = o.peerKey.slice();
    this.#importSync = importSync;
    this.#limits = o.limits;
    this.#send = send;
    this.#recv = recv;
  }

  get closed(): boolean {
    return this.#sendError !== undefined || this.#recvError !== undefined;
  }

  seal(message: ScpMessage, opts?: { pad?: boolean }): Promise<Uint8Array[]> {
    return settled(() => this.sealSync(message, opts));
  }

  open(f: Uint8Array): Promise<ScpMessage[]> {
    return settled(() => this.openSync(f));
  }

  sealSync(message: ScpMessage, opts?: { pad?: boolean }): Uint8Array[] {
    // As seal(): a message that does not encode, or is too large, fails alone (nothing sealed).
    // The plaintext is the encoder's own buffer, sealed before the call returns (no copy).
    return withPlaintext(messageArray(message), opts?.pad === true, (pt) =>
      this.#sealPlaintext(checkPlaintextSize(pt), message.type === 'close'),
    );
  }

  #sealPlaintext(pt: Uint8Array, isClose: boolean): Uint8Array[] {
    if (this.#sendError !== undefined) throw this.#sendError;
    try {
      const d = this.#send;
      let update: Uint8Array | undefined;
      if (d.seq === this.#limits.rekeyAfter - 1) {
        update = this.#sealOne(encodePlaintext([MSG.KEY_UPDATE], false));
        this.#rotate(d);
      }
      const f = this.#sealOne(pt);
      if (isClose) this.#sendError = new ScpError('SCP_CLOSED', 'this session sent its close');
      return update === undefined ? [f] : [update, f];
    } catch (e) {
      this.#sendError = sealFailure(e);
      throw e;
    }
  }

  #sealOne(pt: Uint8Array): Uint8Array {
    const d = this.#send;
    const nonce = recordNonce(d.iv, d.seq);
    d.seq += 1; // consumed even if sealing fails: a nonce is never reused
    const k = d.key;
    // The type byte is also the record's AAD: sealed after it in one buffer when the key can.
    if (k.sealPrefixed !== undefined) return k.sealPrefixed(AAD_RECORD, nonce, AAD_RECORD, pt);
    return frame(FRAME.RECORD, k.seal(nonce, AAD_RECORD, pt));
  }

  #rotate(d: SyncDirection): void {
    replaceKeys(d, syncDirection(this.#importSync, nextTrafficSecret(d.ap)));
  }

  openSync(f: Uint8Array): ScpMessage[] {
    if (this.#recvError !== undefined) throw this.#recvError;
    try {
      return this.#openOne(f);
    } catch (e) {
      this.#recvError = openFailure(e);
      throw this.#recvError;
    }
  }

  #openOne(f: Uint8Array): ScpMessage[] {
    const d = this.#recv;
    checkRecord(f, d.seq, this.#limits.seqLimit);
    let pt: Uint8Array;
    try {
      pt = d.key.open(recordNonce(d.iv, d.seq), AAD_RECORD, f.subarray(1));
    } catch (e) {
      throw authenticationFailed(d.seq, e);
    }
    d.seq += 1;
    const m = decodePlaintext(pt);
    if (m === 'key-update') {
      this.#rotate(d);
      return [];
    }
    if (m.type === 'close') this.#recvError = peerClosed(m.code);
    return [m];
  }
}
