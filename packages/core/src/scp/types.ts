/**
 * SCP v1 (docs/scp.md): constants, the error class and the narrow interfaces the handshake and
 * record layer are built on. The world (randomness, ECDH, AEAD, signatures) is injected through
 * ScpCrypto and ScpSigner, so the same state machines run in the enclave (node:crypto), in Node
 * and in browsers (WebCrypto), and in tests (fixed randomness).
 */
import { CloisterError } from '../errors.js';

/** The protocol version this code speaks. */
export const SCP_VERSION = 1;
/** Protocol name, first element of CH. */
export const SCP_NAME = 'cloister/scp';
/** Largest frame either side accepts, in bytes: 1 MiB + 4 KiB. */
export const MAX_FRAME = 1_052_672;
/**
 * Frames of one session the server holds unprocessed at most (while its handshake or its
 * concurrent requests run); beyond, it ends the session (SCP_PROTOCOL). A relay keeps at most half
 * of it at the server per socket, so an honest relay never meets it.
 */
export const MAX_QUEUED_FRAMES = 64;
/**
 * Largest app result, in bytes, a response carries: 1 MiB - 1 KiB, so that a response with the
 * largest result and every other field at its largest fits one frame, padded or not (1 MiB of
 * padded plaintext, the 17 bytes of record overhead, 4 KiB spare). The enclave's app runtime caps
 * results at this size, so a transaction whose result could not be sent fails before it commits.
 */
export const MAX_RESULT_BYTES = 1_047_552;
/** A sender switches keys (sends [4]) after this many records under one key, [4] included. */
export const REKEY_AFTER = 2 ** 20;
/** A receiver refuses a record whose sequence number under one key is >= this. */
export const SEQ_LIMIT = 2 ** 24;

/** Frame types: the first byte of every frame. */
export const FRAME = Object.freeze({ CH: 1, SH: 2, SA: 3, CA: 4, RECORD: 5, ALERT: 6 } as const);
/** Message types: the first element of every message array inside a record. */
export const MSG = Object.freeze({
  REQUEST: 1,
  RESPONSE: 2,
  NOTIFY: 3,
  KEY_UPDATE: 4,
  CLOSE: 5,
} as const);

export type ScpErrorCode =
  | 'SCP_HANDSHAKE'
  | 'SCP_VERSION'
  | 'SCP_RECORD'
  | 'SCP_SEQUENCE'
  | 'SCP_PROTOCOL'
  | 'SCP_CLOSED'
  | 'SCP_SESSIONS'
  | 'FRAME_TOO_LARGE'
  | 'SERVICE_CHANGED';

/** Every failure of the protocol. Messages never carry keys, plaintext or client identities. */
export class ScpError extends CloisterError {
  declare readonly code: ScpErrorCode;
  constructor(code: ScpErrorCode, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
  }
}

/** An AES-256-GCM key, imported once. */
export interface AeadKey {
  /** Returns ciphertext ‖ 16-byte tag. */
  seal(iv: Uint8Array, aad: Uint8Array, pt: Uint8Array): Promise<Uint8Array>;
  /** Returns the plaintext; rejects (any error) when authentication fails. */
  open(iv: Uint8Array, aad: Uint8Array, ct: Uint8Array): Promise<Uint8Array>;
}

/**
 * An AES-256-GCM key whose implementation runs synchronously (node:crypto): the same operations
 * as AeadKey without a promise per record. `open` throws (any error) when authentication fails.
 */
export interface SyncAeadKey {
  seal(iv: Uint8Array, aad: Uint8Array, pt: Uint8Array): Uint8Array;
  open(iv: Uint8Array, aad: Uint8Array, ct: Uint8Array): Uint8Array;
  /**
   * Optional: `prefix ‖ seal(iv, aad, pt)` in one fresh buffer, the same bytes as concatenating
   * (a record frame is its type byte then the sealed bytes: one copy per record less).
   */
  sealPrefixed?(prefix: Uint8Array, iv: Uint8Array, aad: Uint8Array, pt: Uint8Array): Uint8Array;
}

/** The primitives SCP needs; webCryptoScp is the browser/Node one, the enclave has its own. */
export interface ScpCrypto {
  /** A fresh P-256 key pair; publicKey is 65-byte SEC1; deriveShared returns the 32-byte x of ECDH
   * and rejects when `peer` is not a valid P-256 point. Each pair is used once. */
  ephemeral(): Promise<{
    publicKey: Uint8Array;
    deriveShared(peer: Uint8Array): Promise<Uint8Array>;
  }>;
  /** Imports a 32-byte AES-256-GCM key. */
  aeadKey(raw32: Uint8Array): Promise<AeadKey>;
  /**
   * Optional, for implementations that run synchronously: imports a key as a SyncAeadKey. When
   * present, sessions run their record layer synchronously (ScpSession.sealSync / openSync).
   */
  aeadKeySync?(raw32: Uint8Array): SyncAeadKey;
  /** ECDSA-P256-SHA256 over `data`, raw r‖s; false (never a rejection) for a bad signature or key. */
  verify(publicKey65: Uint8Array, data: Uint8Array, sig64: Uint8Array): Promise<boolean>;
  /** `n` cryptographically random bytes. */
  random(n: number): Uint8Array;
}

/** A P-256 identity: signs ECDSA-P256-SHA256, raw r‖s 64 bytes. */
export interface ScpSigner {
  readonly publicKey: Uint8Array;
  sign(data: Uint8Array): Promise<Uint8Array>;
}

/** What the server proved in SA, after its signature and finished MAC verified. */
export interface ServerAuth {
  /** The node identity key (65 bytes): SCP's server key, bound by the evidence. */
  readonly nodeKey: Uint8Array;
  /** The service key (65 bytes) the node endorses. */
  readonly serviceKey: Uint8Array;
  /** SHA-256(serviceKey): what clients pin. */
  readonly serviceIdentity: Uint8Array;
  /** The node's evidence, binding nodeKey with nonce endorsementNonce(serviceKey). */
  readonly evidence: Uint8Array;
  /** The COSE_Sign1 service endorsement by nodeKey. */
  readonly endorsement: Uint8Array;
}

/**
 * Per-session limits; tests lower them. Values above the defaults are refused (InvalidInputError).
 * rekeyAfter: records sent under one key, the [4] included (2 ≤ rekeyAfter ≤ seqLimit);
 * seqLimit: records accepted under one key.
 */
export interface ScpLimits {
  readonly rekeyAfter?: number;
  readonly seqLimit?: number;
}

export type ScpMessage =
  | {
      type: 'request';
      id: number;
      op: string;
      args: Map<string, unknown> | Record<string, unknown>;
    }
  | {
      type: 'response';
      id: number;
      ok: true;
      result: Map<string, unknown> | Record<string, unknown>;
    }
  | { type: 'response'; id: number; ok: false; code: string; message: string }
  | { type: 'notify'; id: number; json: string }
  | { type: 'close'; code: string; message: string };

/**
 * The record layer after the handshake. Invariants: records are sealed and opened strictly in
 * call order (each call waits for the previous one); sequence numbers are per direction and per
 * key, implicit, starting at 0; any failure of open() poisons the receive side (every later open
 * rejects with the same error); sealing or opening a close message closes the session (later
 * calls reject SCP_CLOSED).
 */
export interface ScpSession {
  /** TH6: what app.info signatures bind. */
  readonly sessionHash: Uint8Array;
  /** Client: the node key; server: the client key. */
  readonly peerKey: Uint8Array;
  /** True once a close was sealed or opened, or open() failed. */
  readonly closed: boolean;
  /** Encrypts one message; returns the frame(s) to send in order (a key update adds one before). */
  seal(message: ScpMessage, opts?: { pad?: boolean }): Promise<Uint8Array[]>;
  /** Opens one frame; rejects ScpError SCP_RECORD / SCP_SEQUENCE / SCP_PROTOCOL / SCP_CLOSED /
   * FRAME_TOO_LARGE. A key update is handled inside and yields []. */
  open(frame: Uint8Array): Promise<ScpMessage[]>;
  /**
   * Present when the session's crypto is synchronous (ScpCrypto.aeadKeySync): seal() as a plain
   * call, with the same checks, sequence numbers and failure rules; it throws where seal()
   * rejects. seal() and sealSync() may be mixed: every call completes before it returns.
   */
  sealSync?(message: ScpMessage, opts?: { pad?: boolean }): Uint8Array[];
  /** Present with sealSync: open() as a plain call (throws where open() rejects). */
  openSync?(frame: Uint8Array): ScpMessage[];
}

export interface ClientHandshakeOptions {
  readonly crypto: ScpCrypto;
  /** The client identity; its public key is sent only encrypted (in CA). */
  readonly identity: ScpSigner;
  /** Called with the signature- and MAC-verified server auth before CA is sent; throw to refuse
   * (evidence + constraint via verifyServerAuth, SVC:, pinned service). Its error is rethrown. */
  authorize(a: ServerAuth): Promise<void>;
  /** Versions offered, ascending (default [1]); tests use it for downgrade checks. */
  readonly versions?: readonly number[];
  readonly limits?: ScpLimits;
}

export interface ClientHandshake {
  /** The CH frame. Called once, first. */
  start(): Promise<Uint8Array>;
  /** Feed SH, then SA. After SA: send = [CA] and the session. Rejects ScpError (SCP_HANDSHAKE,
   * SCP_VERSION, SCP_PROTOCOL, FRAME_TOO_LARGE, or the alert's code) or authorize's error; any
   * failure poisons the handshake: every later call rejects. */
  receive(frame: Uint8Array): Promise<{ send: Uint8Array[]; session?: ScpSession }>;
}

export interface ServerHandshakeOptions {
  readonly crypto: ScpCrypto;
  /** Signs with the node identity key (the key the evidence binds). */
  readonly nodeSigner: ScpSigner;
  readonly serviceKey: Uint8Array;
  readonly evidence: Uint8Array;
  readonly endorsement: Uint8Array;
  readonly limits?: ScpLimits;
}

export interface ServerHandshake {
  /** Feed CH (→ send [SH, SA]), then CA (→ session and the verified clientKey). Rejects ScpError;
   * the caller then sends encodeAlert(err.code, err.message) and closes. Any failure poisons. */
  receive(
    frame: Uint8Array,
  ): Promise<{ send: Uint8Array[]; session?: ScpSession; clientKey?: Uint8Array }>;
}
