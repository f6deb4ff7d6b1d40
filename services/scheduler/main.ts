// Composition root of the scheduler: config, database, ports to the snapshot-store
// and host agents, the lifecycle, event relay, gRPC and metrics servers.
import path from 'node:path';
import { HostRegistryService } from '../../gen/torpor/hostagent/v1/hostagent';
import { MachinesService } from '../../gen/torpor/machines/v1/machines';
import { intOption, loadConfig, serverOptions } from '../../lib/config';
import { bind, startGrpcServer } from '../../lib/grpc/server';
import { Lifecycle } from '../../lib/lifecycle';
import { createLogger } from '../../lib/log';
import { Metrics } from '../../lib/metrics';
import { connectNats } from '../../lib/nats';
import { OutboxRelay } from '../../lib/outbox';
import { openDatabase } from '../../lib/sqlite';
import { GrpcHostAgents } from './src/adapters/host-agents';
import { GrpcSnapshotStore } from './src/adapters/snapshot-store';
import { hostRegistryService } from './src/grpc/host-registry-service';
import { machinesService } from './src/grpc/machines-service';
import { MachineLifecycle } from './src/lifecycle';
import { OverheadMeter } from './src/overhead-meter';
import { MIGRATIONS } from './src/store/schema';
import { MachineStore } from './src/store/machine-store';

const OPTIONS = {
  ...serverOptions('TORPOR_SCHEDULER', { port: '7100', metricsPort: '9100', portHelp: 'gRPC port of the Machines API (0 picks a free one)', dataHelp: 'data folder (database in <data>/scheduler/)' }),
  snapshotStore: { env: 'TORPOR_SNAPSHOT_STORE', default: '127.0.0.1:7200', help: 'snapshot-store gRPC address' },
  platformVersion: { env: 'TORPOR_PLATFORM_VERSION', default: '2', help: 'platform version recorded on machines at create and update (R5)' },
  suspendSinceVersion: { env: 'TORPOR_SUSPEND_SINCE_VERSION', default: '2', help: 'first platform version that supports suspend (R5)' },
  suspendRegions: { env: 'TORPOR_SUSPEND_REGIONS', default: '', help: 'comma-separated regions where suspend is enabled; empty: all (R6)' },
  suspendMaxMemoryMb: { env: 'TORPOR_SUSPEND_MAX_MEMORY_MB', default: '2048', help: 'largest guest memory that can be suspended (R1)' },
  heartbeatSeconds: { env: 'TORPOR_HEARTBEAT_SECONDS', default: '2', help: 'how often host agents register again' },
  hostTimeoutSeconds: { env: 'TORPOR_HOST_TIMEOUT_SECONDS', default: '10', help: 'a host silent this long is unavailable' },
};

async function main() {
  const cfg = loadConfig('torpor scheduler', OPTIONS);
  const log = createLogger('scheduler');
  const life = new Lifecycle(log);
  life.handleSignals();
  const metrics = new Metrics('scheduler');
  const transitions = metrics.counter('torpor_machine_transitions_total', 'machine state changes by new state', ['to']);
  const published = metrics.counter('torpor_events_published_total', 'lifecycle events relayed to JetStream', ['type']);
  const overhead = new OverheadMeter(metrics);

  const db = openDatabase(path.join(cfg.dataDir, 'scheduler', 'machines.db'), MIGRATIONS);
  life.onClose('database', () => void db.close());

  const natsConn = connectNats(cfg.natsUrl, 'torpor-scheduler', log);
  life.onClose('nats', async () => (await natsConn).close());
  const relay = new OutboxRelay(db, () => natsConn, log, (e) => {
    published.inc({ type: e.subject.split('.').slice(0, 2).join('.') });
    overhead.observe(e);
  });
  relay.start();
  life.onClose('event relay', () => relay.stop());

  const store = new MachineStore(db, () => relay.notify());
  store.onChange((m) => transitions.inc({ to: m.state }));
  const snapshots = new GrpcSnapshotStore(cfg.snapshotStore);
  life.onClose('snapshot-store client', () => snapshots.close());
  const hostAgents = new GrpcHostAgents();
  life.onClose('host agent clients', () => hostAgents.close());

  const heartbeat = intOption('heartbeat-seconds', cfg.heartbeatSeconds, 1, 3600);
  const lifecycle = new MachineLifecycle(
    store,
    hostAgents,
    snapshots,
    {
      platformVersion: intOption('platform-version', cfg.platformVersion, 1, 1_000_000),
      suspendPolicy: {
        maxMemoryMb: intOption('suspend-max-memory-mb', cfg.suspendMaxMemoryMb, 128, 1_000_000),
        suspendSinceVersion: intOption('suspend-since-version', cfg.suspendSinceVersion, 1, 1_000_000),
        regions: cfg.suspendRegions.split(',').map((s) => s.trim()).filter(Boolean),
      },
      hostTimeoutMs: intOption('host-timeout-seconds', cfg.hostTimeoutSeconds, 1, 3600) * 1000,
    },
    log,
  );

  const grpc = await startGrpcServer({
    host: cfg.host,
    port: intOption('port', cfg.port, 0, 65535),
    services: [
      bind('torpor.machines.v1.Machines', MachinesService, machinesService(lifecycle, db)),
      bind('torpor.hostagent.v1.HostRegistry', HostRegistryService, hostRegistryService(store, heartbeat)),
    ],
    log,
    metrics,
  });
  life.onClose('grpc server', () => grpc.close());
  const m = await metrics.serve(cfg.host, intOption('metrics-port', cfg.metricsPort, 0, 65535));
  life.onClose('metrics server', m.close);
  log.info({ grpc_port: grpc.port, metrics_port: m.port, data: cfg.dataDir }, 'listening');
  // Give host agents one heartbeat to re-register before judging their machines.
  setTimeout(() => lifecycle.recover().catch((err) => log.error({ err }, 'recovery failed')), heartbeat * 1000 + 500).unref();
}

main().catch((err) => {
  console.error(`scheduler: ${err instanceof Error ? err.message : err}`);
  process.exit(1);
});
