/**
 * Sealing as the node uses it (issue 2 "Must show: Sealing"): the real enclave code against the
 * real simulation platform, both directly and through whole node restarts.
 */
import assert from 'node:assert/strict';
import { copyFileSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { decodeCbor, encodeCbor, sha256 } from '@cloister/core';
import { seal, unseal } from '@cloister/enclave/seal';
import { signManifest } from '../src/build/manifest.js';
import { loadOrCreateSignerKey } from '../src/build/signer.js';
import { createLogger } from '../src/node/logger.js';
import { enclaveOcalls, startNode } from '../src/node/node.js';
import { openSimulationPlatform } from '../src/platform/index.js';
import { tempDir, testBuild } from './helpers.js';

const silent = createLogger({ level: 'silent' });

async function admitted(platformDir: string, svn: number) {
  const b = await testBuild(svn);
  const platform = openSimulationPlatform({ dir: platformDir });
  const bundle = new Uint8Array(readFileSync(join(b.outDir, 'enclave.js')));
  const manifest = new Uint8Array(readFileSync(join(b.outDir, 'enclave.manifest')));
  const identity = platform.admit(bundle, manifest);
  return {
    platform,
    identity,
    keys: {
      sealKey: async (policy: 'code' | 'signer', s: number, keyId: Uint8Array) =>
        platform.sealKey(identity, policy, s, keyId),
    },
  };
}

const secret = new TextEncoder().encode('the node identity, say');
const meta = { purpose: 'test', owner: 'n1' };

describe('sealing with the code policy', () => {
  it('opens only under the exact same code: any bundle change fails', async () => {
    const dir = tempDir();
    const b = await testBuild(1);
    const platform = openSimulationPlatform({ dir });
    const signer = loadOrCreateSignerKey(join(tempDir(), 'signer.pem'));
    const bundle = new Uint8Array(readFileSync(join(b.outDir, 'enclave.js')));
    const identityFor = (code: Uint8Array) => {
      const manifest = signManifest(
        { bundleHash: sha256(code), product: b.product, svn: b.svn },
        signer.privateKey,
      );
      const identity = platform.admit(code, manifest);
      return {
        sealKey: async (policy: 'code' | 'signer', s: number, keyId: Uint8Array) =>
          platform.sealKey(identity, policy, s, keyId),
      };
    };
    const original = identityFor(bundle);
    const blob = await seal(original, { ...meta, policy: 'code', svn: 1 }, secret);
    const same = await unseal(identityFor(bundle.slice()), { ...meta, ownSvn: 1 }, blob);
    assert.deepEqual(same.plaintext, secret);
    // One appended byte (a trailing newline) is another measurement, so another key.
    const changed = new Uint8Array([...bundle, 0x0a]);
    await assert.rejects(unseal(identityFor(changed), { ...meta, ownSvn: 1 }, blob), {
      code: 'SEALED_DATA_CORRUPT',
    });
    // The signer policy, by contrast, survives the rebuild.
    const bySigner = await seal(original, { ...meta, policy: 'signer', svn: 1 }, secret);
    const opened = await unseal(identityFor(changed), { ...meta, ownSvn: 1 }, bySigner);
    assert.deepEqual(opened.plaintext, secret);
    // State the node keeps across upgrades names its policy: a blob under the code policy is
    // refused at once, not kept until the next upgrade loses it.
    await assert.rejects(unseal(original, { ...meta, ownSvn: 1, policy: 'signer' }, blob), {
      code: 'SEALED_DATA_CORRUPT',
      message: /sealed under the code policy, expected the signer policy/,
    });
  });
});

describe('sealing with the signer policy', () => {
  it("opens version n's data under n and n+1, not under n-1", async () => {
    const dir = tempDir();
    const [v1, v2, v3] = await Promise.all([1, 2, 3].map((s) => admitted(dir, s)));
    const blob = await seal(v2!.keys, { ...meta, policy: 'signer', svn: 2 }, secret);
    for (const v of [v2!, v3!]) {
      const { plaintext } = await unseal(v.keys, { ...meta, ownSvn: v.identity.svn }, blob);
      assert.deepEqual(plaintext, secret);
    }
    // Version 1 refuses outright: the blob says version 2 wrote it.
    await assert.rejects(unseal(v1!.keys, { ...meta, ownSvn: 1 }, blob), {
      code: 'SECURITY_VERSION_ROLLBACK',
    });
    // Nor can it get version 2's key from the platform...
    assert.throws(() => v1!.platform.sealKey(v1!.identity, 'signer', 2, new Uint8Array(16)), {
      code: 'SEAL_POLICY',
    });
    // ...and its own key does not open the data: the version is an input of the derivation, so
    // a header rewritten to claim version 1 fails on the authentication tag.
    const forged = rewriteSvn(blob, 1);
    await assert.rejects(unseal(v1!.keys, { ...meta, ownSvn: 1 }, forged), {
      code: 'SEALED_DATA_CORRUPT',
    });
  });

  it('refuses a blob sealed on another platform', async () => {
    const a = await admitted(tempDir(), 1);
    const b = await admitted(tempDir(), 1);
    const blob = await seal(a.keys, { ...meta, policy: 'signer', svn: 1 }, secret);
    await assert.rejects(unseal(b.keys, { ...meta, ownSvn: 1 }, blob), {
      code: 'SEALED_DATA_CORRUPT',
    });
  });

  it('refuses any altered byte', async () => {
    const a = await admitted(tempDir(), 1);
    const blob = await seal(a.keys, { ...meta, policy: 'signer', svn: 1 }, secret);
    for (let i = 0; i < blob.length; i++) {
      const bad = blob.slice();
      bad[i]! ^= 0x01;
      await assert.rejects(unseal(a.keys, { ...meta, ownSvn: 1 }, bad), (e: { code?: string }) =>
        ['SEALED_DATA_CORRUPT', 'SECURITY_VERSION_ROLLBACK'].includes(e.code ?? ''),
      );
    }
  });

  it('refuses a header the enclave never writes, or a fourth element, by name before it asks the platform for a key', async () => {
    const a = await admitted(tempDir(), 1);
    const asked: number[] = [];
    const keys = {
      sealKey: async (policy: 'code' | 'signer', s: number, keyId: Uint8Array) => {
        asked.push(s);
        return a.keys.sealKey(policy, s, keyId);
      },
    };
    const blob = await seal(keys, { ...meta, policy: 'signer', svn: 1 }, secret);
    const [headerBytes, iv, ciphertext] = decodeCbor(blob) as [Uint8Array, Uint8Array, Uint8Array];
    // The header is the tag's additional data: these fail authentication on a real platform. On
    // simulation the host derives keys itself, so each is refused for its shape first.
    const header = decodeCbor(headerBytes) as unknown[];
    const withField = (i: number, value: unknown): Uint8Array => {
      const h = header.slice();
      h[i] = value;
      return encodeCbor([encodeCbor(h), iv, ciphertext]);
    };
    const cases: [string, Uint8Array, RegExp][] = [
      [
        'a fourth element',
        encodeCbor([headerBytes, iv, ciphertext, iv]),
        /not in the sealed format/,
      ],
      ['policy 0', withField(2, 0), /header is malformed/],
      ['policy 3', withField(2, 3), /header is malformed/],
      ['svn -1', withField(3, -1), /header is malformed/],
      ['svn 0.5', withField(3, 0.5), /header is malformed/],
      ['svn 2^32', withField(3, 2 ** 32), /header is malformed/],
      [
        'a 15-byte key id',
        withField(4, (header[4] as Uint8Array).subarray(1)),
        /header is malformed/,
      ],
      ['a 17-byte key id', withField(4, new Uint8Array(17)), /header is malformed/],
    ];
    asked.length = 0;
    for (const [what, bad, message] of cases) {
      await assert.rejects(
        unseal(keys, { ...meta, ownSvn: 1 }, bad),
        { code: 'SEALED_DATA_CORRUPT', message },
        what,
      );
    }
    assert.deepEqual(asked, [], 'no key was asked for');
    assert.deepEqual((await unseal(keys, { ...meta, ownSvn: 1 }, blob)).plaintext, secret);
  });
});

/** Rewrites the svn field of a sealed blob's header (an attacker's edit; the tag is unchanged). */
function rewriteSvn(blob: Uint8Array, svn: number): Uint8Array {
  // Deterministic CBOR: the header array holds [.., policy=2, svn, keyId(0x50 ..)], so the svn is
  // the byte right before 0x50 (bstr of 16) for small versions.
  const out = blob.slice();
  const at = out.indexOf(0x50);
  assert.ok(at > 0 && out[at - 1]! < 24, 'small svn encoded in one byte');
  out[at - 1] = svn;
  return out;
}

describe('the node state across restarts', () => {
  async function run(dataDir: string, platformDir: string, svn: number) {
    const b = await testBuild(svn);
    return startNode({ dataDir, platformDir, enclaveDir: b.outDir, port: 0, logger: silent });
  }

  it('keeps the identity across a restart and an upgrade, and refuses a downgrade', async () => {
    const dataDir = join(tempDir(), 'data');
    const platformDir = join(tempDir(), 'platform');
    const first = await run(dataDir, platformDir, 2);
    const id = first.identityPublicKey;
    await first.close();
    const again = await run(dataDir, platformDir, 2);
    assert.deepEqual(again.identityPublicKey, id);
    await again.close();
    const upgraded = await run(dataDir, platformDir, 3);
    assert.deepEqual(upgraded.identityPublicKey, id);
    await upgraded.close();
    await assert.rejects(run(dataDir, platformDir, 2), { code: 'SECURITY_VERSION_ROLLBACK' });
    await assert.rejects(run(dataDir, platformDir, 1), { code: 'SECURITY_VERSION_ROLLBACK' });
  });

  it('refuses a corrupted sealed file and never replaces it', async () => {
    const dataDir = join(tempDir(), 'data');
    const platformDir = join(tempDir(), 'platform');
    await (await run(dataDir, platformDir, 1)).close();
    const path = join(dataDir, 'sealed', 'node.sealed');
    const bytes = readFileSync(path);
    bytes[bytes.length - 5]! ^= 0xff;
    writeFileSync(path, bytes);
    await assert.rejects(run(dataDir, platformDir, 1), { code: 'SEALED_DATA_CORRUPT' });
    assert.deepEqual(readFileSync(path), bytes);
    writeFileSync(path, 'garbage');
    await assert.rejects(run(dataDir, platformDir, 1), { code: 'SEALED_DATA_CORRUPT' });
  });

  it('refuses a sealed file moved to another node or another platform', async () => {
    const platformDir = join(tempDir(), 'platform');
    const a = join(tempDir(), 'a');
    const b = join(tempDir(), 'b');
    await (await run(a, platformDir, 1)).close();
    await (await run(b, platformDir, 1)).close();
    copyFileSync(join(a, 'sealed', 'node.sealed'), join(b, 'sealed', 'node.sealed'));
    await assert.rejects(run(b, platformDir, 1), { code: 'SEALED_DATA_CORRUPT' });
    // The whole data directory on another platform (another machine): the key differs.
    await assert.rejects(run(a, join(tempDir(), 'other-platform'), 1), {
      code: 'SEALED_DATA_CORRUPT',
    });
  });
});

describe("the host's platform.sealKey answer", () => {
  it('gives a key only for policy 1 (code) or 2 (signer), each the platform key of that policy', async () => {
    const a = await admitted(tempDir(), 1);
    const ocalls = enclaveOcalls(a.platform, a.identity);
    const answer = ocalls['platform.sealKey'] as (req: {
      policy: number;
      svn: number;
      keyId: Uint8Array;
    }) => { key: Uint8Array };
    const keyId = new Uint8Array(16).fill(7);
    assert.deepEqual(
      answer({ policy: 1, svn: 1, keyId }).key,
      a.platform.sealKey(a.identity, 'code', 1, keyId),
    );
    assert.deepEqual(
      answer({ policy: 2, svn: 1, keyId }).key,
      a.platform.sealKey(a.identity, 'signer', 1, keyId),
    );
    assert.notDeepEqual(
      answer({ policy: 1, svn: 1, keyId }).key,
      answer({ policy: 2, svn: 1, keyId }).key,
    );
    // Any other byte is not a policy: before, every value but 1 was answered with the signer key.
    for (const policy of [0, 3, 255, -1]) {
      assert.throws(() => answer({ policy, svn: 1, keyId }), {
        code: 'INVALID_INPUT',
        message: new RegExp(`sealing policy ${policy} is neither 1 \\(code\\) nor 2 \\(signer\\)`),
      });
    }
  });
});
