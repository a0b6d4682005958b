/**
 * One registry of error codes (issue 6): docs/errors.md is the registry, row for row, so the
 * protocol, SDK, CLI and docs cannot drift apart.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { ERROR_CODES } from '../src/errors.js';

const DOC = new URL('../../../docs/errors.md', import.meta.url);

function rows(): [string, string][] {
  const out: [string, string][] = [];
  for (const line of readFileSync(DOC, 'utf8').split('\n')) {
    const m = /^\| `([A-Z0-9_]+)` \| (.*) \|$/.exec(line);
    if (m?.[1] !== undefined && m[2] !== undefined) out.push([m[1], m[2].replace(/\\\|/g, '|')]);
  }
  return out;
}

test('docs/errors.md lists every code of ERROR_CODES, in order, with its hint', () => {
  assert.deepEqual(rows(), Object.entries(ERROR_CODES));
});

test('every code is UPPER_SNAKE and every hint says what to do in a sentence', () => {
  for (const [code, hint] of Object.entries(ERROR_CODES)) {
    assert.match(code, /^[A-Z][A-Z0-9_]*$/);
    assert.ok(hint.length >= 20 && /[.)]$/.test(hint), `${code}: ${hint}`);
  }
});

test('a log refused as rolled back or cut tells a user and the operator each what to do', () => {
  // The auditor of a log may be its operator: "report it to the operator" alone leaves the
  // operator with no next step.
  for (const code of ['ROLLBACK_DETECTED', 'LOG_TAIL_CUT'] as const) {
    const hint = ERROR_CODES[code];
    assert.match(hint, /If you use the service, .*report this to its operator/, code);
    assert.match(hint, /if you run it, its data directory was rolled back/, code);
  }
});
