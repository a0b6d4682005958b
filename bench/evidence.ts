/**
 * Evidence created and verified per second, in the shipping configuration: the host asks the
 * enclave (worker, real boundary) for evidence, the enclave asks the simulation platform (back
 * across the boundary) to sign it; verification is the isomorphic verifier, strict parsing and
 * constraint included. Baselines, measured in the same run: raw ECDSA P-256 signing with
 * node:crypto (what the platform signs with) and raw ECDSA P-256 verification with WebCrypto and
 * an already imported key (what the verifier verifies with). Each side is run once untimed, then
 * three times interleaved with its baseline (the first side alternating); a target is the median
 * of the three runs' ratios, which are printed as `.runs` info lines.
 */
import { generateKeyPairSync, sign } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseConstraint, toHex, verifyEvidence } from '@cloister/core';
import { buildEnclave } from '../packages/host/src/build/build.js';
import { launchEnclaveWorker } from '../packages/host/src/launcher/index.js';
import { enclaveOcalls } from '../packages/host/src/node/node.js';
import { openSimulationPlatform } from '../packages/host/src/platform/index.js';
import { createMemoryStore, storeOcalls } from '../packages/host/src/store/index.js';
import {
  type BenchOptions,
  concurrentOpsPerSecond,
  info,
  interleaved,
  median,
  median3,
  medianRatio,
  opsPerSecond,
  target,
} from './lib.js';

export async function runEvidenceBench(opts: BenchOptions): Promise<void> {
  const n = opts.size ?? (opts.smoke ? 50 : 4000);
  const home = mkdtempSync(join(tmpdir(), 'cloister-bench-evidence-'));
  try {
    const build = await buildEnclave({
      outDir: join(home, 'enclave'),
      signerKeyPath: join(home, 'signer.pem'),
    });
    const platform = openSimulationPlatform({ dir: join(home, 'platform') });
    const identity = platform.admit(build.bundle, build.manifest);
    const worker = await launchEnclaveWorker({
      code: build.bundle,
      // The enclave opens its logchain service on start: serve it an in-memory store.
      ocalls: enclaveOcalls(platform, identity, {
        ...storeOcalls(createMemoryStore()),
        'service.persist': () => ({}),
      }),
    });
    try {
      await worker.call('enclave.start', {
        nodeId: 'bench',
        sealedNode: new Uint8Array(0),
        sealedService: new Uint8Array(0),
      });
      const nonce = new Uint8Array(32).fill(7);
      const sample = await worker.call('enclave.evidence', { nonce });
      // A client parses its constraint once and verifies many answers against it.
      const constraint = parseConstraint(`C:${toHex(build.measurement)} SEC:INSECURE`);

      const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
      const data = new Uint8Array(sample.evidence.subarray(0, 200));
      const signRun = () =>
        opsPerSecond(n, () => sign('sha256', data, { key: privateKey, dsaEncoding: 'ieee-p1363' }));
      // Throughput with 32 requests in flight, as a node serving many clients sees it; the
      // latency of one request (two boundary round trips plus the signature) is an info line.
      const createRun = () =>
        concurrentOpsPerSecond(n, 32, () => worker.call('enclave.evidence', { nonce }));
      // Untimed first: the JIT, both threads' message paths and the platform's signing pool.
      await createRun();
      await signRun();
      // Each run measures both sides, the first side alternating: load that drifts over the
      // benchmark (another process finishing, a GC) hits both sides of the ratio alike.
      const c = await interleaved(createRun, signRun);
      const created = median(c.a);
      const rawSign = median(c.b);
      const createdSequential = await median3(() =>
        opsPerSecond(n, () => worker.call('enclave.evidence', { nonce })),
      );

      const pair = (await crypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, false, [
        'sign',
        'verify',
      ])) as CryptoKeyPair;
      const alg = { name: 'ECDSA', hash: 'SHA-256' };
      const sig = await crypto.subtle.sign(alg, pair.privateKey, data);
      const v = await interleaved(
        () =>
          opsPerSecond(n, () =>
            verifyEvidence(sample.evidence, {
              nonce,
              identityPublicKey: sample.identityPublicKey,
              constraint,
            }),
          ),
        () => opsPerSecond(n, () => crypto.subtle.verify(alg, pair.publicKey, sig, data)),
      );
      const verified = median(v.a);
      const rawVerify = median(v.b);
      info('evidence.created-per-s', created);
      info('evidence.created-latency-us', 1e6 / createdSequential);
      info('evidence.raw-ecdsa-sign-per-s', rawSign);
      info('evidence.verified-per-s', verified);
      info('evidence.raw-ecdsa-verify-per-s', rawVerify);
      info('evidence.size-bytes', sample.evidence.length);
      const runs = (a: number[], b: number[]) => a.map((x, i) => (x / (b[i] as number)).toFixed(2));
      info('evidence.created-vs-raw-ecdsa-sign.runs', runs(c.a, c.b).join(','));
      info('evidence.verified-vs-raw-ecdsa-verify.runs', runs(v.a, v.b).join(','));
      target('evidence.created-vs-raw-ecdsa-sign', medianRatio(c.a, c.b), '>=0.50');
      target('evidence.verified-vs-raw-ecdsa-verify', medianRatio(v.a, v.b), '>=0.50');
    } finally {
      await worker.terminate();
      platform.close();
    }
  } finally {
    rmSync(home, { recursive: true, force: true });
  }
}
