// R1–R6: whether a machine may be suspended, checked before a suspend begins.
// Pure: returns the reasons it may not, each telling the user what to do.
import type { MachineConfig } from '../../../../gen/torpor/machines/v1/machines';

export interface SuspendPolicy {
  /** R1 */
  maxMemoryMb: number;
  /** R5: platform version that began to support suspend. */
  suspendSinceVersion: number;
  /** R6: regions where suspend is enabled; empty means all. */
  regions: readonly string[];
}

export function suspendRefusals(
  m: { config: MachineConfig; platformVersion: number; region: string },
  policy: SuspendPolicy,
): string[] {
  const out: string[] = [];
  const guest = m.config.guest;
  if ((guest?.memoryMb ?? 0) > policy.maxMemoryMb)
    out.push(`R1: it has ${guest?.memoryMb} MiB of memory; at most ${policy.maxMemoryMb} MiB can be suspended (update it with less memory)`);
  if (m.config.swapSizeMb > 0) out.push(`R2: it has ${m.config.swapSizeMb} MiB of swap; machines with swap cannot be suspended (update it with swap 0)`);
  if (m.config.schedule) out.push(`R3: it has a schedule ("${m.config.schedule}"); scheduled machines cannot be suspended`);
  if ((guest?.gpus ?? 0) > 0) out.push(`R4: it has ${guest?.gpus} GPU(s); machines with GPUs cannot be suspended`);
  if (m.platformVersion < policy.suspendSinceVersion)
    out.push(
      `R5: it was last updated under platform version ${m.platformVersion}, before suspend was supported (version ${policy.suspendSinceVersion}); run \`torpor machines update <id>\` (UpdateMachine) once, then suspend`,
    );
  if (policy.regions.length && !policy.regions.includes(m.region))
    out.push(`R6: suspend is not enabled in region ${m.region} (enabled in: ${policy.regions.join(', ')})`);
  return out;
}
