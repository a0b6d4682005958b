/**
 * How the CLI reports (src/output.ts): errors on stderr with their next step and, with --json, as
 * JSON on stdout; exit codes by registry code; durations; a step's end when it fails and once it
 * is over.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { CloisterError } from '@cloister/core';
import {
  exitCodeOf,
  formatDuration,
  jsonError,
  printError,
  printErrorsAsJson,
  stderrLines,
  step,
  UNEXPECTED_HINT,
} from '../src/output.js';
import { captured } from './capture.js';

describe('printError and jsonError', () => {
  it('names the request id only for an OUTCOME_UNKNOWN', () => {
    const lost = Object.assign(new CloisterError('OUTCOME_UNKNOWN', 'answer lost'), {
      requestId: 'r-1',
    });
    assert.equal(jsonError(lost).requestId, 'r-1');
    const refused = Object.assign(new CloisterError('APP_ERROR', 'refused'), { requestId: 'r-2' });
    assert.deepEqual(Object.keys(jsonError(refused)).sort(), ['code', 'hint', 'message']);
    assert.deepEqual(jsonError(new Error('boom')), {
      code: 'UNEXPECTED',
      message: 'boom',
      hint: UNEXPECTED_HINT,
    });
  });

  it('with --json (set by main) the error also goes to stdout as JSON; without it, stderr only', async () => {
    const e = new CloisterError('NETWORK', 'the node is down');
    try {
      printErrorsAsJson(true);
      const json = await captured(() => printError(e));
      assert.deepEqual(JSON.parse(json.out), { error: jsonError(e) });
      assert.match(json.err, /^error \[NETWORK\]: the node is down\n {2}next step: /);
      // The command printed its own JSON with the error inside: stderr only.
      assert.equal((await captured(() => printError(e, { json: false }))).out, '');
    } finally {
      printErrorsAsJson(false);
    }
    const plain = await captured(() => printError(e));
    assert.equal(plain.out, '');
    assert.match(plain.err, /^error \[NETWORK\]: the node is down\n/);
  });

  it("a message from elsewhere cannot forge the CLI's lines or steer the terminal", async () => {
    const forged = 'x\nverdict: ACCEPTED\u001b[2K\u202e';
    for (const e of [new CloisterError('NETWORK', forged), new Error(forged)]) {
      const { err } = await captured(() => printError(e));
      assert.equal(err.split('\n')[1], '    verdict: ACCEPTED\\u001b[2K\\u202e', err);
      assert.doesNotMatch(err.replaceAll('\n', ''), /[\p{Cc}\u202e]/u);
    }
  });
});

describe('exitCodeOf', () => {
  it('2 for what kept the command from running, 1 for a refusal or a failure', () => {
    for (const code of [
      'INVALID_INPUT',
      'NETWORK',
      'DATA_DIR_LOCKED',
      'COUNTER_IN_USE',
      'PORT_IN_USE',
      'OPERATOR_KEY_MISSING',
      'CLIENT_STATE_LOCKED',
    ] as const) {
      assert.equal(exitCodeOf(new CloisterError(code, 'x')), 2, code);
    }
    for (const code of ['CONSTRAINT_MISMATCH', 'APP_ERROR', 'STORE'] as const) {
      assert.equal(exitCodeOf(new CloisterError(code, 'x')), 1, code);
    }
    assert.equal(exitCodeOf(new Error('x')), 1);
  });
});

describe('formatDuration', () => {
  it('milliseconds, seconds, then minutes and seconds', () => {
    assert.equal(formatDuration(340.4), '340 ms');
    assert.equal(formatDuration(1234), '1.2 s');
    assert.equal(formatDuration(125_000), '2 min 5 s');
    assert.equal(formatDuration(60_000), '1 min 0 s');
  });
});

describe('step', () => {
  it('a step that fails ends its line saying so, and the error goes on', async () => {
    const { err } = await captured(() =>
      assert.rejects(
        step('deploying counter', false, async () => {
          throw new Error('refused');
        }),
        /refused/,
      ),
    );
    assert.match(err, /^deploying counter… failed after \d+ ms\n$/);
  });

  it('once a step is over, a note outside it is written as it is', async () => {
    const { err } = await captured(async () => {
      await step('building', false, async () => {});
      stderrLines('a note\n');
    });
    assert.match(err, /^building… \d+ ms\na note\n$/);
  });
});
