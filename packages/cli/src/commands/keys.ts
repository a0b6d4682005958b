/**
 * `cloister keys new FILE`: creates a client identity — a P-256 private key in a PKCS#8 PEM file
 * of mode 0600 — for `cloister call` / `cloister query` (`--identity FILE`). Refuses to
 * overwrite a file: apps know a caller by an id derived from its key, so a lost key is a lost
 * identity. Exit codes: 0 created, 2 not created.
 */
import { dirname, join, resolve } from 'node:path';
import { createIdentityFile } from '@cloister/client/node';
import { InvalidInputError, toHex } from '@cloister/core';
import { line, printError } from '../output.js';
import { folderProblem } from '../output-file.js';

export interface KeysNewOptions {
  readonly json?: boolean;
}

export async function keysNew(file: string, o: KeysNewOptions = {}): Promise<number> {
  const path = resolve(file);
  let publicKey: Uint8Array;
  try {
    // `newdir/` names a folder: resolve() would drop the slash and make a file called newdir.
    if (/[\\/]$/.test(file) || file === '') {
      throw new InvalidInputError(
        `${JSON.stringify(file)} names a folder, not a file: give the path of the new key file, e.g. ${join(file || '.', 'identity.pem')}`,
      );
    }
    // As every file the CLI writes (--receipt, receipt get -o): a missing folder is most often a
    // typo, and making it would leave the key where no one looks for it.
    const problem = folderProblem(path);
    if (problem !== undefined) {
      throw new InvalidInputError(
        `${file}: ${dirname(path)} ${problem}; give a path in an existing folder`,
      );
    }
    publicKey = (await createIdentityFile(path)).publicKey;
  } catch (e) {
    printError(e);
    return 2;
  }
  if (o.json) {
    process.stdout.write(`${JSON.stringify({ file: path, publicKey: toHex(publicKey) })}\n`);
    return 0;
  }
  process.stdout.write(
    `created ${path} (mode 0600)\n${line('public key', toHex(publicKey))}` +
      '  keep this file private and backed up: apps know you by a caller id derived from this key;\n' +
      `  use it with \`cloister call URL APP METHOD JSON --constraint "…" --identity ${file}\`\n`,
  );
  return 0;
}
