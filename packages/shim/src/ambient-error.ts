/**
 * AmbientAccessError, and (on import) making every lockdown stub throw it. The shim entry imports
 * this module right after capture.ts, so core, which it loads, is evaluated after lockdown too.
 */
import { CloisterError } from '@cloister/core';
import { useAmbientError } from './lockdown.js';

/** Enclave code used an ambient global it may not use; `ambient` names it. */
export class AmbientAccessError extends CloisterError {
  readonly ambient: string;

  constructor(ambient: string) {
    super('AMBIENT_ACCESS', `enclave code used ${ambient}, which is removed in the enclave`);
    this.ambient = ambient;
  }
}

useAmbientError((ambient) => new AmbientAccessError(ambient));
