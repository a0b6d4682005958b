/**
 * The entry of the measured enclave bundle (shim + enclave). Order matters, and bare imports
 * keep import sorting from changing it:
 *   1. capture.js captures the worker channel and removes the ambient globals, before any other
 *      module of the bundle is evaluated;
 *   2. ambient-error.js makes the removed globals throw AmbientAccessError;
 *   3. the enclave's modules are evaluated, under lockdown; then it gets its one Port.
 */
import './capture.js';
import './ambient-error.js';
import { startEnclave } from '@cloister/enclave';
import { takeChannel } from './capture.js';
import { createWorkerPort } from './port.js';

startEnclave(createWorkerPort(takeChannel()));
