/**
 * The attestation core in a real browser: the src bundled for the browser with esbuild, served
 * from 127.0.0.1 (a secure context, so WebCrypto exists), run in Debian's Chromium.
 */
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import { decodeSign1 } from '../src/cose.js';
import { hasChromium, launchChromium } from './chromium.js';
import { envelope, flip, hex, scenario } from './helpers.js';
import { CONSTRAINT, KitService, makeClaims } from './log-kit.js';

const ENTRY = fileURLToPath(new URL('./fixtures/browser-entry.ts', import.meta.url));

interface Case {
  evidence: string;
  nonce: string;
  identityPublicKey: string;
  constraint: string;
}

test('verifyEvidence in Chromium', { timeout: 120_000 }, async (t) => {
  if (!hasChromium(t)) return;

  const bundle = await build({
    entryPoints: [ENTRY],
    bundle: true,
    platform: 'browser',
    format: 'esm',
    write: false,
    metafile: true,
    logLevel: 'silent',
  });
  // DESIGN §10: the check is on what is really bundled, dependencies included.
  const inputs = Object.keys(bundle.metafile.inputs);
  assert.deepEqual(
    inputs.filter((i) => i.startsWith('node:') || /(^|\/)node_modules\/@types\//.test(i)),
    [],
  );
  const js = bundle.outputFiles[0]?.text ?? '';

  const server = createServer((req, res) => {
    if (req.url === '/entry.js') {
      res.writeHead(200, { 'content-type': 'text/javascript' }).end(js);
    } else if (req.url === '/') {
      res
        .writeHead(200, { 'content-type': 'text/html' })
        .end('<!doctype html><title>core</title><script type="module" src="/entry.js"></script>');
    } else {
      res.writeHead(404).end();
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;

  const browser = await launchChromium();
  try {
    const page = await browser.newPage();
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(String(e)));
    await page.goto(`http://127.0.0.1:${port}/`);
    await page.waitForFunction(() => 'cloister' in globalThis);
    assert.equal(await page.evaluate(() => globalThis.isSecureContext), true);

    const s = scenario();
    const sign1 = decodeSign1(s.evidence);
    const base: Case = {
      evidence: hex(s.evidence),
      nonce: hex(s.nonce),
      identityPublicKey: hex(s.identityPublicKey),
      constraint: s.fullConstraint,
    };
    const run = (c: Case) =>
      page.evaluate(async (c: Case) => {
        // biome-ignore lint/suspicious/noExplicitAny: the bundle's API, set by browser-entry.ts
        const api = (globalThis as any).cloister;
        try {
          const v = await api.verifyEvidence(api.fromHex(c.evidence), {
            nonce: api.fromHex(c.nonce),
            identityPublicKey: api.fromHex(c.identityPublicKey),
            constraint: api.parseConstraint(c.constraint),
          });
          return { ok: true, secure: v.secure, rootOfTrust: v.rootOfTrust, product: v.product };
        } catch (e) {
          return { ok: false, code: (e as { code?: string }).code, message: String(e) };
        }
      }, c);

    const good = await run(base);
    assert.deepEqual(good, {
      ok: true,
      secure: false,
      rootOfTrust: `simulation:${s.fullConstraint.split('SIM:')[1]}`,
      product: 7,
    });

    // Byte 40 of the payload is inside the signer value: still well-formed, no longer signed.
    const tampered = envelope(flip(sign1.payload, 40), sign1.signature);
    const bad = await run({ ...base, evidence: hex(tampered) });
    assert.equal(bad.code, 'EVIDENCE_SIGNATURE', bad.message);
    const badSig = await run({
      ...base,
      evidence: hex(envelope(sign1.payload, flip(sign1.signature, 3))),
    });
    assert.equal(badSig.code, 'EVIDENCE_SIGNATURE', badSig.message);

    const insecure = await run({ ...base, constraint: s.secureConstraint });
    assert.equal(insecure.code, 'INSECURE_PLATFORM');
    assert.match(insecure.message ?? '', /insecure/);

    // A receipt (docs/receipts.md), verified offline in the browser; one byte changed: refused.
    const kit = new KitService();
    const index = kit.tx(makeClaims(1));
    kit.sign();
    const receipt = kit.receipt(index);
    const verifyReceiptIn = (bytes: string) =>
      page.evaluate(
        async ({ bytes, constraint }) => {
          // biome-ignore lint/suspicious/noExplicitAny: the bundle's API, set by browser-entry.ts
          const api = (globalThis as any).cloister;
          try {
            const v = await api.verifyReceipt(api.fromHex(bytes), { constraint });
            return { ok: true, txid: v.txid, root: api.toHex(v.treeRoot) };
          } catch (e) {
            return { ok: false, reason: (e as { reason?: string }).reason, message: String(e) };
          }
        },
        { bytes, constraint: CONSTRAINT },
      );
    assert.deepEqual(await verifyReceiptIn(hex(receipt)), {
      ok: true,
      txid: `1.${index}`,
      root: hex(kit.tree.root(index)),
    });
    const badReceipt = await verifyReceiptIn(hex(flip(receipt, receipt.length - 200)));
    assert.equal(badReceipt.ok, false, badReceipt.message);

    assert.deepEqual(errors, []);
  } finally {
    await browser.close();
    await new Promise((resolve) => server.close(resolve));
  }
});
