// What the lifecycle needs from the outside world; adapters/ implements these over gRPC,
// tests can implement them in memory.
import type { VmIdentity, VmSpec } from '../../../gen/torpor/hostagent/v1/hostagent';

export interface HostAgentPort {
  boot(address: string, vm: VmIdentity, spec: VmSpec): Promise<{ url: string; tookMs: number }>;
  /** Rejects with kind 'cancelled' when the signal aborted it before the snapshot was written (L9). */
  suspend(address: string, vm: VmIdentity, signal: AbortSignal): Promise<{ snapshotId: string; sizeBytes: number; tookMs: number }>;
  /** Rejects (any kind) when it cannot resume; the message says why (L3). */
  resume(address: string, vm: VmIdentity, spec: VmSpec, snapshotId: string): Promise<{ url: string; tookMs: number }>;
  /** Resolves with the time the agent spent. */
  stop(address: string, machineId: string): Promise<{ tookMs: number }>;
  destroy(address: string, machineId: string): Promise<{ tookMs: number }>;
  running(address: string, machineId: string): Promise<boolean>;
}

export interface SnapshotPort {
  beginGeneration(machineId: string, app: string, generation: number, reason: string): Promise<void>;
  invalidate(machineId: string, reason: string): Promise<void>;
  deleteMachine(machineId: string): Promise<void>;
  /** Id of the machine's ready snapshot of this generation, if any (for recovery). */
  readySnapshot(machineId: string, generation: number): Promise<string | undefined>;
}
