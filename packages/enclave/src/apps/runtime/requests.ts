/**
 * Request outcomes (docs/app-abi.md §5.3): what makes a transaction with a request id apply at
 * most once per caller. The first successful run stores its outcome in the app's reserved table
 * `$requests` under (caller id ‖ request id), in the run's own ledger transaction; a repeat of the
 * same call reads it back instead of running, and a request id reused for another call is
 * refused, naming the first call's transaction.
 */
import { CloisterError, concatBytes, InvalidInputError, sha256, toHex, utf8 } from '@cloister/core';
import { type Transaction, txidAt } from '../../ledger/ledger/index.js';
import { MAX_REQUEST_ID_BYTES, REQUESTS_TABLE } from './abi.js';
import { RequestIdReusedError } from './errors.js';

const decoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
const ZERO_BYTE = Uint8Array.of(0);

/** A stored first outcome, answered to a repeat of its request. */
export interface StoredOutcome {
  readonly result: string;
  readonly notifications: string[];
  /** The first run's transaction id: the commit that wrote the `$requests` entry. */
  readonly txid: string;
  /** The code id that produced it; undefined in outcomes stored before claims existed. */
  readonly codeId: string | undefined;
}

/** The `$requests` key of a request id: caller id ‖ UTF-8 request id. */
export function requestKey(callerId: Uint8Array, requestId: string): Uint8Array {
  return concatBytes(callerId, utf8(requestId));
}

/** Throws InvalidInputError unless `requestId` is 1..MAX_REQUEST_ID_BYTES bytes of UTF-8 text. */
export function checkRequestId(requestId: unknown): void {
  const n = typeof requestId === 'string' ? utf8(requestId).length : 0;
  if (n < 1 || n > MAX_REQUEST_ID_BYTES) {
    throw new InvalidInputError(`a request id is 1..${MAX_REQUEST_ID_BYTES} bytes of UTF-8`);
  }
}

/**
 * The stored first outcome of `reqKey` on `app`, read in `tx`; undefined when the request has
 * none. RequestIdReusedError when the stored call was another method or other argument bytes
 * (`method`, `args` as sent). An entry is written once, by the request's own transaction, and
 * never rewritten, so the version's index is that transaction's.
 */
export function readOutcome(
  tx: Transaction,
  app: string,
  reqKey: Uint8Array,
  method: string,
  args: Uint8Array,
): StoredOutcome | undefined {
  const stored = tx.version(app, REQUESTS_TABLE, reqKey);
  if (stored?.value === undefined) return undefined;
  const { result, notifications, codeId, call } = decodeOutcome(stored.value);
  // Outcomes stored before the call digest was kept have none: answered as before.
  if (call !== undefined && call !== callDigest(method, args)) {
    throw new RequestIdReusedError(app, txidAt(stored.index));
  }
  return { result, notifications, txid: txidAt(stored.index), codeId };
}

/** The txid of the transaction that stored `reqKey`'s outcome on `app`, or undefined. */
export function outcomeTxid(tx: Transaction, app: string, reqKey: Uint8Array): string | undefined {
  const stored = tx.version(app, REQUESTS_TABLE, reqKey);
  return stored?.value === undefined ? undefined : txidAt(stored.index);
}

/** Writes the first outcome of `reqKey` on `app` into `tx` (the run's own transaction). */
export function storeOutcome(
  tx: Transaction,
  app: string,
  reqKey: Uint8Array,
  o: {
    readonly result: string;
    readonly notifications: readonly string[];
    readonly codeId: string;
    readonly method: string;
    readonly args: Uint8Array;
  },
): void {
  tx.set(
    app,
    REQUESTS_TABLE,
    reqKey,
    utf8(
      JSON.stringify({
        v: 1,
        result: o.result,
        notifications: o.notifications,
        codeId: o.codeId,
        call: callDigest(o.method, o.args),
      }),
    ),
  );
}

/**
 * What a request id commits its caller to: hex SHA-256 of the method name, a 0x00 byte and the
 * argument bytes as sent. A repeat must match it byte for byte (§5.3 of docs/app-abi.md).
 */
function callDigest(method: string, args: Uint8Array): string {
  return toHex(sha256(concatBytes(utf8(method), ZERO_BYTE, args)));
}

/**
 * A stored outcome: JSON `{"v":1, "result", "notifications", "codeId", "call"}`, the code id
 * (hex) that produced it and the call digest absent in outcomes written before they existed.
 */
function decodeOutcome(bytes: Uint8Array): {
  result: string;
  notifications: string[];
  codeId?: string;
  call?: string;
} {
  const o = JSON.parse(decoder.decode(bytes)) as {
    v?: unknown;
    result?: unknown;
    notifications?: unknown;
    codeId?: unknown;
    call?: unknown;
  };
  if (o.v !== 1 || typeof o.result !== 'string' || !Array.isArray(o.notifications)) {
    throw new CloisterError('ENCODING', 'a stored request outcome is not in the v1 format');
  }
  const hex64 = (v: unknown): v is string => typeof v === 'string' && /^[0-9a-f]{64}$/.test(v);
  return {
    result: o.result,
    notifications: o.notifications.map(String),
    ...(hex64(o.codeId) ? { codeId: o.codeId } : {}),
    ...(hex64(o.call) ? { call: o.call } : {}),
  };
}
