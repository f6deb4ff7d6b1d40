// Usage meter (N4): composition root. Reads machine events from TORPOR_EVENTS through a
// durable consumer, keeps per-machine seconds by billing state in SQLite, serves them on HTTP.
import { Gauge } from 'prom-client';
import { intOption, loadConfig } from '../../lib/config';
import { Lifecycle } from '../../lib/lifecycle';
import { createLogger } from '../../lib/log';
import { Metrics } from '../../lib/metrics';
import { connectNats, streamsReady } from '../../lib/nats';
import { EventConsumer, ensureConsumer } from './consumer';
import { serveHttp } from './http';
import { UsageMeter } from './meter';
import { UsageStore } from './store';

const OPTIONS = {
  natsUrl: { env: 'NATS_URL', default: 'nats://127.0.0.1:4222', help: 'NATS server(s), comma-separated' },
  host: { env: 'USAGE_METER_HOST', default: '127.0.0.1', help: 'HTTP listen address' },
  port: { env: 'USAGE_METER_PORT', default: '7300', help: 'HTTP port for /usage and /metrics (0 picks a free one)' },
  db: { env: 'USAGE_METER_DB', default: 'data/usage-meter.sqlite', help: 'SQLite file of the accounts' },
  consumer: { env: 'USAGE_METER_CONSUMER', default: 'usage-meter', help: 'durable consumer name on TORPOR_EVENTS' },
};

async function main(): Promise<void> {
  const cfg = loadConfig('usage-meter: per-machine seconds by billing state (N4)', OPTIONS);
  const port = intOption('--port', cfg.port, 0, 65535);
  const log = createLogger('usage-meter');
  const life = new Lifecycle(log);
  life.handleSignals();

  const store = new UsageStore(cfg.db);
  life.onClose('sqlite', () => store.close());
  const meter = new UsageMeter(store);

  const metrics = new Metrics('usage-meter');
  const events = metrics.counter('torpor_usage_events_total', 'machine events seen by the usage meter, by outcome', ['outcome']);
  new Gauge({
    name: 'torpor_usage_seconds',
    help: 'seconds billed over all machines, by billing state (open intervals up to now)',
    labelNames: ['billing_state'],
    registers: [metrics.registry],
    collect() {
      const t = meter.report().totals;
      this.set({ billing_state: 'running' }, t.running);
      this.set({ billing_state: 'stopped' }, t.stopped);
    },
  });

  // HTTP first: /usage answers from SQLite even while NATS is down.
  const http = await serveHttp(cfg.host, port, () => meter.report(), metrics);
  life.onClose('http', () => http.close());
  log.info({ http_port: http.port, host: cfg.host }, 'listening');

  const nc = await connectNats(cfg.natsUrl, 'usage-meter', log);
  life.onClose('nats', () => nc.drain());
  const jsm = await streamsReady(nc);
  const consumerOptions = {
    durable: cfg.consumer,
    filter: 'machine.>',
    onOutcome: (o: string) => events.inc({ outcome: o }),
  };
  await ensureConsumer(jsm, consumerOptions);
  const consumer = new EventConsumer(nc, meter, consumerOptions, log);
  consumer.start();
  life.onClose('consumer', () => consumer.stop());
  log.info({ nats: cfg.natsUrl, consumer: cfg.consumer }, 'consuming machine events');
}

main().catch((err) => {
  process.stderr.write(`usage-meter: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
