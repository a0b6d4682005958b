import { CloisterError } from '@cloister/core';

/**
 * The enclave worker stopped (crash, exit, resource limit, or terminate()) or could not start.
 * Pending and later calls reject with it. The message never carries the enclave's own error
 * text: nothing but code and message of a call's error reply crosses from the enclave.
 */
export class EnclaveFailedError extends CloisterError {
  constructor(message: string) {
    super('ENCLAVE_FAILED', message);
  }
}
