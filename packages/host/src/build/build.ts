/**
 * `cloister build` and `cloister measure`: bundle the enclave (shim + enclave + dependencies,
 * bundle.ts), check the bundle against the trust-boundary rules (bundle-rules.ts), sign its
 * manifest with the signer key, and write the pair into the build directory:
 *
 *   <outDir>/enclave.js         the bundle, exactly the bytes that are measured and launched
 *   <outDir>/enclave.manifest   the manifest, COSE_Sign1 bytes (manifest.ts)
 *
 * The bundle is reproducible (same sources -> same bytes, wherever the checkout lives), so the
 * measurement is too; the manifest is not byte-for-byte (ECDSA signatures are randomised), and
 * the measurement does not depend on it.
 */
import { mkdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { computeMeasurement, InvalidInputError, sha256 } from '@cloister/core';
import { PUBLIC_FILE_MODE, readFileOrUndefined, writeFileAtomic } from '../fs/atomic.js';
import { ManifestError } from '../platform/errors.js';
import { isU32 } from '../platform/sealing.js';
import { BundleError, bundleEnclave, type Metafile, repoRoot } from './bundle.js';
import { checkBundleRules, ENCLAVE_BUNDLE_RULES, formatViolations } from './bundle-rules.js';
import { type ManifestClaims, signManifest, verifyManifest } from './manifest.js';
import { loadOrCreateSignerKey, loadSignerKey } from './signer.js';

export const BUNDLE_FILE = 'enclave.js';
export const MANIFEST_FILE = 'enclave.manifest';
/** Where product and security version are configured, relative to the repository root. */
export const ENCLAVE_PACKAGE_JSON = 'packages/enclave/package.json';

/** An enclave build: the bundle, its signed manifest, and the identity they give. */
export interface BuildResult {
  readonly bundle: Uint8Array;
  /** COSE_Sign1 manifest bytes. */
  readonly manifest: Uint8Array;
  readonly measurement: Uint8Array;
  /** SHA-256 of the signer public key. */
  readonly signer: Uint8Array;
  readonly product: number;
  readonly svn: number;
  readonly bundleHash: Uint8Array;
  /** esbuild's metafile: every bundled input, dependencies included. */
  readonly inputs: Metafile;
}

/** A measured, unsigned build (`cloister measure`): the signer is not part of the measurement. */
export interface Measurement {
  readonly bundle: Uint8Array;
  readonly bundleHash: Uint8Array;
  readonly measurement: Uint8Array;
  readonly product: number;
  readonly svn: number;
  readonly inputs: Metafile;
}

/** A build read back from its directory, its manifest verified against its bundle. */
export interface StoredBuild {
  readonly bundle: Uint8Array;
  readonly manifest: Uint8Array;
  readonly claims: ManifestClaims;
  readonly measurement: Uint8Array;
  readonly signer: Uint8Array;
  readonly product: number;
  readonly svn: number;
  readonly bundleHash: Uint8Array;
}

export interface MeasureOptions {
  /** Product id; default: `cloister.product` of packages/enclave/package.json. */
  readonly product?: number;
  /** Security version; default: `cloister.svn` of packages/enclave/package.json. */
  readonly svn?: number;
  /** Repository root to build from; default: this checkout. */
  readonly root?: string;
}

export interface BuildOptions extends MeasureOptions {
  /** Directory receiving enclave.js and enclave.manifest; created if missing. */
  readonly outDir: string;
  /** Signer key file (P-256 PKCS#8 PEM), created on first use unless `signerKeyMissing` is given. */
  readonly signerKeyPath: string;
  /**
   * When given, the signer key must exist: a missing one is InvalidInputError ending with this
   * text (how to get it) instead of a new key (for a path the user named; see loadKeyFile).
   */
  readonly signerKeyMissing?: string;
}

/**
 * Product id and security version configured for the enclave: the `"cloister": { "product",
 * "svn" }` field of packages/enclave/package.json under `root`. Throws InvalidInputError when
 * it is missing or out of range.
 */
export function readEnclaveConfig(root: string = repoRoot()): { product: number; svn: number } {
  const path = join(root, ENCLAVE_PACKAGE_JSON);
  let config: unknown;
  try {
    config = (JSON.parse(readFileSync(path, 'utf8')) as { cloister?: unknown }).cloister;
  } catch (e) {
    throw new InvalidInputError(`Cannot read ${path}: ${(e as Error).message}`);
  }
  const c = (config ?? {}) as { product?: unknown; svn?: unknown };
  if (!isU32(c.product) || !isU32(c.svn)) {
    throw new InvalidInputError(
      `${path} must have "cloister": { "product": <integer>, "svn": <integer> } (each in [0, 2^32)).`,
    );
  }
  return { product: c.product, svn: c.svn };
}

/**
 * Bundles the enclave and computes its measurement without signing anything. Throws
 * BundleError when the bundle cannot be built or breaks the trust-boundary rules.
 */
export async function measureBuild(options: MeasureOptions = {}): Promise<Measurement> {
  const root = resolve(options.root ?? repoRoot());
  const { product, svn } = pickVersion(root, options);
  const { code, metafile } = await bundleEnclave({ root });
  const violations = checkBundleRules(metafile, ENCLAVE_BUNDLE_RULES);
  if (violations.length > 0) {
    throw new BundleError(
      `The enclave bundle breaks the trust boundary; fix these imports:\n${formatViolations(violations)}`,
    );
  }
  const bundleHash = sha256(code);
  return {
    bundle: code,
    bundleHash,
    measurement: computeMeasurement(bundleHash, product, svn),
    product,
    svn,
    inputs: metafile,
  };
}

/**
 * Builds, signs and writes the enclave (module comment). The bundle is written before the
 * manifest, each atomically, so a crash leaves either the previous pair, or a new bundle with
 * the old manifest, which the platform refuses (MANIFEST_INVALID), never a wrong launch.
 */
export async function buildEnclave(options: BuildOptions): Promise<BuildResult> {
  const signerKey =
    options.signerKeyMissing === undefined
      ? loadOrCreateSignerKey(options.signerKeyPath)
      : loadSignerKey(options.signerKeyPath, options.signerKeyMissing);
  const m = await measureBuild(options);
  const manifest = signManifest(
    { bundleHash: m.bundleHash, product: m.product, svn: m.svn },
    signerKey.privateKey,
  );
  const outDir = resolve(options.outDir);
  mkdirSync(outDir, { recursive: true });
  writeFileAtomic(join(outDir, BUNDLE_FILE), m.bundle, { mode: PUBLIC_FILE_MODE });
  writeFileAtomic(join(outDir, MANIFEST_FILE), manifest, { mode: PUBLIC_FILE_MODE });
  return {
    bundle: m.bundle,
    manifest,
    measurement: m.measurement,
    signer: signerKey.signer,
    product: m.product,
    svn: m.svn,
    bundleHash: m.bundleHash,
    inputs: m.inputs,
  };
}

/**
 * Reads the build in `outDir` and verifies its manifest against its bundle (the same check the
 * platform makes at launch). Throws ManifestError when a file is missing or they do not match.
 */
/** The next step when a directory holds no enclave build (not a manifest that fails its checks). */
export const NO_BUILD_HINT =
  'Build the enclave (`npx cloister build`, or `npm start` in the repository), or pass --enclave with the directory a build wrote.';

export function readBuild(outDir: string): StoredBuild {
  const dir = resolve(outDir);
  const bundle = readFileOrUndefined(join(dir, BUNDLE_FILE));
  const manifest = readFileOrUndefined(join(dir, MANIFEST_FILE));
  if (bundle === undefined || manifest === undefined) {
    const missing = bundle === undefined ? BUNDLE_FILE : MANIFEST_FILE;
    throw new ManifestError(`No enclave build in ${dir}: ${missing} is missing.`, {
      hint: NO_BUILD_HINT,
    });
  }
  const v = verifyManifest(manifest, bundle);
  return {
    bundle,
    manifest,
    claims: v.claims,
    measurement: v.measurement,
    signer: v.signer,
    product: v.claims.product,
    svn: v.claims.svn,
    bundleHash: v.bundleHash,
  };
}

function pickVersion(root: string, options: MeasureOptions): { product: number; svn: number } {
  const needConfig = options.product === undefined || options.svn === undefined;
  const config = needConfig ? readEnclaveConfig(root) : undefined;
  const product = options.product ?? config?.product;
  const svn = options.svn ?? config?.svn;
  if (!isU32(product)) throw new InvalidInputError('product must be an integer in [0, 2^32)');
  if (!isU32(svn)) throw new InvalidInputError('svn must be an integer in [0, 2^32)');
  return { product, svn };
}
