/**
 * The command line itself (src/main.ts), in this process: option values checked before any
 * command runs, and the exit codes of help and usage errors (0 when help was asked for, 2 for a
 * usage error, never commander's own process.exit).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { main } from '../src/main.js';
import { captured } from './capture.js';

/** Runs `cloister ...args` here; its exit code and what it wrote to stdout and stderr. */
async function cloister(...args: string[]): Promise<{ code: number; out: string; err: string }> {
  const { value: code, out, err } = await captured(() => main(['node', 'cloister', ...args]));
  return { code, out, err };
}

describe('cloister (main)', () => {
  it('a number option takes whole numbers in its range only, refused before the command runs', async () => {
    // `measure --svn` (0 to 2^32 - 1): a refused value never reaches the build.
    for (const svn of ['1.5', '1e3', '0x10', '-1', ' 7', '4294967296']) {
      const r = await cloister('measure', '--svn', svn);
      assert.equal(r.code, 2, svn);
      assert.match(r.err, /expected a whole number from 0 to 4294967295/, svn);
    }
    const port = await cloister('node', 'start', '--port', '65536');
    assert.equal(port.code, 2);
    assert.match(port.err, /expected a whole number from 0 to 65535/);
  });

  it('help asked for exits 0; no command at all is a usage error (2)', async () => {
    const help = await cloister('help', 'measure');
    assert.equal(help.code, 0);
    assert.match(help.out, /Usage: cloister measure/);
    assert.equal((await cloister('--help')).code, 0);
    const none = await cloister();
    assert.equal(none.code, 2);
    assert.match(none.err, /Usage: cloister/);
  });

  it('a usage error with --json also puts the documented {"error": …} line on stdout', async () => {
    const r = await cloister('call', 'http://127.0.0.1:1', 'auction', 'open', '{}', '--json');
    assert.equal(r.code, 2);
    assert.match(r.err, /required option '--constraint <text>' not specified/);
    assert.deepEqual(JSON.parse(r.out), {
      error: {
        code: 'INVALID_INPUT',
        message: "required option '--constraint <text>' not specified (run with --help for usage)",
        hint: 'Check the value named in the message and try again.',
      },
    });
    // Without --json, stdout stays empty.
    const text = await cloister('call', 'http://127.0.0.1:1', 'auction', 'open', '{}');
    assert.equal(text.code, 2);
    assert.equal(text.out, '');
  });
});
