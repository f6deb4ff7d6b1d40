// N4: turns machine lifecycle events into per-machine seconds in each billing state.
// Pure domain logic: events in, totals out; no NATS, no SQLite, no clock of its own.
//
// Rules
// - running: the machine is in starting, started, stopping or suspending.
// - stopped: created, stopped, suspended or failed. Suspended machines are billed
//   like stopped ones (N4).
// - replacing and destroying keep the billing state the machine was in before
//   (a started machine being replaced is still running; a suspended one being
//   destroyed is still stopped).
// - destroyed: nothing is billed after it.
// - The interval between two events of a machine is billed in the billing state
//   the first one left it in, using the events' own `time` (never the meter's clock);
//   a later event stamped before the previous one adds nothing (clamped at 0).
//
// Redelivery, order and gaps (per-machine `sequence`, from 1, gapless at the source)
// - sequence <= last applied: a redelivery or a late copy; ignored ('duplicate').
// - sequence == last + 1: applied ('applied').
// - sequence > last + 1: some events are missing (e.g. the stream was purged before
//   the meter first read it). The event is applied anyway, because each event carries
//   the full target state and its time; the missing interval is billed in the last
//   known billing state. Counted as a gap ('gap') so it shows in /usage and /metrics.
//   An event of the missing range that turns up later is older than the high-water
//   mark and therefore ignored: its time has already been billed.

export type BillingState = 'running' | 'stopped' | 'none';

const RUNNING = new Set(['starting', 'started', 'stopping', 'suspending']);
const STOPPED = new Set(['created', 'stopped', 'suspended', 'failed']);
const CARRY_OVER = new Set(['replacing', 'destroying']);

/** The billing state of a machine state word; undefined when it carries over the previous one. */
export function billingStateOf(state: string): BillingState | undefined {
  const s = normaliseState(state);
  if (RUNNING.has(s)) return 'running';
  if (STOPPED.has(s)) return 'stopped';
  if (s === 'destroyed') return 'none';
  if (CARRY_OVER.has(s)) return undefined;
  return undefined;
}

/** "MACHINE_STATE_SUSPENDED" or "Suspended" -> "suspended". */
export function normaliseState(state: string): string {
  return state.trim().toLowerCase().replace(/^machine_state_/, '');
}

/** What the accumulator needs of a torpor.events.v1.Event. */
export interface MachineEvent {
  machineId: string;
  app: string;
  sequence: number;
  /** Epoch milliseconds. */
  timeMs: number;
  fromState: string;
  toState: string;
  memoryMb?: number;
}

/** Accounting state of one machine; what is persisted between runs. */
export interface MachineAccount {
  machineId: string;
  app: string;
  /** Last known machine state ("suspended"). */
  state: string;
  billing: BillingState;
  /** Start of the open interval (epoch ms): the time of the last applied event. */
  sinceMs: number;
  lastSequence: number;
  runningMs: number;
  stoppedMs: number;
  /** Events applied after a hole in the sequence. */
  gaps: number;
  memoryMb: number;
}

export type Outcome = 'applied' | 'duplicate' | 'gap' | 'ignored';

export interface UsageRow {
  machine_id: string;
  app: string;
  state: string;
  billing_state: BillingState;
  memory_mb: number;
  seconds: { running: number; stopped: number };
  last_sequence: number;
  gaps: number;
}

export interface UsageReport {
  as_of: string;
  machines: UsageRow[];
  totals: { running: number; stopped: number };
}

export class UsageAccumulator {
  private readonly accounts = new Map<string, MachineAccount>();

  constructor(initial: Iterable<MachineAccount> = []) {
    for (const a of initial) this.accounts.set(a.machineId, { ...a });
  }

  get(machineId: string): MachineAccount | undefined {
    const a = this.accounts.get(machineId);
    return a && { ...a };
  }

  all(): MachineAccount[] {
    return [...this.accounts.values()].map((a) => ({ ...a }));
  }

  /**
   * Applies one event. Returns the outcome and, unless it was a duplicate or
   * ignored, the machine's new account (the row to persist).
   */
  apply(ev: MachineEvent): { outcome: Outcome; account?: MachineAccount } {
    if (!ev.machineId || !Number.isSafeInteger(ev.sequence) || ev.sequence < 1 || !Number.isFinite(ev.timeMs)) {
      return { outcome: 'ignored' };
    }
    const prev = this.accounts.get(ev.machineId);
    if (prev && ev.sequence <= prev.lastSequence) return { outcome: 'duplicate' };

    const expected = (prev?.lastSequence ?? 0) + 1;
    const outcome: Outcome = ev.sequence === expected ? 'applied' : 'gap';
    const acc: MachineAccount = prev
      ? { ...prev }
      : {
          machineId: ev.machineId,
          app: ev.app,
          state: '',
          billing: 'none',
          sinceMs: ev.timeMs,
          lastSequence: 0,
          runningMs: 0,
          stoppedMs: 0,
          gaps: 0,
          memoryMb: 0,
        };

    // Close the open interval in the billing state the machine was in.
    const elapsed = Math.max(0, ev.timeMs - acc.sinceMs);
    if (acc.billing === 'running') acc.runningMs += elapsed;
    else if (acc.billing === 'stopped') acc.stoppedMs += elapsed;

    const to = normaliseState(ev.toState);
    if (to) {
      acc.state = to;
      const b = billingStateOf(to);
      if (b !== undefined) acc.billing = b;
      else if (!prev) acc.billing = billingStateOf(ev.fromState) ?? 'none';
    }
    if (ev.app) acc.app = ev.app;
    if (ev.memoryMb) acc.memoryMb = ev.memoryMb;
    acc.sinceMs = Math.max(acc.sinceMs, ev.timeMs);
    acc.lastSequence = ev.sequence;
    if (outcome === 'gap') acc.gaps++;

    this.accounts.set(acc.machineId, acc);
    return { outcome, account: { ...acc } };
  }

  /** Totals in seconds, counting each machine's open interval up to `nowMs`. */
  report(nowMs: number): UsageReport {
    const machines = [...this.accounts.values()]
      .map((a): UsageRow => {
        const open = Math.max(0, nowMs - a.sinceMs);
        const running = a.runningMs + (a.billing === 'running' ? open : 0);
        const stopped = a.stoppedMs + (a.billing === 'stopped' ? open : 0);
        return {
          machine_id: a.machineId,
          app: a.app,
          state: a.state,
          billing_state: a.billing,
          memory_mb: a.memoryMb,
          seconds: { running: seconds(running), stopped: seconds(stopped) },
          last_sequence: a.lastSequence,
          gaps: a.gaps,
        };
      })
      .sort((x, y) => x.app.localeCompare(y.app) || x.machine_id.localeCompare(y.machine_id));
    const totals = machines.reduce(
      (t, m) => ({ running: t.running + m.seconds.running, stopped: t.stopped + m.seconds.stopped }),
      { running: 0, stopped: 0 },
    );
    return {
      as_of: new Date(nowMs).toISOString(),
      machines,
      totals: { running: seconds(totals.running * 1000), stopped: seconds(totals.stopped * 1000) },
    };
  }
}

/** Milliseconds to seconds with millisecond precision. */
const seconds = (ms: number) => Math.round(ms) / 1000;
