/** Types of harness/index.js: run an app module on the real runtime, in memory, for tests. */

export interface CallOptions {
  /** Call as this named test client (default "alice"); see `testIdentity`. */
  readonly as?: string;
  /** Or call with this identity key (65-byte uncompressed P-256 point). */
  readonly caller?: Uint8Array;
  /** Makes a transaction exactly-once for this caller (docs/app-abi.md §5.3). */
  readonly requestId?: string;
  /** Fuel for the call (default: the runtime's, 100,000,000). */
  readonly fuel?: number;
}

export interface Outcome {
  /** The parsed result JSON (null when the method returned nothing). */
  readonly result: unknown;
  /** The result JSON text as the app wrote it (JSON.parse rounds integers beyond 2^53). */
  readonly resultText: string;
  readonly notifications: readonly unknown[];
  /** Transaction id `term.index` (transactions). */
  readonly txid?: string;
  readonly repeated: boolean;
  readonly fuelUsed: number;
}

export interface LocalApp {
  readonly name: string;
  /** SHA-256 of the module, hex. */
  readonly codeId: string;
  readonly routes: readonly { readonly name: string; readonly kind: 'query' | 'transaction' }[];
  query(method: string, args?: unknown, options?: CallOptions): Promise<Outcome>;
  transaction(method: string, args?: unknown, options?: CallOptions): Promise<Outcome>;
  /** The caller id (hex) the app sees for a named test client or an identity key. */
  callerId(who?: string | Uint8Array): string;
}

export interface LoadOptions {
  /** App id (default "app"). */
  readonly name?: string;
  /** The leader's clock in ms (default Date.now). */
  readonly now?: () => number;
  /** Sink for AssemblyScript `trace` output. */
  readonly trace?: (app: string, message: string, values: readonly number[]) => void;
}

export function loadApp(wasm: string | URL | Uint8Array, options?: LoadOptions): Promise<LocalApp>;
export function testIdentity(name: string): Uint8Array;
