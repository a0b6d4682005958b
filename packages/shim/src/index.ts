/**
 * @cloister/shim: the loader shim. `src/entry.ts` is the entry of the measured enclave bundle;
 * this module exports the pieces for tests and documentation, with no side effects.
 */
export { lockdown, STUBBED_FUNCTIONS, STUBBED_OBJECTS, useAmbientError } from './lockdown.js';
export { createWorkerPort, type WorkerChannel } from './port.js';
