// What the proxy needs from the scheduler, as plain TypeScript (the gRPC adapter is
// in scheduler-port.ts; tests use fakes).
import type { MachineDetails } from './routing-table';

export interface StartOutcome {
  machine: MachineDetails;
  /** Lower-case state word before the start ("suspended", "stopped", ...). */
  previousState: string;
  resumed: boolean;
  reason: string;
}

/** An error from the scheduler: kind as in lib/errors ('failed_precondition', ...). */
export interface PortError extends Error {
  kind?: string;
}

export interface SchedulerPort {
  list(): Promise<MachineDetails[]>;
  get(id: string): Promise<MachineDetails>;
  start(id: string, timeoutMs: number): Promise<StartOutcome>;
  suspend(id: string): Promise<MachineDetails>;
  stop(id: string): Promise<MachineDetails>;
}
