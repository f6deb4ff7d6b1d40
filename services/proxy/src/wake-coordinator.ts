// L7: when a request finds no started machine of its app, one machine is woken —
// a suspended one first, then a stopped one — and the request is held until it
// answers or the hold deadline passes. Concurrent requests share the one wake-up
// per app (one resume, not fifty). Plain TypeScript: the scheduler is a port.
import type { SchedulerPort, StartOutcome } from './ports';
import type { MachineView, RoutingTable } from './routing-table';

export type WakeKind = 'resume' | 'cold_start' | 'already_started';

/** A request that cannot be served: the status and the reason to show. */
export class WakeError extends Error {
  constructor(
    readonly status: 404 | 502 | 503,
    message: string,
  ) {
    super(message);
  }
}

export interface WakeHooks {
  /** A machine was started for a request (or found started by a concurrent start). */
  onWake?(app: string, machineId: string, kind: WakeKind, tookMs: number): void;
  onWakeFailed?(app: string, reason: string): void;
}

interface Waiter {
  resolve(m: MachineView): void;
}

interface Wake {
  promise: Promise<MachineView>;
  waiters: Set<Waiter>;
}

export class WakeCoordinator {
  private readonly wakes = new Map<string, Wake>();
  /** Requests waiting for an app to have a routable machine. */
  private readonly waiting = new Map<string, Set<Waiter>>();
  private readonly changeWaiters = new Map<string, Set<() => void>>();

  constructor(
    private readonly table: RoutingTable,
    private readonly scheduler: Pick<SchedulerPort, 'start' | 'get'>,
    private readonly opts: {
      /** An idle-sweep operation in progress on a machine, to let finish first. */
      pendingOp?: (machineId: string) => Promise<unknown> | undefined;
      hooks?: WakeHooks;
      now?: () => number;
    } = {},
  ) {
    // Someone else's start (or the event of ours) may make the app routable first.
    table.onChange((m) => {
      for (const fn of [...(this.changeWaiters.get(m.app) ?? [])]) fn();
      if (m.state === 'started' && m.url && !m.draining) this.release(m.app);
    });
  }

  /** Wake-ups in progress (for tests and metrics). */
  inProgress(): string[] {
    return [...this.wakes.keys()];
  }

  /**
   * A routable machine of the app: at once if one is started, else after a wake-up.
   * Rejects with WakeError(404) for an unknown app, (503) with a reason when nothing
   * could be started within holdMs.
   */
  async acquire(app: string, holdMs: number): Promise<MachineView> {
    const ready = this.table.routable(app);
    if (ready.length) return ready[0];
    if (!this.table.hasApp(app)) throw new WakeError(404, `unknown app "${app}": no machine of that app exists`);
    const deadlineAt = this.now() + holdMs;
    let wake = this.wakes.get(app);
    if (!wake) {
      const p = this.runWake(app, deadlineAt);
      wake = { promise: p, waiters: new Set() };
      this.wakes.set(app, wake);
      const w = wake;
      p.catch(() => {}).finally(() => this.wakes.get(app) === w && this.wakes.delete(app));
    }
    return new Promise<MachineView>((resolve, reject) => {
      let done = false;
      const set = this.waiting.get(app) ?? new Set<Waiter>();
      this.waiting.set(app, set);
      const finish = (fn: () => void) => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        set.delete(waiter);
        if (!set.size && this.waiting.get(app) === set) this.waiting.delete(app);
        fn();
      };
      const waiter: Waiter = { resolve: (m) => finish(() => resolve(m)) };
      set.add(waiter);
      const timer = setTimeout(
        () => finish(() => reject(new WakeError(503, `app "${app}": no machine answered within ${(holdMs / 1000).toFixed(1)} s (${this.describe(app)})`))),
        Math.max(0, deadlineAt - this.now()),
      );
      wake!.promise.then(
        (m) => finish(() => resolve(m)),
        (err) => finish(() => reject(err instanceof WakeError ? err : new WakeError(503, String(err?.message ?? err)))),
      );
    });
  }

  /** Resolves at the next change of one of the app's machines, or after ms. */
  private changed(app: string, ms: number): Promise<void> {
    return new Promise((resolve) => {
      const set = this.changeWaiters.get(app) ?? new Set<() => void>();
      this.changeWaiters.set(app, set);
      const done = () => {
        clearTimeout(timer);
        set.delete(done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      set.add(done);
    });
  }

  private release(app: string): void {
    const set = this.waiting.get(app);
    if (!set) return;
    const ready = this.table.routable(app);
    if (!ready.length) return;
    for (const w of [...set]) w.resolve(ready[0]);
  }

  private async runWake(app: string, deadlineAt: number): Promise<MachineView> {
    const tried = new Set<string>();
    const failures: string[] = [];
    for (;;) {
      const ready = this.table.routable(app);
      if (ready.length) return ready[0];
      const left = deadlineAt - this.now();
      if (left <= 0) break;
      const cand = this.table.wakeCandidates(app).find((m) => !tried.has(m.id));
      if (!cand) {
        // A machine being started by someone else: the table will tell when it is up.
        if (this.table.byApp(app).some((m) => m.state === 'starting' || (m.state === 'started' && !m.draining))) {
          await this.changed(app, left);
          continue;
        }
        break;
      }
      tried.add(cand.id);
      const fromState = cand.state;
      const t0 = this.now();
      try {
        await this.opts.pendingOp?.(cand.id);
        const out = await this.startOne(cand.id, deadlineAt - this.now());
        const m = this.table.get(cand.id);
        if (out.machine.url) {
          this.table.setDetails(out.machine, true);
          const kind: WakeKind = out.resumed ? 'resume' : out.previousState === 'started' ? 'already_started' : 'cold_start';
          this.opts.hooks?.onWake?.(app, cand.id, kind, this.now() - t0);
          const view = this.table.get(cand.id) ?? m;
          if (view) return view;
        }
        failures.push(`machine ${cand.id} started without a url`);
      } catch (err) {
        const msg = (err as Error).message ?? String(err);
        failures.push(`machine ${cand.id} (${fromState}) could not be started: ${msg}`);
      }
    }
    const reason = failures.length
      ? `app "${app}": ${failures.join('; ')}`
      : `app "${app}": no machine can be started (${this.describe(app)}; a machine needs a service with autostart)`;
    this.opts.hooks?.onWakeFailed?.(app, reason);
    throw new WakeError(503, reason);
  }

  /** StartMachine; "already started" (a concurrent start won) counts as success. */
  private async startOne(id: string, timeoutMs: number): Promise<StartOutcome> {
    try {
      return await this.scheduler.start(id, Math.max(1, timeoutMs));
    } catch (err) {
      if ((err as { kind?: string }).kind !== 'failed_precondition') throw err;
      const m = await this.scheduler.get(id);
      if (m.state !== 'started') throw err;
      return { machine: m, previousState: 'started', resumed: false, reason: '' };
    }
  }

  private describe(app: string): string {
    const ms = this.table.byApp(app);
    if (!ms.length) return 'no machines';
    return ms.map((m) => `${m.id} ${m.state}${m.autostart ? '' : ' (no autostart)'}`).join(', ');
  }

  private now(): number {
    return (this.opts.now ?? Date.now)();
  }
}
