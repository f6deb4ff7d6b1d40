// Composition root of the edge proxy: config, the scheduler client, the routing table
// fed by NATS events, the wake-up coordinator, the idle sweep, the HTTP and metrics servers.
import http from 'node:http';
import { intOption, loadConfig } from '../../lib/config';
import { Lifecycle } from '../../lib/lifecycle';
import { createLogger } from '../../lib/log';
import { Metrics } from '../../lib/metrics';
import { connectNats, streamsReady } from '../../lib/nats';
import { Balancer } from './src/balancer';
import { EventFeed } from './src/event-feed';
import { UpstreamAgents } from './src/forwarder';
import { createHandler } from './src/http-handler';
import { IdleSweeper } from './src/idle-sweeper';
import { IdleTracker } from './src/idle-tracker';
import { proxyMetrics } from './src/proxy-metrics';
import { RoutingTable } from './src/routing-table';
import { GrpcScheduler } from './src/scheduler-port';
import { WakeCoordinator } from './src/wake-coordinator';

const OPTIONS = {
  host: { env: 'TORPOR_PROXY_HOST', default: '127.0.0.1', help: 'address to listen on' },
  port: { env: 'TORPOR_PROXY_PORT', default: '8000', help: 'HTTP port of the proxy (0 picks a free one)' },
  metricsPort: { env: 'TORPOR_PROXY_METRICS_PORT', default: '0', help: 'Prometheus /metrics port (0 picks a free one)' },
  scheduler: { env: 'TORPOR_SCHEDULER', default: '127.0.0.1:7100', help: 'scheduler gRPC address (Machines API)' },
  natsUrl: { env: 'NATS_URL', default: 'nats://127.0.0.1:4222', help: 'NATS server(s) with JetStream, comma separated' },
  idleSeconds: { env: 'TORPOR_PROXY_IDLE_SECONDS', default: '60', help: 'a machine with no request for this long is suspended/stopped per its autostop (E1)' },
  sweepSeconds: { env: 'TORPOR_PROXY_SWEEP_SECONDS', default: '1', help: 'how often the idle sweep runs' },
  maxConnsPerMachine: { env: 'TORPOR_PROXY_MAX_CONNS_PER_MACHINE', default: '2', help: 'connections open to one guest at a time; more requests wait in the proxy' },
  holdSeconds: { env: 'TORPOR_PROXY_HOLD_SECONDS', default: '10', help: 'longest a request is held while its app wakes; then 503' },
};

async function main() {
  const cfg = loadConfig('torpor proxy', OPTIONS);
  const idleMs = intOption('idle-seconds', cfg.idleSeconds, 1, 86_400) * 1000;
  const sweepMs = intOption('sweep-seconds', cfg.sweepSeconds, 1, 3600) * 1000;
  const holdMs = intOption('hold-seconds', cfg.holdSeconds, 1, 300) * 1000;
  const log = createLogger('proxy');
  const life = new Lifecycle(log);
  life.handleSignals();
  const metrics = new Metrics('proxy');
  const pm = proxyMetrics(metrics);

  const scheduler = new GrpcScheduler(cfg.scheduler);
  life.onClose('scheduler client', () => scheduler.close());
  const nc = await connectNats(cfg.natsUrl, 'torpor-proxy', log);
  life.onClose('nats', () => nc.close());
  const jsm = await streamsReady(nc);

  const table = new RoutingTable();
  const tracker = new IdleTracker();
  table.onChange((m, prev) => {
    if (m.state === 'started' && prev !== 'started') tracker.woken(m.id); // E1: a fresh wake is never idle
    if (m.state === 'destroyed') tracker.forget(m.id);
  });
  const refresh = (id: string) =>
    scheduler.get(id).then(
      (d) => table.setDetails(d),
      (err) => log.debug({ err: err.message, machine_id: id }, 'could not read machine details'),
    );
  const feed = new EventFeed(
    nc,
    jsm,
    (ev) => {
      pm.eventsApplied.inc({ type: ev.type });
      if (table.applyEvent(ev).needsDetails) void refresh(ev.machineId);
    },
    log,
  );
  const after = await feed.position();
  table.load(await scheduler.list());
  await feed.start(after);
  life.onClose('event feed', () => feed.stop());

  const sweeper = new IdleSweeper(table, tracker, scheduler, idleMs, {
    onAction: (action, outcome, d, reason) => {
      pm.idleActions.inc({ action, outcome });
      log.info({ action, outcome, machine_id: d.machineId, app: d.app, idle_ms: d.idleMs, reason }, 'idle sweep');
    },
  });
  let sweeping = false;
  const sweepTimer = setInterval(() => {
    if (sweeping) return;
    sweeping = true;
    sweeper
      .sweep()
      .catch((err) => log.error({ err }, 'idle sweep failed'))
      .finally(() => (sweeping = false));
  }, sweepMs);
  life.onClose('idle sweep', () => clearInterval(sweepTimer));

  const wakes = new WakeCoordinator(table, scheduler, {
    pendingOp: (id) => sweeper.pending(id),
    hooks: {
      onWake: (app, machineId, kind, tookMs) => {
        pm.wakeups.inc({ kind });
        log.info({ app, machine_id: machineId, kind, took_ms: tookMs }, 'woke a machine');
      },
      onWakeFailed: (app, reason) => {
        pm.wakeups.inc({ kind: 'failed' });
        log.warn({ app, reason }, 'wake-up failed');
      },
    },
  });

  const agents = new UpstreamAgents(intOption('max-conns-per-machine', cfg.maxConnsPerMachine, 1, 10_000));
  life.onClose('upstream connections', () => agents.close());
  const server = http.createServer(createHandler({ table, wakes, balancer: new Balancer((id) => tracker.inFlight(id)), tracker, metrics: pm, log, holdMs, agents }));
  server.keepAliveTimeout = 5000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(intOption('port', cfg.port, 0, 65535), cfg.host, resolve);
  });
  life.onClose('http server', () => new Promise<void>((r) => {
    server.close(() => r());
    server.closeIdleConnections();
  }));
  const m = await metrics.serve(cfg.host, intOption('metrics-port', cfg.metricsPort, 0, 65535));
  life.onClose('metrics server', m.close);
  log.info(
    { http_port: (server.address() as { port: number }).port, metrics_port: m.port, machines: table.all().length, idle_seconds: idleMs / 1000, hold_seconds: holdMs / 1000 },
    'listening',
  );
}

main().catch((err) => {
  console.error(`proxy: ${err instanceof Error ? err.message : err}`);
  process.exit(1);
});
