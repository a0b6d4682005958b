/**
 * `cloister receipt get URL TXID [-o FILE]`: fetches the receipt of a transaction from a node
 * and writes it to a file (the node is not trusted: verify the file). `cloister receipt verify
 * FILE`: verifies a receipt offline with core verifyReceipt (docs/receipts.md) and prints the
 * verdict as JSON. Exit codes: 0 accepted / written, 1 refused, 2 could not ask or read.
 */
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import {
  CloisterError,
  type Constraint,
  clausesBeyondEvidence,
  decodeReceipt,
  fromHex,
  InvalidInputError,
  parseConstraint,
  parseTxid,
  ReceiptError,
  toHex,
  verifyReceipt,
} from '@cloister/core';
import { fetchNode, nodeAnswerError } from '../node-http.js';
import { printError } from '../output.js';
import { RECEIPT_FILE, writeOutputFile } from '../output-file.js';

export interface ReceiptGetOptions {
  readonly out?: string;
  readonly timeoutMs?: number;
}

function json(v: unknown): void {
  process.stdout.write(`${JSON.stringify(v, null, 2)}\n`);
}

/** The node's URL for the receipt of `txid`. */
function receiptUrl(base: string, txid: string): URL {
  let url: URL;
  try {
    url = new URL('/v1/receipt', base);
  } catch {
    throw new InvalidInputError(
      `not a URL: ${base}; give the node's URL, e.g. http://127.0.0.1:7410`,
    );
  }
  url.searchParams.set('txid', txid);
  return url;
}

export async function receiptGet(
  base: string,
  txid: string,
  o: ReceiptGetOptions,
): Promise<number> {
  let bytes: Uint8Array;
  try {
    // Checked here first: a malformed txid is the user's to fix, not the node's to refuse.
    parseTxid(txid);
    const url = receiptUrl(base, txid);
    const res = await fetchNode(url, o.timeoutMs ?? 10_000);
    const body = new Uint8Array(await res.arrayBuffer());
    if (!res.ok) {
      if (res.status === 409) {
        // Not a network problem: the node's own answer, with its own next step (retry).
        throw new CloisterError(
          'RECEIPT_NOT_READY',
          `${txid} is committed but not signed yet (HTTP 409): run the same command again in a second or so (a node started with --sign-interval 0 signs only every 1000 entries)`,
        );
      }
      throw nodeAnswerError(res.status, body, `no receipt for ${txid}`, [
        'UNKNOWN_TRANSACTION',
        'INVALID_INPUT',
        'NODE_BUSY',
      ]);
    }
    bytes = body;
  } catch (e) {
    printError(e);
    return 2;
  }
  let file: string;
  try {
    file = writeOutputFile(o.out ?? `receipt-${txid}.cbor`, bytes, RECEIPT_FILE, '--out');
  } catch (e) {
    printError(e);
    return 2;
  }
  // What the receipt claims, unverified: `cloister receipt verify` checks it.
  let claimed: Record<string, unknown> = {};
  try {
    const r = decodeReceipt(bytes);
    claimed = {
      index: r.entry.index,
      term: r.entry.term,
      kind: r.entry.kind,
      treeSize: r.size,
      sigIndex: r.sigIndex,
    };
  } catch (e) {
    claimed = { decodes: false, code: (e as CloisterError).code ?? 'unknown' };
  }
  // Written, not yet checked: what the node sent is only its claim until `receipt verify`.
  json({
    txid,
    file,
    bytes: bytes.length,
    verified: false,
    claimed,
    next: `cloister receipt verify ${file} --constraint "<the constraint you accept>"`,
  });
  return 0;
}

export interface ReceiptVerifyOptions {
  /** Required: a receipt is only as good as the code its evidence proves (C: or S:+PROD:). */
  readonly constraint: string;
  readonly service?: string;
}

export async function receiptVerify(file: string, o: ReceiptVerifyOptions): Promise<number> {
  let bytes: Uint8Array;
  let service: Uint8Array | undefined;
  let parsed: Constraint;
  const { constraint } = o;
  try {
    parsed = parseConstraint(constraint);
    if (o.service !== undefined) {
      service = fromHex(o.service, 'service identity');
      if (service.length !== 32) {
        throw new InvalidInputError(
          'the service identity is 32 bytes (64 hex digits): the SHA-256 of the service public key',
        );
      }
    }
    try {
      bytes = new Uint8Array(readFileSync(file));
    } catch (e) {
      throw new InvalidInputError(
        `cannot read the receipt file ${resolve(file)} (${(e as NodeJS.ErrnoException).code ?? (e as Error).message}): give the path of a receipt (\`cloister receipt get\` writes one)`,
      );
    }
  } catch (e) {
    printError(e);
    return 2;
  }
  try {
    const v = await verifyReceipt(bytes, { constraint: parsed, ...(service ? { service } : {}) });
    const unchecked = clausesBeyondEvidence(parsed, { serviceChecked: true });
    json({
      verdict: 'accepted',
      file: resolve(file),
      txid: v.txid,
      term: v.term,
      index: v.index,
      kind: v.kind,
      treeSize: v.size,
      treeRoot: toHex(v.treeRoot),
      stateHash: toHex(v.stateHash),
      service: toHex(v.service),
      servicePublicKey: toHex(v.servicePublicKey),
      nodePublicKey: toHex(v.nodePublicKey),
      claims: toHex(v.claims),
      platform: v.security.platform,
      secure: v.security.secure,
      measurement: toHex(v.security.measurement),
      constraint,
      serviceChecked: service !== undefined || parsed.service !== undefined,
      unchecked,
    });
    if (unchecked.length > 0) {
      process.stderr.write(
        `note: not checked by a receipt: ${unchecked.join(' ')} (it carries the digest of the entry's metadata, not the app's code id; a client checks APP: clauses when it calls, and \`cloister call --receipt\` checks the receipt's claims, which name the code id)\n`,
      );
    }
    return 0;
  } catch (e) {
    if (!(e instanceof CloisterError)) throw e;
    json({
      verdict: 'refused',
      file: resolve(file),
      code: e.code,
      ...(e instanceof ReceiptError ? { reason: e.reason } : {}),
      message: e.message,
    });
    process.stderr.write(
      `receipt REFUSED [${e.code}] ${e.message}\n  next step: ${nextStep(e, constraint)}\n`,
    );
    return 1;
  }
}

/**
 * The next step for a refused receipt. When its node evidence does not meet the constraint (not
 * a bad signature), the constraint given is as likely to be wrong as the receipt: say so, with
 * what to check, rather than only "altered or forged".
 */
function nextStep(e: CloisterError, constraint: string): string {
  const cause = (e as { cause?: unknown }).cause;
  const code = cause instanceof CloisterError ? cause.code : undefined;
  if (e instanceof ReceiptError && e.reason === 'evidence' && code === 'INSECURE_PLATFORM') {
    return `The receipt's node runs on an insecure platform (simulation), which "${constraint}" does not admit: if you meant to accept it, add SEC:INSECURE (for development only); else do not rely on this receipt.`;
  }
  if (e instanceof ReceiptError && e.reason === 'evidence' && code === 'CONSTRAINT_MISMATCH') {
    return `The receipt's node evidence does not meet "${constraint}": check that C: is the measurement of the build you trust (\`cloister measure\`) and the other clauses; if the constraint is right, do not rely on this receipt (it is for other code, or forged).`;
  }
  return e.hint;
}
