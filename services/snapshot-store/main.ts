// Composition root of the snapshot-store: config, database, event relay, gRPC server.
import path from 'node:path';
import { SnapshotsService } from '../../gen/torpor/snapshots/v1/snapshots';
import { intOption, loadConfig, serverOptions } from '../../lib/config';
import { bind, startGrpcServer } from '../../lib/grpc/server';
import { Lifecycle } from '../../lib/lifecycle';
import { createLogger } from '../../lib/log';
import { Metrics } from '../../lib/metrics';
import { connectNats } from '../../lib/nats';
import { OutboxRelay } from '../../lib/outbox';
import { openDatabase } from '../../lib/sqlite';
import { MIGRATIONS } from './src/schema';
import { snapshotsService } from './src/grpc-service';
import { SnapshotRegistry } from './src/snapshot-registry';

const OPTIONS = serverOptions('TORPOR_SNAPSHOT_STORE', { port: '7200', metricsPort: '9200', dataHelp: 'data folder (database in <data>/snapshot-store/)' });

async function main() {
  const cfg = loadConfig('torpor snapshot-store', OPTIONS);
  const log = createLogger('snapshot-store');
  const life = new Lifecycle(log);
  life.handleSignals();
  const metrics = new Metrics('snapshot-store');

  const db = openDatabase(path.join(cfg.dataDir, 'snapshot-store', 'snapshots.db'), MIGRATIONS);
  life.onClose('database', () => void db.close());

  const natsConn = connectNats(cfg.natsUrl, 'torpor-snapshot-store', log);
  life.onClose('nats', async () => (await natsConn).close());
  const relay = new OutboxRelay(db, () => natsConn, log);
  relay.start();
  life.onClose('event relay', () => relay.stop());

  const registry = new SnapshotRegistry(db, () => relay.notify());
  const grpc = await startGrpcServer({
    host: cfg.host,
    port: intOption('port', cfg.port, 0, 65535),
    services: [bind('torpor.snapshots.v1.Snapshots', SnapshotsService, snapshotsService(registry))],
    log,
    metrics,
  });
  life.onClose('grpc server', () => grpc.close());
  const m = await metrics.serve(cfg.host, intOption('metrics-port', cfg.metricsPort, 0, 65535));
  life.onClose('metrics server', m.close);
  log.info({ grpc_port: grpc.port, metrics_port: m.port, data: cfg.dataDir }, 'listening');
}

main().catch((err) => {
  console.error(`snapshot-store: ${err instanceof Error ? err.message : err}`);
  process.exit(1);
});
