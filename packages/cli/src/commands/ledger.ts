/**
 * `cloister ledger rotate-secret`: an operator action on a STOPPED node. It takes the data
 * directory lock (a running node holds it: stop the node first), starts the enclave (which
 * verifies the log as on every start), rotates the ledger secret (new entries use the new
 * generation; older entries stay readable; HMAC path keys stay fixed per table, so rotation
 * protects future data only), persists the sealed service state, logs the action and stops.
 */

import { toHex } from '@cloister/core';
import { createLogger, rotateServiceSecret } from '@cloister/host';
import { exitCodeOf, printError, stderrForLogs } from '../output.js';
import { cloisterHome, defaultEnclaveDir, defaultPaths } from '../paths.js';

export interface RotateSecretOptions {
  readonly home?: string;
  readonly data?: string;
  readonly platformDir?: string;
  readonly enclave?: string;
  readonly logLevel: string;
  /** The result as one JSON object on stdout; otherwise a sentence. */
  readonly json?: boolean;
}

export async function rotateSecret(o: RotateSecretOptions): Promise<number> {
  const d = defaultPaths(cloisterHome(o.home));
  try {
    const r = await rotateServiceSecret({
      dataDir: o.data ?? d.dataDir,
      platformDir: o.platformDir ?? d.platformDir,
      enclaveDir: o.enclave ?? defaultEnclaveDir(),
      logger: createLogger({ level: o.logLevel, destination: stderrForLogs }),
    });
    if (o.json) {
      process.stdout.write(
        `${JSON.stringify({
          action: 'ledger.rotate-secret',
          txid: r.txid,
          generation: r.generation,
          service: toHex(r.serviceIdentity),
        })}\n`,
      );
    } else {
      process.stdout.write(
        `ledger secret rotated: generation ${r.generation}, rotation entry ${r.txid}. New entries use the new generation; older entries stay readable. Start the node again.\n`,
      );
    }
    return 0;
  } catch (e) {
    printError(e);
    return exitCodeOf(e);
  }
}
