// The host agent's logic: boots, suspends and resumes VMs through a Vmm, and never
// loads a snapshot that the snapshot-store has not handed it a claim for (S3), that
// fails its file checks (S4), or that this host has loaded before (S3). Snapshot files
// are private to the agent (S5) and deleted once loaded, stopped or invalidated.
// No gRPC here: the snapshot-store is reached through SnapshotAuthority.
import fs from 'node:fs';
import path from 'node:path';
import { failedPrecondition, notFound, resourceExhausted, TorporError } from '../../../lib/errors';
import { newSnapshotId, SNAPSHOT_ID_RE } from '../../../lib/ids';
import type { Logger } from '../../../lib/log';
import { freePort } from '../../../lib/net';
import { KeyedLock } from '../../../lib/keyed-lock';
import type { RegisteredSnapshot, SnapshotAuthority } from './ports';
import type { VmRecord, VmRecords } from './vm-records';
import { verifySnapshotFiles } from './vmm/snapshot-files';
import type { VmLaunch, Vmm } from './vmm/vmm';

export interface AgentOptions {
  hostId: string;
  dataDir: string;
  memoryMbTotal: number;
  /** Guest images built on this host (read each time: images can be built while it runs). */
  images: () => string[];
}

export interface Identity {
  machineId: string;
  app: string;
  instanceId: string;
  generation: number;
}

export interface Spec {
  image: string;
  cpus: number;
  memoryMb: number;
  env: Record<string, string>;
  /** Guest port of its HTTP service (8080 when 0). */
  guestPort: number;
}

export interface VmView {
  machineId: string;
  running: boolean;
  url: string;
  pid: number;
  tookMs: number;
  resumed: boolean;
  generation: number;
}

/** Told when a VM begins to run on this host and when it is destroyed (log shipping). */
export interface AgentHooks {
  vmStarted(machineId: string, app: string): void;
  vmDestroyed(machineId: string): void;
}

const NO_HOOKS: AgentHooks = { vmStarted() {}, vmDestroyed() {} };

export class HostAgentCore {
  private readonly lock = new KeyedLock();
  private readonly pids = new Map<string, number>();
  /** Claims being marked consumed; the machine's next suspend waits for its own (event order). */
  private readonly completions = new Map<string, Promise<void>>();

  constructor(
    private readonly opts: AgentOptions,
    private readonly vmm: Vmm,
    private readonly records: VmRecords,
    private readonly snapshots: SnapshotAuthority,
    private readonly log: Logger,
    private readonly hooks: AgentHooks = NO_HOOKS,
  ) {
    fs.mkdirSync(this.snapshotsRoot(), { recursive: true, mode: 0o700 });
    fs.mkdirSync(path.join(opts.dataDir, 'vms'), { recursive: true, mode: 0o700 });
  }

  get accel(): string {
    return this.vmm.accel;
  }

  /** Memory of the VMs running now, in MiB. */
  memoryUsed(except?: string): number {
    return this.records
      .all()
      .filter((v) => v.running && v.machineId !== except)
      .reduce((sum, v) => sum + v.memoryMb, 0);
  }

  runningCount(): number {
    return this.records.all().filter((v) => v.running).length;
  }

  /** After an agent restart: VMs that kept running are adopted, the others marked stopped. */
  reconcile(): void {
    for (const v of this.records.all()) {
      const alive = this.vmm.isRunning(v.machineId, this.vmDir(v.machineId));
      if (v.running !== alive) this.records.setRunning(v.machineId, alive);
      if (alive) this.log.info({ machine: v.machineId }, 'adopted running VM');
      this.hooks.vmStarted(v.machineId, v.app);
    }
  }

  boot(id: Identity, spec: Spec): Promise<VmView> {
    return this.lock.run(id.machineId, async () => {
      const t0 = Date.now();
      this.checkImage(spec.image);
      this.checkMemory(id.machineId, spec.memoryMb);
      const prev = this.records.get(id.machineId);
      if (prev?.running) await this.vmm.stop(id.machineId, this.vmDir(id.machineId));
      // S2: a cold start begins a new generation; no older snapshot of it may survive here.
      this.deleteSnapshotFiles(id.machineId);
      const rec: VmRecord = { ...id, ...spec, hostPort: prev?.hostPort ?? (await freePort()), running: false };
      this.records.put(rec);
      this.hooks.vmStarted(id.machineId, id.app);
      const vm = await this.vmm.boot(this.launch(rec));
      this.records.put({ ...rec, running: true });
      this.pids.set(id.machineId, vm.pid);
      return this.view(rec, { tookMs: Date.now() - t0, resumed: false, pid: vm.pid });
    });
  }

  suspend(id: Identity, signal?: AbortSignal): Promise<{ snapshot: RegisteredSnapshot; tookMs: number }> {
    return this.lock.run(id.machineId, async () => {
      const rec = this.runningRecord(id.machineId);
      if (rec.generation !== id.generation) throw failedPrecondition(`machine ${id.machineId} runs generation ${rec.generation} here, not ${id.generation}`);
      const t0 = Date.now();
      await this.completions.get(id.machineId);
      const snapshotId = newSnapshotId();
      const dir = path.join(this.snapshotsRoot(), id.machineId, snapshotId);
      fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
      let files;
      try {
        files = await this.vmm.suspend(this.launch(rec), dir, signal);
      } catch (err) {
        fs.rmSync(dir, { recursive: true, force: true });
        if ((err as Error).name === 'AbortError') throw new TorporError('cancelled', 'suspend cancelled before the snapshot was written; the VM goes on running (L9)');
        throw err;
      }
      this.records.setRunning(id.machineId, false);
      this.pids.delete(id.machineId);
      try {
        const snapshot = await this.snapshots.register({ id: snapshotId, machineId: id.machineId, app: rec.app, hostId: this.opts.hostId, generation: rec.generation, instanceId: rec.instanceId, files });
        return { snapshot, tookMs: Date.now() - t0 };
      } catch (err) {
        // Unregistered, it can never be claimed: its memory must not linger (S5).
        fs.rmSync(dir, { recursive: true, force: true });
        throw err;
      }
    });
  }

  resume(id: Identity, spec: Spec, snapshotId: string): Promise<VmView> {
    return this.lock.run(id.machineId, async () => {
      const t0 = Date.now();
      if (!SNAPSHOT_ID_RE.test(snapshotId)) throw failedPrecondition(`"${snapshotId}" is not a snapshot id`);
      if (this.records.wasLoaded(snapshotId)) throw failedPrecondition(`this host has already loaded snapshot ${snapshotId} once; a snapshot is never resumed twice (S3)`);
      const prev = this.records.get(id.machineId);
      if (!prev) throw failedPrecondition(`machine ${id.machineId} has never run on host ${this.opts.hostId}; its snapshot cannot be here (S1)`);
      if (prev.running) throw failedPrecondition(`machine ${id.machineId} is already running on this host`);
      this.checkMemory(id.machineId, spec.memoryMb);
      const claim = await this.snapshots.claim({ snapshotId, machineId: id.machineId, hostId: this.opts.hostId, generation: id.generation });
      this.records.markLoaded(snapshotId, id.machineId);
      const dir = path.join(this.snapshotsRoot(), id.machineId, snapshotId);
      const rec: VmRecord = { ...prev, ...id, ...spec, running: false };
      let pid: number;
      try {
        const damage = await verifySnapshotFiles(claim.files);
        if (damage) throw failedPrecondition(`snapshot ${snapshotId} is damaged: ${damage} (S4)`);
        pid = (await this.vmm.resume(this.launch(rec), claim.files)).pid;
      } catch (err) {
        fs.rmSync(dir, { recursive: true, force: true }); // S3: never loaded, and never will be
        const reason = (err as Error).message;
        await this.snapshots.complete(claim.claimId, false, reason).catch(() => {});
        throw err instanceof TorporError ? err : failedPrecondition(`the VMM could not load snapshot ${snapshotId}: ${reason}`);
      }
      fs.rmSync(dir, { recursive: true, force: true }); // S3: loaded once, gone
      this.records.put({ ...rec, running: true });
      this.pids.set(id.machineId, pid);
      // Not awaited: the claim alone already makes the snapshot unusable again (S3); marking it
      // consumed (snapshot.resumed) need not hold up the guest's first request.
      const completion = this.completeWithRetry(claim.claimId).finally(() => {
        if (this.completions.get(id.machineId) === completion) this.completions.delete(id.machineId);
      });
      this.completions.set(id.machineId, completion);
      return this.view(rec, { tookMs: Date.now() - t0, resumed: true, pid });
    });
  }

  private async completeWithRetry(claimId: string): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.snapshots.complete(claimId, true, '');
      } catch (err) {
        if (attempt >= 5) return this.log.warn({ claim: claimId, err: (err as Error).message }, 'could not mark a loaded snapshot consumed; it stays claimed (still never loadable again)');
        await new Promise((r) => setTimeout(r, 200 * attempt));
      }
    }
  }

  stop(machineId: string): Promise<{ snapshotsDeleted: number; tookMs: number }> {
    return this.lock.run(machineId, async () => {
      const t0 = Date.now();
      await this.vmm.stop(machineId, this.vmDir(machineId));
      if (this.records.get(machineId)) this.records.setRunning(machineId, false);
      this.pids.delete(machineId);
      return { snapshotsDeleted: this.deleteSnapshotFiles(machineId), tookMs: Date.now() - t0 };
    });
  }

  destroy(machineId: string): Promise<{ tookMs: number }> {
    return this.lock.run(machineId, async () => {
      const t0 = Date.now();
      await this.vmm.stop(machineId, this.vmDir(machineId));
      this.hooks.vmDestroyed(machineId);
      this.deleteSnapshotFiles(machineId);
      fs.rmSync(this.vmDir(machineId), { recursive: true, force: true });
      this.records.remove(machineId);
      this.pids.delete(machineId);
      return { tookMs: Date.now() - t0 };
    });
  }

  /** The VM's state once any operation in flight on it has finished (a definitive answer). */
  settled(machineId: string): Promise<VmView> {
    return this.lock.run(machineId, async () => this.get(machineId));
  }

  get(machineId: string): VmView {
    const rec = this.records.get(machineId);
    if (!rec) throw notFound(`machine ${machineId} has no VM on host ${this.opts.hostId}`);
    const running = this.vmm.isRunning(machineId, this.vmDir(machineId));
    return this.view({ ...rec, running }, { tookMs: 0, resumed: false, pid: this.pids.get(machineId) ?? 0 });
  }

  /** S5: deletes local files of snapshots the store no longer holds ready (invalidated, consumed, unknown). */
  async collectGarbage(): Promise<number> {
    let deleted = 0;
    for (const machineId of readdirSafe(this.snapshotsRoot())) {
      for (const snapshotId of readdirSafe(path.join(this.snapshotsRoot(), machineId))) {
        if (this.lock.busy(machineId)) continue;
        const state = await this.snapshots.stateOf(snapshotId);
        if (state === 'ready') continue;
        fs.rmSync(path.join(this.snapshotsRoot(), machineId, snapshotId), { recursive: true, force: true });
        deleted++;
        this.log.info({ machine: machineId, snapshot: snapshotId, state: state ?? 'unknown' }, 'deleted snapshot files (S5)');
      }
    }
    return deleted;
  }

  consolePath(machineId: string): string {
    return this.vmm.consolePath(this.vmDir(machineId));
  }

  vmDir(machineId: string): string {
    return path.join(this.opts.dataDir, 'vms', machineId);
  }

  private snapshotsRoot(): string {
    return path.join(this.opts.dataDir, 'snapshots');
  }

  private deleteSnapshotFiles(machineId: string): number {
    const dir = path.join(this.snapshotsRoot(), machineId);
    const n = readdirSafe(dir).length;
    fs.rmSync(dir, { recursive: true, force: true });
    return n;
  }

  private checkImage(image: string): void {
    const built = this.opts.images();
    if (!built.includes(image)) {
      throw failedPrecondition(`image "${image}" is not built on host ${this.opts.hostId} (built: ${built.join(', ') || 'none'}); build it with \`torpor images build DIR --name ${image}\``);
    }
  }

  private checkMemory(machineId: string, memoryMb: number): void {
    const used = this.memoryUsed(machineId);
    if (used + memoryMb > this.opts.memoryMbTotal) {
      throw resourceExhausted(`host ${this.opts.hostId} offers ${this.opts.memoryMbTotal} MiB and ${used} MiB are in use; ${memoryMb} MiB more do not fit`);
    }
  }

  private runningRecord(machineId: string): VmRecord {
    const rec = this.records.get(machineId);
    if (!rec || !rec.running || !this.vmm.isRunning(machineId, this.vmDir(machineId))) throw failedPrecondition(`machine ${machineId} is not running on host ${this.opts.hostId}`);
    return rec;
  }

  private launch(rec: VmRecord): VmLaunch {
    const vmDir = this.vmDir(rec.machineId);
    fs.mkdirSync(vmDir, { recursive: true, mode: 0o700 });
    return { machineId: rec.machineId, image: rec.image, cpus: rec.cpus, memoryMb: rec.memoryMb, env: rec.env, hostPort: rec.hostPort, guestPort: rec.guestPort || 8080, vmDir };
  }

  private view(rec: VmRecord, extra: { tookMs: number; resumed: boolean; pid: number }): VmView {
    return { machineId: rec.machineId, running: extra.pid > 0 || rec.running, url: `http://127.0.0.1:${rec.hostPort}`, generation: rec.generation, ...extra };
  }
}

function readdirSafe(dir: string): string[] {
  try {
    return fs.readdirSync(dir);
  } catch {
    return [];
  }
}
