// The proxy's picture of every machine: state from the lifecycle events (N1, N2),
// url and service config from the scheduler (start-up list, then one GetMachine
// where an event says something changed). No HTTP, no NATS: fed by its callers.

export type AutostopMode = 'off' | 'stop' | 'suspend';

/** What the proxy knows of one machine. */
export interface MachineView {
  id: string;
  app: string;
  /** Lower-case state word as in the events: "started", "suspended", ... */
  state: string;
  /** Where the guest's HTTP app answers; '' when unknown (not routable). */
  url: string;
  autostart: boolean;
  autostop: AutostopMode;
  minRunning: number;
  /** Last per-machine event sequence applied (0: none yet). */
  sequence: number;
  /** An idle sweep is suspending/stopping it: route nothing new to it. */
  draining: boolean;
}

/** Details read from the scheduler (a Machine message, converted). */
export type MachineDetails = Pick<MachineView, 'id' | 'app' | 'state' | 'url' | 'autostart' | 'autostop' | 'minRunning'>;

/** The fields of a torpor.events.v1.Event that the table uses. */
export interface StateEvent {
  type: string;
  machineId: string;
  app: string;
  toState: string;
  sequence: number;
  resumed: boolean;
}

export type ChangeListener = (m: MachineView, previousState: string | undefined) => void;

/** Order in which machines are woken when none is started (L7: suspended first, then stopped). */
const WAKE_ORDER = ['suspending', 'suspended', 'stopped', 'created', 'failed'];

export class RoutingTable {
  private readonly machines = new Map<string, MachineView>();
  private readonly listeners: ChangeListener[] = [];

  onChange(fn: ChangeListener): void {
    this.listeners.push(fn);
  }

  /** The start-up read: replaces everything known. */
  load(list: MachineDetails[]): void {
    this.machines.clear();
    for (const d of list) {
      if (d.state === 'destroyed') continue;
      const m: MachineView = { ...d, sequence: 0, draining: false };
      this.machines.set(d.id, m);
      this.emit(m, undefined);
    }
  }

  /**
   * Applies one machine event. Answers whether the caller should fetch the machine's
   * details (unknown machine, a config change, or a start whose url may be new).
   */
  applyEvent(ev: StateEvent): { needsDetails: boolean } {
    let m = this.machines.get(ev.machineId);
    if (m && ev.sequence > 0 && ev.sequence <= m.sequence) return { needsDetails: false }; // replayed
    if (ev.toState === 'destroyed') {
      if (m) {
        this.machines.delete(m.id);
        const prev = m.state;
        m.state = 'destroyed';
        this.emit(m, prev);
      }
      return { needsDetails: false };
    }
    const isNew = !m;
    if (!m) {
      m = { id: ev.machineId, app: ev.app, state: ev.toState || 'created', url: '', autostart: false, autostop: 'off', minRunning: 0, sequence: 0, draining: false };
      this.machines.set(m.id, m);
    }
    if (ev.sequence > 0) m.sequence = ev.sequence;
    const prev = isNew ? undefined : m.state;
    const changed = !!ev.toState && ev.toState !== m.state;
    if (ev.toState) {
      m.state = ev.toState;
      m.draining = false; // whatever the sweep was doing has happened (or a start overtook it)
    }
    // A cold start may bring the guest up on another port: unroutable until the details come.
    if (ev.toState === 'started' && !ev.resumed) m.url = '';
    if (changed || isNew) this.emit(m, prev);
    const needsDetails = isNew || ev.type === 'machine.updated' || ev.type === 'machine.created' || ev.toState === 'started';
    return { needsDetails };
  }

  /**
   * Details from the scheduler. Its state is taken only for a machine the events have
   * not told about yet, or when `withState` (the answer of our own StartMachine).
   */
  setDetails(d: MachineDetails, withState = false): void {
    const m = this.machines.get(d.id);
    if (!m) {
      if (d.state === 'destroyed') return;
      const v: MachineView = { ...d, sequence: 0, draining: false };
      this.machines.set(d.id, v);
      this.emit(v, undefined);
      return;
    }
    const hadUrl = !!m.url;
    m.app = d.app;
    m.autostart = d.autostart;
    m.autostop = d.autostop;
    m.minRunning = d.minRunning;
    if (d.url) m.url = d.url;
    const prev = m.state;
    if (withState && d.state !== m.state) {
      m.state = d.state;
      m.draining = false;
    }
    if (prev !== m.state || hadUrl !== !!m.url) this.emit(m, prev);
  }

  get(id: string): MachineView | undefined {
    return this.machines.get(id);
  }

  all(): MachineView[] {
    return [...this.machines.values()];
  }

  byApp(app: string): MachineView[] {
    return this.all().filter((m) => m.app === app);
  }

  hasApp(app: string): boolean {
    for (const m of this.machines.values()) if (m.app === app) return true;
    return false;
  }

  /** Started machines with a known url that no sweep is taking down. */
  routable(app: string): MachineView[] {
    return this.byApp(app).filter((m) => m.state === 'started' && !!m.url && !m.draining);
  }

  /**
   * Machines that a request may wake, best first: one being taken down by a sweep
   * (the start cancels it), then suspending (L9), suspended, stopped, created, failed.
   * Only machines whose service has autostart.
   */
  wakeCandidates(app: string): MachineView[] {
    const rank = (m: MachineView) => (m.state === 'started' ? (m.draining ? 0 : -1) : WAKE_ORDER.indexOf(m.state) < 0 ? -1 : WAKE_ORDER.indexOf(m.state) + 1);
    return this.byApp(app)
      .filter((m) => m.autostart && rank(m) >= 0)
      .sort((a, b) => rank(a) - rank(b));
  }

  setDraining(id: string, draining: boolean): void {
    const m = this.machines.get(id);
    if (m) m.draining = draining;
  }

  private emit(m: MachineView, prev: string | undefined): void {
    for (const fn of this.listeners) fn(m, prev);
  }
}
