/**
 * The operator key (issue 5 item 5): the P-256 key that signs deploy and upgrade requests, the
 * seam where member votes go later (DESIGN.md §9). `<home>/operator.pem`, PKCS#8 PEM, mode 0600,
 * created on first use like the signer key. The node passes only its PUBLIC half to the enclave
 * (`apps.open`), which records it in the administrative ledger at the first start and refuses a
 * later start with another key. The private half stays with the operator's CLI.
 *
 * Deploy request (docs/node-api.md "Apps"): `COSE_Sign1(ES256)` over deterministic CBOR
 * `{"v": 1, "app", "codeId", "upgrade", "prev", "prevIndex", "service", "salt"}`; the upload is
 * CBOR `{"request": bstr, "module": bstr}`.
 */

import type { KeyObject } from 'node:crypto';
import { randomBytes } from 'node:crypto';
import { ES256_PROTECTED, encodeCbor, encodeSign1, sha256, sign1ToBeSigned } from '@cloister/core';
import { type KeyFile, loadKeyFile, loadOrCreateKeyFile } from '../fs/key-file.js';
import { signEs256 } from '../platform/p256.js';

/** The operator key; `publicKey` (65-byte uncompressed P-256) is what the enclave records. */
export type OperatorKey = KeyFile;

/** Loads `<path>`, creating it (mode 0600, parents 0700) on first use; never overwrites it. */
export function loadOrCreateOperatorKey(path: string): OperatorKey {
  return loadOrCreateKeyFile(path, 'operator key', '--operator-key');
}

/** The operator key at `path`, which must exist (loadKeyFile; `missing` says how to get it). */
export function loadOperatorKey(path: string, missing: string): OperatorKey {
  return loadKeyFile(path, 'operator key', '--operator-key', missing);
}

export interface DeployRequestFields {
  readonly app: string;
  /** The module: its SHA-256 is the code id the request signs. */
  readonly module: Uint8Array;
  readonly upgrade: boolean;
  /** The app's current code id (empty for a first deploy) and the index it took effect at (0). */
  readonly prev: Uint8Array;
  readonly prevIndex: number;
  /** The service identity (SHA-256 of the service public key, `/v1/status`). */
  readonly service: Uint8Array;
  /** 32 random bytes (default fresh): the salt of the receipt's claims digest. */
  readonly salt?: Uint8Array;
}

/** The signed deploy request and the salt it carries. */
export function signDeployRequest(
  key: KeyObject,
  f: DeployRequestFields,
): { request: Uint8Array; codeId: Uint8Array; salt: Uint8Array } {
  const salt = f.salt ?? new Uint8Array(randomBytes(32));
  const codeId = sha256(f.module);
  const payload = encodeCbor(
    new Map<string, unknown>([
      ['v', 1],
      ['app', f.app],
      ['codeId', codeId],
      ['upgrade', f.upgrade],
      ['prev', f.prev],
      ['prevIndex', f.prevIndex],
      ['service', f.service],
      ['salt', salt],
    ]),
  );
  const signature = signEs256(key, sign1ToBeSigned(ES256_PROTECTED, payload));
  return {
    request: encodeSign1({ protectedBytes: ES256_PROTECTED, payload, signature }),
    codeId,
    salt,
  };
}

/** The body of `POST /v1/apps`: CBOR `{"request": bstr, "module": bstr}`. */
export function encodeDeployBody(request: Uint8Array, module: Uint8Array): Uint8Array {
  return encodeCbor(
    new Map<string, unknown>([
      ['request', request],
      ['module', module],
    ]),
  );
}
