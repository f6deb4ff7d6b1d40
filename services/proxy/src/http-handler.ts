// One HTTP request through the proxy: resolve the app, pick a started machine (or
// hold the request while one is woken), forward it, count it.
import http from 'node:http';
import type { Logger } from '../../../lib/log';
import { resolveApp } from './app-resolver';
import type { Balancer } from './balancer';
import { forward, UpstreamAgents } from './forwarder';
import type { IdleTracker } from './idle-tracker';
import type { ProxyMetrics } from './proxy-metrics';
import type { RoutingTable } from './routing-table';
import { WakeCoordinator, WakeError } from './wake-coordinator';

export interface HandlerDeps {
  table: RoutingTable;
  wakes: WakeCoordinator;
  balancer: Balancer;
  tracker: IdleTracker;
  metrics: ProxyMetrics;
  log: Logger;
  holdMs: number;
  agents: UpstreamAgents;
}

function reply(res: http.ServerResponse, status: number, error: string, reason: string, extra: Record<string, string> = {}): void {
  res.writeHead(status, { 'content-type': 'application/json', 'x-torpor-reason': reason.replace(/[^\x20-\x7e]/g, '?').slice(0, 500), ...extra });
  res.end(JSON.stringify({ error, reason }) + '\n');
}

export function createHandler(d: HandlerDeps): http.RequestListener {
  return (req, res) => {
    handle(d, req, res).catch((err) => {
      d.log.error({ err }, 'proxy handler failed');
      if (!res.headersSent) reply(res, 500, 'internal error', String((err as Error)?.message ?? err));
      else res.destroy();
    });
  };
}

async function handle(d: HandlerDeps, req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
  const arrived = performance.now();
  const resolved = resolveApp(req.headers.host, req.url);
  if (!resolved) {
    d.metrics.requests.inc({ app: '', code: '404' });
    reply(res, 404, 'no app', 'no app in the request: send Host: <app>.localhost or use the path /apps/<app>/...');
    return;
  }
  const { app, path } = resolved;
  let target = d.balancer.pick(d.table.routable(app));
  const extra: Record<string, string> = {};
  if (!target) {
    const known = d.table.hasApp(app);
    try {
      target = await d.wakes.acquire(app, d.holdMs);
      const heldMs = performance.now() - arrived;
      d.metrics.held.observe({ outcome: 'served' }, heldMs / 1000);
      extra['x-torpor-held-ms'] = heldMs.toFixed(1);
    } catch (err) {
      const e = err instanceof WakeError ? err : new WakeError(503, String((err as Error)?.message ?? err));
      if (known) d.metrics.held.observe({ outcome: 'failed' }, (performance.now() - arrived) / 1000);
      d.metrics.requests.inc({ app: e.status === 404 ? '' : app, code: String(e.status) });
      d.log.info({ app, status: e.status, reason: e.message }, 'request not served');
      reply(res, e.status, e.status === 404 ? 'unknown app' : 'no machine available', e.message, e.status === 503 ? { 'retry-after': '1' } : {});
      return;
    }
  }
  extra['x-torpor-machine'] = target.id;
  d.tracker.begin(target.id);
  d.metrics.inFlight.inc();
  try {
    const r = await forward(req, res, { machineId: target.id, url: target.url }, path, d.agents.get(target.url), extra);
    d.metrics.requests.inc({ app, code: String(r.status) });
    if (r.error) d.log.warn({ app, machine_id: target.id, err: r.error }, 'forward failed');
  } finally {
    d.metrics.inFlight.dec();
    d.tracker.end(target.id);
  }
}
