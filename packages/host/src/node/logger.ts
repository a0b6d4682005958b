/**
 * Host logging with pino. The host never holds a key or plaintext, and the enclave sends only
 * fixed event names (boundary `log` event), so log lines carry fixed fields; redaction is a second
 * line of defence for fields that must never appear.
 */

import { InvalidInputError } from '@cloister/core';
import type { Logger } from 'pino';
import { pino } from 'pino';

export type { Logger };

export interface LoggerOptions {
  readonly level?: string;
  /** Where lines go; default stdout. Tests pass a stream to capture lines. */
  readonly destination?: NodeJS.WritableStream;
}

const LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];

export function createLogger(opts: LoggerOptions = {}): Logger {
  const level = opts.level ?? 'info';
  if (!LEVELS.includes(level)) {
    throw new InvalidInputError(
      `log level ${JSON.stringify(level)} is not one of ${LEVELS.join(', ')}: give one of those`,
    );
  }
  const options = {
    level,
    base: { service: 'cloister-node' },
    redact: {
      paths: ['nonce', 'key', 'secret', 'evidence', '*.nonce', '*.key'],
      censor: '[redacted]',
    },
  };
  return opts.destination
    ? pino(options, opts.destination as pino.DestinationStream)
    : pino(options);
}
