import { CloisterError, ERROR_CODES, type ErrorCode } from '@cloister/core';

/** Where a frame's header was readable: lets a receiver answer the call it belongs to. */
export interface FrameHeader {
  readonly kind: number;
  readonly id: number;
}

/**
 * A malformed or unexpected message at the host/enclave boundary: bad version, unknown kind,
 * wrong direction, truncated or trailing bytes, a length over the cap, an unknown call id, a
 * duplicate reply. `header` is set when the frame's header was readable.
 */
export class BoundaryError extends CloisterError {
  readonly header: FrameHeader | undefined;

  constructor(message: string, header?: FrameHeader) {
    super('BOUNDARY', message);
    this.header = header;
  }
}

/**
 * The other side answered a call with the generic error reply. `code` is the code it sent (a
 * known ERROR_CODES key, checked on receipt); `message` is its text, unverified: it came from the
 * other side of the boundary.
 */
export class RemoteError extends CloisterError {
  readonly call: string;

  constructor(call: string, code: ErrorCode, message: string) {
    super(code, message);
    this.call = call;
  }
}

/** True when `code` is a known error code. */
export function isErrorCode(code: string): code is ErrorCode {
  return Object.hasOwn(ERROR_CODES, code);
}
