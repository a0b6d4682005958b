/**
 * The record store served to the enclave through the boundary (docs/boundary.md §1, "Store
 * calls"): the host's answers to `store.get`, `store.getMany`, `store.write` and `store.iterate`.
 *
 * The host only moves opaque bytes between the enclave and its Store; it believes nothing the
 * enclave sends either: every request is checked against the Store contract's key rules and
 * against caps with stated defaults (STORE_SERVICE_LIMITS) before the store is touched, and a bad
 * request is answered with a named error (StoreRequestError) while the host keeps serving.
 */
import type { HostCallHandlers } from '@cloister/boundary';
import { CloisterError } from '@cloister/core';
import {
  type BatchOp,
  MAX_KEY_BYTES,
  MAX_VALUE_BYTES,
  MAX_WRITE_BYTES,
  MAX_WRITE_OPS,
  type Store,
} from './store.js';

/** Caps on what one store call from the enclave may ask for. */
export interface StoreServiceLimits {
  /** Most keys in one `store.getMany`. */
  readonly maxGetManyKeys: number;
  /** Most operations in one `store.write`. */
  readonly maxWriteOps: number;
  /** Most bytes (keys plus values) in one `store.write`. */
  readonly maxWriteBytes: number;
  /** Most entries in one `store.iterate` page (the request's `limit` may not exceed it). */
  readonly maxPageEntries: number;
  /**
   * A page stops once its keys and values reach this many bytes (it always holds at least one
   * entry, so iteration makes progress; the frame cap still bounds a single huge entry).
   */
  readonly maxPageBytes: number;
}

/** Defaults: 1024 keys per getMany, 65,536 ops and 48 MiB per write, 1024 entries or 4 MiB per page. */
export const STORE_SERVICE_LIMITS: Readonly<StoreServiceLimits> = {
  maxGetManyKeys: 1024,
  maxWriteOps: MAX_WRITE_OPS,
  maxWriteBytes: MAX_WRITE_BYTES,
  maxPageEntries: 1024,
  maxPageBytes: 4 * 1024 * 1024,
};

/** The store calls of the catalogue, for metrics and tests. */
export const STORE_CALLS = ['store.get', 'store.getMany', 'store.write', 'store.iterate'] as const;
export type StoreCall = (typeof STORE_CALLS)[number];

/** Operation types of a `store.write` request (its `types` field, one byte per operation). */
export const STORE_OP = { put: 0, del: 1 } as const;

/**
 * A store request from the enclave that the host refuses: malformed (INVALID_INPUT: bad key,
 * lists that do not match) or over a cap (REQUEST_TOO_LARGE). Nothing of it reached the store.
 */
export class StoreRequestError extends CloisterError {
  readonly call: StoreCall;

  constructor(call: StoreCall, code: 'INVALID_INPUT' | 'REQUEST_TOO_LARGE', message: string) {
    super(code, `${call}: ${message}`);
    this.call = call;
  }
}

const EMPTY = new Uint8Array(0);

function checkLimits(l: StoreServiceLimits): void {
  for (const [name, v] of Object.entries(l)) {
    if (!Number.isSafeInteger(v) || v < 1) {
      throw new CloisterError(
        'INVALID_INPUT',
        `store service limit ${name} must be a whole number >= 1`,
      );
    }
  }
}

function checkKey(call: StoreCall, key: Uint8Array, what: string): void {
  if (key.length === 0 || key.length > MAX_KEY_BYTES) {
    throw new StoreRequestError(
      call,
      'INVALID_INPUT',
      `${what} must be 1 to ${MAX_KEY_BYTES} bytes long; it is ${key.length}`,
    );
  }
}

/** A range bound: empty means "open". */
function bound(key: Uint8Array, what: string): Uint8Array | undefined {
  if (key.length === 0) return undefined;
  checkKey('store.iterate', key, what);
  return key;
}

/** The batch a `store.write` request describes, checked whole before anything is written. */
function batchOf(
  req: { types: Uint8Array; keys: Uint8Array[]; values: Uint8Array[] },
  limits: StoreServiceLimits,
): BatchOp[] {
  const { types, keys, values } = req;
  const call = 'store.write';
  if (types.length !== keys.length) {
    throw new StoreRequestError(
      call,
      'INVALID_INPUT',
      `has ${types.length} operation types for ${keys.length} keys`,
    );
  }
  if (keys.length > limits.maxWriteOps) {
    throw new StoreRequestError(
      call,
      'REQUEST_TOO_LARGE',
      `has ${keys.length} operations; the limit is ${limits.maxWriteOps}`,
    );
  }
  const batch: BatchOp[] = new Array(keys.length);
  let bytes = 0;
  let v = 0;
  for (let i = 0; i < keys.length; i++) {
    const key = keys[i] as Uint8Array;
    checkKey(call, key, `key ${i}`);
    bytes += key.length;
    const type = types[i];
    if (type === STORE_OP.put) {
      const value = values[v++];
      if (value === undefined) {
        throw new StoreRequestError(call, 'INVALID_INPUT', `has fewer values than puts`);
      }
      if (value.length > MAX_VALUE_BYTES) {
        throw new StoreRequestError(
          call,
          'REQUEST_TOO_LARGE',
          `value ${v - 1} is ${value.length} bytes; the limit is ${MAX_VALUE_BYTES}`,
        );
      }
      bytes += value.length;
      batch[i] = { type: 'put', key, value };
    } else if (type === STORE_OP.del) {
      batch[i] = { type: 'del', key };
    } else {
      throw new StoreRequestError(call, 'INVALID_INPUT', `operation ${i} has unknown type ${type}`);
    }
  }
  if (v !== values.length) {
    throw new StoreRequestError(call, 'INVALID_INPUT', `has ${values.length} values for ${v} puts`);
  }
  if (bytes > limits.maxWriteBytes) {
    throw new StoreRequestError(
      call,
      'REQUEST_TOO_LARGE',
      `is ${bytes} bytes; the limit is ${limits.maxWriteBytes}`,
    );
  }
  return batch;
}

/**
 * The host's handlers for the enclave's store calls, over `store`. `limits` overrides
 * STORE_SERVICE_LIMITS field by field. Every request is validated before the store is touched;
 * failures of the store itself (StoreError) are answered with their code and message.
 */
export function storeOcalls(
  store: Store,
  limits: Partial<StoreServiceLimits> = {},
): HostCallHandlers {
  const l: StoreServiceLimits = { ...STORE_SERVICE_LIMITS, ...limits };
  checkLimits(l);
  return {
    'store.get': (req) => {
      checkKey('store.get', req.key, 'key');
      const value = store.get(req.key);
      return value === undefined ? { found: false, value: EMPTY } : { found: true, value };
    },
    'store.getMany': (req) => {
      const { keys } = req;
      if (keys.length > l.maxGetManyKeys) {
        throw new StoreRequestError(
          'store.getMany',
          'REQUEST_TOO_LARGE',
          `asks for ${keys.length} keys; the limit is ${l.maxGetManyKeys}`,
        );
      }
      for (let i = 0; i < keys.length; i++) {
        checkKey('store.getMany', keys[i] as Uint8Array, `key ${i}`);
      }
      const found = new Uint8Array(keys.length);
      const values: Uint8Array[] = new Array(keys.length);
      for (let i = 0; i < keys.length; i++) {
        const v = store.get(keys[i] as Uint8Array);
        found[i] = v === undefined ? 0 : 1;
        values[i] = v ?? EMPTY;
      }
      return { found, values };
    },
    'store.write': async (req) => {
      const batch = batchOf(req, l);
      await store.write(batch, { sync: req.sync });
      return {};
    },
    'store.iterate': async (req) => {
      const gte = bound(req.gte, 'gte');
      const lt = bound(req.lt, 'lt');
      if (req.limit < 1 || req.limit > l.maxPageEntries) {
        throw new StoreRequestError(
          'store.iterate',
          req.limit < 1 ? 'INVALID_INPUT' : 'REQUEST_TOO_LARGE',
          `limit must be 1 to ${l.maxPageEntries}; it is ${req.limit}`,
        );
      }
      const keys: Uint8Array[] = [];
      const values: Uint8Array[] = [];
      let bytes = 0;
      let done = true;
      // One entry more than the page holds: whether it exists says if the range goes on.
      const range = { limit: req.limit + 1, ...(gte ? { gte } : {}), ...(lt ? { lt } : {}) };
      for await (const e of store.iterate(range)) {
        if (keys.length === req.limit || bytes >= l.maxPageBytes) {
          done = false;
          break;
        }
        keys.push(e.key);
        values.push(e.value);
        bytes += e.key.length + e.value.length;
      }
      return { keys, values, done };
    },
  };
}
