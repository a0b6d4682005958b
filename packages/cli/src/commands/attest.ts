/**
 * `cloister attest URL --constraint "..."`: fetches the node's evidence for a fresh random nonce,
 * verifies it against the constraint (in this process: the node is not trusted), prints what it
 * verified and the verdict. Exit code 0 when accepted, 1 when refused, 2 when it could not ask.
 * Once accepted, it also prints the node's service identity (what `app deploy --service`,
 * `receipt verify --service` and `SVC:` take), proven by a fresh secure-connection handshake
 * served by the node key the evidence just bound (findService). When that cannot be checked, the
 * node's reported identity is printed labelled as its unverified claim. An SVC: clause is checked
 * against the proven identity (a mismatch is refused, exit 1), and refused too when it cannot be
 * checked; APP: clauses are printed as not checked here.
 */

import { type Client, connect, generateIdentity, memoryState } from '@cloister/client/node';
import {
  bytesEqual,
  CloisterError,
  type Constraint,
  ConstraintMismatchError,
  checkServiceClause,
  clausesBeyondEvidence,
  decodeEvidencePayload,
  decodeSign1,
  formatConstraint,
  fromBase64,
  fromHex,
  parseConstraint,
  sha256,
  toHex,
  verifyEvidence,
} from '@cloister/core';
import { fetchNode, NetworkError, nodeAnswerError } from '../node-http.js';
import { line, printError } from '../output.js';

export interface AttestOptions {
  readonly constraint: string;
  readonly json?: boolean;
  readonly timeoutMs?: number;
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
  const res = await fetchNode(url, timeoutMs);
  const text = await res.text().catch(() => '');
  if (!res.ok) {
    throw nodeAnswerError(res.status, text, 'the node did not return evidence', [
      'INVALID_INPUT',
      'NODE_BUSY',
    ]);
  }
  let body: { evidence?: unknown; identityPublicKey?: unknown } | undefined;
  try {
    body = JSON.parse(text) as typeof body;
  } catch {
    // not JSON: refused below
  }
  if (typeof body?.evidence !== 'string' || typeof body.identityPublicKey !== 'string') {
    throw new NetworkError(
      `${url.origin} did not answer with evidence (HTTP ${res.status}, not a node's JSON): is it a Cloister node?`,
    );
  }
  return {
    evidence: fromBase64(body.evidence, 'evidence'),
    identityPublicKey: fromHex(body.identityPublicKey, 'identity public key'),
  };
}

/** `c` without its APP: and SVC: clauses: what evidence alone is matched against. */
function evidenceClauses(c: Constraint): Constraint {
  const { apps: _apps, service: _service, ...rest } = c;
  return rest;
}

/** The node's service identity: proven by this process, or only the node's word (and why). */
type ServiceFinding =
  | { readonly verified: true; readonly identity: string }
  | { readonly verified: false; readonly identity: string | undefined; readonly why: string };

/**
 * The node's service identity, proven now: a secure-connection handshake (docs/scp.md) with a
 * fresh nonce, whose ServerAuth the node signs over the transcript with the service endorsement
 * and evidence binding its identity key, checked by the client SDK against the evidence clauses
 * (no pin is read or written: an in-memory state; the client key is a throwaway, and no app data
 * is sent). The node key it shows must be the one the fresh evidence just bound. A receipt or
 * /v1/status could name a service this node key once endorsed but no longer serves (a host can
 * run a new genesis, or two data directories, under one node key); the handshake cannot. When it
 * fails, the identity /v1/status reports is printed labelled as the node's unverified claim.
 */
async function findService(
  base: string,
  nodePublicKey: Uint8Array,
  constraint: Constraint,
  timeoutMs: number,
): Promise<ServiceFinding> {
  let client: Client | undefined;
  let why: string;
  try {
    client = await connect(base, {
      constraint: evidenceClauses(constraint),
      identity: await generateIdentity(),
      state: memoryState(),
      reconnect: false,
      handshakeTimeoutMs: timeoutMs,
    });
    const shown = client.service;
    if (bytesEqual(shown.nodeKey, nodePublicKey)) {
      return { verified: true, identity: toHex(shown.identity) };
    }
    why = 'the secure connection was served by another node key than the one just attested';
  } catch (e) {
    why = `the secure connection failed: ${e instanceof Error ? e.message : String(e)}`;
  } finally {
    await client?.close().catch(() => {});
  }
  return { verified: false, identity: await reportedService(base, timeoutMs), why };
}

/** The service identity /v1/status reports (the node's word), or undefined. */
async function reportedService(base: string, timeoutMs: number): Promise<string | undefined> {
  try {
    const st = await fetchNode(new URL('/v1/status', base), timeoutMs);
    const body = (await st.json()) as { serviceIdentity?: unknown };
    const id = body.serviceIdentity;
    return typeof id === 'string' && /^[0-9a-f]{64}$/.test(id) ? id : undefined;
  } catch {
    return undefined;
  }
}

function serviceLine(s: ServiceFinding): string {
  if (s.verified) {
    return line(
      'service',
      `${s.identity} (verified: a fresh secure connection to the identity key above shows it)`,
    );
  }
  return line(
    'service',
    s.identity === undefined
      ? `unknown (${s.why})`
      : `${s.identity} (as the node reports it, NOT verified: ${s.why})`,
  );
}

/** What the verified evidence shows, one line each. */
function verifiedLines(
  v: Awaited<ReturnType<typeof verifyEvidence>>,
  identityPublicKey: Uint8Array,
): string {
  return (
    line('platform', v.secure ? v.platform : `${v.platform} (INSECURE: no hardware protection)`) +
    line('root of trust', v.rootOfTrust) +
    line('measurement', toHex(v.measurement)) +
    line('signer', toHex(v.signer)) +
    line('product', v.product) +
    line('svn', v.svn) +
    line('platform key', `sha256 ${toHex(sha256(v.platformKey))}`) +
    line('identity key', toHex(identityPublicKey))
  );
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
  // Set once the evidence verified: a refusal after that (SVC:) shows verified fields.
  let verified:
    | { v: Awaited<ReturnType<typeof verifyEvidence>>; service: ServiceFinding }
    | undefined;
  try {
    const v = await verifyEvidence(fetched.evidence, {
      nonce,
      identityPublicKey: fetched.identityPublicKey,
      constraint,
    });
    const service = await findService(
      url,
      fetched.identityPublicKey,
      constraint,
      opts.timeoutMs ?? 10_000,
    );
    verified = { v, service };
    // SVC: holds only for a service identity this process proved, as at a client's connect; one
    // it could not prove is refused too (exit 1), never passed over. Past this, SVC: is checked
    // or absent, and only APP: clauses are left to the client.
    if (service.verified) {
      checkServiceClause(constraint, fromHex(service.identity, 'service identity'));
    } else if (constraint.service !== undefined) {
      const clause = `SVC:${toHex(constraint.service)}`;
      throw new ConstraintMismatchError(
        clause,
        service.identity ?? 'none',
        `${clause} could not be checked: ${service.why}`,
      );
    }
    const unchecked = clausesBeyondEvidence(constraint, { serviceChecked: true });
    const { apps: _apps, ...accepted } = constraint;
    if (opts.json) {
      process.stdout.write(
        `${JSON.stringify({
          verdict: 'accepted',
          unchecked,
          platform: v.platform,
          secure: v.secure,
          rootOfTrust: v.rootOfTrust,
          measurement: toHex(v.measurement),
          signer: toHex(v.signer),
          product: v.product,
          svn: v.svn,
          identityPublicKey: toHex(fetched.identityPublicKey),
          service: service.identity ?? null,
          serviceVerified: service.verified,
          ...(service.verified ? {} : { serviceNote: service.why }),
        })}\n`,
      );
      return 0;
    }
    process.stdout.write(
      `evidence from ${url}\n` +
        verifiedLines(v, fetched.identityPublicKey) +
        serviceLine(service) +
        `verdict: ACCEPTED under "${formatConstraint(accepted)}"\n` +
        (unchecked.length === 0
          ? ''
          : `  not checked here: ${unchecked.join(' ')} (the evidence does not show them: a client checks them when it connects, as \`cloister query\` and \`cloister call\` do)\n`),
    );
    return 0;
  } catch (e) {
    if (!(e instanceof CloisterError)) throw e;
    if (opts.json) {
      process.stdout.write(
        `${JSON.stringify({ verdict: 'refused', code: e.code, message: e.message })}\n`,
      );
    } else {
      // Refused after the evidence verified (an SVC: clause): its fields are verified, not claims.
      const shown =
        verified === undefined
          ? describeUnverified(fetched.evidence)
          : verifiedLines(verified.v, fetched.identityPublicKey) + serviceLine(verified.service);
      process.stdout.write(
        `evidence from ${url}\n${shown}verdict: REFUSED [${e.code}] ${e.message}\n  next step: ${e.hint}\n`,
      );
    }
    return 1;
  }
}
