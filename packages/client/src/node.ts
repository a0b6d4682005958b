/**
 * @cloister/client/node: the client for Node — a `ws` transport, identities in PKCS#8 PEM files
 * (mode 0600; a file group or others can read is refused), and pins and signed roots in a JSON
 * file written atomically. Signing goes through WebCrypto with a non-extractable key; the SCP
 * record layer and handshake run on node:crypto (`@cloister/node-crypto`, shared with the enclave).
 */
import {
  createHmac,
  createPrivateKey,
  createPublicKey,
  hkdfSync,
  type KeyObject,
} from 'node:crypto';
import {
  closeSync,
  fsyncSync,
  linkSync,
  mkdirSync,
  openSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  writeSync,
} from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import {
  CloisterError,
  clipText,
  fromHex,
  InvalidInputError,
  MAX_FRAME,
  pemProblem,
  type SignedRoot,
  StateLockedError,
  storedRootChanged,
  toHex,
  webCryptoSigner,
  wipe,
} from '@cloister/core';
import { nodeScpCrypto } from '@cloister/node-crypto';
import WebSocket from 'ws';
import { claimsSaltMessage } from './app.js';
import { type Client, type ConnectOptions, connect as connectWith } from './client.js';
import {
  type ClientState,
  type Identity,
  pinChanged,
  pinIs,
  rootIs,
  type Socket,
  type Transport,
} from './ports.js';
import { withStateLock } from './state-lock.js';

export { nodeScpCrypto } from '@cloister/node-crypto';
export * from './index.js';

/** How long the TCP connect and HTTP upgrade may take before the transport gives up (ms). */
export const WS_OPEN_TIMEOUT_MS = 10_000;

/**
 * Work to run once the current event-loop turn has handled its I/O (setImmediate), in the order
 * given. Holds nothing between turns.
 */
let endOfTurn: (() => void)[] = [];

function atEndOfTurn(f: () => void): void {
  if (endOfTurn.push(f) === 1) setImmediate(runEndOfTurn);
}

function runEndOfTurn(): void {
  const due = endOfTurn;
  endOfTurn = [];
  for (const f of due) f();
}

/**
 * A Transport over `ws` (binary frames only, frames above MAX_FRAME refused, no compression). A
 * server that accepts the TCP connection but never answers the upgrade fails the open after
 * `openTimeoutMs` (the SCP handshake's own timer starts only once the socket is open).
 *
 * Frames sent during one event-loop turn are written at its end (setImmediate), in order, each
 * socket's after its own: the answers that arrive together on many connections then go out
 * back to back instead of one between each read, and a write that finds the node's thread
 * already woken by the one before costs the kernel less. Measured with the SCP benchmark's 32
 * clients: about 2–4 µs less of the client thread's CPU per call (docs/performance.md). A close
 * writes the frames waiting first.
 */
export function wsTransport(openTimeoutMs = WS_OPEN_TIMEOUT_MS): Transport {
  return (url) =>
    new Promise<Socket>((resolve, reject) => {
      const ws = new WebSocket(url, {
        maxPayload: MAX_FRAME,
        perMessageDeflate: false,
        handshakeTimeout: openTimeoutMs,
      });
      let open = false;
      // Frames sent this turn, not yet written. Invariant: non-empty only while a flush is due.
      const waiting: Uint8Array[] = [];
      const flush = (): void => {
        if (ws.readyState === WebSocket.OPEN) for (const f of waiting) ws.send(f);
        waiting.length = 0;
      };
      const socket: Socket = {
        send(frame) {
          if (ws.readyState !== WebSocket.OPEN) return;
          if (waiting.push(frame) === 1) atEndOfTurn(flush);
        },
        close() {
          flush();
          if (ws.readyState === WebSocket.CONNECTING) ws.terminate();
          else ws.close();
        },
        onmessage: undefined,
        onclose: undefined,
      };
      ws.on('open', () => {
        open = true;
        resolve(socket);
      });
      ws.on('error', (e) => {
        if (!open) reject(e); // after open, 'close' follows and reports the drop
      });
      // A refusal before the upgrade (a full node: 503 SCP_SESSIONS) says why in a JSON body:
      // passed on, clipped and marked as the node's (unauthenticated) words.
      ws.on('unexpected-response', (req, res) => {
        let body = '';
        let settled = false;
        // Read for at most openTimeoutMs and 4 KiB: a host dripping the refusal's body must not
        // hold the open (it did: one byte every 200 ms kept connect() pending).
        const finish = (): void => {
          if (settled) return;
          settled = true;
          clearTimeout(timer);
          let said = '';
          try {
            const e = (JSON.parse(body) as { error?: { code?: unknown; message?: unknown } }).error;
            if (typeof e?.code === 'string' && typeof e.message === 'string')
              said = `: ${clipText(`${e.code}: ${e.message}`, 300)}`;
          } catch {
            // not the node's JSON error (or cut): the status alone
          }
          reject(new Error(`the node refused the connection (HTTP ${res.statusCode}${said})`));
          req.destroy();
        };
        const timer = setTimeout(finish, openTimeoutMs);
        res.setEncoding('utf8');
        res.on('data', (d: string) => {
          body += d;
          if (body.length >= 4096) finish();
        });
        res.on('end', finish);
        res.on('error', finish);
      });
      ws.on('message', (data, isBinary) => {
        if (!isBinary) {
          ws.close(1003, 'SCP frames are binary');
          return;
        }
        let bytes: Uint8Array;
        if (Array.isArray(data)) bytes = new Uint8Array(Buffer.concat(data));
        else if (data instanceof ArrayBuffer) bytes = new Uint8Array(data.slice(0));
        // A view, not a copy: ws gives each message bytes of its own (a slice of the socket's
        // read chunk, or a fresh buffer when the message spans chunks) and never writes them
        // again, and a server frame is never unmasked in place (a masked one is refused).
        else bytes = new Uint8Array(data.buffer, data.byteOffset, data.length);
        socket.onmessage?.(bytes);
      });
      ws.on('close', (code, reason) => {
        socket.onclose?.(`${code}${reason.length > 0 ? ` ${reason.toString()}` : ''}`);
      });
    });
}

/**
 * connect() with the ws transport and node:crypto's SCP primitives (nodeScpCrypto: cheaper per
 * record than WebCrypto's thread-pool jobs) unless others are given.
 */
export function connect(
  url: string,
  options: Omit<ConnectOptions, 'transport'> & { readonly transport?: Transport },
): Promise<Client> {
  // connectWith names what is missing; without options it has nothing to spread.
  if (typeof options !== 'object' || options === null) return connectWith(url, options);
  return connectWith(url, {
    ...options,
    transport: options.transport ?? wsTransport(),
    crypto: options.crypto ?? nodeScpCrypto,
  });
}

/** An identity file is missing, unreadable, not a P-256 key, or readable by others. */
export class IdentityFileError extends CloisterError {
  constructor(message: string) {
    super('INVALID_INPUT', message);
  }
}

/** Writes `bytes` to a new file `path` (mode 0600), never replacing one: EEXIST if it exists. */
function writeNewFile(path: string, bytes: Uint8Array): void {
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  const tmp = `${path}.${toHex(globalThis.crypto.getRandomValues(new Uint8Array(6)))}.tmp`;
  const fd = openSync(tmp, 'wx', 0o600);
  try {
    writeSync(fd, bytes);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  try {
    linkSync(tmp, path); // atomic, and fails when `path` exists: a key is never overwritten
  } finally {
    rmSync(tmp, { force: true });
  }
  syncDirectory(dirname(path));
}

/** Why a new key file cannot be made at `path`: it exists, is a folder, or a folder above is a file. */
function whyNotNew(path: string): string {
  for (let p = path; ; p = dirname(p)) {
    let isDir: boolean;
    try {
      isDir = statSync(p).isDirectory();
    } catch {
      if (dirname(p) === p) break;
      continue;
    }
    if (p === path) {
      return isDir
        ? `${path} is a folder: give the path of a new file in it (e.g. ${join(path, 'identity.pem')})`
        : `${path} already exists: it is refused to overwrite a key; choose another file or use this one`;
    }
    if (!isDir) return `${p} is a file, not a folder: give a path in an existing folder`;
    break;
  }
  return `${path} cannot be created as a new file; choose another path`;
}

/**
 * Creates a new P-256 identity in a PKCS#8 PEM file of mode 0600 and returns it. Refuses to
 * overwrite an existing file (IdentityFileError): losing a key loses the caller id apps know.
 */
export async function createIdentityFile(path: string): Promise<Identity> {
  const subtle = globalThis.crypto.subtle;
  const pair = await subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, true, ['sign']);
  const der = new Uint8Array(await subtle.exportKey('pkcs8', pair.privateKey));
  const b64 = Buffer.from(der).toString('base64');
  const pem = `-----BEGIN PRIVATE KEY-----\n${b64.match(/.{1,64}/g)?.join('\n')}\n-----END PRIVATE KEY-----\n`;
  wipe(der);
  try {
    writeNewFile(path, new TextEncoder().encode(pem));
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'EEXIST' || code === 'ENOTDIR' || code === 'EISDIR') {
      throw new IdentityFileError(whyNotNew(path));
    }
    throw new IdentityFileError(`cannot write ${path}: ${(e as Error).message}`);
  }
  return loadIdentity(path);
}

/**
 * Loads a P-256 identity from a PEM file (PKCS#8 "PRIVATE KEY" or SEC1 "EC PRIVATE KEY").
 * IdentityFileError when the file is missing, readable by group or others (fix: chmod 600), or
 * not a P-256 private key. The key is imported non-extractable into WebCrypto.
 */
export async function loadIdentity(path: string): Promise<Identity> {
  const key = readIdentityKey(path);
  const jwk = createPublicKey(key).export({ format: 'jwk' });
  const raw = new Uint8Array(65);
  raw[0] = 4;
  raw.set(Buffer.from(jwk.x as string, 'base64url'), 1);
  raw.set(Buffer.from(jwk.y as string, 'base64url'), 33);
  const der = new Uint8Array(key.export({ type: 'pkcs8', format: 'der' }));
  const subtle = globalThis.crypto.subtle;
  const alg = { name: 'ECDSA', namedCurve: 'P-256' } as const;
  const privateKey = await subtle.importKey('pkcs8', der, alg, false, ['sign']);
  wipe(der);
  const publicKey = await subtle.importKey('raw', raw, alg, true, ['verify']);
  return webCryptoSigner({ privateKey, publicKey }, raw);
}

/** The HKDF info of the claims-salt key (claimsSaltFor). */
const CLAIMS_SALT_INFO = new TextEncoder().encode('cloister/client/claims-salt-key/v1');

/**
 * The claims salt of request `requestId` to `app` of service `serviceIdentity`, derived from the
 * identity file at `path`: HMAC-SHA256(HKDF-SHA256(d, info "cloister/client/claims-salt-key/v1"),
 * u16be(|service|) ‖ service ‖ u16be(|app|) ‖ app ‖ requestId), d the 32-byte private scalar.
 * So a retry of the same request from another process (the CLI run again with the same
 * `--request-id`) uses the salt of the first attempt and can check the receipt's claims, while
 * the salt stays secret (only the key's holder can compute it) and differs per service and app.
 * IdentityFileError as loadIdentity.
 */
export function claimsSaltFor(
  path: string,
  serviceIdentity: Uint8Array,
  app: string,
  requestId: string,
): Uint8Array {
  const message = claimsSaltMessage(serviceIdentity, app, requestId);
  const jwk = readIdentityKey(path).export({ format: 'jwk' });
  const d = Buffer.from(jwk.d as string, 'base64url');
  const key = Buffer.from(hkdfSync('sha256', d, new Uint8Array(0), CLAIMS_SALT_INFO, 32));
  wipe(d);
  const mac = createHmac('sha256', key).update(message).digest();
  wipe(key);
  return new Uint8Array(mac);
}

/** The P-256 private key in the PEM file at `path`, after the checks loadIdentity documents. */
function readIdentityKey(path: string): KeyObject {
  let mode: number;
  try {
    const st = statSync(path);
    if (!st.isFile()) {
      throw new IdentityFileError(
        `${path} is ${st.isDirectory() ? 'a directory' : 'not a regular file'}: give the identity's PEM file (\`cloister keys new FILE\` creates one)`,
      );
    }
    mode = st.mode;
  } catch (e) {
    if (e instanceof IdentityFileError) throw e;
    throw new IdentityFileError(
      `no identity file at ${path}: create one with \`cloister keys new ${path}\``,
    );
  }
  let pem: Buffer;
  try {
    pem = readFileSync(path);
  } catch (e) {
    throw new IdentityFileError(
      `cannot read ${path} (${(e as NodeJS.ErrnoException).code ?? (e as Error).message}): run as the user who owns it, or give another identity file`,
    );
  }
  let key: KeyObject;
  try {
    key = createPrivateKey({ key: pem, format: 'pem' });
  } catch {
    // What the file holds instead, not OpenSSL's decoder error; a receipt given by mistake is
    // named as "no PEM block", before any advice about its mode.
    throw new IdentityFileError(
      `${path} is not a PEM private key (${pemProblem(pem.toString('latin1'))}): give the identity's PEM file (\`cloister keys new FILE\` creates one)`,
    );
  }
  if (key.asymmetricKeyType !== 'ec' || key.asymmetricKeyDetails?.namedCurve !== 'prime256v1') {
    throw new IdentityFileError(`${path} is not a P-256 (prime256v1) EC private key`);
  }
  if (process.platform !== 'win32' && (mode & 0o077) !== 0) {
    throw new IdentityFileError(
      `${path} can be read by group or others (mode ${(mode & 0o777).toString(8)}): a private key must be private; run \`chmod 600 ${path}\``,
    );
  }
  return key;
}

interface StateFile {
  v: 1;
  /** SCP URL → pinned service identity (hex). */
  pins: Record<string, string>;
  /** Service identity (hex) → last signed root seen. */
  roots: Record<string, { size: number; root: string }>;
}

const HEX32 = /^[0-9a-f]{64}$/;

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/**
 * True when `s` is a state file of version 1 in every part: pins of 32-byte hex identities, roots
 * keyed by 32-byte hex identities with a size and a 32-byte hex root. Anything else is damaged
 * (an array for `pins` read as "no pins" and dropped every later pin).
 */
function wellFormed(s: unknown): s is StateFile {
  if (!isRecord(s) || s.v !== 1 || !isRecord(s.pins) || !isRecord(s.roots)) return false;
  if (!Object.values(s.pins).every((p) => typeof p === 'string' && HEX32.test(p))) return false;
  return Object.entries(s.roots).every(
    ([k, r]) =>
      HEX32.test(k) &&
      isRecord(r) &&
      Number.isSafeInteger(r.size) &&
      (r.size as number) >= 0 &&
      typeof r.root === 'string' &&
      HEX32.test(r.root),
  );
}

/** fsync of directory `dir`, so a rename or link in it survives a power cut (POSIX only). */
function syncDirectory(dir: string): void {
  let fd: number;
  try {
    fd = openSync(dir, 'r');
  } catch {
    return; // platforms that cannot open a directory (Windows) make renames durable themselves
  }
  try {
    fsyncSync(fd);
  } catch {
    // some file systems refuse fsync on a directory: nothing more to do there
  } finally {
    closeSync(fd);
  }
}

// One ClientState per state file in this process: the client orders its checks per store object
// (core's exclusive), so two objects for one file must not exist side by side.
const fileStates = new Map<string, ClientState>();

/**
 * ClientState in `<dir>/client-state.json` (mode 0600, replaced atomically on each change), the
 * same object for the same directory within a process. Every change, and each read-check-write
 * the client makes (`lock`), holds `<dir>/client-state.json.lock` against other processes
 * (state-lock.ts; StateLockedError after 8 s). A damaged file is refused by name, never silently
 * reset: it holds the pins. A directory this process may not write is read without the lock (a
 * change then fails with INVALID_INPUT naming the file).
 */
export function fileState(dir: string): ClientState {
  const file = resolve(dir, 'client-state.json');
  const known = fileStates.get(file);
  if (known !== undefined) return known;
  const state = openFileState(dirname(file), file);
  fileStates.set(file, state);
  return state;
}

function openFileState(dir: string, file: string): ClientState {
  const lockfile = `${file}.lock`;
  const locked = <T>(f: () => Promise<T>): Promise<T> => withStateLock(file, lockfile, () => f());
  /**
   * Read, change and write back synchronously under the lock, unless it was taken over; the
   * write also checks, right before its rename, that the file is still the one read (a process
   * stalled past the lock's takeover must not replace what another wrote meanwhile).
   */
  const change = (f: (s: StateFile) => void): Promise<void> =>
    withStateLock(file, lockfile, async (assertHeld) => {
      const text = readText();
      const s = parse(text);
      f(s);
      assertHeld();
      write(s, text);
    });
  /** The file's text, undefined when there is none yet. */
  const readText = (): string | undefined => {
    try {
      return readFileSync(file, 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw new InvalidInputError(`cannot read ${file}: ${(e as Error).message}`);
    }
  };
  const read = (): StateFile => parse(readText());
  const parse = (text: string | undefined): StateFile => {
    if (text === undefined) return { v: 1, pins: {}, roots: {} };
    try {
      const s = JSON.parse(text) as StateFile;
      if (!wellFormed(s)) throw new Error();
      return s;
    } catch {
      throw new InvalidInputError(
        `${file} is damaged: restore it, or delete it to forget every pin and root (then check the services again)`,
      );
    }
  };
  const write = (s: StateFile, before: string | undefined): void => {
    const tmp = `${file}.${toHex(globalThis.crypto.getRandomValues(new Uint8Array(6)))}.tmp`;
    try {
      mkdirSync(dir, { recursive: true, mode: 0o700 });
      const fd = openSync(tmp, 'wx', 0o600);
      try {
        writeSync(fd, JSON.stringify(s, null, 2));
        fsyncSync(fd);
      } finally {
        closeSync(fd);
      }
      if (readText() !== before) {
        throw new StateLockedError(
          `${file} changed while this process was writing it (another process took the lock over): nothing was written; retry`,
        );
      }
      renameSync(tmp, file);
    } catch (e) {
      rmSync(tmp, { force: true });
      if (e instanceof CloisterError) throw e;
      throw new InvalidInputError(
        `cannot save the client state (pins and signed roots) in ${file}: ${(e as Error).message}; make ${dir} writable by this user, or use another home`,
      );
    }
    syncDirectory(dir);
  };
  return {
    lock: locked,
    pins: {
      async get(url) {
        const hex = read().pins[url];
        return hex === undefined ? undefined : fromHex(hex, `the pin of ${url} in ${file}`);
      },
      // Read, change and write back synchronously, holding the lock: no process or other code in
      // this one can write between the read and the write.
      put: (url, serviceIdentity, previous) =>
        change((s) => {
          if (!pinIs(s.pins[url], previous)) throw pinChanged(url);
          s.pins[url] = toHex(serviceIdentity);
        }),
    },
    roots: {
      async get(service): Promise<SignedRoot | undefined> {
        const r = read().roots[toHex(service)];
        if (r === undefined) return undefined;
        return {
          service: service.slice(),
          size: r.size,
          root: fromHex(r.root, `a root in ${file}`),
        };
      },
      put: (r, previous) =>
        change((s) => {
          const id = toHex(r.service);
          if (!rootIs(r.service, s.roots[id], previous)) throw storedRootChanged();
          s.roots[id] = { size: r.size, root: toHex(r.root) };
        }),
    },
  };
}
