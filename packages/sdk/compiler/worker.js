/**
 * Compiles one app with the pinned `asc` and the SDK's transform, in a worker thread (the CLI's
 * `cloister app build` starts it with no exec arguments, so no loader hook of the parent process
 * slows down loading the compiler). workerData: `{ dir, entry, outFile, paths }`, all absolute but
 * `entry` and `outFile` (relative to `dir`). Posts one message:
 * `{ error: string | null, diagnostics, methods, version, output }`, where `diagnostics` are asc's
 * (`{ code, category, message, range: { start, end, source: { normalizedPath } } | null }`) and
 * `methods` the transform's `{ name, kind, file }`.
 */
import { parentPort, workerData } from 'node:worker_threads';
import asc from 'assemblyscript/asc';
import CloisterTransform from '../transform/index.js';

const { dir, entry, outFile, paths } = workerData;
const transform = new CloisterTransform();
const diagnostics = [];
let output = '';
const sink = {
  write: (chunk) => {
    output += typeof chunk === 'string' ? chunk : new TextDecoder().decode(chunk);
  },
};
let error = null;
try {
  const argv = [entry, '--baseDir', dir, '--outFile', outFile, '--noColors'];
  for (const p of paths) argv.push('--path', p);
  const r = await asc.main(argv, {
    stdout: sink,
    stderr: sink,
    transforms: [transform],
    reportDiagnostic: (d) => diagnostics.push(d),
  });
  error = r.error ? r.error.message : null;
} catch (e) {
  error = `the compiler failed: ${e instanceof Error ? e.stack : String(e)}`;
}
parentPort.postMessage({
  error,
  diagnostics,
  methods: transform.methods,
  version: asc.version,
  output,
});
