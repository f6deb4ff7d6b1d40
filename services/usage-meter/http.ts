// HTTP: GET /usage (totals as JSON), GET /metrics (Prometheus), GET /healthz.
import http from 'node:http';
import type { Metrics } from '../../lib/metrics';
import type { UsageReport } from './accumulator';

export async function serveHttp(
  host: string,
  port: number,
  usage: () => UsageReport,
  metrics: Metrics,
): Promise<{ port: number; close: () => Promise<void> }> {
  const server = http.createServer(async (req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    try {
      if (req.method !== 'GET' && req.method !== 'HEAD') {
        res.writeHead(405, { allow: 'GET' }).end('only GET\n');
      } else if (path === '/usage') {
        res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(usage(), null, 2) + '\n');
      } else if (path === '/metrics') {
        res.writeHead(200, { 'content-type': metrics.registry.contentType }).end(await metrics.registry.metrics());
      } else if (path === '/healthz') {
        res.writeHead(200, { 'content-type': 'text/plain' }).end('ok\n');
      } else {
        res.writeHead(404, { 'content-type': 'text/plain' }).end('try /usage or /metrics\n');
      }
    } catch {
      res.writeHead(500).end('internal error (see the service log)\n');
    }
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, resolve);
  });
  const bound = (server.address() as { port: number }).port;
  return {
    port: bound,
    close: () =>
      new Promise<void>((r) => {
        server.close(() => r());
        server.closeAllConnections();
      }),
  };
}
