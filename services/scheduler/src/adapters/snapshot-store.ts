// SnapshotPort over gRPC.
import { SnapshotsClient, SnapshotState } from '../../../../gen/torpor/snapshots/v1/snapshots';
import { AsyncClient, asyncClient } from '../../../../lib/grpc/client';
import type { SnapshotPort } from '../ports';

export class GrpcSnapshotStore implements SnapshotPort {
  private readonly c: AsyncClient<SnapshotsClient>;

  constructor(address: string) {
    this.c = asyncClient(SnapshotsClient, address, 10_000);
  }

  async beginGeneration(machineId: string, app: string, generation: number, reason: string) {
    await this.c.beginGeneration({ machineId, app, generation, reason });
  }

  async invalidate(machineId: string, reason: string) {
    await this.c.invalidateSnapshots({ machineId, reason });
  }

  async deleteMachine(machineId: string) {
    await this.c.deleteMachineSnapshots({ machineId });
  }

  async readySnapshot(machineId: string, generation: number) {
    const r = await this.c.listSnapshots({ machineId, hostId: '', state: SnapshotState.SNAPSHOT_STATE_READY });
    return r.snapshots.find((s) => s.generation === generation)?.id;
  }

  close(): void {
    this.c.close();
  }
}
