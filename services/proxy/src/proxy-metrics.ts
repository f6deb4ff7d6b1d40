// The proxy's Prometheus metrics.
import { Gauge, Histogram } from 'prom-client';
import type { Metrics } from '../../../lib/metrics';

export function proxyMetrics(metrics: Metrics) {
  const registers = [metrics.registry];
  return {
    requests: metrics.counter('torpor_proxy_requests_total', 'HTTP requests by app and status code', ['app', 'code']),
    wakeups: metrics.counter('torpor_proxy_wakeups_total', 'machines started for requests, by kind (resume, cold_start, already_started, failed)', ['kind']),
    held: new Histogram({
      name: 'torpor_proxy_hold_seconds',
      help: 'time a request was held waiting for a machine to wake, by outcome',
      labelNames: ['outcome'],
      buckets: [0.01, 0.025, 0.05, 0.1, 0.15, 0.2, 0.25, 0.35, 0.5, 0.75, 1, 2, 3, 5, 10, 30],
      registers,
    }),
    idleActions: metrics.counter('torpor_proxy_idle_actions_total', 'idle sweep actions (E1) by action (suspend, stop) and outcome (ok, refused, error)', ['action', 'outcome']),
    inFlight: new Gauge({ name: 'torpor_proxy_requests_in_flight', help: 'requests being forwarded', registers }),
    eventsApplied: metrics.counter('torpor_proxy_events_total', 'machine events applied to the routing table, by type', ['type']),
  };
}

export type ProxyMetrics = ReturnType<typeof proxyMetrics>;
