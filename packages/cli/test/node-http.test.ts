/**
 * The CLI's requests to a node (src/node-http.ts): a failed fetch names its cause and what to do;
 * a node's error code is taken only when the registry has it as its own key.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { describe, it } from 'node:test';
import { fetchFailure, fetchNode, nodeAnswerError } from '../src/node-http.js';
import { printable, stderrForLogs, stderrLines, step } from '../src/output.js';

/** What Node's fetch rejects with: "fetch failed", the reason in `cause`. */
function fetchFailed(code: string, message: string): TypeError {
  return new TypeError('fetch failed', { cause: Object.assign(new Error(message), { code }) });
}

describe('fetchFailure', () => {
  it('names an untrusted certificate and how to trust it', () => {
    for (const code of ['DEPTH_ZERO_SELF_SIGNED_CERT', 'UNABLE_TO_VERIFY_LEAF_SIGNATURE']) {
      const e = fetchFailure(fetchFailed(code, 'self-signed certificate'), 'https://n:7410');
      assert.equal(e.code, 'NETWORK');
      assert.match(e.message, new RegExp(`not one this machine trusts \\(${code}\\)`));
      assert.match(e.message, /NODE_EXTRA_CA_CERTS=/);
      // The node answered: the next step is about its certificate, not whether it runs.
      assert.match(e.hint, /NODE_EXTRA_CA_CERTS=/);
      assert.doesNotMatch(e.hint, /running/);
    }
  });

  it('a certificate out of date says so, with its dates, and who renews it', () => {
    const dates = { validFrom: 'Jan  1 00:00:00 2020 GMT', validTo: 'Jan  2 00:00:00 2020 GMT' };
    const expired = fetchFailure(
      fetchFailed('CERT_HAS_EXPIRED', 'certificate has expired'),
      'https://n:7410',
      dates,
    );
    assert.equal(expired.code, 'NETWORK');
    assert.equal(
      expired.message,
      'could not reach https://n:7410: its TLS certificate has expired (CERT_HAS_EXPIRED; it is valid from 2020-01-01T00:00:00Z to 2020-01-02T00:00:00Z)',
    );
    assert.match(expired.hint, /operator must renew it/);
    assert.doesNotMatch(`${expired.message} ${expired.hint}`, /running|NODE_EXTRA_CA_CERTS=/);
    const early = fetchFailure(fetchFailed('CERT_NOT_YET_VALID', 'not yet valid'), 'https://n');
    assert.match(
      early.message,
      /certificate is not valid yet \(CERT_NOT_YET_VALID; this machine's clock reads /,
    );
    assert.match(early.hint, /not valid yet/);
    assert.doesNotMatch(`${early.message} ${early.hint}`, /running|NODE_EXTRA_CA_CERTS=/);
  });

  it('fetchNode names the dates of an expired certificate the node shows', async () => {
    const fixtures = new URL('fixtures/tls/', import.meta.url);
    const server = createHttpsServer(
      {
        cert: readFileSync(new URL('expired-cert.pem', fixtures)),
        key: readFileSync(new URL('expired-key.pem', fixtures)),
      },
      (_req, res) => res.end('{}'),
    );
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    try {
      const url = new URL(`https://127.0.0.1:${(server.address() as AddressInfo).port}/v1/health`);
      await assert.rejects(fetchNode(url, 5000), (e: Error & { code?: string; hint?: string }) => {
        assert.equal(e.code, 'NETWORK');
        assert.match(
          e.message,
          /certificate has expired \(CERT_HAS_EXPIRED; it is valid from 2020-01-01T00:00:00Z to 2020-01-02T00:00:00Z\)/,
        );
        assert.match(e.hint ?? '', /renew/);
        return true;
      });
    } finally {
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    }
  });

  it('names a closed connection (an https node asked over http://) and a timeout', () => {
    const closed = fetchFailure(fetchFailed('UND_ERR_SOCKET', 'other side closed'), 'http://n');
    assert.match(closed.message, /closed before an answer \(other side closed\).*https:\/\//);
    const slow = fetchFailure(new DOMException('aborted', 'TimeoutError'), 'http://n');
    assert.equal(slow.message, 'http://n did not answer in time');
  });

  it('keeps the cause of anything else, and never fails on odd values', () => {
    assert.match(
      fetchFailure(fetchFailed('EHOSTUNREACH', 'no route'), 'http://n').message,
      /no route \(EHOSTUNREACH\)/,
    );
    assert.match(
      fetchFailure('just text', 'http://n').message,
      /could not reach http:\/\/n: just text/,
    );
    assert.match(fetchFailure(undefined, 'http://n').message, /could not reach http:\/\/n/);
  });

  it('fetchNode gives a timeout its own words', async () => {
    const server = createServer(() => {}); // never answers
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    try {
      const url = new URL(`http://127.0.0.1:${(server.address() as AddressInfo).port}/v1/health`);
      await assert.rejects(fetchNode(url, 100), {
        code: 'NETWORK',
        message: `${url.origin} did not answer in time`,
      });
    } finally {
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    }
  });
});

describe('nodeAnswerError', () => {
  it("takes the node's registry code and message", () => {
    const body = JSON.stringify({ error: { code: 'UNKNOWN_TRANSACTION', message: 'no 1.9' } });
    const e = nodeAnswerError(404, body, 'no receipt for 1.9');
    assert.equal(e.code, 'UNKNOWN_TRANSACTION');
    assert.equal(e.message, 'no receipt for 1.9: the node answered HTTP 404: no 1.9');
    assert.equal(typeof e.hint, 'string');
  });

  it('a code outside the registry (an inherited name included) or no JSON is NETWORK', () => {
    for (const code of ['constructor', 'toString', '__proto__', 'NO_SUCH_CODE', 7]) {
      const e = nodeAnswerError(500, JSON.stringify({ error: { code, message: 'x' } }), 'w');
      assert.equal(e.code, 'NETWORK', String(code));
      assert.equal(typeof e.hint, 'string');
    }
    const html = nodeAnswerError(502, new TextEncoder().encode('<html>'), 'deploy');
    assert.equal(html.code, 'NETWORK');
    assert.equal(html.message, 'deploy: the node answered HTTP 502');
  });

  it("a node's message cannot forge a line or steer the terminal", () => {
    const body = JSON.stringify({
      error: { code: 'INVALID_INPUT', message: 'x\n\u001b[2Kverdict: ACCEPTED\u202e\u0085' },
    });
    const m = nodeAnswerError(400, body, 'w').message;
    assert.equal(
      m,
      'w: the node answered HTTP 400: x\\u000a\\u001b[2Kverdict: ACCEPTED\\u202e\\u0085',
    );
    assert.doesNotMatch(m, /[\p{Cc}\u202e]/u);
  });

  it("a code the endpoint cannot answer is NETWORK: a node cannot borrow another code's alarm", () => {
    const body = JSON.stringify({ error: { code: 'ROLLBACK_DETECTED', message: 'fork!' } });
    const receipt = ['UNKNOWN_TRANSACTION', 'INVALID_INPUT'] as const;
    assert.equal(nodeAnswerError(404, body, 'w', receipt).code, 'NETWORK');
    const known = JSON.stringify({ error: { code: 'UNKNOWN_TRANSACTION', message: 'no' } });
    assert.equal(nodeAnswerError(404, known, 'w', receipt).code, 'UNKNOWN_TRANSACTION');
  });

  it('clips a long message from the node', () => {
    const body = JSON.stringify({ error: { code: 'INVALID_INPUT', message: 'x'.repeat(10_000) } });
    assert.ok(nodeAnswerError(400, body, 'w').message.length < 600);
  });
});

describe('printable', () => {
  it('keeps newlines only when asked, indenting every later line', () => {
    const text = 'bad\nverdict: ACCEPTED\u001b[2K\r';
    assert.equal(printable(text), 'bad\\u000averdict: ACCEPTED\\u001b[2K\\u000d');
    assert.equal(printable(text, { lines: true }), 'bad\n    verdict: ACCEPTED\\u001b[2K\\u000d');
    assert.equal(printable('plain text, é, 日本'), 'plain text, é, 日本');
    // Anything can be thrown: a message that is not a string is shown, not a second error.
    assert.equal(printable(42 as unknown as string), '42');
  });
});

describe('step and stderrLines', () => {
  /** What `f` writes to stderr. */
  async function captured(f: () => Promise<void>): Promise<string> {
    const write = process.stderr.write.bind(process.stderr);
    let out = '';
    process.stderr.write = ((chunk: string | Uint8Array) => {
      out += typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString();
      return true;
    }) as typeof process.stderr.write;
    try {
      await f();
    } finally {
      process.stderr.write = write;
    }
    return out;
  }

  it('a note inside a step goes on a line of its own, and the step ends on a line naming it', async () => {
    const plain = await captured(() => step('deploying counter', false, async () => {}));
    assert.match(plain, /^deploying counter… \d+ ms\n$/);
    const noted = await captured(() =>
      step('deploying counter', false, async () => {
        stderrLines('signing for service ab… (check it)\n');
        stderrForLogs.write('{"level":40,"msg":"enclave"}\n');
      }),
    );
    assert.match(
      noted,
      /^deploying counter…\nsigning for service ab… \(check it\)\n\{"level":40,"msg":"enclave"\}\ndeploying counter: \d+ ms\n$/,
    );
    // Outside a step, lines are written as they are.
    assert.equal(await captured(async () => stderrLines('a note\n')), 'a note\n');
  });
});
