// Runs the idle decisions (E1): suspends, or stops where the scheduler refuses a
// suspend (R1-R6) or autostop is "stop". A machine being taken down is marked
// draining so no new request is routed to it; a wake-up waits for the operation.
import type { IdleDecision, IdleTracker } from './idle-tracker';
import { idleDecisions } from './idle-tracker';
import type { SchedulerPort } from './ports';
import type { RoutingTable } from './routing-table';

export interface SweepHooks {
  onAction?(action: 'suspend' | 'stop', outcome: 'ok' | 'refused' | 'error', d: IdleDecision, reason?: string): void;
}

export class IdleSweeper {
  private readonly pendingOps = new Map<string, Promise<void>>();

  constructor(
    private readonly table: RoutingTable,
    private readonly tracker: IdleTracker,
    private readonly scheduler: Pick<SchedulerPort, 'suspend' | 'stop'>,
    private readonly idleMs: number,
    private readonly hooks: SweepHooks = {},
    private readonly now: () => number = Date.now,
  ) {}

  /** The sweep operation in progress on a machine, if any. */
  pending(id: string): Promise<void> | undefined {
    return this.pendingOps.get(id);
  }

  /** One sweep: decides synchronously (and marks draining), then runs the operations. */
  async sweep(): Promise<IdleDecision[]> {
    const decisions = idleDecisions(this.table.all(), this.tracker, this.now(), this.idleMs);
    const ops: Promise<void>[] = [];
    for (const d of decisions) {
      this.table.setDraining(d.machineId, true);
      const op = this.run(d).finally(() => this.pendingOps.delete(d.machineId));
      this.pendingOps.set(d.machineId, op);
      ops.push(op);
    }
    await Promise.all(ops);
    return decisions;
  }

  private async run(d: IdleDecision): Promise<void> {
    if (d.action === 'suspend') {
      try {
        await this.scheduler.suspend(d.machineId);
        this.hooks.onAction?.('suspend', 'ok', d);
        return;
      } catch (err) {
        const e = err as { kind?: string; message?: string };
        if (e.kind !== 'failed_precondition' || !/cannot be suspended|\bR[1-6]\b/.test(e.message ?? '')) {
          this.table.setDraining(d.machineId, false);
          this.hooks.onAction?.('suspend', 'error', d, e.message);
          return;
        }
        // E1: a machine that may not be suspended (R1-R6) is stopped instead.
        this.hooks.onAction?.('suspend', 'refused', d, e.message);
        d = { ...d, action: 'stop' };
      }
    }
    try {
      await this.scheduler.stop(d.machineId);
      this.hooks.onAction?.('stop', 'ok', d);
    } catch (err) {
      this.table.setDraining(d.machineId, false);
      this.hooks.onAction?.('stop', 'error', d, (err as Error).message);
    }
  }
}
