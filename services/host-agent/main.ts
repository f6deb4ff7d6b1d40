// Composition root of a host agent: config, VMM, local records, snapshot-store client,
// gRPC server, registration with the scheduler, console log shipping, snapshot GC.
import path from 'node:path';
import { HostAgentService } from '../../gen/torpor/hostagent/v1/hostagent';
import { intOption, loadConfig, serverOptions } from '../../lib/config';
import { bind, startGrpcServer } from '../../lib/grpc/server';
import { Lifecycle } from '../../lib/lifecycle';
import { createLogger } from '../../lib/log';
import { Metrics } from '../../lib/metrics';
import { connectNats } from '../../lib/nats';
import { openDatabase } from '../../lib/sqlite';
import * as check from '../../lib/validate';
import { GrpcSnapshotAuthority } from './src/adapters/snapshot-store';
import { HostAgentCore } from './src/agent';
import { hostAgentService } from './src/grpc-service';
import { LogShipper } from './src/log-shipper';
import { keepRegistered } from './src/registration';
import { MIGRATIONS } from './src/schema';
import { VmRecords } from './src/vm-records';
import { FakeVmm } from './src/vmm/fake-vmm';
import { listImages } from './src/vmm/images';
import { QemuVmm } from './src/vmm/qemu-vmm';
import type { Vmm } from './src/vmm/vmm';

const OPTIONS = {
  hostId: { env: 'TORPOR_HOST_ID', default: 'host-1', help: 'this host\'s id, unique in the cluster' },
  region: { env: 'TORPOR_REGION', default: 'local', help: 'region this host serves' },
  ...serverOptions('TORPOR_HOST_AGENT', { port: '7101', metricsPort: '0', dataHelp: 'data folder: images in <data>/images, this host\'s VMs and snapshots in <data>/hosts/<host-id>' }),
  memoryMb: { env: 'TORPOR_HOST_MEMORY_MB', default: '4096', help: 'guest memory this host offers, MiB' },
  scheduler: { env: 'TORPOR_SCHEDULER', default: '127.0.0.1:7100', help: 'scheduler gRPC address, to register with' },
  snapshotStore: { env: 'TORPOR_SNAPSHOT_STORE', default: '127.0.0.1:7200', help: 'snapshot-store gRPC address' },
  vmm: { env: 'TORPOR_VMM', default: 'qemu', help: 'qemu, or fake (a test double with no real VMs)' },
  accel: { env: 'TORPOR_ACCEL', default: 'auto', help: 'auto (probe KVM, else TCG), kvm or tcg' },
  gcSeconds: { env: 'TORPOR_GC_SECONDS', default: '30', help: 'how often files of invalidated snapshots are looked for' },
};

async function main() {
  const cfg = loadConfig('torpor host-agent', OPTIONS);
  const hostId = check.name(cfg.hostId, 'host-id');
  const region = check.name(cfg.region, 'region');
  const log = createLogger('host-agent').child({ host: hostId });
  const life = new Lifecycle(log);
  life.handleSignals();
  const metrics = new Metrics('host-agent');
  const memoryMbTotal = intOption('memory-mb', cfg.memoryMb, 128, 4 * 1024 * 1024);
  const agentDir = path.join(cfg.dataDir, 'hosts', hostId);

  const db = openDatabase(path.join(agentDir, 'agent.db'), MIGRATIONS);
  life.onClose('database', () => void db.close());
  const vmm = makeVmm(cfg.vmm, cfg.accel, cfg.dataDir, log);
  const snapshots = new GrpcSnapshotAuthority(cfg.snapshotStore);
  life.onClose('snapshot-store client', () => snapshots.close());
  const natsConn = connectNats(cfg.natsUrl, `torpor-host-agent-${hostId}`, log);
  life.onClose('nats', async () => (await natsConn).close());
  const shipper = new LogShipper(() => natsConn, (id) => ({ console: core.consolePath(id), vmDir: core.vmDir(id) }), log);
  life.onClose('log shipper', () => shipper.close());
  const images = () => (cfg.vmm === 'fake' ? ['default', 'slow-start'] : listImages(cfg.dataDir));
  const core = new HostAgentCore({ hostId, dataDir: agentDir, memoryMbTotal, images }, vmm, new VmRecords(db), snapshots, log, {
    vmStarted: (id, app) => shipper.watch(id, app),
    vmDestroyed: (id) => shipper.unwatch(id),
  });
  core.reconcile();

  let address = '';
  const info = () => ({ hostId, region, address, memoryMbTotal, memoryMbUsed: core.memoryUsed(), accel: core.accel, runningVms: core.runningCount(), images: images() });
  const grpc = await startGrpcServer({
    host: cfg.host,
    port: intOption('port', cfg.port, 0, 65535),
    services: [bind('torpor.hostagent.v1.HostAgent', HostAgentService, hostAgentService(core, info))],
    log,
    metrics,
  });
  address = `${cfg.host}:${grpc.port}`;
  life.onClose('grpc server', () => grpc.close());
  const m = await metrics.serve(cfg.host, intOption('metrics-port', cfg.metricsPort, 0, 65535));
  life.onClose('metrics server', m.close);

  const unregister = keepRegistered(cfg.scheduler, info, log);
  life.onClose('registration', unregister);
  const gcEvery = intOption('gc-seconds', cfg.gcSeconds, 1, 86400) * 1000;
  const gc = setInterval(() => core.collectGarbage().catch((err) => log.warn({ err: (err as Error).message }, 'snapshot gc failed')), gcEvery);
  life.onClose('snapshot gc', () => clearInterval(gc));
  // VMs keep running when the agent stops: they are adopted again at the next start.
  log.info({ grpc_port: grpc.port, metrics_port: m.port, region, vmm: cfg.vmm, memory_mb: memoryMbTotal, data: agentDir }, 'listening');
}

function makeVmm(kind: string, accel: string, dataDir: string, log: ReturnType<typeof createLogger>): Vmm {
  if (kind === 'fake') return new FakeVmm();
  if (kind !== 'qemu') throw new Error(`--vmm must be qemu or fake, got "${kind}"`);
  if (!['auto', 'kvm', 'tcg'].includes(accel)) throw new Error(`--accel must be auto, kvm or tcg, got "${accel}"`);
  return new QemuVmm({ dataDir, accel: accel as 'auto' | 'kvm' | 'tcg', logger: log });
}

main().catch((err) => {
  console.error(`host-agent: ${err instanceof Error ? err.message : err}`);
  process.exit(1);
});
