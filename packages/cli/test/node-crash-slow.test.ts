/**
 * `npm run test:slow`: the whole-node crash test of node-crash.test.ts with 25 kills instead of 3
 * (about a minute on the 2-core machine); CLOISTER_CRASH_KILLS still overrides it.
 */
process.env.CLOISTER_CRASH_KILLS ??= '25';
await import('./node-crash.test.js');
