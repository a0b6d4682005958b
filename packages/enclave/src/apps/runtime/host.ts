/**
 * The host functions of ABI v1 (docs/app-abi.md §4–§10), built per instance around the state of
 * the call it runs (rebound to each call's state when the instance is reused, `abiBinding`). Every
 * function reads and writes only the module's own memory (a range outside it is the
 * trap `out-of-bounds`), names tables of the call's own app ledger only (there is no ledger
 * argument), refuses reserved tables before touching the ledger, refuses writes in queries, and
 * charges the bytes it touches before it touches them.
 */
import { generateKeyPairSync, type KeyObject, sign, verify } from 'node:crypto';
import { clipText, concatBytes, sha256, toHex, utf8 } from '@cloister/core';
import {
  aesGcmOpen,
  aesGcmSeal,
  privateKeyFromPkcs8,
  publicKeyFromRaw,
  rawPublicKey,
} from '@cloister/node-crypto';
import {
  type LedgerEngine,
  type LedgerView,
  ReservedTableError,
  type Transaction,
} from '../../ledger/ledger/index.js';
import {
  AppTrapError,
  ResultTooLargeError,
  type SandboxHost,
  type SandboxImports,
} from '../sandbox/index.js';
import {
  type AbiLimits,
  FUEL_PER_ENTRY,
  FUEL_PER_KEY_WRITTEN,
  hostBase,
  IMPORT_MODULE,
  JSON_FUEL_PER_BYTE,
  KEY_KIND,
  KEYS_TABLE,
  KIND,
  MAX_ABORT_CHARS,
  MAX_APP_CODE_BYTES,
  MAX_APP_MESSAGE_BYTES,
  MAX_CURSOR_BYTES,
  MAX_KEY_NAME_BYTES,
  MAX_METHOD_BYTES,
  MAX_PAGE,
  MAX_TRACE_LINES,
  NAME_RE,
  STATUS,
} from './abi.js';
import {
  AbiError,
  AppAbortError,
  AppError,
  QueryWriteError,
  ResultInvalidError,
} from './errors.js';

export type CallKind = 'query' | 'transaction';

/** An app's ECDSA key (`$keys`), parsed: its KeyObject and its raw public key. */
interface ParsedKey {
  readonly privateKey: KeyObject;
  readonly publicKey: Uint8Array;
}

/**
 * Parsed app keys by SHA-256 of their PKCS #8 bytes (a key's bytes never change once created:
 * `key_create` refuses an existing name). Parsing PKCS #8 costs node:crypto about 350 µs, ten
 * times a signature, so a key used again is taken from here. Fuel does not depend on it: the
 * bases of `key_public` and `key_sign` pay for the parse (docs/app-abi.md §11), so a module that
 * cycles through more keys than this holds is still bounded by its fuel. Keyed by digest so no
 * private key bytes sit in a string; bounded, oldest out first.
 */
const parsedKeys = new Map<string, ParsedKey>();
const MAX_PARSED_KEYS = 256;

function appKey(material: Uint8Array): ParsedKey {
  const id = toHex(sha256(material));
  const hit = parsedKeys.get(id);
  if (hit !== undefined) return hit;
  const privateKey = privateKeyFromPkcs8(material);
  const parsed = { privateKey, publicKey: rawPublicKey(privateKey) };
  if (parsedKeys.size >= MAX_PARSED_KEYS) {
    const oldest = parsedKeys.keys().next().value;
    if (oldest !== undefined) parsedKeys.delete(oldest);
  }
  parsedKeys.set(id, parsed);
  return parsed;
}

export interface Route {
  readonly name: string;
  readonly kind: CallKind;
  readonly id: number;
}

/** What one instance's host functions see and produce. */
export interface CallState {
  /** 'deploy': only `route` (during cloister_routes) and pure functions work. */
  readonly phase: 'deploy' | 'call';
  readonly app: string;
  readonly kind: CallKind;
  readonly engine: LedgerEngine;
  /** The call's ledger transaction (reserved tables allowed: this code guards them). */
  readonly tx: Transaction | undefined;
  readonly callerId: Uint8Array;
  readonly requestId: string | undefined;
  /** Milliseconds, monotonic, one value per call. */
  readonly time: number;
  readonly args: Uint8Array;
  readonly limits: AbiLimits;
  readonly maxResultBytes: number;
  readonly random: (n: number) => Uint8Array;
  readonly trace: ((message: string, values: readonly number[]) => void) | undefined;
  /** Outputs. */
  result: Uint8Array | undefined;
  readonly notifications: Uint8Array[];
  /** Set during cloister_routes at deploy. */
  routes: Route[] | undefined;
}

// ignoreBOM: a leading U+FEFF is kept as the character it is, not dropped, so text reads as
// exactly the bytes given: JSON.parse then refuses it (not JSON whitespace), and no name aliases
// the same name without it.
const decoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
const lenient = new TextDecoder('utf-8');
const utf16 = new TextDecoder('utf-16le');

const NONCE = 12;
const EMPTY = new Uint8Array(0);
const TAG = 16;

/**
 * Why `bytes` are not acceptable JSON text — not strict UTF-8 or not one RFC 8259 JSON value
 * (`JSON.parse`; a byte-order mark is refused), or arrays and objects nested deeper than
 * `maxDepth` — or undefined when they are. JSON.parse itself does not recurse, but whatever later
 * walks the value (JSON.stringify, a client's code) may: the depth cap (DESIGN.md §11) keeps a
 * value every reader can handle.
 */
export function jsonTextProblem(bytes: Uint8Array, maxDepth: number): string | undefined {
  try {
    JSON.parse(decoder.decode(bytes));
  } catch {
    return 'is not valid JSON text';
  }
  // Valid JSON, so a byte scan suffices: brackets count outside strings only, a backslash in a
  // string skips the byte after it, and UTF-8 continuation bytes never equal an ASCII byte.
  let depth = 0;
  let inString = false;
  for (let i = 0; i < bytes.length; i++) {
    const b = bytes[i] as number;
    if (inString) {
      if (b === 0x5c) i++;
      else if (b === 0x22) inString = false;
    } else if (b === 0x22) inString = true;
    else if (b === 0x5b || b === 0x7b) {
      if (++depth > maxDepth) return `nests arrays and objects deeper than ${maxDepth} levels`;
    } else if (b === 0x5d || b === 0x7d) depth--;
  }
  return undefined;
}

/** Key and value bytes of page entries or versions (what `onRead` charged for). */
function sizeOf(list: readonly { key?: Uint8Array; value?: Uint8Array | undefined }[]): number {
  let n = 0;
  for (const e of list) n += (e.key?.length ?? 0) + (e.value?.length ?? 0);
  return n;
}

/** The imports of one instance (module `cloister` plus AssemblyScript's `env`, `Date.now` included). */
export function abiImports(state: CallState): SandboxImports {
  return abiBinding(state).imports;
}

/**
 * The imports of one instance, bound to one call's state at a time: a reused instance
 * (docs/sandbox.md §5.1) is bound to each call's state before the call. `bind` also empties the
 * host buffer (§1.1) and forgets the snapshot view, so nothing of the previous call reaches the
 * next one through the host side either.
 */
export interface AbiBinding {
  readonly imports: SandboxImports;
  bind(state: CallState): void;
}

export function abiBinding(initial: CallState): AbiBinding {
  let state = initial;
  let buffer: Uint8Array = EMPTY;
  let view: LedgerView | undefined;
  // Per call (reset by bind): the request id's bytes once encoded; the trace lines handed on.
  let requestIdBytes: Uint8Array | undefined;
  let traced = 0;
  const imports: SandboxImports = (host: SandboxHost) => {
    const bufferOf = (): ArrayBuffer => {
      const m = host.memory();
      if (!m) throw new AppTrapError('out-of-bounds');
      return m.buffer;
    };
    /** A copy of `len` bytes at `ptr` (both unsigned), or the trap out-of-bounds. */
    const read = (ptr: number, len: number): Uint8Array => {
      const p = ptr >>> 0;
      const l = len >>> 0;
      const b = bufferOf();
      if (p + l > b.byteLength) throw new AppTrapError('out-of-bounds');
      return new Uint8Array(b, p, l).slice();
    };
    const write = (ptr: number, bytes: Uint8Array): void => {
      const p = ptr >>> 0;
      const b = bufferOf();
      if (p + bytes.length > b.byteLength) throw new AppTrapError('out-of-bounds');
      new Uint8Array(b, p, bytes.length).set(bytes);
    };
    const text = (fn: string, what: string, ptr: number, len: number, max: number): string => {
      const l = len >>> 0;
      if (l === 0 || l > max) throw new AbiError(fn, `${what} must be 1..${max} bytes`);
      try {
        return decoder.decode(read(ptr, l));
      } catch (e) {
        if (e instanceof AppTrapError) throw e;
        throw new AbiError(fn, `${what} is not valid UTF-8`);
      }
    };
    /** Fills the host buffer (§1.1) and returns its size. */
    const fill = (bytes: Uint8Array): number => {
      buffer = bytes;
      return bytes.length;
    };
    /**
     * Imports whose answer depends on the call (its arguments, caller, time, randomness) are
     * refused at deploy (the start function, cloister_abi_version, cloister_routes): the enclave
     * runs those again each time it loads the code, so the route table must come out the same
     * every time (§3.1, §15). Only route, sha256, ecdsa_verify, buffer_read, fail, abort and
     * trace answer there.
     */
    const atCall = (fn: string): void => {
      if (state.phase !== 'call') {
        throw new AbiError(
          fn,
          'not available at deploy: the route table must come out the same each time the code is loaded',
        );
      }
    };
    const txOf = (fn: string): Transaction => {
      if (state.phase !== 'call' || state.tx === undefined) {
        throw new AbiError(fn, 'the ledger is reachable only during a call, not at deploy');
      }
      return state.tx;
    };
    const writable = (fn: string): Transaction => {
      const tx = txOf(fn);
      if (state.kind !== 'transaction') throw new QueryWriteError(fn);
      return tx;
    };
    const snapshotView = (fn: string): LedgerView => {
      const tx = txOf(fn);
      view ??= state.engine.at(tx.snapshot);
      return view;
    };
    /** An app table name: UTF-8, 1..255 bytes, never reserved ('$' first). */
    const table = (fn: string, ptr: number, len: number, what: string): string => {
      const name = text(fn, 'a table name', ptr, len, 255);
      if (name.includes('\u0000')) {
        throw new AbiError(fn, 'a table name must not contain a NUL byte');
      }
      if (name.startsWith('$')) throw new ReservedTableError(name, what);
      return name;
    };
    const limit = (fn: string, n: number): number => {
      if (!(n >= 1 && n <= MAX_PAGE)) throw new AbiError(fn, `limit must be 1..${MAX_PAGE}`);
      return n;
    };
    const keyName = (fn: string, ptr: number, len: number): Uint8Array =>
      utf8(text(fn, 'a key name', ptr, len, MAX_KEY_NAME_BYTES));
    /** The named key record: kind byte ‖ material, or a status. */
    const loadKey = (fn: string, name: Uint8Array, want: number): Uint8Array | number => {
      const rec = txOf(fn).get(state.app, KEYS_TABLE, name);
      if (rec === undefined) return STATUS.notFound;
      if (rec[0] !== want) return STATUS.wrongKind;
      return rec.subarray(1);
    };

    const cloister = {
      buffer_read(ptr: number): void {
        host.chargeBytes(buffer.length);
        write(ptr, buffer);
      },
      call_args(ptr: number): void {
        atCall('call_args');
        host.chargeBytes(state.args.length);
        write(ptr, state.args);
      },
      route(kind: number, namePtr: number, nameLen: number, id: number): void {
        const routes = state.routes;
        if (routes === undefined) {
          throw new AbiError('route', 'routes are registered only by cloister_routes at deploy');
        }
        host.chargeBytes(nameLen >>> 0);
        if (kind !== KIND.query && kind !== KIND.transaction) {
          throw new AbiError('route', `kind ${kind} is neither 0 (query) nor 1 (transaction)`);
        }
        const name = text('route', 'a method name', namePtr, nameLen, MAX_METHOD_BYTES);
        if (!NAME_RE.test(name)) throw new AbiError('route', 'a method name is [A-Za-z0-9_.-]');
        if (routes.some((r) => r.name === name)) {
          throw new AbiError('route', `method '${name}' is registered twice`);
        }
        if (routes.length >= state.limits.maxRoutes) {
          throw new AbiError('route', `more than ${state.limits.maxRoutes} routes`);
        }
        routes.push({ name, kind: kind === KIND.query ? 'query' : 'transaction', id });
      },
      result_set(ptr: number, len: number): void {
        atCall('result_set');
        const l = len >>> 0;
        host.chargeBytes(l);
        // Checked as JSON text after the call; a transaction's result with a request id is also
        // stored as its outcome, at ledger_set's 1 a byte.
        const stored = state.kind === 'transaction' && state.requestId !== undefined ? l : 0;
        host.chargeFuel(l * JSON_FUEL_PER_BYTE + stored);
        if (l > state.maxResultBytes) throw new ResultTooLargeError(l, state.maxResultBytes);
        state.result = read(ptr, l);
      },
      notify(ptr: number, len: number): void {
        atCall('notify');
        const l = len >>> 0;
        host.chargeBytes(l);
        host.chargeFuel(l * JSON_FUEL_PER_BYTE); // checked as JSON text below
        if (state.notifications.length >= state.limits.maxNotifications) {
          throw new AbiError('notify', `more than ${state.limits.maxNotifications} notifications`);
        }
        if (l > state.limits.maxNotificationBytes) {
          throw new AbiError(
            'notify',
            `a notification above ${state.limits.maxNotificationBytes} bytes`,
          );
        }
        const bytes = read(ptr, l);
        const problem = jsonTextProblem(bytes, state.limits.maxJsonDepth);
        if (problem !== undefined) throw new ResultInvalidError('notification', problem);
        state.notifications.push(bytes);
      },
      fail(codePtr: number, codeLen: number, msgPtr: number, msgLen: number): never {
        host.chargeBytes((codeLen >>> 0) + Math.min(msgLen >>> 0, MAX_APP_MESSAGE_BYTES));
        const code = text('fail', 'an error code', codePtr, codeLen, MAX_APP_CODE_BYTES);
        if (!NAME_RE.test(code)) throw new AbiError('fail', 'an error code is [A-Za-z0-9_.-]');
        const raw = read(msgPtr, Math.min(msgLen >>> 0, MAX_APP_MESSAGE_BYTES));
        // U+FFFD is 3 bytes in UTF-8 for each invalid one: clip again to keep the 1024 promised.
        const message = clipText(
          lenient.decode(raw).replace(/\uFFFD+$/, ''),
          MAX_APP_MESSAGE_BYTES,
        );
        throw new AppError(code, message);
      },
      context_kind(): number {
        atCall('context_kind');
        return state.kind === 'query' ? KIND.query : KIND.transaction;
      },
      context_caller(out: number): void {
        atCall('context_caller');
        host.chargeBytes(state.callerId.length);
        write(out, state.callerId);
      },
      context_request_id(): number {
        atCall('context_request_id');
        buffer = EMPTY;
        if (state.requestId === undefined) return STATUS.notFound;
        requestIdBytes ??= utf8(state.requestId);
        return fill(requestIdBytes);
      },
      context_index(): bigint {
        return BigInt(txOf('context_index').snapshot);
      },
      context_time(): bigint {
        atCall('context_time');
        return BigInt(state.time);
      },

      ledger_get(tPtr: number, tLen: number, kPtr: number, kLen: number): number {
        buffer = EMPTY;
        host.chargeFuel((tLen >>> 0) + (kLen >>> 0));
        const t = table('ledger_get', tPtr, tLen, 'read');
        const value = txOf('ledger_get').get(state.app, t, read(kPtr, kLen));
        if (value === undefined) return STATUS.notFound;
        host.chargeFuel(value.length);
        return fill(value);
      },
      ledger_set(
        tPtr: number,
        tLen: number,
        kPtr: number,
        kLen: number,
        vPtr: number,
        vLen: number,
      ): void {
        const tx = writable('ledger_set');
        host.chargeFuel((tLen >>> 0) + (kLen >>> 0) + (vLen >>> 0));
        const t = table('ledger_set', tPtr, tLen, 'written');
        const keys = tx.keysWritten;
        tx.set(state.app, t, read(kPtr, kLen), read(vPtr, vLen));
        if (tx.keysWritten > keys) host.chargeFuel(FUEL_PER_KEY_WRITTEN); // its share of the commit
      },
      ledger_remove(tPtr: number, tLen: number, kPtr: number, kLen: number): void {
        const tx = writable('ledger_remove');
        host.chargeFuel((tLen >>> 0) + (kLen >>> 0));
        const t = table('ledger_remove', tPtr, tLen, 'written');
        const keys = tx.keysWritten;
        tx.remove(state.app, t, read(kPtr, kLen));
        if (tx.keysWritten > keys) host.chargeFuel(FUEL_PER_KEY_WRITTEN);
      },
      ledger_history(tPtr: number, tLen: number, kPtr: number, kLen: number, n: number): number {
        buffer = EMPTY;
        host.chargeFuel((tLen >>> 0) + (kLen >>> 0));
        const t = table('ledger_history', tPtr, tLen, 'read');
        const key = read(kPtr, kLen);
        // Read through the transaction too: the key joins its read set, so a version committed
        // after the snapshot makes the commit conflict (the snapshot view alone records nothing,
        // and a decision taken from it committed as if no one else wrote).
        txOf('ledger_history').version(state.app, t, key);
        const versions = snapshotView('ledger_history').history(state.app, t, key, {
          limit: limit('ledger_history', n),
          onRead: (bytes) => host.chargeFuel(FUEL_PER_ENTRY + bytes),
        });
        const out = encodeHistory(versions);
        // What the reads did not cover: the page's framing.
        host.chargeFuel(Math.max(0, out.length - sizeOf(versions)));
        return fill(out);
      },
      ledger_list(tPtr: number, tLen: number, cPtr: number, cLen: number, n: number): number {
        buffer = EMPTY;
        host.chargeFuel((tLen >>> 0) + (cLen >>> 0));
        const t = table('ledger_list', tPtr, tLen, 'listed');
        if (cLen >>> 0 > MAX_CURSOR_BYTES) {
          throw new AbiError('ledger_list', `a cursor is at most ${MAX_CURSOR_BYTES} bytes`);
        }
        const cursor = cLen >>> 0 === 0 ? undefined : read(cPtr, cLen);
        const page = txOf('ledger_list').list(state.app, t, {
          limit: limit('ledger_list', n),
          ...(cursor === undefined ? {} : { cursor }),
          onRead: (bytes) => host.chargeFuel(FUEL_PER_ENTRY + bytes),
        });
        const out = encodePage(page.entries, page.cursor);
        host.chargeFuel(Math.max(0, out.length - sizeOf(page.entries)));
        return fill(out);
      },
      ledger_prove(tPtr: number, tLen: number, kPtr: number, kLen: number): number {
        buffer = EMPTY;
        host.chargeFuel((tLen >>> 0) + (kLen >>> 0));
        const t = table('ledger_prove', tPtr, tLen, 'proved');
        const key = read(kPtr, kLen);
        txOf('ledger_prove').version(state.app, t, key); // into the read set, as ledger_history
        const proof = snapshotView('ledger_prove').prove({ app: state.app }, state.app, t, key);
        host.chargeFuel(proof.length);
        return fill(proof);
      },
      ledger_state_hash(out: number): void {
        host.chargeBytes(32);
        write(out, snapshotView('ledger_state_hash').stateHash);
      },

      sha256(ptr: number, len: number, out: number): void {
        host.chargeFuel(len >>> 0);
        write(out, sha256(read(ptr, len)));
      },
      random_bytes(out: number, len: number): void {
        atCall('random_bytes');
        const l = len >>> 0;
        if (l > state.limits.maxRandomBytes) {
          throw new AbiError(
            'random_bytes',
            `at most ${state.limits.maxRandomBytes} bytes per call`,
          );
        }
        host.chargeFuel(l);
        write(out, state.random(l));
      },
      key_create(kind: number, nPtr: number, nLen: number): number {
        const tx = writable('key_create');
        if (kind !== KEY_KIND.ecdsaP256 && kind !== KEY_KIND.aes256gcm) {
          throw new AbiError(
            'key_create',
            `key kind ${kind} is neither 1 (ECDSA P-256) nor 2 (AES-256-GCM)`,
          );
        }
        const name = keyName('key_create', nPtr, nLen);
        if (tx.get(state.app, KEYS_TABLE, name) !== undefined) return STATUS.exists;
        let material: Uint8Array;
        if (kind === KEY_KIND.ecdsaP256) {
          const { privateKey: k } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
          material = new Uint8Array(k.export({ format: 'der', type: 'pkcs8' }));
        } else {
          material = state.random(32);
        }
        tx.set(state.app, KEYS_TABLE, name, concatBytes(Uint8Array.of(kind), material));
        return 0;
      },
      key_public(nPtr: number, nLen: number): number {
        buffer = EMPTY;
        const k = loadKey('key_public', keyName('key_public', nPtr, nLen), KEY_KIND.ecdsaP256);
        if (typeof k === 'number') return k;
        host.chargeBytes(65);
        return fill(appKey(k).publicKey);
      },
      key_sign(nPtr: number, nLen: number, mPtr: number, mLen: number): number {
        buffer = EMPTY;
        host.chargeFuel(mLen >>> 0);
        const k = loadKey('key_sign', keyName('key_sign', nPtr, nLen), KEY_KIND.ecdsaP256);
        if (typeof k === 'number') return k;
        const sig = sign('sha256', read(mPtr, mLen), {
          key: appKey(k).privateKey,
          dsaEncoding: 'ieee-p1363',
        });
        return fill(new Uint8Array(sig));
      },
      ecdsa_verify(
        pPtr: number,
        pLen: number,
        mPtr: number,
        mLen: number,
        sPtr: number,
        sLen: number,
      ): number {
        host.chargeFuel(mLen >>> 0);
        // The fixed lengths first: nothing is copied for a key or signature that cannot verify.
        if (pLen >>> 0 !== 65 || sLen >>> 0 !== 64) return 0;
        const pub = read(pPtr, pLen);
        const msg = read(mPtr, mLen);
        const sig = read(sPtr, sLen);
        if (pub[0] !== 0x04) return 0;
        try {
          const key = publicKeyFromRaw(pub);
          return verify('sha256', msg, { key, dsaEncoding: 'ieee-p1363' }, sig) ? 1 : 0;
        } catch {
          return 0;
        }
      },
      key_encrypt(
        nPtr: number,
        nLen: number,
        pPtr: number,
        pLen: number,
        aPtr: number,
        aLen: number,
      ): number {
        buffer = EMPTY;
        host.chargeFuel((pLen >>> 0) + (aLen >>> 0));
        const k = loadKey('key_encrypt', keyName('key_encrypt', nPtr, nLen), KEY_KIND.aes256gcm);
        if (typeof k === 'number') return k;
        const nonce = state.random(NONCE);
        const sealed = aesGcmSeal(k, nonce, read(aPtr, aLen), read(pPtr, pLen));
        return fill(concatBytes(nonce, sealed));
      },
      key_decrypt(
        nPtr: number,
        nLen: number,
        cPtr: number,
        cLen: number,
        aPtr: number,
        aLen: number,
      ): number {
        buffer = EMPTY;
        host.chargeFuel((cLen >>> 0) + (aLen >>> 0));
        const k = loadKey('key_decrypt', keyName('key_decrypt', nPtr, nLen), KEY_KIND.aes256gcm);
        if (typeof k === 'number') return k;
        const ct = read(cPtr, cLen);
        const aad = read(aPtr, aLen);
        if (ct.length < NONCE + TAG) return STATUS.authFailed;
        const plain = aesGcmOpen(k, ct.subarray(0, NONCE), aad, ct.subarray(NONCE));
        if (plain === undefined) return STATUS.authFailed;
        return fill(plain);
      },
    };

    /** An AssemblyScript string (UTF-16LE, byte length at ptr − 4); '' for 0 or unreadable. */
    const asString = (ptr: number): string => {
      const p = ptr >>> 0;
      if (p < 4) return '';
      const b = bufferOf();
      if (p > b.byteLength) return '';
      const len = new DataView(b).getUint32(p - 4, true);
      const n = Math.min(len, MAX_ABORT_CHARS * 2, b.byteLength - p) & ~1;
      return utf16.decode(new Uint8Array(b, p, n));
    };

    const env = {
      abort(msg: number, file: number, line: number, col: number): never {
        host.chargeBytes(MAX_ABORT_CHARS * 4);
        throw new AppAbortError(asString(msg), asString(file), line >>> 0, col >>> 0);
      },
      trace(msg: number, n: number, a0: number, a1: number, a2: number, a3: number, a4: number) {
        host.chargeBytes(MAX_ABORT_CHARS * 2);
        if (state.trace === undefined || ++traced > MAX_TRACE_LINES) return;
        const values = [a0, a1, a2, a3, a4].slice(0, Math.max(0, Math.min(5, n)));
        state.trace(asString(msg), values);
      },
      seed(): number {
        atCall('env.seed');
        // 52 random bits plus one: never 0, exact in an f64.
        const b = state.random(8);
        // The top 52 bits of the 64 read big-endian (without a BigInt: it cost most of a call).
        const hi =
          ((b[0] as number) << 24) |
          ((b[1] as number) << 16) |
          ((b[2] as number) << 8) |
          (b[3] as number);
        const lo =
          ((b[4] as number) << 24) |
          ((b[5] as number) << 16) |
          ((b[6] as number) << 8) |
          (b[7] as number);
        return (hi >>> 0) * 2 ** 20 + ((lo >>> 0) >>> 12) + 1;
      },
    };

    // The large bases are charged here, as the function starts, so a call through a table pays
    // them too (abi.ts, HOST_CHARGED_BASE).
    const charge = <T extends object>(module: string, fns: T): T => {
      const charged: Record<string, unknown> = { ...(fns as Record<string, unknown>) };
      for (const [field, fn] of Object.entries(fns)) {
        const base = hostBase(module, field);
        if (base === 0) continue;
        const f = fn as (...a: number[]) => unknown;
        charged[field] = (...a: number[]): unknown => {
          host.chargeFuel(base);
          return f(...a);
        };
      }
      return charged as T;
    };
    return {
      [IMPORT_MODULE]: charge(IMPORT_MODULE, cloister),
      env: charge('env', {
        ...env,
        'Date.now': (): number => {
          atCall('env.Date.now');
          return state.time;
        },
      }),
    };
  };
  return {
    imports,
    bind(next) {
      state = next;
      buffer = EMPTY;
      view = undefined;
      requestIdBytes = undefined;
      traced = 0;
    },
  };
}

/** §4.4: u32 count, then { u64 index; i32 len (−1 removed); bytes } per version. */
export function encodeHistory(
  versions: readonly { readonly index: number; readonly value: Uint8Array | undefined }[],
): Uint8Array {
  let size = 4;
  for (const v of versions) size += 12 + (v.value?.length ?? 0);
  const out = new Uint8Array(size);
  const dv = new DataView(out.buffer);
  dv.setUint32(0, versions.length, true);
  let o = 4;
  for (const v of versions) {
    dv.setBigUint64(o, BigInt(v.index), true);
    dv.setInt32(o + 8, v.value === undefined ? -1 : v.value.length, true);
    o += 12;
    if (v.value !== undefined) {
      out.set(v.value, o);
      o += v.value.length;
    }
  }
  return out;
}

/** §4.5: u32 count, { u32 klen; key; u32 vlen; value } per entry, u32 cursor_len; cursor. */
export function encodePage(
  entries: readonly { readonly key: Uint8Array; readonly value: Uint8Array }[],
  cursor: Uint8Array | undefined,
): Uint8Array {
  let size = 8 + (cursor?.length ?? 0);
  for (const e of entries) size += 8 + e.key.length + e.value.length;
  const out = new Uint8Array(size);
  const dv = new DataView(out.buffer);
  dv.setUint32(0, entries.length, true);
  let o = 4;
  for (const e of entries) {
    dv.setUint32(o, e.key.length, true);
    out.set(e.key, o + 4);
    o += 4 + e.key.length;
    dv.setUint32(o, e.value.length, true);
    out.set(e.value, o + 4);
    o += 4 + e.value.length;
  }
  dv.setUint32(o, cursor?.length ?? 0, true);
  if (cursor !== undefined) out.set(cursor, o + 4);
  return out;
}
