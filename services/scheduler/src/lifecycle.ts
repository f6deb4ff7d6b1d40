// The lifecycle orchestrator: create, start (resume or cold start), stop, suspend,
// update, destroy, wait. Operations on one machine are serialised (L8); every state
// change goes through MachineStore.transition with its event. No gRPC or NATS here:
// host agents and the snapshot-store are reached through ports.
import type { MachineConfig } from '../../../gen/torpor/machines/v1/machines';
import type { VmIdentity, VmSpec } from '../../../gen/torpor/hostagent/v1/hostagent';
import { deadlineExceeded, failedPrecondition, invalidArgument, isKind, TorporError } from '../../../lib/errors';
import { newInstanceId, newMachineId } from '../../../lib/ids';
import type { Logger } from '../../../lib/log';
import { KeyedLock } from '../../../lib/keyed-lock';
import { chooseHost, imageNotBuilt } from './domain/placement';
import { assertOperation, State, WAIT_TARGETS } from './domain/states';
import { SuspendPolicy, suspendRefusals } from './domain/suspend-rules';
import type { HostAgentPort, SnapshotPort } from './ports';
import type { MachineRecord, MachineStore } from './store/machine-store';

export interface LifecycleOptions {
  platformVersion: number;
  suspendPolicy: SuspendPolicy;
  /** A host that has not registered for this long is unavailable. */
  hostTimeoutMs: number;
}

export interface StartResult {
  machine: MachineRecord;
  previousState: State;
  resumed: boolean;
  reason: string;
}

export class MachineLifecycle {
  private readonly lock = new KeyedLock();
  /** In-flight suspends, so a start can cancel one (L9). */
  private readonly suspends = new Map<string, AbortController>();

  constructor(
    private readonly store: MachineStore,
    private readonly hosts: HostAgentPort,
    private readonly snapshots: SnapshotPort,
    private readonly opts: LifecycleOptions,
    private readonly log: Logger,
    private readonly now: () => number = Date.now,
  ) {}

  async create(input: { app: string; name: string; region: string; config: MachineConfig; skipStart: boolean }): Promise<MachineRecord> {
    const name = input.name || `${input.app}-${newMachineId().slice(0, 6)}`;
    if (this.store.nameTaken(input.app, name)) throw failedPrecondition(`app ${input.app} already has a machine named ${name}; pick another name`);
    const host = chooseHost(this.store.hostViews(this.aliveSince()), input.region, input.config.guest!.memoryMb, input.config.image);
    const m = this.store.insert({
      id: newMachineId(),
      name,
      app: input.app,
      region: input.region,
      hostId: host.hostId,
      state: 'created',
      config: input.config,
      instanceId: newInstanceId(),
      generation: 0,
      url: '',
      platformVersion: this.opts.platformVersion,
      lastStart: null,
      snapshotId: '',
    });
    if (input.skipStart) return m;
    return (await this.start(m.id)).machine;
  }

  get(id: string): MachineRecord {
    return this.store.get(id);
  }

  list(filter: { app?: string; state?: State }): MachineRecord[] {
    return this.store.list(filter);
  }

  /** L3, L9, L10: resumes a suspended machine or cold-starts; cancels an in-flight suspend. */
  async start(id: string): Promise<StartResult> {
    const arrival = this.store.get(id).state;
    this.suspends.get(id)?.abort();
    return this.lock.run(id, async () => {
      const t0 = this.now();
      const m = this.store.get(id);
      if (m.state === 'started' && (arrival === 'suspending' || arrival === 'starting')) {
        // The suspend we cancelled (or a concurrent start) already left it running (L8, L9).
        return { machine: m, previousState: arrival, resumed: false, reason: m.lastStart?.reason ?? '' };
      }
      assertOperation(id, 'start', m.state);
      const previousState = arrival === 'suspending' ? 'suspending' : m.state;
      if (m.state === 'suspended') return this.resumeOrColdStart(m, previousState, t0);
      const starting = this.store.transition(id, m.state, 'starting', { hostId: this.placeForStart(m) });
      const r = await this.coldStart(starting, '', t0);
      return { machine: r, previousState, resumed: false, reason: '' };
    });
  }

  /** L1, R1–R6: checks, moves to suspending, answers; the snapshot is written in the background. */
  async suspend(id: string): Promise<MachineRecord> {
    return this.lock.run(id, async () => {
      const m = this.store.get(id);
      assertOperation(id, 'suspend', m.state);
      const refusals = suspendRefusals(m, this.opts.suspendPolicy);
      if (refusals.length) throw failedPrecondition(`machine ${id} cannot be suspended: ${refusals.join('; ')}`);
      const suspending = this.store.transition(id, 'started', 'suspending');
      const abort = new AbortController();
      this.suspends.set(id, abort);
      // Queued now, so it runs before any operation that arrives after this answer.
      this.lock
        .run(id, () => this.finishSuspend(id, abort.signal))
        .catch((err) => void this.markFailed(id, 'suspending', err))
        .finally(() => this.suspends.delete(id));
      return suspending;
    });
  }

  /** L4: a suspended machine's snapshot is thrown away; a started one is shut down. */
  async stop(id: string): Promise<MachineRecord> {
    return this.lock.run(id, async () => {
      const m = this.store.get(id);
      assertOperation(id, 'stop', m.state);
      const stopping = this.store.transition(id, m.state, 'stopping');
      // Independent, so at once: the store's verdict makes the snapshot unusable even
      // while the agent is still deleting its files.
      const [, host] = await Promise.all([
        m.state === 'suspended' ? this.snapshots.invalidate(id, 'machine stopped: its next start is a cold start (L4)') : undefined,
        this.stopOnHost(stopping),
      ]).catch((err) => {
        throw this.markFailed(id, 'stopping', err);
      });
      return this.store.transition(id, 'stopping', 'stopped', { url: '', snapshotId: '' }, { hostMs: host.tookMs });
    });
  }

  /** L5: a new config and instance; a started or suspended machine is cold-started with it. */
  async update(id: string, config: MachineConfig): Promise<MachineRecord> {
    return this.lock.run(id, async () => {
      const t0 = this.now();
      const m = this.store.get(id);
      assertOperation(id, 'update', m.state);
      this.assertImageAvailable(m.region, config.image);
      const patch = { config, instanceId: newInstanceId(), platformVersion: this.opts.platformVersion };
      if (m.state !== 'started' && m.state !== 'suspended') return this.store.transition(id, m.state, m.state, patch);
      const replacing = this.store.transition(id, m.state, 'replacing', patch);
      await Promise.all([
        m.state === 'suspended' ? this.snapshots.invalidate(id, 'machine updated: suspended machines are cold-started with the new config (L5)') : undefined,
        this.stopOnHost(replacing),
      ]).catch((err) => {
        throw this.markFailed(id, 'replacing', err);
      });
      let hostId = '';
      try {
        hostId = this.placeForStart(replacing);
      } catch (err) {
        throw this.markFailed(id, 'replacing', err);
      }
      const starting = this.store.transition(id, 'replacing', 'starting', { hostId, url: '', snapshotId: '' });
      return this.coldStart(starting, '', t0);
    });
  }

  /** L6, L10: removes the VM and every snapshot; a started machine only with force. */
  async destroy(id: string, force: boolean): Promise<MachineRecord> {
    return this.lock.run(id, async () => {
      const m = this.store.get(id);
      assertOperation(id, force ? 'force-destroy' : 'destroy', m.state);
      const address = this.store.host(m.hostId)?.address;
      const [host] = await Promise.all([address ? this.hosts.destroy(address, id) : { tookMs: 0 }, this.snapshots.deleteMachine(id)]);
      return this.store.transition(id, m.state, 'destroyed', { url: '', snapshotId: '' }, { hostMs: host.tookMs, reason: force && m.state === 'started' ? 'destroyed with force' : '' });
    });
  }

  /** L2: resolves when the machine is in `target` (and instance), or DEADLINE_EXCEEDED. */
  wait(id: string, target: State, timeoutMs: number, instanceId: string, signal?: AbortSignal): Promise<MachineRecord> {
    if (!WAIT_TARGETS.includes(target)) throw invalidArgument(`cannot wait for state "${target}": use one of ${WAIT_TARGETS.join(', ')}`);
    const matches = (m: MachineRecord) => m.state === target && (!instanceId || m.instanceId === instanceId);
    const first = this.store.get(id);
    if (matches(first)) return Promise.resolve(first);
    return new Promise((resolve, reject) => {
      const done = (fn: () => void) => {
        clearTimeout(timer);
        off();
        signal?.removeEventListener('abort', onAbort);
        fn();
      };
      const off = this.store.onChange((m) => m.id === id && matches(m) && done(() => resolve(m)));
      const onAbort = () => done(() => reject(new TorporError('cancelled', 'the caller cancelled the wait')));
      signal?.addEventListener('abort', onAbort);
      const timer = setTimeout(() => {
        const m = this.store.get(id);
        done(() => reject(deadlineExceeded(`machine ${id} is still ${m.state} after ${Math.round(timeoutMs / 1000)} s (waited for ${target}${instanceId ? `, instance ${instanceId}` : ''})`)));
      }, timeoutMs);
    });
  }

  /** After a scheduler restart: finish or roll back what a crash left half-done (L8). */
  async recover(): Promise<void> {
    for (const m of this.store.inStates(['starting', 'stopping', 'suspending', 'replacing', 'destroying'])) {
      await this.lock.run(m.id, async () => {
        const address = this.store.host(m.hostId)?.address;
        const running = address ? await this.hosts.running(address, m.id).catch(() => false) : false;
        if (m.state === 'suspending') {
          const snap = await this.snapshots.readySnapshot(m.id, m.generation).catch(() => undefined);
          if (snap && !running) this.store.transition(m.id, 'suspending', 'suspended', { snapshotId: snap }, { reason: 'completed after a scheduler restart' });
          else if (running) this.store.transition(m.id, 'suspending', 'started', {}, { reason: 'suspend interrupted by a scheduler restart' });
          else this.store.transition(m.id, 'suspending', 'failed', { url: '' }, { reason: 'suspend interrupted by a scheduler restart; the VM is gone' });
        } else if (m.state === 'starting') {
          if (running) this.store.transition(m.id, 'starting', 'started', {}, { reason: 'completed after a scheduler restart' });
          else this.store.transition(m.id, 'starting', 'failed', { url: '' }, { reason: 'start interrupted by a scheduler restart' });
        } else if (m.state === 'stopping' || m.state === 'replacing') {
          if (address) await this.hosts.stop(address, m.id).catch(() => {});
          this.store.transition(m.id, m.state, 'stopped', { url: '', snapshotId: '' }, { reason: `${m.state} interrupted by a scheduler restart` });
        }
        this.log.info({ machine: m.id, was: m.state, now: this.store.get(m.id).state }, 'recovered machine');
      });
    }
  }

  private async finishSuspend(id: string, signal: AbortSignal): Promise<void> {
    const m = this.store.get(id);
    if (m.state !== 'suspending') return;
    if (signal.aborted) {
      this.store.transition(id, 'suspending', 'started', {}, { reason: 'suspend cancelled by a start (L9)' });
      return;
    }
    try {
      const r = await this.hosts.suspend(this.address(m), this.identity(m), signal);
      this.store.transition(id, 'suspending', 'suspended', { snapshotId: r.snapshotId, url: m.url }, { snapshotId: r.snapshotId, snapshotBytes: r.sizeBytes, hostMs: r.tookMs });
    } catch (err) {
      // A cancelled call only tells us we stopped waiting: the agent may have written the
      // snapshot anyway. Ask it (the answer waits for its own operation to end) and the store.
      const cancelled = isKind(err, 'cancelled') || signal.aborted;
      const running = await this.hosts.running(this.address(m), id).catch(() => false);
      const snapshotId = running ? undefined : await this.snapshots.readySnapshot(id, m.generation).catch(() => undefined);
      const reason = cancelled ? 'suspend cancelled by a start (L9)' : `suspend failed: ${(err as Error).message}`;
      if (running) this.store.transition(id, 'suspending', 'started', {}, { reason });
      else if (snapshotId) this.store.transition(id, 'suspending', 'suspended', { snapshotId }, { snapshotId, reason: 'the snapshot was written before the cancel reached the host' });
      else this.store.transition(id, 'suspending', 'failed', { url: '' }, { reason });
      if (!cancelled) this.log.warn({ machine: id, err: (err as Error).message }, 'suspend failed');
    }
  }

  private async resumeOrColdStart(m: MachineRecord, previousState: State, t0: number): Promise<StartResult> {
    const host = this.store.host(m.hostId);
    const hostUp = !!host && host.lastSeen >= this.aliveSince();
    if (!hostUp) {
      // S1: the snapshot stays on a host we cannot reach; move and cold-start.
      const reason = `host ${m.hostId} is unavailable; moved to another host and cold-started (S1)`;
      await this.snapshots.invalidate(m.id, reason);
      const starting = this.store.transition(m.id, 'suspended', 'starting', { hostId: this.placeForStart(m, [m.hostId]), snapshotId: '' });
      return { machine: await this.coldStart(starting, reason, t0), previousState, resumed: false, reason };
    }
    const starting = this.store.transition(m.id, 'suspended', 'starting');
    if (!m.snapshotId) {
      const reason = 'no snapshot recorded for this machine';
      return { machine: await this.coldStart(starting, reason, t0), previousState, resumed: false, reason };
    }
    try {
      const r = await this.hosts.resume(host.address, this.identity(starting), this.spec(starting), m.snapshotId);
      const lastStart = { resumed: true, reason: '', hostMs: r.tookMs, totalMs: this.now() - t0 };
      const started = this.store.transition(m.id, 'starting', 'started', { url: r.url, snapshotId: '', lastStart }, { resumed: true, snapshotId: m.snapshotId, hostMs: r.tookMs, totalMs: lastStart.totalMs });
      return { machine: started, previousState, resumed: true, reason: '' };
    } catch (err) {
      const reason = `could not resume from snapshot ${m.snapshotId}: ${(err as Error).message}`;
      this.log.warn({ machine: m.id, reason }, 'resume failed; cold-starting (L3)');
      return { machine: await this.coldStart(this.store.get(m.id), reason, t0), previousState, resumed: false, reason };
    }
  }

  /**
   * S2: a cold start begins a new generation, which invalidates every older snapshot.
   * The store learns of it while the VM boots (the agent deletes the machine's local
   * snapshots before booting, and this machine's operations are serialised, so no old
   * snapshot can be loaded meanwhile); the machine is started only once both are done.
   */
  private async coldStart(m: MachineRecord, reason: string, t0: number): Promise<MachineRecord> {
    const generation = m.generation + 1;
    const fail = (err: Error): never => {
      this.store.transition(m.id, 'starting', 'failed', { generation, url: '', snapshotId: '', lastStart: { resumed: false, reason: err.message, hostMs: 0, totalMs: this.now() - t0 } }, { reason: err.message, generation });
      if (err instanceof TorporError && err.kind !== 'internal') throw err;
      throw new TorporError('unavailable', `machine ${m.id} failed to start: ${err.message}`);
    };
    let address = '';
    try {
      address = this.address(m);
    } catch (err) {
      fail(err as Error);
    }
    const [begun, boot] = await Promise.allSettled([
      this.snapshots.beginGeneration(m.id, m.app, generation, reason ? `cold start: ${reason}` : 'cold start'),
      this.hosts.boot(address, this.identity({ ...m, generation }), this.spec(m)),
    ]);
    if (begun.status === 'rejected' || boot.status === 'rejected') {
      // A VM whose generation the store does not know must not run.
      if (boot.status === 'fulfilled') await this.hosts.stop(address, m.id).catch(() => {});
      return fail((begun.status === 'rejected' ? begun.reason : (boot as PromiseRejectedResult).reason) as Error);
    }
    const r = boot.value;
    const lastStart = { resumed: false, reason, hostMs: r.tookMs, totalMs: this.now() - t0 };
    return this.store.transition(m.id, 'starting', 'started', { generation, url: r.url, snapshotId: '', lastStart }, { generation, reason, resumed: false, hostMs: r.tookMs, totalMs: lastStart.totalMs });
  }

  /** Nothing is left half-done (L8): an operation that fails mid-way leaves the machine failed, with why. */
  private markFailed(id: string, state: State, err: unknown): unknown {
    const why = err instanceof Error ? err.message : String(err);
    if (this.store.get(id).state === state) this.store.transition(id, state, 'failed', { url: '' }, { reason: `${state} failed: ${why}` });
    this.log.warn({ machine: id, state, err: why }, 'operation failed; machine is failed');
    return err;
  }

  /**
   * Ends the VM and deletes its snapshot files. An unreachable host does not block a
   * stop: the snapshot-store has already invalidated the snapshots, and the agent
   * deletes files of invalidated snapshots when it is back (S5).
   */
  private async stopOnHost(m: MachineRecord): Promise<{ tookMs: number }> {
    const address = this.store.host(m.hostId)?.address;
    if (!address) return { tookMs: 0 };
    try {
      return await this.hosts.stop(address, m.id);
    } catch (err) {
      if (!isKind(err, 'unavailable') && !isKind(err, 'deadline_exceeded')) throw err;
      this.log.warn({ machine: m.id, host: m.hostId, err: (err as Error).message }, 'host unreachable during stop; it cleans up when back');
      return { tookMs: 0 };
    }
  }

  /** Keeps the machine's host when it is up and has room; otherwise places it anew in its region. */
  private placeForStart(m: MachineRecord, exclude: string[] = []): string {
    const views = this.store.hostViews(this.aliveSince());
    const own = views.find((h) => h.hostId === m.hostId);
    const fits = own && own.alive && !exclude.includes(own.hostId) && own.images.includes(m.config.image) && own.memoryMbTotal - own.memoryMbUsed >= m.config.guest!.memoryMb;
    return fits ? own.hostId : chooseHost(views, m.region, m.config.guest!.memoryMb, m.config.image, exclude).hostId;
  }

  /** Bad input is refused before anything is written: an image no live host of the region has. */
  private assertImageAvailable(region: string, image: string): void {
    const hosts = this.store.hostViews(this.aliveSince()).filter((h) => h.region === region && h.alive);
    if (hosts.length && !hosts.some((h) => h.images.includes(image))) throw imageNotBuilt(image, region, hosts);
  }

  private address(m: MachineRecord): string {
    const h = this.store.host(m.hostId);
    if (!h) throw failedPrecondition(`host ${m.hostId} of machine ${m.id} is not registered`);
    return h.address;
  }

  private identity(m: MachineRecord): VmIdentity {
    return { machineId: m.id, app: m.app, instanceId: m.instanceId, generation: m.generation };
  }

  private spec(m: MachineRecord): VmSpec {
    const g = m.config.guest!;
    // The app learns the port its url forwards to from $PORT, unless the config sets it.
    const guestPort = m.config.services[0]?.internalPort ?? 0;
    const env = guestPort ? { PORT: String(guestPort), ...m.config.env } : m.config.env;
    return { image: m.config.image, cpus: g.cpus, memoryMb: g.memoryMb, env, guestPort };
  }

  private aliveSince(): number {
    return this.now() - this.opts.hostTimeoutMs;
  }
}
