/**
 * `cloister log audit DIR`: checks a copy of a node's log with no secrets (core auditLog): the
 * hash chain, every signature, the tree roots they sign, the genesis endorsement chain and, with
 * `--trusted-size/--trusted-root`, consistency with a root the auditor already trusts. DIR is a
 * copy of a node's home, of its data directory, or of its `store` folder (LevelDB); only the log
 * entries (public keys 0x02 ‖ u64be(index), each checked to be its own) are read, in key order. Exit 0 when the log
 * verifies, 1 when it does not (naming the first bad entry), 2 when it could not be read.
 */
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import {
  type AuditReport,
  auditLog,
  CloisterError,
  fromHex,
  InvalidInputError,
  indexOfKey,
  LogEntryAlteredError,
  LogEntryMissingError,
  logStoreKey,
  parseConstraint,
  STORE_NAMESPACE_LOG,
  toHex,
} from '@cloister/core';
import { type LevelStore, openLevelStore } from '@cloister/host';
import { printError } from '../output.js';

export interface LogAuditOptions {
  readonly trustedSize?: number;
  readonly trustedRoot?: string;
  readonly constraint?: string;
  readonly json?: boolean;
}

/** The LevelDB folder inside `dir`: the store itself, `<data>/store` or `<home>/data/store`. */
export function findStoreDir(dir: string): string {
  for (const d of [dir, join(dir, 'store'), join(dir, 'data', 'store')]) {
    if (existsSync(join(d, 'CURRENT'))) return d;
  }
  throw new InvalidInputError(
    `no log store in ${dir}: give a copy of a node's home, its data directory or its store folder`,
  );
}

/**
 * The log's entries in key order, each checked to sit under its own key as a restart checks it
 * (core's `indexOfKey`): position k must be 0x02 ‖ u64be(k). A key that is no entry key is
 * LOG_ENTRY_ALTERED at k; the key of another index means entry k is not there: LOG_ENTRY_MISSING.
 */
async function* entries(store: LevelStore): AsyncIterable<Uint8Array> {
  let position = 0;
  for await (const { key, value } of store.iterate({
    gte: Uint8Array.of(STORE_NAMESPACE_LOG),
    lt: Uint8Array.of(STORE_NAMESPACE_LOG + 1),
  })) {
    position++;
    const at = indexOfKey(key);
    if (at === undefined) {
      throw new LogEntryAlteredError(
        position,
        `the log's entry ${position} is stored under key ${toHex(key)}, not ${toHex(logStoreKey(position))}: a foreign key was added to the log`,
      );
    }
    if (at < position) {
      // Keys come in order, so only index 0 (no entry has it) can sort before position 1.
      throw new LogEntryAlteredError(
        position,
        `the log's entry ${position} is stored under key ${toHex(key)}, the key of entry ${at}, which no log has (entries count from 1): a foreign key was added to the log`,
      );
    }
    if (at > position) {
      throw new LogEntryMissingError(
        position,
        `entry ${position} is missing: the next key in the log is that of entry ${at}`,
      );
    }
    yield value;
  }
}

function describe(dir: string, r: AuditReport, constrained: boolean): string {
  const lines = [
    // Without a constraint a log of any code, or a fresh genesis of the same code, verifies too:
    // said in the headline, not only in the list of checks below it.
    `log audit of ${dir}: VERIFIED${constrained ? '' : ' (no --constraint given: the code and the service were not checked)'}`,
    `  entries       ${r.entries} (indexes 1 to ${r.entries})`,
    `  signatures    ${r.signatures} (the last covers entries 1 to ${r.lastSigned})`,
    `  tree root     ${toHex(r.root)} (size ${r.entries})`,
    `  signed root   ${toHex(r.signedRoot)} (size ${r.lastSigned})`,
    ...(r.stateHash ? [`  state hash    ${toHex(r.stateHash)} (as signed)`] : []),
    `  service       ${toHex(r.service)}`,
    '  checked:',
    ...r.checked.map((c) => `    - ${c}`),
  ];
  return `${lines.join('\n')}\n`;
}

export async function logAudit(dir: string, o: LogAuditOptions): Promise<number> {
  let store: LevelStore;
  let trusted: { size: number; root: Uint8Array } | undefined;
  try {
    if ((o.trustedSize === undefined) !== (o.trustedRoot === undefined)) {
      throw new InvalidInputError('give --trusted-size and --trusted-root together');
    }
    if (o.trustedSize !== undefined && o.trustedRoot !== undefined) {
      const root = fromHex(o.trustedRoot, 'trusted root');
      if (root.length !== 32)
        throw new InvalidInputError('the trusted root is 32 bytes (64 hex digits)');
      trusted = { size: o.trustedSize, root };
    }
    if (o.constraint !== undefined) parseConstraint(o.constraint);
    store = await openLevelStore(findStoreDir(resolve(dir)), { createIfMissing: false });
  } catch (e) {
    printError(e);
    return 2;
  }
  try {
    const report = await auditLog(entries(store), {
      ...(trusted ? { trusted } : {}),
      ...(o.constraint !== undefined ? { constraint: o.constraint } : {}),
    });
    if (o.json) {
      process.stdout.write(
        `${JSON.stringify({
          verdict: 'verified',
          entries: report.entries,
          signatures: report.signatures,
          lastSigned: report.lastSigned,
          root: toHex(report.root),
          signedRoot: toHex(report.signedRoot),
          ...(report.stateHash ? { stateHash: toHex(report.stateHash) } : {}),
          service: toHex(report.service),
          checked: report.checked,
        })}\n`,
      );
    } else {
      process.stdout.write(describe(resolve(dir), report, o.constraint !== undefined));
    }
    return 0;
  } catch (e) {
    if (!(e instanceof CloisterError)) throw e;
    const index = (e as { index?: unknown }).index;
    const at = typeof index === 'number' ? ` at entry ${index}` : '';
    if (o.json) {
      process.stdout.write(
        `${JSON.stringify({
          verdict: 'failed',
          code: e.code,
          ...(typeof index === 'number' ? { index } : {}),
          message: e.message,
        })}\n`,
      );
    } else {
      process.stdout.write(`log audit of ${resolve(dir)}: FAILED${at}\n`);
    }
    process.stderr.write(
      `log audit FAILED${at}: [${e.code}] ${e.message}\n  next step: ${e.hint}\n`,
    );
    return 1;
  } finally {
    await store.close().catch(() => {});
  }
}
