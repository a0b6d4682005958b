/**
 * Runs `f` in this process with stdout and stderr captured (the CLI writes through
 * process.stdout/stderr.write): what it returned and what it wrote. Restores both writers even
 * when `f` throws.
 */
export async function captured<T>(
  f: () => T | Promise<T>,
): Promise<{ value: T; out: string; err: string }> {
  const writes = { out: process.stdout.write, err: process.stderr.write };
  const got = { out: '', err: '' };
  const into = (k: 'out' | 'err') =>
    ((chunk: string | Uint8Array) => {
      got[k] += typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString();
      return true;
    }) as typeof process.stdout.write;
  process.stdout.write = into('out');
  process.stderr.write = into('err');
  try {
    const value = await f();
    return { value, ...got };
  } finally {
    process.stdout.write = writes.out;
    process.stderr.write = writes.err;
  }
}
