// `machines wait`: one WaitMachine call (in chunks of the server's 300 s limit)
// with a GetMachine poll beside it that reports progress every second.
import { TorporError } from '../lib/errors';
import { Machine, MachineState, GetMachineRequest, WaitMachineRequest } from '../gen/torpor/machines/v1/machines';
import { stateName } from './states';

export interface WaitClient {
  waitMachine(req: WaitMachineRequest, opts?: { timeoutMs?: number }): Promise<Machine>;
  getMachine(req: GetMachineRequest, opts?: { timeoutMs?: number }): Promise<Machine>;
}

export interface WaitOptions {
  id: string;
  target: MachineState;
  timeoutSeconds: number;
  instanceId?: string;
  /** Called about once a second while waiting. */
  onProgress?: (line: string) => void;
  progressIntervalMs?: number;
}

/** Longest wait the scheduler accepts in one call (L2). */
export const MAX_WAIT_CHUNK_S = 300;

export function progressLine(id: string, target: MachineState, now: string, elapsedS: number): string {
  return `waiting for ${id} to be ${stateName(target)} (now: ${now}, ${elapsedS}s)`;
}

export async function waitForState(client: WaitClient, o: WaitOptions): Promise<Machine> {
  const started = Date.now();
  const deadline = started + o.timeoutSeconds * 1000;
  let now = '?';
  let polling = false;
  const timer = o.onProgress
    ? setInterval(async () => {
        if (polling) return;
        polling = true;
        try {
          const m = await client.getMachine({ id: o.id }, { timeoutMs: 2000 });
          now = stateName(m.state);
        } catch {
          /* the wait call reports real errors */
        } finally {
          polling = false;
        }
        o.onProgress!(progressLine(o.id, o.target, now, Math.round((Date.now() - started) / 1000)));
      }, o.progressIntervalMs ?? 1000)
    : undefined;
  try {
    for (;;) {
      const remainingS = Math.ceil((deadline - Date.now()) / 1000);
      const chunk = Math.max(1, Math.min(MAX_WAIT_CHUNK_S, remainingS));
      try {
        return await client.waitMachine(
          { id: o.id, state: o.target, timeoutSeconds: chunk, instanceId: o.instanceId ?? '' },
          { timeoutMs: chunk * 1000 + 5000 },
        );
      } catch (err) {
        if (!(err instanceof TorporError && err.kind === 'deadline_exceeded')) throw err;
        if (Date.now() < deadline - 500) continue;
        now = await client
          .getMachine({ id: o.id }, { timeoutMs: 2000 })
          .then((m) => stateName(m.state))
          .catch(() => now);
        throw new TorporError(
          'deadline_exceeded',
          `timed out after ${o.timeoutSeconds}s waiting for ${o.id} to be ${stateName(o.target)} (last seen: ${now})`,
        );
      }
    }
  } finally {
    if (timer) clearInterval(timer);
  }
}
