/**
 * Shared benchmark helpers. Every figure is the median of three runs, and every target is a
 * ratio against a baseline measured in the same process, in the same run.
 */
import { performance } from 'node:perf_hooks';
import { fromUtf8, utf8 } from '@cloister/core';
import type { EnclaveWorker } from '../packages/host/src/launcher/index.js';

export interface BenchOptions {
  /** Tiny sizes, for CI: proves the harness runs, not the numbers. */
  readonly smoke: boolean;
  /** Size override from `--size N`, if given. */
  readonly size: number | undefined;
}

export function benchOptions(argv: readonly string[] = process.argv.slice(2)): BenchOptions {
  const i = argv.indexOf('--size');
  const size = i >= 0 ? Number(argv[i + 1]) : undefined;
  if (size !== undefined && !(Number.isInteger(size) && size > 0)) {
    throw new Error('--size takes a positive whole number');
  }
  return { smoke: argv.includes('--smoke'), size };
}

/** Runs `fn` three times and returns the median of the values it returns. */
export async function median3(fn: () => Promise<number> | number): Promise<number> {
  const xs: number[] = [];
  for (let i = 0; i < 3; i++) xs.push(await fn());
  xs.sort((a, b) => a - b);
  return xs[1]!;
}

/**
 * Runs `a` and `b` three times each, alternating which goes first, so load that drifts over a run
 * hits both sides of a ratio alike: their runs, in order.
 */
export async function interleaved<T>(
  a: () => Promise<T>,
  b: () => Promise<T>,
): Promise<{ a: T[]; b: T[] }> {
  const out = { a: [] as T[], b: [] as T[] };
  for (let r = 0; r < 3; r++) {
    if (r % 2 === 0) out.a.push(await a());
    out.b.push(await b());
    if (r % 2 !== 0) out.a.push(await a());
  }
  return out;
}

/** The median of `xs` (the upper middle of an even count); NaN when empty. Does not reorder `xs`. */
export function median(xs: readonly number[]): number {
  return [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? Number.NaN;
}

/** The median of the per-run ratios a[i] / b[i] of two interleaved sides. */
export function medianRatio(a: readonly number[], b: readonly number[]): number {
  return median(a.map((x, i) => x / (b[i] as number)));
}

/** Operations per second of `ops` calls of an async or sync operation, run sequentially. */
export async function opsPerSecond(ops: number, op: (i: number) => unknown): Promise<number> {
  const t0 = performance.now();
  for (let i = 0; i < ops; i++) await op(i);
  const ms = performance.now() - t0;
  return (ops * 1000) / ms;
}

function fmt(x: number): string {
  if (Math.abs(x) >= 100) return x.toFixed(0);
  if (Math.abs(x) >= 10) return x.toFixed(1);
  return x.toFixed(2);
}

/**
 * Prints `target <name> <measured> <goal> met|missed`. `goal` is `>=X` or `<=X`.
 */
export function target(name: string, measured: number, goal: string): void {
  const m = /^(>=|<=)(\d+(?:\.\d+)?)$/.exec(goal);
  if (!m) throw new Error(`bad goal ${goal}`);
  const bound = Number(m[2]);
  const met = m[1] === '>=' ? measured >= bound : measured <= bound;
  console.log(`target ${name} ${fmt(measured)} ${goal} ${met ? 'met' : 'missed'}`);
}

/** Prints `info <name> <value>`. */
export function info(name: string, value: number | string): void {
  console.log(`info ${name} ${typeof value === 'number' ? fmt(value) : value}`);
}

/**
 * Operations per second of `ops` calls of an async operation with `concurrency` in flight at
 * once: the throughput a server sees from many clients, where `opsPerSecond` measures latency.
 */
export async function concurrentOpsPerSecond(
  ops: number,
  concurrency: number,
  op: (i: number) => Promise<unknown>,
): Promise<number> {
  let next = 0;
  const t0 = performance.now();
  const lane = async (): Promise<void> => {
    while (next < ops) await op(next++);
  };
  await Promise.all(Array.from({ length: concurrency }, lane));
  return (ops * 1000) / (performance.now() - t0);
}

/** Milliseconds `f` takes (awaited). */
export async function timed(f: () => unknown): Promise<number> {
  const t0 = performance.now();
  await f();
  return performance.now() - t0;
}

/** Sends a bench fixture enclave its UTF-8 `enclave.ping` command and parses its JSON answer. */
export async function pingJson<T>(w: EnclaveWorker, text: string): Promise<T> {
  const r = await w.call('enclave.ping', { payload: utf8(text) });
  return JSON.parse(fromUtf8(r.payload)) as T;
}

/** The `p`-th percentile (0..100, nearest rank) of `xs`; NaN when empty. */
export function percentile(xs: readonly number[], p: number): number {
  if (xs.length === 0) return Number.NaN;
  const sorted = [...xs].sort((a, b) => a - b);
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length, Math.max(1, rank)) - 1]!;
}

/** A throughput run with the latency of every operation. */
export interface LatencyRun {
  readonly perSecond: number;
  /** Milliseconds per operation, in completion order. */
  readonly latencies: readonly number[];
}

/**
 * `ops` operations spread over `lanes` lanes, one in flight per lane (lane `l` is, e.g., one
 * connection, used only by its lane): throughput and each operation's latency.
 */
export async function laneOpsPerSecond(
  ops: number,
  lanes: number,
  op: (lane: number, i: number) => Promise<unknown>,
): Promise<LatencyRun> {
  let next = 0;
  const latencies: number[] = [];
  const t0 = performance.now();
  const lane = async (l: number): Promise<void> => {
    while (next < ops) {
      const i = next++;
      const s = performance.now();
      await op(l, i);
      latencies.push(performance.now() - s);
    }
  };
  await Promise.all(Array.from({ length: lanes }, (_, l) => lane(l)));
  return { perSecond: (ops * 1000) / (performance.now() - t0), latencies };
}
