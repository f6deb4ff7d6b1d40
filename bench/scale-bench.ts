// Resident memory of the scheduler and the snapshot-store holding 10,000 machines and
// their snapshot records (the VM layer is the test double: no VM is booted here).
import { MachineConfig } from '../gen/torpor/machines/v1/machines';
import { SnapshotFiles, SnapshotsClient } from '../gen/torpor/snapshots/v1/snapshots';
import { asyncClient } from '../lib/grpc/client';
import { newSnapshotId } from '../lib/ids';
import type { Mesh } from '../scripts/mesh/mesh';
import { rssMb } from './stats';

export async function benchScale(mesh: Mesh, count: number, log: (s: string) => void): Promise<{ scheduler: number; snapshotStore: number }> {
  const c = mesh.machines();
  const snaps = asyncClient(SnapshotsClient, mesh.storeAddress);
  const cfg = MachineConfig.fromPartial({ image: 'default', guest: { cpus: 1, memoryMb: 256, cpuKind: 'shared', gpus: 0 }, env: { APP_ENV: 'production' }, metadata: { team: 'bench' } });
  const files = SnapshotFiles.fromPartial({ statePath: '/var/lib/torpor/x/state', stateSize: 65536, stateSha256: 'a'.repeat(64), memoryPath: '/var/lib/torpor/x/memory', memorySize: 268435456, memoryIdentity: '2049:123456:1700000000000000000' });
  let next = 0;
  const worker = async () => {
    while (next < count) {
      const n = ++next;
      const m = await c.createMachine({ app: `app${n % 100}`, name: '', region: 'bog', config: cfg, skipStart: true });
      await snaps.beginGeneration({ machineId: m.id, app: m.app, generation: 1, reason: 'bench' });
      await snaps.registerSnapshot({ id: newSnapshotId(), machineId: m.id, app: m.app, hostId: 'h1', generation: 1, instanceId: m.instanceId, files, sizeBytes: 65536 });
      if (n % 2000 === 0) log(`  ${n} machines…`);
    }
  };
  await Promise.all(Array.from({ length: 16 }, worker));
  // A few reads across the data, as a live control plane would serve.
  await c.listMachines({ app: 'app1', state: 0 });
  await new Promise((r) => setTimeout(r, 2000));
  snaps.close();
  return { scheduler: rssMb(mesh.scheduler.pid), snapshotStore: rssMb(mesh.store.pid) };
}
