/**
 * Node metrics (Prometheus). Counters and timings only: no keys, identities, data, nonces, or
 * per-app labels (DESIGN.md §2 "What the host still learns"). Every label value comes from a fixed
 * set written in this file or in the boundary catalogue, never from a request.
 */
import { Counter, collectDefaultMetrics, Histogram, Registry } from 'prom-client';

/** The fixed routes; anything else is counted as 'other'. */
export const ROUTES = [
  '/v1/health',
  '/v1/evidence',
  '/v1/status',
  '/v1/receipt',
  '/v1/log/consistency',
  '/v1/apps',
  '/v1/apps/{name}',
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
}

export function createNodeMetrics(): NodeMetrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'cloister_process_' });
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
  };
}
