// gRPC adapter of the snapshot registry: validates input, maps records to protos.
import { invalidArgument } from '../../../lib/errors';
import * as check from '../../../lib/validate';
import {
  Snapshot,
  SnapshotFiles,
  SnapshotsServer,
  SnapshotState,
} from '../../../gen/torpor/snapshots/v1/snapshots';
import type { AsyncService } from '../../../lib/grpc/server';
import { SnapshotRecord, SnapshotRegistry, SnapshotState as DomainState } from './snapshot-registry';

const STATE_TO_PROTO: Record<DomainState, SnapshotState> = {
  ready: SnapshotState.SNAPSHOT_STATE_READY,
  claimed: SnapshotState.SNAPSHOT_STATE_CLAIMED,
  consumed: SnapshotState.SNAPSHOT_STATE_CONSUMED,
  invalidated: SnapshotState.SNAPSHOT_STATE_INVALIDATED,
};

function stateFromProto(s: SnapshotState): DomainState | undefined {
  if (s === SnapshotState.SNAPSHOT_STATE_UNSPECIFIED) return undefined;
  const hit = (Object.entries(STATE_TO_PROTO) as [DomainState, SnapshotState][]).find(([, p]) => p === s);
  if (!hit) throw invalidArgument(`state ${s} is not a snapshot state`);
  return hit[0];
}

export function toProto(s: SnapshotRecord): Snapshot {
  return Snapshot.fromPartial({
    ...s,
    state: STATE_TO_PROTO[s.state],
    files: SnapshotFiles.fromPartial(s.files),
    createdAt: new Date(s.createdAt),
    updatedAt: new Date(s.updatedAt),
  });
}

function generation(v: number): number {
  if (!Number.isInteger(v) || v < 1) throw invalidArgument(`generation must be 1 or more, got ${v}`);
  return v;
}

function files(f: SnapshotFiles | undefined) {
  const v = check.required(f, 'files');
  if (!v.statePath || !v.memoryPath) throw invalidArgument('files.state_path and files.memory_path are required');
  if (!/^[0-9a-f]{64}$/.test(v.stateSha256)) throw invalidArgument('files.state_sha256 must be 64 lowercase hex characters');
  if (!v.memoryIdentity) throw invalidArgument('files.memory_identity is required');
  return { ...v };
}

export function snapshotsService(registry: SnapshotRegistry): AsyncService<SnapshotsServer> {
  return {
    async beginGeneration(req) {
      const invalidated = registry.beginGeneration(check.machineId(req.machineId, 'machine_id'), check.name(req.app, 'app'), generation(req.generation), check.text(req.reason, 'reason', 500));
      return { invalidated: invalidated.map(toProto) };
    },
    async registerSnapshot(req) {
      if (req.id) check.snapshotId(req.id, 'id');
      return toProto(
        registry.register({
          id: req.id || undefined,
          machineId: check.machineId(req.machineId, 'machine_id'),
          app: check.name(req.app, 'app'),
          hostId: check.name(req.hostId, 'host_id'),
          generation: generation(req.generation),
          instanceId: check.text(req.instanceId, 'instance_id', 64),
          files: files(req.files),
          sizeBytes: req.sizeBytes,
        }),
      );
    },
    async claimSnapshot(req) {
      const c = registry.claim({
        snapshotId: check.snapshotId(req.snapshotId),
        machineId: check.machineId(req.machineId, 'machine_id'),
        hostId: check.name(req.hostId, 'host_id'),
        generation: generation(req.generation),
      });
      return { claimId: c.claimId, snapshot: toProto(c.snapshot) };
    },
    async completeClaim(req) {
      if (!/^claim_[0-9a-f]{16}$/.test(req.claimId)) throw invalidArgument('claim_id must be "claim_" and 16 hex characters');
      return toProto(registry.completeClaim(req.claimId, req.success, check.text(req.reason, 'reason', 1000)));
    },
    async invalidateSnapshots(req) {
      const inv = registry.invalidateMachine(check.machineId(req.machineId, 'machine_id'), check.text(req.reason, 'reason', 1000) || 'invalidated');
      return { invalidated: inv.map(toProto) };
    },
    async deleteMachineSnapshots(req) {
      return { deleted: registry.deleteMachine(check.machineId(req.machineId, 'machine_id')) };
    },
    async getSnapshot(req) {
      return toProto(registry.get(check.snapshotId(req.id, 'id')));
    },
    async listSnapshots(req) {
      return {
        snapshots: registry
          .list({
            machineId: req.machineId ? check.machineId(req.machineId, 'machine_id') : undefined,
            hostId: req.hostId ? check.name(req.hostId, 'host_id') : undefined,
            state: stateFromProto(req.state),
          })
          .map(toProto),
      };
    },
  };
}
