/**
 * The client's ports: how it reaches a node (Transport), who it is (ScpSigner, from core) and
 * what it remembers between runs (ClientState). Node and browser adapters live in the "./node"
 * and "./browser" entries; this file and everything "." reaches import no Node built-in.
 */
import type { ScpSigner, SignedRoot, SignedRootStore } from '@cloister/core';
import {
  fromHex,
  memorySignedRootStore,
  StateLockedError,
  sameSignedRoot,
  toHex,
} from '@cloister/core';

/**
 * One open connection carrying SCP frames (one frame = one binary WebSocket message).
 * The client sets `onmessage` and `onclose` right after the transport resolves and before it sends
 * anything; the server never speaks first, so an adapter need not buffer earlier messages.
 */
export interface Socket {
  /**
   * Queues one frame: frames leave in call order, possibly later in the same event-loop turn.
   * The caller hands `frame` over: it does not change its bytes after the call.
   */
  send(frame: Uint8Array): void;
  /** Closes the connection; `onclose` then fires once (if it has not already). */
  close(): void;
  /** Each binary message, in arrival order. A text message must close the socket instead. */
  onmessage: ((frame: Uint8Array) => void) | undefined;
  /** Fires once when the connection is gone, whoever closed it. */
  onclose: ((why: string) => void) | undefined;
}

/** Opens a connection to a WebSocket URL (ws: or wss:); rejects when it cannot. */
export type Transport = (url: string) => Promise<Socket>;

/**
 * Which service identity (SHA-256 of the service key, 32 bytes) a URL showed first.
 * get resolves undefined for a URL never pinned; put replaces the pin. Values are copied.
 * `put(url, id, previous)` is a compare-and-set: with `previous` given (the pin read before,
 * `null` for none) it writes only if the URL's pin is still that, in one atomic step, and
 * otherwise rejects with StateLockedError, writing nothing (a store other processes or tabs share
 * must honour it: two of them cannot both take "first use").
 */
export interface PinStore {
  get(url: string): Promise<Uint8Array | undefined>;
  put(url: string, serviceIdentity: Uint8Array, previous?: Uint8Array | null): Promise<void>;
}

/** Whether pin `current` (hex, or undefined for none) is still `previous` (undefined: any). */
export function pinIs(
  current: string | undefined,
  previous: Uint8Array | null | undefined,
): boolean {
  if (previous === undefined) return true;
  return previous === null ? current === undefined : current === toHex(previous);
}

/**
 * Whether the root an adapter keeps for `service` (`current`: size and hex root, undefined for
 * none) is still `previous` (undefined: any) — SignedRootStore.put's compare-and-set.
 */
export function rootIs(
  service: Uint8Array,
  current: { readonly size: number; readonly root: string } | undefined,
  previous: SignedRoot | null | undefined,
): boolean {
  if (previous === undefined) return true;
  const stored = current && { service, size: current.size, root: fromHex(current.root) };
  return sameSignedRoot(stored, previous);
}

/** The error a pin store's put rejects with when the pin is not `previous` any more. */
export function pinChanged(url: string): StateLockedError {
  return new StateLockedError(
    `the pin of ${url} changed during the check (another process or tab sharing the client state pinned it): nothing was written`,
  );
}

/** What a client remembers between runs: its pins, and the last signed root per service. */
export interface ClientState {
  readonly pins: PinStore;
  readonly roots: SignedRootStore;
  /**
   * Runs `f` while no other process or tab sharing this state runs a section of its own. The
   * client runs each read-check-write of a pin or a signed root inside it (and, for this realm,
   * inside core's `exclusive`), so a concurrent one elsewhere cannot drop a pin or put an older
   * root back. Absent: only this realm's calls are ordered (fine for state no one else uses).
   * The client calls `pins.put` and `roots.put` inside it: a state whose puts take this same lock
   * must make it re-entrant (the Node adapter's is; the browser adapter's puts take none).
   */
  lock?<T>(f: () => Promise<T>): Promise<T>;
}

/** The client's own key: core's ScpSigner (P-256, ECDSA-SHA256, raw r‖s). */
export type Identity = ScpSigner;

/** A PinStore in memory (tests, short-lived clients). */
export function memoryPinStore(): PinStore {
  const pins = new Map<string, string>();
  return {
    async get(url) {
      const hex = pins.get(url);
      return hex === undefined ? undefined : fromHex(hex);
    },
    async put(url, serviceIdentity, previous) {
      if (!pinIs(pins.get(url), previous)) throw pinChanged(url);
      pins.set(url, toHex(serviceIdentity));
    },
  };
}

/** ClientState in memory: forgotten when the process ends (so every run pins afresh). */
export function memoryState(): ClientState {
  return { pins: memoryPinStore(), roots: memorySignedRootStore() };
}
