// Activity per machine (requests in flight, last activity, last wake-up) and the idle
// decisions of E1: which started machines to suspend or stop. Pure logic, clock injected.
import type { MachineView } from './routing-table';

export class IdleTracker {
  private readonly inFlightCount = new Map<string, number>();
  private readonly lastActive = new Map<string, number>();

  constructor(private readonly now: () => number = Date.now) {}

  begin(id: string): void {
    this.inFlightCount.set(id, this.inFlight(id) + 1);
    this.lastActive.set(id, this.now());
  }

  end(id: string): void {
    const n = this.inFlight(id) - 1;
    if (n > 0) this.inFlightCount.set(id, n);
    else this.inFlightCount.delete(id);
    this.lastActive.set(id, this.now());
  }

  /** A start (ours or anyone's) just woke it: its idle period begins again. */
  woken(id: string): void {
    this.lastActive.set(id, this.now());
  }

  inFlight(id: string): number {
    return this.inFlightCount.get(id) ?? 0;
  }

  /** When it was last busy; a machine never seen counts from now. */
  lastActivity(id: string): number {
    let t = this.lastActive.get(id);
    if (t === undefined) {
      t = this.now();
      this.lastActive.set(id, t);
    }
    return t;
  }

  forget(id: string): void {
    this.inFlightCount.delete(id);
    this.lastActive.delete(id);
  }
}

export interface IdleDecision {
  machineId: string;
  app: string;
  action: 'suspend' | 'stop';
  idleMs: number;
}

/**
 * E1: started machines with autostop, no request in flight, idle for at least idleMs
 * (a wake-up counts as activity), longest idle first, never taking an app below its
 * min_machines_running (the largest any of its machines asks for).
 */
export function idleDecisions(machines: MachineView[], tracker: IdleTracker, now: number, idleMs: number): IdleDecision[] {
  const apps = new Map<string, MachineView[]>();
  for (const m of machines) {
    if (m.state !== 'started' || m.draining) continue;
    const list = apps.get(m.app) ?? [];
    list.push(m);
    apps.set(m.app, list);
  }
  const out: IdleDecision[] = [];
  for (const [app, started] of apps) {
    const min = Math.max(0, ...started.map((m) => m.minRunning));
    let spare = started.length - min;
    if (spare <= 0) continue;
    const idle = started
      .filter((m) => m.autostop !== 'off' && tracker.inFlight(m.id) === 0)
      .map((m) => ({ m, idleMs: now - tracker.lastActivity(m.id) }))
      .filter((x) => x.idleMs >= idleMs)
      .sort((a, b) => b.idleMs - a.idleMs);
    for (const { m, idleMs: idleFor } of idle) {
      if (spare-- <= 0) break;
      out.push({ machineId: m.id, app, action: m.autostop === 'suspend' ? 'suspend' : 'stop', idleMs: idleFor });
    }
  }
  return out;
}
