/** Errors raised by the simulated platform and by the manifest checks it shares with the build. */
import { CloisterError } from '@cloister/core';

/** A manifest is malformed, badly signed, or does not match the bundle (MANIFEST_INVALID). */
export class ManifestError extends CloisterError {
  constructor(message: string, options?: { cause?: unknown; hint?: string }) {
    super('MANIFEST_INVALID', message, options);
  }
}

/** An enclave asked for a sealing key its identity does not entitle it to (SEAL_POLICY). */
export class SealPolicyError extends CloisterError {
  constructor(message: string) {
    super('SEAL_POLICY', message);
  }
}

/** The counter store is damaged, went backwards, or a counter would overflow (COUNTER). */
export class CounterError extends CloisterError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('COUNTER', message, options);
  }
}

/**
 * Another process on this machine is using the same platform counter, that is, running the same
 * service (COUNTER_IN_USE): most likely a copy of a running node's data directory was started.
 */
export class CounterInUseError extends CloisterError {
  constructor(message: string) {
    super('COUNTER_IN_USE', message);
  }
}

/**
 * A file of the platform directory is missing, damaged, or of an unknown format version
 * (PLATFORM_STATE). The platform never regenerates its key or secret over such a file.
 */
export class PlatformStateError extends CloisterError {
  readonly file: string;

  constructor(file: string, message: string, options?: { cause?: unknown; hint?: string }) {
    super('PLATFORM_STATE', message, options);
    this.file = file;
  }
}
