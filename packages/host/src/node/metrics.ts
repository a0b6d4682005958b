/**
 * Node metrics (Prometheus). Counters and timings only: no keys, identities, data, nonces, or
 * per-app labels (DESIGN.md §2 "What the host still learns"). Every label value comes from a fixed
 * set written in this file or in the boundary catalogue, never from a request.
 */
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';

/** The fixed routes; anything else is counted as 'other'. */
export const ROUTES = [
  '/v1/health',
  '/v1/evidence',
  '/v1/status',
  '/v1/receipt',
  '/v1/log/consistency',
  '/v1/apps',
  '/v1/apps/{name}',
  '/v1/scp',
  '/metrics',
  'other',
] as const;
export type Route = (typeof ROUTES)[number];

export interface NodeMetrics {
  readonly registry: Registry;
  readonly httpRequests: Counter<'route' | 'status'>;
  readonly httpDuration: Histogram<'route'>;
  readonly enclaveCalls: Counter<'call' | 'outcome'>;
  /** The enclave's record store calls, by catalogue name only (no keys, sizes or outcomes). */
  readonly storeCalls: Counter<'call'>;
  readonly enclaveOutputDropped: Counter;
  /** Open secure connection sockets (`/v1/scp`). */
  readonly scpConnections: Gauge;
  /** SCP frames relayed, by direction ('in' from clients, 'out' to them): no sizes, no sessions. */
  readonly scpFrames: Counter<'direction'>;
  /** Secure connections refused at connect, by fixed reason ('cap', 'address', 'sessions', 'enclave'). */
  readonly scpRefused: Counter<'reason'>;
  /** Secure connections closed by the relay, by fixed reason (ScpCloseReason). */
  readonly scpClosed: Counter<'reason'>;
  /**
   * Secure sessions the enclave ended (`scp.end`), by registry code: OK for a close, else why
   * (a failed handshake, a bad record). The host sees the code anyway; it names no session.
   */
  readonly scpEnded: Counter<'code'>;
  /**
   * The relay's node-wide budgets at scrape time (read through `relayBudget`, set by the relay):
   * bytes of frames at the enclave, bytes waiting in the host, sockets waiting for their turn.
   * Full budgets mean clients are being held back.
   */
  readonly relayBudget: { read: () => { atEnclave: number; waiting: number; held: number } };
}

export function createNodeMetrics(): NodeMetrics {
  const registry = new Registry();
  const relayBudget = { read: () => ({ atEnclave: 0, waiting: 0, held: 0 }) };
  // Read at scrape time only: nothing on the relay's per-frame path.
  new Gauge({
    name: 'cloister_scp_enclave_bytes',
    help: 'Bytes of secure connection frames at the enclave, not yet processed (node-wide budget: maxInFlightBytes)',
    registers: [registry],
    collect() {
      this.set(relayBudget.read().atEnclave);
    },
  });
  new Gauge({
    name: 'cloister_scp_waiting_bytes',
    help: 'Bytes of secure connection frames waiting in the host for their turn (budget: maxHeldBytes)',
    registers: [registry],
    collect() {
      this.set(relayBudget.read().waiting);
    },
  });
  new Gauge({
    name: 'cloister_scp_held_sockets',
    help: 'Secure connection sockets not read while they wait for the node-wide budget',
    registers: [registry],
    collect() {
      this.set(relayBudget.read().held);
    },
  });
  // prom-client's defaults are already named process_* and nodejs_*: the prefix is the project's.
  collectDefaultMetrics({ register: registry, prefix: 'cloister_' });
  return {
    registry,
    httpRequests: new Counter({
      name: 'cloister_http_requests_total',
      help: 'HTTP requests by route and status code',
      labelNames: ['route', 'status'],
      registers: [registry],
    }),
    httpDuration: new Histogram({
      name: 'cloister_http_request_duration_seconds',
      help: 'HTTP request duration by route',
      labelNames: ['route'],
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 1],
      registers: [registry],
    }),
    enclaveCalls: new Counter({
      name: 'cloister_enclave_calls_total',
      help: 'Calls across the host/enclave boundary by catalogue name and outcome',
      labelNames: ['call', 'outcome'],
      registers: [registry],
    }),
    storeCalls: new Counter({
      name: 'cloister_store_calls_total',
      help: 'Record store calls from the enclave, by catalogue name',
      labelNames: ['call'],
      registers: [registry],
    }),
    enclaveOutputDropped: new Counter({
      name: 'cloister_enclave_output_dropped_bytes_total',
      help: 'Bytes the enclave wrote to stdout/stderr, dropped (enclave output is not a log channel)',
      registers: [registry],
    }),
    scpConnections: new Gauge({
      name: 'cloister_scp_connections',
      help: 'Open secure connection sockets',
      registers: [registry],
    }),
    relayBudget,
    scpFrames: new Counter({
      name: 'cloister_scp_frames_total',
      help: 'Secure connection frames relayed, by direction (in, out)',
      labelNames: ['direction'],
      registers: [registry],
    }),
    scpRefused: new Counter({
      name: 'cloister_scp_refused_total',
      help: 'Secure connections refused at connect, by reason (cap, address, sessions, enclave)',
      labelNames: ['reason'],
      registers: [registry],
    }),
    scpClosed: new Counter({
      name: 'cloister_scp_closed_total',
      help: 'Secure connections closed by the relay, by reason (text, idle, handshake, backpressure, busy, protocol, enclave, sessions)',
      labelNames: ['reason'],
      registers: [registry],
    }),
    scpEnded: new Counter({
      name: 'cloister_scp_ended_total',
      help: 'Secure sessions the enclave ended, by error code (OK = a normal close; SCP_HANDSHAKE, SCP_PROTOCOL, ... = why)',
      labelNames: ['code'],
      registers: [registry],
    }),
  };
}

/**
 * The registry's Prometheus text exposition, with no blank lines: prom-client ends each metric
 * family with one (dozens on a page, which a reader of `curl /metrics` takes for missing
 * output). Raw newlines only ever separate lines here: prom-client escapes them in help texts
 * and label values as `\n`, so removing the empty lines changes no metric.
 */
export async function metricsExposition(registry: Registry): Promise<string> {
  const text = (await registry.metrics()).replace(/\n{2,}/g, '\n');
  return text.startsWith('\n') ? text.slice(1) : text;
}
