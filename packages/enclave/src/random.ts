/** Random bytes for the enclave's own frequent small draws (nonces, an app's `seed`). */
import { randomFillSync } from 'node:crypto';

/**
 * Random bytes from node:crypto, drawn 4 KiB at a time (one call per ~340 nonces): a call of
 * node:crypto for 8 or 12 bytes costs microseconds, which an app calling `env.seed` in a loop
 * turned into seconds of the enclave's time on little fuel. Bytes handed out are zeroed in the
 * pool, so none is handed out twice.
 */
export function pooledRandom(): (out: Uint8Array) => void {
  const pool = new Uint8Array(4096);
  let at = pool.length;
  return (out) => {
    if (out.length > pool.length) {
      randomFillSync(out);
      return;
    }
    if (at + out.length > pool.length) {
      randomFillSync(pool);
      at = 0;
    }
    out.set(pool.subarray(at, at + out.length));
    pool.fill(0, at, at + out.length);
    at += out.length;
  };
}
