/**
 * The AssemblyScript SDK on the real runtime, through its harness, with two test apps compiled by
 * `cloister app build`: packages/sdk/test/json-app (JSON: parse → encode round trips, refusals
 * with their reason, builders, results of methods returning Json, string, bool, a number or
 * nothing) and packages/sdk/test/ledger-app (Table get/set/remove/history/list with cursors,
 * proofs checked offline with @cloister/core, Context, Crypto, notify, fail).
 */
import assert from 'node:assert/strict';
import { cpSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { fromHex, utf8, verifyStateProof } from '@cloister/core';
import { type LocalApp, loadApp } from '@cloister/sdk/harness';
import fc from 'fast-check';
import { buildApp } from '../src/commands/app-build.js';

const fixtures = fileURLToPath(new URL('../../sdk/test/', import.meta.url));
const tmp = mkdtempSync(join(tmpdir(), 'cloister-sdk-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

/** Builds a test app in a copy (so the repository gets no build/ folder) and loads it. */
async function load(name: string, now?: () => number): Promise<LocalApp> {
  const dir = join(tmp, name);
  cpSync(join(fixtures, name), dir, { recursive: true });
  const built = await buildApp(dir);
  return loadApp(built.wasmPath, now ? { now } : {});
}

describe('SDK JSON on the real runtime', () => {
  let app: LocalApp;

  before(async () => {
    app = await load('json-app');
  });

  async function reencode(text: string): Promise<{ ok: boolean; json?: string; error?: string }> {
    return (await app.query('reencode', { text })).result as {
      ok: boolean;
      json?: string;
      error?: string;
    };
  }

  it('round-trips JSON texts to the same compact text JavaScript writes', async () => {
    const texts = [
      'null',
      'true',
      '0',
      '-17',
      '2.5',
      '-0.125',
      '1e-7',
      '""',
      '"plain"',
      '"quote \\" backslash \\\\ slash \\/ controls \\b\\f\\n\\r\\t \\u0001 \\u001f"',
      '"unicode é 😀 \\u00e9 \\ud83d\\ude00"',
      '[]',
      '{}',
      ' [ 1 , [ 2 , [ 3 ] ] , { "a" : { "b" : null } } ] ',
      '{"z":1,"a":2,"m":[true,false,null]}',
      `[${'['.repeat(63)}${']'.repeat(63)}]`,
    ];
    for (const text of texts) {
      const r = await reencode(text);
      assert.equal(r.ok, true, `${text}: ${r.error}`);
      assert.equal(r.json, JSON.stringify(JSON.parse(text)), text);
    }
  });

  it('writes a lone surrogate escaped, as JSON.stringify does (raw it is no UTF-8)', async () => {
    // "\ud800" is valid JSON; written back raw, the result was refused (APP_RESULT_INVALID), and
    // text one user stored failed every later reader's call.
    for (const text of ['"x\\ud800"', '"\\udfff"', '["\\udbff\\udbff"]', '"\\ud83d\\ude00"']) {
      const r = await reencode(text);
      assert.equal(r.ok, true, text);
      assert.equal(r.json, JSON.stringify(JSON.parse(text)), text);
    }
    const args = { s: 'a\ud800b', pair: '😀' };
    assert.deepEqual((await app.query('echo', args)).result, args);
  });

  it('keeps the last of repeated member names, as JavaScript does', async () => {
    assert.equal((await reencode('{"a":1,"b":2,"a":3}')).json, '{"a":3,"b":2}');
  });

  it('parses many members in fuel linear in their number (no n² search for repeated names)', async () => {
    // Fuel is deterministic. Each member name used to be compared with every earlier one: 10×
    // the members cost 27× the fuel, and ~100 KB of arguments ran out of fuel before the app ran.
    const members = (n: number, name: (i: number) => string): string =>
      `{${Array.from({ length: n }, (_, i) => `"${name(i)}":${i}`).join(',')}}`;
    for (const name of [(i: number) => `k${i}`, (i: number) => `${'x'.repeat(64)}${i}`]) {
      const fuel = async (n: number): Promise<number> => {
        const r = await app.query('reencode', { text: members(n, name) }, { fuel: 2e9 });
        assert.equal((r.result as { ok: boolean }).ok, true);
        return r.fuelUsed;
      };
      const ratio = (await fuel(4000)) / (await fuel(400));
      assert.ok(ratio < 12, `10× the members cost ${ratio.toFixed(1)}× the fuel`);
    }
    const repeated = `{${'"a":1,'.repeat(20)}"b":2,"a":3}`;
    assert.equal((await reencode(repeated)).json, '{"a":3,"b":2}');
    const late = `{${Array.from({ length: 20 }, (_, i) => `"k${i}":${i}`).join(',')},"k3":"x"}`;
    assert.equal((await reencode(late)).json, JSON.stringify(JSON.parse(late)));
  });

  /** The f64 bits (hex) the SDK reads for each number literal, and those JavaScript reads. */
  async function readNumbers(literals: string[]): Promise<{ got: unknown[]; want: unknown[] }> {
    const text = `[${literals.join(',')}]`;
    const r = (await app.query('inspect', { text }, { fuel: 1e9 })).result as {
      ok: boolean;
      nodes: unknown[];
      error?: string;
    };
    assert.equal(r.ok, true, r.error);
    const bits = new DataView(new ArrayBuffer(8));
    const want = literals.map((l) => {
      bits.setFloat64(0, Number(l));
      return { f64: bits.getBigUint64(0).toString(16) };
    });
    return { got: r.nodes.slice(1), want };
  }

  it('reads every number literal as the f64 JSON.parse reads (correctly rounded)', async () => {
    const literals = [
      // F64.parseFloat dropped 10^12 here (4.99e52 read as 4.99e40): a significand above 2^53
      // with a decimal exponent of 23–37, even in text JSON.stringify wrote.
      '4.996563920182973301e52',
      '-1.7464003562304687e+49',
      '5.28461087000099582e54',
      // One unit in the last place off before; halfway points and a hair either side.
      '5.12678562600487e46',
      '1.00000000000000011102230246251565404236316680908203125',
      '1.00000000000000011102230246251565404236316680908203126',
      '1.00000000000000011102230246251565404236316680908203124',
      `1.00000000000000011102230246251565404236316680908203125${'0'.repeat(900)}1`,
      '2.4703282292062327e-324',
      '2.4703282292062328e-324',
      '4.9406564584124654e-324',
      '2.2250738585072011e-308',
      '2.2250738585072012e-308',
      '1.7976931348623157e308',
      '1.7976931348623158e308',
      '1.7976931348623159e308',
      '1e-300',
      '1e23',
      '9007199254740993e22',
      `0.${'0'.repeat(2000)}1e2001`,
      `${'9'.repeat(1000)}e-1000`,
      '1e-99999999999',
      '-1e99999999999',
      '-0.0',
    ];
    const { got, want } = await readNumbers(literals);
    for (let i = 0; i < literals.length; i++) {
      assert.deepEqual(got[i], want[i], literals[i]!.slice(0, 80));
    }
  });

  it('reads random number literals as JSON.parse does (fixed seed)', async () => {
    const digits = (min: number, max: number): fc.Arbitrary<string> =>
      fc.string({ unit: fc.constantFrom(...'0123456789'), minLength: min, maxLength: max });
    const literal = fc.oneof(
      fc.double({ noNaN: true, noDefaultInfinity: true }).map((d) => {
        const s = JSON.stringify(d);
        return /[.e]/.test(s) ? s : `${s}.0`;
      }),
      fc
        .tuple(fc.integer({ min: 1, max: 9 }), digits(1, 30), fc.integer({ min: -345, max: 330 }))
        .map(([a, b, e]) => `${a}.${b}e${e}`),
    );
    await fc.assert(
      fc.asyncProperty(fc.array(literal, { minLength: 1, maxLength: 40 }), async (literals) => {
        const { got, want } = await readNumbers(literals);
        assert.deepEqual(got, want);
      }),
      { seed: 20260522, numRuns: 40 },
    );
  });

  it('writes integral numbers from 1e15 to 1e21 as JSON.stringify does, with no ".0"', async () => {
    for (const text of ['[1e15,-1e16,123456789012345678901,18446744073709551616,1e21,1e20]']) {
      assert.equal((await reencode(text)).json, JSON.stringify(JSON.parse(text)), text);
    }
  });

  it('keeps integers beyond 2^53 exactly and longer ones as numbers', async () => {
    assert.equal((await reencode('[9007199254740993]')).json, '[9007199254740993]');
    assert.equal((await reencode('-9223372036854775')).json, '-9223372036854775');
    assert.equal((await reencode('1e400')).json, 'null');
    // 19 digits: exact while they fit in i64 (the SDK's own Json.int output reads back the same).
    for (const n of ['1234567890123456789', '9223372036854775807', '-9223372036854775808']) {
      assert.equal((await reencode(n)).json, n, n);
    }
    // One more is a number (f64), as before.
    assert.notEqual((await reencode('9223372036854775808')).json, '9223372036854775808');
  });

  it('refuses malformed text with the reason and the offset', async () => {
    const cases: [string, RegExp][] = [
      ['', /unexpected end of text at offset 0/],
      ['[1,]', /unexpected character at offset 3/],
      ['{"a" 1}', /expected ':' at offset 5/],
      ['{"a":1,}', /expected a member name at offset 7/],
      ['[1 2]', /expected ',' or '\]' at offset 3/],
      ['01', /leading zero in a number at offset 0/],
      ['1.', /invalid number/],
      ['-', /invalid number/],
      ['"abc', /unterminated string/],
      ['"a\tb"', /control character in a string/],
      ['"\\x"', /invalid escape/],
      ['"\\u12g4"', /invalid \\u escape/],
      ['tru', /invalid literal/],
      ['{} x', /unexpected text after the value at offset 3/],
      [`${'['.repeat(65)}${']'.repeat(65)}`, /nesting deeper than 64/],
    ];
    for (const [text, why] of cases) {
      const r = await reencode(text);
      assert.equal(r.ok, false, text);
      assert.match(r.error!, why, text);
    }
  });

  it('parses the call arguments and encodes them back', async () => {
    const args = { a: [1, { b: null }], s: 'é\n"', n: -2.75, t: true, o: {} };
    assert.deepEqual((await app.query('echo', args)).result, args);
  });

  it('reads kinds and values', async () => {
    const r = await app.query('describe', { a: 7, b: 1.5, c: 'x', d: [1, 2], e: null, f: true });
    assert.deepEqual(r.result, [
      { name: 'a', kind: 'integer', i64: 7, f64: 7, length: 0 },
      { name: 'b', kind: 'number', i64: 1, f64: 1.5, length: 0 },
      { name: 'c', kind: 'string', i64: 0, f64: 0, length: 0 },
      { name: 'd', kind: 'array', i64: 0, f64: 0, length: 2 },
      { name: 'e', kind: 'null', i64: 0, f64: 0, length: 0 },
      { name: 'f', kind: 'bool', i64: 0, f64: 0, length: 0 },
    ]);
  });

  it('builds values with every builder', async () => {
    assert.equal(
      (await app.query('build')).resultText,
      '{"null":null,"yes":true,"big":9007199254740993,"min":-9223372036854775808,"half":0.5,' +
        '"nan":null,"text":"quote \\" backslash \\\\ newline \\n tab \\t nul \\u0000 é 😀",' +
        '"list":[1,"two",[]],"replaced":2}',
    );
  });

  it('encodes results of other types', async () => {
    assert.equal((await app.query('text')).result, 'a "string" result');
    assert.equal((await app.query('flag')).result, true);
    assert.equal((await app.query('ratio')).result, 0.25);
    const none = await app.transaction('nothing');
    assert.equal(none.result, null);
    assert.match(none.txid ?? '', /^\d+\.\d+$/);
  });
});

describe('SDK ledger, context and crypto on the real runtime', () => {
  let app: LocalApp;
  const NOW = 1_700_000_000_000;

  before(async () => {
    app = await load('ledger-app', () => NOW);
  });

  const refusal = (p: Promise<unknown>): Promise<{ code?: string; message: string }> =>
    p.then(
      () => assert.fail('the call succeeded'),
      (e: { code?: string; message: string }) => e,
    );

  it('sets, reads, removes and lists history newest first', async () => {
    const first = await app.transaction('put', { key: 'a', value: '1' });
    assert.deepEqual(first.notifications, [{ put: 'a' }]);
    await app.transaction('put', { key: 'a', value: '2' });
    const removed = await app.transaction('del', { key: 'a' });
    assert.equal((await app.query('read', { key: 'a' })).result, null);
    const index = (txid?: string): number => Number(txid?.split('.')[1]);
    assert.deepEqual((await app.query('history', { key: 'a' })).result, [
      { index: index(removed.txid), value: null },
      { index: index(removed.txid) - 1, value: '2' },
      { index: index(first.txid), value: '1' },
    ]);
  });

  it('lists a table page by page with the ledger cursor', async () => {
    for (const k of ['b', 'c', 'd', 'e']) {
      await app.transaction('put', { key: k, value: k.toUpperCase() });
    }
    const r = (await app.query('listAll', { limit: 2 })).result as {
      entries: Record<string, string>;
      pages: number;
    };
    assert.deepEqual(r.entries, { b: 'B', c: 'C', d: 'D', e: 'E' });
    // Two full pages; the second looks ahead, finds nothing more and has no cursor (no empty
    // third page, docs/app-abi.md §4.2).
    assert.equal(r.pages, 2);
  });

  it('pages a table for a client, the cursor carried as hex (fromHex), and refuses a bad cursor', async () => {
    const keys: string[] = [];
    let cursor: string | null = null;
    let pages = 0;
    do {
      const page = (await app.query('listPage', { limit: 2, ...(cursor ? { cursor } : {}) }))
        .result as { keys: string[]; cursor: string | null };
      keys.push(...page.keys);
      cursor = page.cursor;
      pages++;
    } while (cursor !== null && pages < 10);
    // Each key once, in the ledger's path order (not the keys' order).
    assert.deepEqual([...keys].sort(), ['b', 'c', 'd', 'e']);
    assert.equal(pages, 2);
    await assert.rejects(app.query('listPage', { cursor: 'zz' }), (e: unknown) => {
      assert.equal((e as { appCode?: string }).appCode, 'bad_cursor');
      return true;
    });
  });

  it('fromHex reads either case and refuses odd lengths and non-hex characters', async () => {
    const r = await app.query('hexRoundTrip', {
      // Beyond ASCII: a code unit whose low byte is a hex digit (U+0130, U+0141), a fullwidth
      // digit, a surrogate pair.
      texts: [
        '',
        '00ff',
        'DEADbeef',
        'abc',
        '0g',
        ' 00',
        '0x00',
        '\u01300',
        'A\u0141',
        '\uff100',
        '\ud83d\ude00',
      ],
    });
    assert.deepEqual(r.result, [
      '',
      '00ff',
      'deadbeef',
      null,
      null,
      null,
      null,
      null,
      null,
      null,
      null,
    ]);
  });

  it("proves the app's own record, verifiable offline", async () => {
    const r = (await app.query('prove', { key: 'b' })).result as {
      proof: string;
      stateHash: string;
    };
    const claim = { ledger: app.name, table: 'items', key: utf8('b'), value: utf8('B') };
    const verdict = verifyStateProof(fromHex(r.stateHash), claim, fromHex(r.proof));
    assert.deepEqual(verdict.ok, true);
    const forged = verifyStateProof(
      fromHex(r.stateHash),
      { ...claim, value: utf8('X') },
      fromHex(r.proof),
    );
    assert.equal(forged.ok, false);
  });

  it('reads the context of queries and transactions', async () => {
    const q = await app.query('contextQuery', null, { requestId: 'r1' });
    assert.deepEqual(q.result, {
      query: true,
      transaction: false,
      caller: app.callerId('alice'),
      requestId: 'r1',
      index: (q.result as { index: number }).index,
      time: NOW,
    });
    const t = await app.transaction('contextTransaction', null, { as: 'bob' });
    const tr = t.result as { transaction: boolean; caller: string; requestId: null };
    assert.equal(tr.transaction, true);
    assert.equal(tr.caller, app.callerId('bob'));
    assert.equal(tr.requestId, null);
  });

  it('creates named keys, signs, verifies, seals and hashes', async () => {
    assert.deepEqual((await app.transaction('createKeys')).result, {
      created: true,
      again: false,
    });
    const r = (await app.query('useKeys', { message: 'hello' })).result as Record<string, unknown>;
    assert.match(r.publicKey as string, /^04[0-9a-f]{128}$/);
    assert.match(r.signature as string, /^[0-9a-f]{128}$/);
    assert.equal(r.verifies, true);
    assert.equal(r.otherMessage, false);
    assert.equal(r.sealedLength, 12 + 5 + 16);
    assert.equal(r.opened, 'hello');
    assert.equal(r.wrongAad, true);
    assert.equal(r.sha256, '2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824');
    assert.equal(r.random, 16);
  });

  it('turns statuses into app errors and refuses writes in queries', async () => {
    const missing = await refusal(app.query('missingKey'));
    assert.equal(missing.code, 'APP_ERROR');
    assert.match(missing.message, /key_not_found: no key named nope/);
    assert.equal((await refusal(app.query('writeInQuery'))).code, 'APP_QUERY_WRITE');
  });

  it('fail() ends a transaction as an app error and no write survives', async () => {
    const e = await refusal(app.transaction('failAfterWrite'));
    assert.equal(e.code, 'APP_ERROR');
    assert.match(e.message, /refused: not today/);
    assert.equal((await app.query('read', { key: 'ghost' })).result, null);
  });
});
