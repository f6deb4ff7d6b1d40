// QemuVmm: the real VMM. Runs each machine in its own daemonized QEMU
// (`-M microvm`, PVH vmlinux, file-backed guest memory) driven over QMP.
//
// Suspend/resume uses QEMU's file-backed guest memory (memory-backend-file,
// share=on, at <vmDir>/memory) and the `x-ignore-shared` migration capability:
// a suspend writes only the device state (tens of KB) and moves the memory
// file into the snapshot folder; a resume moves it back, starts QEMU with
// `-incoming defer`, loads the device state and continues; guest pages are
// then read from the file on demand, so resume time does not grow with memory.
//
// This file holds the lifecycle (boot, suspend, resume, stop); the pieces live in
// vm-dir.ts, qemu-args.ts, qemu-process.ts, qemu-migrate.ts, accel-probe.ts,
// guest-ready.ts and guest-clock.ts.
import * as fs from 'fs';
import * as path from 'path';
import { Accel, probeKvm, requestedAccel } from './accel-probe';
import { syncGuestClock } from './guest-clock';
import { waitHttp } from './guest-ready';
import { qemuArgs, validateLaunch } from './qemu-args';
import { abortError, loadDeviceState, writeDeviceState } from './qemu-migrate';
import { hostTscKhz, livePidFromFile, pidAlive, processRssBytes, signalPid, sleep, spawnDaemonized, terminatePid, waitGone } from './qemu-process';
import { QmpClient } from './qmp';
import { describeSnapshotFiles, verifySnapshotFiles } from './snapshot-files';
import * as vmFiles from './vm-dir';
import { RunningVm, SnapshotFileSet, Vmm, VmLaunch } from './vmm';

// Moved to their own files; still importable from here.
export { abortError } from './qemu-migrate';
export { hostTscKhz, pidAlive, processRssBytes } from './qemu-process';

export interface VmmLogger {
  info(obj: unknown, msg?: string): void;
  warn(obj: unknown, msg?: string): void;
  error(obj: unknown, msg?: string): void;
  debug(obj: unknown, msg?: string): void;
}

export interface QemuVmmOptions {
  /** Folder holding images/<name>/{vmlinux,initramfs.cpio} (scripts/build-images.sh). */
  dataDir: string;
  /** 'auto' probes KVM with a short boot and falls back to TCG. Env TORPOR_ACCEL overrides 'auto'. */
  accel?: 'auto' | 'kvm' | 'tcg';
  qemuBinary?: string;
  /** Cold boot deadline, until the guest's HTTP port answers (default 30 s). */
  bootDeadlineMs?: number;
  /** Resume deadline, until the guest's HTTP port answers (default 15 s). */
  resumeDeadlineMs?: number;
  /** Deadline of the KVM probe boot (default 8 s). */
  probeDeadlineMs?: number;
  logger?: VmmLogger;
}

const noopLogger: VmmLogger = { info() {}, warn() {}, error() {}, debug() {} };

export class QemuVmm implements Vmm {
  private readonly dataDir: string;
  private readonly qemu: string;
  private readonly log: VmmLogger;
  private readonly bootDeadlineMs: number;
  private readonly resumeDeadlineMs: number;
  private readonly probeDeadlineMs: number;
  private readonly requestedAccel: 'auto' | Accel;
  private resolvedAccel: Accel | null = null;
  private accelProbe: Promise<Accel> | null = null;
  private readonly qmps = new Map<string, QmpClient>();
  private readonly locks = new Map<string, Promise<unknown>>();
  private readonly tscKhz = hostTscKhz();

  constructor(opts: QemuVmmOptions) {
    this.dataDir = path.resolve(opts.dataDir);
    this.qemu = opts.qemuBinary ?? 'qemu-system-x86_64';
    this.log = opts.logger ?? noopLogger;
    this.bootDeadlineMs = opts.bootDeadlineMs ?? 30000;
    this.resumeDeadlineMs = opts.resumeDeadlineMs ?? 15000;
    this.probeDeadlineMs = opts.probeDeadlineMs ?? 8000;
    const accel = requestedAccel(opts.accel);
    this.requestedAccel = accel;
    if (accel !== 'auto') this.resolvedAccel = accel;
  }

  /** The accelerator in use; "auto" until the first boot has probed. */
  get accel(): string {
    return this.resolvedAccel ?? 'auto';
  }

  /** Resolves the accelerator (probing KVM once when 'auto'). */
  async resolveAccel(): Promise<Accel> {
    if (this.resolvedAccel) return this.resolvedAccel;
    if (!this.accelProbe) {
      const probe = probeKvm({
        qemu: this.qemu,
        imageDir: this.imageDir('default'),
        tscKhz: this.tscKhz,
        deadlineMs: this.probeDeadlineMs,
        log: this.log,
      });
      this.accelProbe = probe.then((ok) => {
        this.resolvedAccel = ok ? 'kvm' : 'tcg';
        this.log.info({ accel: this.resolvedAccel }, `vmm: using ${this.resolvedAccel}`);
        return this.resolvedAccel;
      });
    }
    return this.accelProbe;
  }

  // ------------------------------------------------------------------ paths
  consolePath(vmDir: string): string {
    return vmFiles.consolePath(vmDir);
  }
  memoryPath(vmDir: string): string {
    return vmFiles.memoryPath(vmDir);
  }
  pidPath(vmDir: string): string {
    return vmFiles.pidPath(vmDir);
  }
  /** QMP socket: <vmDir>/qmp.sock, or a short private path when that is too long for a unix socket. */
  qmpSocketPath(vmDir: string): string {
    return vmFiles.qmpSocketPath(vmDir);
  }
  imageDir(image: string): string {
    return vmFiles.imageDir(this.dataDir, image);
  }

  // ------------------------------------------------------------------ state
  /** pid of the QEMU running this vmDir, or null. Works from a fresh instance (pid file + /proc). */
  runningPid(vmDir: string): number | null {
    return livePidFromFile(this.pidPath(path.resolve(vmDir)));
  }

  isRunning(_machineId: string, vmDir: string): boolean {
    return this.runningPid(vmDir) !== null;
  }

  /** Resident memory of this VM's QEMU, bytes (0 when not running). */
  qemuRssBytes(vmDir: string): number {
    const pid = this.runningPid(vmDir);
    return pid ? processRssBytes(pid) : 0;
  }

  private async withLock<T>(vmDir: string, fn: () => Promise<T>): Promise<T> {
    const key = path.resolve(vmDir);
    const prev = this.locks.get(key) ?? Promise.resolve();
    const run = prev.catch(() => undefined).then(fn);
    this.locks.set(key, run);
    try {
      return await run;
    } finally {
      if (this.locks.get(key) === run) this.locks.delete(key);
    }
  }

  private async qmp(vmDir: string, timeoutMs = 5000): Promise<QmpClient> {
    const key = path.resolve(vmDir);
    const c = this.qmps.get(key);
    if (c && c.isOpen) return c;
    const n = await QmpClient.connect(this.qmpSocketPath(vmDir), timeoutMs);
    n.on('close', () => {
      if (this.qmps.get(key) === n) this.qmps.delete(key);
    });
    this.qmps.set(key, n);
    return n;
  }

  private dropQmp(vmDir: string): void {
    const key = path.resolve(vmDir);
    this.qmps.get(key)?.close();
    this.qmps.delete(key);
  }

  // ------------------------------------------------------------------ launch
  /** Runs QEMU with -daemonize; resolves with the daemon's pid once QEMU is initialised. */
  private async launch(vm: VmLaunch, args: string[], deadlineMs: number): Promise<number> {
    const vmDir = path.resolve(vm.vmDir);
    await fs.promises.rm(this.pidPath(vmDir), { force: true });
    const qmpPath = this.qmpSocketPath(vmDir);
    await fs.promises.rm(qmpPath, { force: true });
    this.log.debug({ machineId: vm.machineId, args }, 'vmm: spawning qemu');
    return spawnDaemonized(this.qemu, args, vmDir, this.pidPath(vmDir), deadlineMs);
  }

  private waitHttp(vm: VmLaunch, pid: number, deadline: number, what: string): Promise<void> {
    return waitHttp({ hostPort: vm.hostPort, pid, deadline, what, consoleFile: this.consolePath(vm.vmDir) });
  }

  /** Ends a QEMU process by pid: QMP quit, then SIGTERM, then SIGKILL. */
  private async killPid(vmDir: string, pid: number, graceful: boolean): Promise<void> {
    if (graceful && pidAlive(pid)) {
      try {
        const q = await this.qmp(vmDir, 1000);
        await Promise.race([q.execute('quit').catch(() => undefined), sleep(1000)]);
      } catch {
        /* no QMP: signals below */
      }
      if (await waitGone(pid, 2000)) return this.cleanupRuntime(vmDir);
    }
    await terminatePid(pid);
    this.cleanupRuntime(vmDir);
  }

  private cleanupRuntime(vmDir: string): void {
    this.dropQmp(vmDir);
    fs.rmSync(this.pidPath(vmDir), { force: true });
    try {
      fs.rmSync(this.qmpSocketPath(vmDir), { force: true });
    } catch {
      /* ignore */
    }
  }

  // ------------------------------------------------------------------ clock (E3)
  /** Sets the guest clock to the host's (see guest-clock.ts). Returns the correction in ms. */
  async syncClock(vmDir: string, timeoutMs = 3000): Promise<number> {
    return syncGuestClock(vmFiles.clockBase(vmDir), timeoutMs);
  }

  // ------------------------------------------------------------------ Vmm
  boot(vm: VmLaunch): Promise<RunningVm> {
    return this.withLock(vm.vmDir, () => this.bootLocked(vm));
  }

  private async bootLocked(vm: VmLaunch): Promise<RunningVm> {
    validateLaunch(vm);
    const vmDir = path.resolve(vm.vmDir);
    const t0 = Date.now();
    const deadline = t0 + this.bootDeadlineMs;
    if (this.isRunning(vm.machineId, vmDir)) throw new Error(`machine ${vm.machineId} already runs (pid ${this.runningPid(vmDir)})`);
    const img = this.imageDir(vm.image);
    for (const f of ['vmlinux', 'initramfs.cpio']) {
      if (!fs.existsSync(path.join(img, f))) throw new Error(`image '${vm.image}' is not built (${path.join(img, f)} missing): run scripts/build-images.sh`);
    }
    const accel = await this.resolveAccel();
    await vmFiles.prepareVmDir(vmDir);
    // A cold boot starts from fresh, private, sparse guest memory.
    const memPath = this.memoryPath(vmDir);
    await fs.promises.rm(memPath, { force: true });
    const fh = await fs.promises.open(memPath, fs.constants.O_RDWR | fs.constants.O_CREAT | fs.constants.O_EXCL, 0o600);
    try {
      await fh.truncate(vm.memoryMb * 1024 * 1024);
    } finally {
      await fh.close();
    }
    const args = qemuArgs(vm, { imageDir: img, accel, incoming: false, tscKhz: this.tscKhz });
    const pid = await this.launch(vm, args, this.bootDeadlineMs);
    const tLaunched = Date.now();
    let tHttp = 0;
    try {
      await this.qmp(vmDir, 5000);
      await this.waitHttp(vm, pid, deadline, `boot of ${vm.machineId}`);
      tHttp = Date.now();
      try {
        await this.syncClock(vmDir, 2000);
      } catch (e) {
        this.log.warn({ machineId: vm.machineId, err: (e as Error).message }, 'vmm: clock sync after boot failed');
      }
    } catch (e) {
      await this.killPid(vmDir, pid, false);
      await fs.promises.rm(memPath, { force: true });
      throw e;
    }
    this.log.info(
      { machineId: vm.machineId, pid, accel, ms: Date.now() - t0, launchMs: tLaunched - t0, httpMs: tHttp - t0 },
      'vmm: booted',
    );
    return { machineId: vm.machineId, pid };
  }

  suspend(vm: VmLaunch, snapshotDir: string, signal?: AbortSignal): Promise<SnapshotFileSet> {
    return this.withLock(vm.vmDir, () => this.suspendLocked(vm, snapshotDir, signal));
  }

  private async suspendLocked(vm: VmLaunch, snapshotDir: string, signal?: AbortSignal): Promise<SnapshotFileSet> {
    const vmDir = path.resolve(vm.vmDir);
    const t0 = Date.now();
    if (signal?.aborted) throw abortError();
    const pid = this.runningPid(vmDir);
    if (!pid) throw new Error(`machine ${vm.machineId} is not running`);
    const q = await this.qmp(vmDir);
    snapshotDir = path.resolve(snapshotDir);
    await fs.promises.mkdir(snapshotDir, { recursive: true, mode: 0o700 });
    await fs.promises.chmod(snapshotDir, 0o700);
    const statePath = path.join(snapshotDir, 'state');
    const snapMem = path.join(snapshotDir, 'memory');
    if (signal?.aborted) throw abortError();
    await q.execute('stop');
    try {
      await writeDeviceState(q, statePath, signal);
    } catch (e) {
      // Not suspended after all: the guest runs on and the partial state goes.
      await q.execute('cont').catch((err) => this.log.error({ machineId: vm.machineId, err: err.message }, 'vmm: cont after abort failed'));
      await fs.promises.rm(statePath, { force: true });
      throw e;
    }
    const tState = Date.now();
    // The device state is written: from here the suspend goes through (abort is too late).
    await q.execute('quit').catch(() => undefined);
    if (!(await waitGone(pid, 5000))) {
      this.log.warn({ machineId: vm.machineId, pid }, 'vmm: qemu did not quit after migration; killing');
      signalPid(pid, 'SIGKILL');
      await waitGone(pid, 5000);
    }
    this.cleanupRuntime(vmDir);
    await vmFiles.moveFile(this.memoryPath(vmDir), snapMem);
    await fs.promises.chmod(snapMem, 0o600);
    await fs.promises.chmod(statePath, 0o600);
    const files = await describeSnapshotFiles(statePath, snapMem);
    this.log.info(
      { machineId: vm.machineId, ms: Date.now() - t0, stateMs: tState - t0, stateBytes: files.stateSize },
      'vmm: suspended',
    );
    return files;
  }

  resume(vm: VmLaunch, files: SnapshotFileSet): Promise<RunningVm> {
    return this.withLock(vm.vmDir, () => this.resumeLocked(vm, files));
  }

  private async resumeLocked(vm: VmLaunch, files: SnapshotFileSet): Promise<RunningVm> {
    validateLaunch(vm);
    const vmDir = path.resolve(vm.vmDir);
    const t0 = Date.now();
    const deadline = t0 + this.resumeDeadlineMs;
    if (this.isRunning(vm.machineId, vmDir)) {
      throw new Error(`machine ${vm.machineId} already runs (pid ${this.runningPid(vmDir)}): refusing to start a second QEMU on its memory`);
    }
    if (files.memorySize !== vm.memoryMb * 1024 * 1024) {
      throw new Error(`snapshot memory is ${files.memorySize} bytes but the machine has ${vm.memoryMb} MiB`);
    }
    const bad = await verifySnapshotFiles(files);
    if (bad) throw new Error(`snapshot refused: ${bad}`);
    const accel = await this.resolveAccel();
    await vmFiles.prepareVmDir(vmDir);
    const memPath = this.memoryPath(vmDir);
    if (path.resolve(files.memoryPath) !== memPath) await vmFiles.moveFile(files.memoryPath, memPath);
    const args = qemuArgs(vm, { imageDir: this.imageDir(vm.image), accel, incoming: true, tscKhz: this.tscKhz });
    const pid = await this.launch(vm, args, this.resumeDeadlineMs);
    const tLaunched = Date.now();
    let tLoaded = 0;
    let tClock = 0;
    let clockFix = 0;
    try {
      const q = await this.qmp(vmDir, 5000);
      await loadDeviceState(q, files.statePath, pid, deadline);
      tLoaded = Date.now();
      // S3: the memory file is about to diverge from the state; the snapshot is spent.
      await fs.promises.rm(files.statePath, { force: true });
      await q.execute('cont');
      // E3: set the guest clock before anyone is told the guest is up. The HTTP
      // readiness probe runs meanwhile (it asks for nothing time-dependent);
      // resume resolves only when both are done.
      const http = this.waitHttp(vm, pid, deadline, `resume of ${vm.machineId}`);
      http.catch(() => undefined);
      clockFix = await this.syncClock(vmDir, 3000);
      tClock = Date.now();
      await http;
    } catch (e) {
      await this.killPid(vmDir, pid, false);
      await fs.promises.rm(files.statePath, { force: true });
      throw e;
    }
    this.log.info(
      {
        machineId: vm.machineId,
        pid,
        ms: Date.now() - t0,
        launchMs: tLaunched - t0,
        loadedMs: tLoaded - t0,
        clockSetMs: tClock - t0,
        clockFixMs: Math.round(clockFix),
      },
      'vmm: resumed',
    );
    return { machineId: vm.machineId, pid };
  }

  stop(machineId: string, vmDir: string): Promise<void> {
    return this.withLock(vmDir, async () => {
      const pid = this.runningPid(vmDir);
      if (pid) await this.killPid(path.resolve(vmDir), pid, true);
      else this.cleanupRuntime(path.resolve(vmDir));
      // Guest memory is a secret (S5) and a stopped machine cold-boots next.
      await fs.promises.rm(this.memoryPath(vmDir), { force: true });
      this.log.info({ machineId, pid }, 'vmm: stopped');
    });
  }

  /** Closes QMP connections (QEMU processes keep running). */
  close(): void {
    for (const c of this.qmps.values()) c.close();
    this.qmps.clear();
  }
}
