/** `cloister node start`: runs one node until SIGINT or SIGTERM. */
import { InvalidInputError } from '@cloister/core';
import { createLogger, startNode } from '@cloister/host';
import { exitCodeOf, nodeStoppedMessage, printError, step } from '../output.js';
import { cloisterHome, defaultEnclaveDir, defaultPaths } from '../paths.js';
import { operatorKeyForStart } from './app-deploy.js';

export interface NodeStartOptions {
  readonly home?: string;
  readonly data?: string;
  readonly platformDir?: string;
  readonly enclave?: string;
  readonly host: string;
  readonly port: number;
  readonly logLevel: string;
  readonly signInterval: number;
  readonly operatorKey?: string;
  readonly tlsCert?: string;
  readonly tlsKey?: string;
  /** Log the apps' `trace` output (app data: simulation only; docs/node-api.md "App trace"). */
  readonly appTrace?: boolean;
  /** What the relay's round robin shares first (docs/node-api.md "Fair share"); default address. */
  readonly scpShareBy?: string;
}

const SHARE_BY = ['address', 'socket'] as const;

export async function nodeStart(o: NodeStartOptions): Promise<number> {
  const d = defaultPaths(cloisterHome(o.home));
  let node: Awaited<ReturnType<typeof startNode>>;
  if ((o.tlsCert === undefined) !== (o.tlsKey === undefined)) {
    printError(
      new InvalidInputError(
        'give both --tls-cert and --tls-key (a certificate and its key), or neither',
      ),
    );
    return 2;
  }
  const shareBy = o.scpShareBy ?? 'address';
  if (!(SHARE_BY as readonly string[]).includes(shareBy)) {
    printError(
      new InvalidInputError(
        `--scp-share-by ${JSON.stringify(shareBy)} is not one of ${SHARE_BY.join(', ')}: give one of those`,
      ),
    );
    return 2;
  }
  try {
    // Checked before anything is created (the operator key, the data directory).
    const logger = createLogger({ level: o.logLevel });
    const operator = operatorKeyForStart(o.home, o.operatorKey);
    // At info and below the node's own log lines say what starting does, and would break a
    // progress line in two: the line is shown only when the log is quieter.
    const quiet = logger.isLevelEnabled('info');
    node = await step('starting the node', quiet, () =>
      startNode({
        operatorPublicKey: operator.publicKey,
        dataDir: o.data ?? d.dataDir,
        platformDir: o.platformDir ?? d.platformDir,
        enclaveDir: o.enclave ?? defaultEnclaveDir(),
        host: o.host,
        port: o.port,
        logger,
        signIntervalMs: o.signInterval,
        scpLimits: { shareBy: shareBy as (typeof SHARE_BY)[number] },
        ...(o.appTrace === true ? { appTrace: true } : {}),
        ...(o.tlsCert !== undefined && o.tlsKey !== undefined
          ? { tls: { certFile: o.tlsCert, keyFile: o.tlsKey } }
          : {}),
      }),
    );
  } catch (e) {
    printError(e);
    return exitCodeOf(e);
  }
  process.stderr.write(
    `Cloister node ${node.nodeId} listening on ${node.url} (simulation platform: NOT secure)\n` +
      `  attest it: run \`npx cloister measure\` on your own checkout, then\n` +
      `             npx cloister attest ${node.url} --constraint "C:<measurement> SEC:INSECURE"\n`,
  );
  return await new Promise<number>((resolve) => {
    const stop = (signal: string) => {
      process.stderr.write(`${signal}: stopping...\n`);
      node.close().then(
        () => resolve(0),
        (e: unknown) => {
          printError(e);
          resolve(1);
        },
      );
    };
    process.once('SIGINT', () => stop('SIGINT'));
    process.once('SIGTERM', () => stop('SIGTERM'));
    void node.stopped.then((why) => {
      const said = nodeStoppedMessage(why, 'cloister node start');
      if (said !== undefined) {
        process.stderr.write(said);
        resolve(1);
      }
    });
  });
}
