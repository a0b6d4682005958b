export * from './bytes.js';
export * from './errors.js';
