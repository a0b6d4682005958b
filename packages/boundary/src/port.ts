/**
 * The transports under the RPC layer. Both carry whole frames (one Uint8Array each); neither
 * interprets them. A port never throws on receipt: whatever arrives is handed on as bytes (a
 * message that is not a plain, unshared Uint8Array is handed on as a copy, or as zero bytes if
 * it is not bytes at all, which the codec then rejects).
 */

/** The enclave's one connection to the world, given to `startEnclave` by the shim. */
export interface Port {
  /** Sends one message (bytes; ownership passes to the port) to the host. */
  post(bytes: Uint8Array): void;
  /** Sets the handler for every message from the host, in order. */
  onMessage(handler: (bytes: Uint8Array) => void): void;
  /**
   * Sends a request and blocks this thread until the host's reply arrives; returns the reply.
   * Throws BoundaryError if the host closed the boundary or woke the caller with no reply.
   */
  callSync(bytes: Uint8Array): Uint8Array;
}

/** The host's end of a Port. */
export interface HostPort {
  /** Sends one message (bytes; ownership passes to the port) to the enclave. */
  post(bytes: Uint8Array): void;
  /** Sets the handler for every asynchronous message from the enclave, in order. */
  onMessage(handler: (bytes: Uint8Array) => void): void;
  /**
   * Sets the handler for every synchronous request from the enclave. The enclave thread is
   * blocked until `reply` is called; call it exactly once (later calls are ignored).
   */
  onSyncCall(handler: (bytes: Uint8Array, reply: (bytes: Uint8Array) => void) => void): void;
}

/**
 * The synchronous-call signal shared by the launcher and the shim: an Int32Array of one element
 * over a SharedArrayBuffer of SYNC_SIGNAL_BYTES. The enclave stores IDLE, posts its request on the
 * sync channel and waits while the value is IDLE; the host posts the reply on the sync channel,
 * then stores REPLIED and notifies. CLOSED (stored by the host before it terminates the worker)
 * wakes a waiting enclave for good.
 */
export const SYNC_SIGNAL = { IDLE: 0, REPLIED: 1, CLOSED: 2 } as const;
export const SYNC_SIGNAL_BYTES = 4;

/**
 * Most frames in one batch message (docs/boundary.md, "Batches"): a sender splits larger ones. A
 * receiver takes a longer array as one malformed message: a sparse array of length 2^32 - 1
 * clones in 15 bytes, and walking its holes would keep the receiver busy and allocating.
 */
export const MAX_BATCH_FRAMES = 4096;

/**
 * Sends `frames` (in order) through `post` (a port's postMessage): one frame as itself, more as
 * arrays of at most MAX_BATCH_FRAMES, transferring what `transferList` says of each.
 */
export function postFrames(
  post: (message: unknown, transfer: ArrayBuffer[]) => void,
  frames: readonly Uint8Array[],
): void {
  for (let at = 0; at < frames.length; at += MAX_BATCH_FRAMES) {
    const batch =
      frames.length <= MAX_BATCH_FRAMES ? frames : frames.slice(at, at + MAX_BATCH_FRAMES);
    if (batch.length === 1) {
      const only = batch[0] as Uint8Array;
      post(only, transferList(only));
    } else {
      post(batch, [...new Set(batch.flatMap(transferList))]);
    }
  }
}

/**
 * The frames of a received message: a batch's, a single frame as itself, or, for an array above
 * MAX_BATCH_FRAMES, one zero-byte frame (which the codec rejects, as any malformed message).
 */
export function receivedFrames(message: unknown): Uint8Array[] {
  if (!Array.isArray(message)) return [frameBytes(message)];
  if (message.length > MAX_BATCH_FRAMES) return [new Uint8Array(0)];
  return Array.from(message, frameBytes);
}

/**
 * What the launcher hands the shim as `workerData`: the sync channel's enclave end (a
 * MessagePort) and the signal buffer. Typed loosely here: this package uses no Node API.
 */
export interface EnclaveWorkerData {
  readonly syncPort: unknown;
  readonly signal: SharedArrayBuffer;
}

/**
 * The bytes of a message received from the other side, whatever it is: a plain Uint8Array as
 * is; one over a SharedArrayBuffer copied (the sender could change shared bytes while they are
 * checked); anything else (the other side can post any cloneable value) zero bytes, which the
 * codec rejects as a truncated frame.
 */
export function frameBytes(message: unknown): Uint8Array {
  if (!(message instanceof Uint8Array)) return new Uint8Array(0);
  return message.buffer instanceof ArrayBuffer ? message : new Uint8Array(message);
}

/**
 * What to transfer when posting `bytes`: its buffer, if the view covers all of it and it is large
 * (ownership of posted bytes passes to the port, so either is allowed), else nothing (copied).
 */
export function transferList(bytes: Uint8Array): ArrayBuffer[] {
  const b = bytes.buffer;
  return bytes.byteLength >= TRANSFER_MIN_BYTES &&
    b instanceof ArrayBuffer &&
    bytes.byteOffset === 0 &&
    bytes.byteLength === b.byteLength
    ? [b]
    : [];
}

/**
 * Frames smaller than this are copied, not transferred: at these sizes a copy is as fast (no
 * difference measured at 64 bytes), and large frames (storage pages, sealed state) avoid a copy.
 */
export const TRANSFER_MIN_BYTES = 16 * 1024;
