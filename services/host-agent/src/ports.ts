// What the agent needs from the snapshot-store (adapter: adapters/snapshot-store.ts).
import type { SnapshotFileSet } from './vmm/vmm';

export interface RegisteredSnapshot {
  id: string;
  sizeBytes: number;
  generation: number;
  state: string;
}

export interface SnapshotAuthority {
  register(s: { id: string; machineId: string; app: string; hostId: string; generation: number; instanceId: string; files: SnapshotFileSet }): Promise<RegisteredSnapshot>;
  /** Consume-once claim (S3), fenced by generation (S2) and host (S1); rejects with the reason. */
  claim(s: { snapshotId: string; machineId: string; hostId: string; generation: number }): Promise<{ claimId: string; files: SnapshotFileSet }>;
  complete(claimId: string, success: boolean, reason: string): Promise<void>;
  /** Snapshot state ("ready", "claimed", ...) or undefined when unknown. */
  stateOf(snapshotId: string): Promise<string | undefined>;
}
