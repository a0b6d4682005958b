/**
 * `cloister attest URL --constraint "..."`: fetches the node's evidence for a fresh random nonce,
 * verifies it against the constraint (in this process: the node is not trusted), prints what it
 * verified and the verdict. Exit code 0 when accepted, 1 when refused, 2 when it could not ask.
 */
import {
  CloisterError,
  decodeEvidencePayload,
  decodeSign1,
  fromBase64,
  fromHex,
  parseConstraint,
  sha256,
  toHex,
  verifyEvidence,
} from '@cloister/core';
import { line, printError } from '../output.js';

export interface AttestOptions {
  readonly constraint: string;
  readonly json?: boolean;
  readonly timeoutMs?: number;
}

class NetworkError extends CloisterError {
  constructor(message: string) {
    super('NETWORK', message);
  }
}

async function fetchEvidence(
  base: string,
  nonce: Uint8Array,
  timeoutMs: number,
): Promise<{ evidence: Uint8Array; identityPublicKey: Uint8Array }> {
  let url: URL;
  try {
    url = new URL('/v1/evidence', base);
  } catch {
    throw new CloisterError(
      'INVALID_INPUT',
      `not a URL: ${base}; give the node's URL, e.g. http://127.0.0.1:7410`,
    );
  }
  url.searchParams.set('nonce', toHex(nonce));
  let res: Response;
  try {
    res = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
  } catch (e) {
    throw new NetworkError(`could not reach ${url.origin}: ${(e as Error).message}`);
  }
  const body = (await res.json().catch(() => undefined)) as
    | { evidence?: unknown; identityPublicKey?: unknown; error?: { message?: string } }
    | undefined;
  if (
    !res.ok ||
    !body ||
    typeof body.evidence !== 'string' ||
    typeof body.identityPublicKey !== 'string'
  ) {
    const why = body?.error?.message ?? `HTTP ${res.status}`;
    throw new NetworkError(`the node did not return evidence (${why})`);
  }
  return {
    evidence: fromBase64(body.evidence, 'evidence'),
    identityPublicKey: fromHex(body.identityPublicKey, 'identity public key'),
  };
}

function describeUnverified(evidence: Uint8Array): string {
  try {
    const c = decodeEvidencePayload(decodeSign1(evidence).payload);
    return (
      '  (as claimed, NOT verified)\n' +
      line('platform', c.platform) +
      line('measurement', toHex(c.measurement)) +
      line('signer', toHex(c.signer)) +
      line('product', c.product) +
      line('svn', c.svn)
    );
  } catch {
    return '  (the evidence could not even be parsed)\n';
  }
}

export async function attest(url: string, opts: AttestOptions): Promise<number> {
  let constraint: ReturnType<typeof parseConstraint>;
  try {
    constraint = parseConstraint(opts.constraint);
  } catch (e) {
    printError(e);
    return 2;
  }
  const nonce = crypto.getRandomValues(new Uint8Array(32));
  let fetched: Awaited<ReturnType<typeof fetchEvidence>>;
  try {
    fetched = await fetchEvidence(url, nonce, opts.timeoutMs ?? 10_000);
  } catch (e) {
    printError(e);
    return 2;
  }
  try {
    const v = await verifyEvidence(fetched.evidence, {
      nonce,
      identityPublicKey: fetched.identityPublicKey,
      constraint,
    });
    if (opts.json) {
      process.stdout.write(
        `${JSON.stringify({
          verdict: 'accepted',
          platform: v.platform,
          secure: v.secure,
          rootOfTrust: v.rootOfTrust,
          measurement: toHex(v.measurement),
          signer: toHex(v.signer),
          product: v.product,
          svn: v.svn,
          identityPublicKey: toHex(fetched.identityPublicKey),
        })}\n`,
      );
      return 0;
    }
    process.stdout.write(
      `evidence from ${url}\n` +
        line(
          'platform',
          v.secure ? v.platform : `${v.platform} (INSECURE: no hardware protection)`,
        ) +
        line('root of trust', v.rootOfTrust) +
        line('measurement', toHex(v.measurement)) +
        line('signer', toHex(v.signer)) +
        line('product', v.product) +
        line('svn', v.svn) +
        line('platform key', `sha256 ${toHex(sha256(v.platformKey))}`) +
        line('identity key', toHex(fetched.identityPublicKey)) +
        `verdict: ACCEPTED under "${opts.constraint}"\n`,
    );
    return 0;
  } catch (e) {
    if (!(e instanceof CloisterError)) throw e;
    if (opts.json) {
      process.stdout.write(
        `${JSON.stringify({ verdict: 'refused', code: e.code, message: e.message })}\n`,
      );
    } else {
      process.stdout.write(
        `evidence from ${url}\n${describeUnverified(fetched.evidence)}verdict: REFUSED [${e.code}] ${e.message}\n  next step: ${e.hint}\n`,
      );
    }
    return 1;
  }
}
