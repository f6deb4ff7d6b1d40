// SnapshotAuthority over the snapshot-store's gRPC API.
import { SnapshotFiles, SnapshotsClient, SnapshotState } from '../../../../gen/torpor/snapshots/v1/snapshots';
import { isKind } from '../../../../lib/errors';
import { AsyncClient, asyncClient } from '../../../../lib/grpc/client';
import type { SnapshotAuthority } from '../ports';
import type { SnapshotFileSet } from '../vmm/vmm';

const STATE_NAMES: Partial<Record<SnapshotState, string>> = {
  [SnapshotState.SNAPSHOT_STATE_READY]: 'ready',
  [SnapshotState.SNAPSHOT_STATE_CLAIMED]: 'claimed',
  [SnapshotState.SNAPSHOT_STATE_CONSUMED]: 'consumed',
  [SnapshotState.SNAPSHOT_STATE_INVALIDATED]: 'invalidated',
};

export class GrpcSnapshotAuthority implements SnapshotAuthority {
  private readonly c: AsyncClient<SnapshotsClient>;

  constructor(address: string) {
    this.c = asyncClient(SnapshotsClient, address, 10_000);
  }

  async register(s: Parameters<SnapshotAuthority['register']>[0]) {
    const { sizeBytes, ...files } = s.files;
    const r = await this.c.registerSnapshot({ ...s, files: SnapshotFiles.fromPartial(files), sizeBytes });
    return { id: r.id, sizeBytes: r.sizeBytes, generation: r.generation, state: STATE_NAMES[r.state] ?? 'unknown' };
  }

  async claim(s: Parameters<SnapshotAuthority['claim']>[0]) {
    const r = await this.c.claimSnapshot(s);
    const snap = r.snapshot!;
    const files: SnapshotFileSet = { ...snap.files!, sizeBytes: snap.sizeBytes };
    return { claimId: r.claimId, files };
  }

  async complete(claimId: string, success: boolean, reason: string) {
    await this.c.completeClaim({ claimId, success, reason: reason.slice(0, 1000) });
  }

  async stateOf(snapshotId: string) {
    try {
      return STATE_NAMES[(await this.c.getSnapshot({ id: snapshotId })).state];
    } catch (err) {
      if (isKind(err, 'not_found') || isKind(err, 'invalid_argument')) return undefined;
      throw err;
    }
  }

  close(): void {
    this.c.close();
  }
}
