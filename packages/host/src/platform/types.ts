/**
 * The platform interface: what a TEE gives an enclave (launch check, evidence, sealing keys,
 * monotonic counters). Simulation implements it in the host; real hardware plugs in behind it.
 */

/** Sealing policies (docs/platform.md): bound to the exact code, or to signer + product + svn. */
export type SealPolicy = 'code' | 'signer';

/**
 * The verified identity of an enclave the platform launched. Returned by `admit`; the values come
 * from a manifest whose signature was checked and from the exact bundle bytes that were measured.
 * Only identities returned by a platform's own `admit` are accepted by its `report` and `sealKey`
 * (as hardware derives keys and reports from the running enclave, not from caller-supplied
 * values); the platform keeps its own copy, so mutating these arrays changes nothing.
 */
export interface EnclaveIdentity {
  readonly platform: 'simulation';
  /** SHA-256("cloister/v1/measurement" ‖ bundleHash ‖ u32be(product) ‖ u32be(svn)), 32 bytes. */
  readonly measurement: Uint8Array;
  /** SHA-256 of the manifest's 65-byte signerKey, 32 bytes. */
  readonly signer: Uint8Array;
  /** Product id from the manifest, 0 ≤ product < 2^32. */
  readonly product: number;
  /** Security version from the manifest, 0 ≤ svn < 2^32. */
  readonly svn: number;
  /** SHA-256 of the exact bundle bytes admitted, 32 bytes. */
  readonly bundleHash: Uint8Array;
}

/**
 * The simulated platform. All methods but `report` are synchronous (like EGETKEY) and may block
 * briefly on the platform directory lock; `report` signs off the event loop. Errors are CloisterErrors with named codes.
 */
export interface SimulationPlatform {
  readonly platform: 'simulation';
  /** The platform signing key, 65-byte uncompressed P-256; it signs every report. */
  readonly publicKey: Uint8Array;
  /** Absolute path of the platform directory. */
  readonly dir: string;
  /**
   * Launch check. Verifies `manifest` (COSE_Sign1, docs/platform.md) with the signerKey it
   * carries, checks that its bundle hash is SHA-256 of exactly `bundle` (the same buffer the
   * launcher then evaluates: never re-read from a path), and returns the identity to launch with.
   * Throws ManifestError (MANIFEST_INVALID) naming what failed. Neither buffer is kept or changed.
   */
  admit(bundle: Uint8Array, manifest: Uint8Array): EnclaveIdentity;
  /**
   * Evidence for `enclave` carrying `reportData` (exactly 64 bytes; see computeReportData in
   * core): a COSE_Sign1 over the evidence v1 payload with platform "simulation" and
   * platformKey = `publicKey`, signed by the platform key. Always insecure: the host holds the key.
   * Asynchronous: the signature is computed on the thread pool, off the host's event loop.
   * Rejects with InvalidInputError on bad arguments or after close().
   */
  report(enclave: EnclaveIdentity, reportData: Uint8Array): Promise<Uint8Array>;
  /**
   * EGETKEY analogue: a 32-byte key derived from the platform root secret, bound to the policy's
   * identity (measurement for 'code'; signer + product for 'signer'), to the requested `svn`, and
   * to `keyId` (16 bytes the enclave chooses per sealed blob). Throws SealPolicyError (SEAL_POLICY)
   * when `svn` is above the enclave's own svn. Same inputs, same platform dir -> same key. The
   * caller owns the returned buffer and should wipe it after use.
   */
  sealKey(enclave: EnclaveIdentity, policy: SealPolicy, svn: number, keyId: Uint8Array): Uint8Array;
  /** Current value of counter `name` ([a-z0-9.-]{1,64}); 0 for a counter never incremented. */
  counterRead(name: string): number;
  /**
   * Adds one to counter `name` and returns the new value, which is on stable storage (fsync)
   * before this returns. Atomic across processes sharing the platform directory: concurrent
   * increments are never lost. Throws CounterError (COUNTER) when the store is damaged, went
   * backwards since this platform last saw it, or the value would leave the safe integers.
   */
  counterIncrement(name: string): number;
  /** Wipes the root secret from memory; every later call throws. Idempotent. */
  close(): void;
}
