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
// Files in vmDir: memory (live guest RAM), console.log (append=on, survives
// suspend/resume), qemu.pid, qmp.sock (or a short path, see qmpSocketPath),
// clock.in/clock.out (FIFOs of the virtio-serial port "torpor.clock").
import { spawn } from 'child_process';
import * as crypto from 'crypto';
import * as fs from 'fs';
import * as http from 'http';
import * as os from 'os';
import * as path from 'path';
import { QmpClient } from './qmp';
import { describeSnapshotFiles, verifySnapshotFiles } from './snapshot-files';
import { RunningVm, SnapshotFileSet, Vmm, VmLaunch } from './vmm';

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

const MODULE_LIMIT_CMDLINE = 2000; // x86 COMMAND_LINE_SIZE is 2048

export function abortError(msg = 'suspend aborted'): Error {
  const e = new Error(msg);
  e.name = 'AbortError';
  return e;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Host TSC frequency in kHz, from /proc/cpuinfo (microvm boots hang under load without it). */
export function hostTscKhz(): number | null {
  try {
    const txt = fs.readFileSync('/proc/cpuinfo', 'utf8');
    const m = /^cpu MHz\s*:\s*([0-9.]+)/m.exec(txt);
    if (!m) return null;
    const khz = Math.round(parseFloat(m[1]) * 1000);
    return khz > 0 ? khz : null;
  } catch {
    return null;
  }
}

/** Whether a process exists and is not a zombie. */
export function pidAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const st = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
    return st !== 'Z' && st !== 'X';
  } catch {
    return false;
  }
}

/** Resident memory of a process in bytes (0 if gone). */
export function processRssBytes(pid: number): number {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? parseInt(m[1], 10) * 1024 : 0;
  } catch {
    return 0;
  }
}

function shq(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

/** GET http://127.0.0.1:port/ once; resolves true on any HTTP answer. */
function httpAnswers(port: number, timeoutMs: number): Promise<boolean> {
  return new Promise((resolve) => {
    const req = http.get({ host: '127.0.0.1', port, path: '/', timeout: timeoutMs, agent: false }, (res) => {
      res.resume();
      res.on('end', () => resolve(true));
      res.on('error', () => resolve(true));
    });
    req.on('timeout', () => {
      req.destroy();
      resolve(false);
    });
    req.on('error', () => resolve(false));
  });
}

export class QemuVmm implements Vmm {
  private readonly dataDir: string;
  private readonly qemu: string;
  private readonly log: VmmLogger;
  private readonly bootDeadlineMs: number;
  private readonly resumeDeadlineMs: number;
  private readonly probeDeadlineMs: number;
  private readonly requestedAccel: 'auto' | 'kvm' | 'tcg';
  private resolvedAccel: 'kvm' | 'tcg' | null = null;
  private accelProbe: Promise<'kvm' | 'tcg'> | null = null;
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
    let accel = opts.accel ?? 'auto';
    const envAccel = process.env.TORPOR_ACCEL;
    if (accel === 'auto' && (envAccel === 'kvm' || envAccel === 'tcg')) accel = envAccel;
    this.requestedAccel = accel;
    if (accel !== 'auto') this.resolvedAccel = accel;
  }

  /** The accelerator in use; "auto" until the first boot has probed. */
  get accel(): string {
    return this.resolvedAccel ?? 'auto';
  }

  /** Resolves the accelerator (probing KVM once when 'auto'). */
  async resolveAccel(): Promise<'kvm' | 'tcg'> {
    if (this.resolvedAccel) return this.resolvedAccel;
    if (!this.accelProbe) {
      this.accelProbe = this.probeKvm().then((ok) => {
        this.resolvedAccel = ok ? 'kvm' : 'tcg';
        this.log.info({ accel: this.resolvedAccel }, `vmm: using ${this.resolvedAccel}`);
        return this.resolvedAccel;
      });
    }
    return this.accelProbe;
  }

  // ------------------------------------------------------------------ paths
  consolePath(vmDir: string): string {
    return path.join(vmDir, 'console.log');
  }
  memoryPath(vmDir: string): string {
    return path.join(vmDir, 'memory');
  }
  pidPath(vmDir: string): string {
    return path.join(vmDir, 'qemu.pid');
  }
  /** QMP socket: <vmDir>/qmp.sock, or a short private path when that is too long for a unix socket. */
  qmpSocketPath(vmDir: string): string {
    const p = path.join(path.resolve(vmDir), 'qmp.sock');
    if (Buffer.byteLength(p) <= 100) return p;
    const dir = path.join(os.tmpdir(), `torpor-qmp-${process.getuid?.() ?? 0}`);
    fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
    const h = crypto.createHash('sha256').update(path.resolve(vmDir)).digest('hex').slice(0, 24);
    return path.join(dir, `${h}.sock`);
  }
  private clockBase(vmDir: string): string {
    return path.join(vmDir, 'clock');
  }
  imageDir(image: string): string {
    if (!/^[a-z0-9][a-z0-9._-]{0,62}$/.test(image)) throw new Error(`bad image name '${image}'`);
    return path.join(this.dataDir, 'images', image);
  }

  // ------------------------------------------------------------------ state
  /** pid of the QEMU running this vmDir, or null. Works from a fresh instance (pid file + /proc). */
  runningPid(vmDir: string): number | null {
    let pid: number;
    try {
      pid = parseInt(fs.readFileSync(this.pidPath(vmDir), 'utf8').trim(), 10);
    } catch {
      return null;
    }
    if (!pidAlive(pid)) return null;
    try {
      // Guard against pid reuse: the process must be a QEMU of this vmDir.
      const cmd = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8');
      if (!cmd.includes(this.pidPath(path.resolve(vmDir)))) return null;
    } catch {
      return null;
    }
    return pid;
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
  private validate(vm: VmLaunch): void {
    if (!/^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/.test(vm.machineId)) throw new Error(`bad machine id '${vm.machineId}'`);
    if (!Number.isInteger(vm.cpus) || vm.cpus < 1 || vm.cpus > 64) throw new Error(`bad cpus ${vm.cpus}`);
    if (!Number.isInteger(vm.memoryMb) || vm.memoryMb < 64 || vm.memoryMb > 65536) throw new Error(`bad memory_mb ${vm.memoryMb}`);
    if (!Number.isInteger(vm.hostPort) || vm.hostPort < 1 || vm.hostPort > 65535) throw new Error(`bad host port ${vm.hostPort}`);
    if (!path.isAbsolute(vm.vmDir)) throw new Error(`vmDir must be absolute: ${vm.vmDir}`);
  }

  private kernelCmdline(vm: VmLaunch, extra: string[] = []): string {
    const parts = [
      'console=ttyS0',
      'quiet',
      'pci=off',
      '8250.nr_uarts=1',
      'i8042.noaux',
      'i8042.nokbd',
      'i8042.nopnp',
      'tsc=reliable',
      'no_timer_check',
      'cryptomgr.notests',
      'audit=0',
      'mitigations=off',
      'init_on_alloc=0',
      'panic=-1',
    ];
    if (this.tscKhz) parts.push(`tsc_early_khz=${this.tscKhz}`);
    parts.push(`torpor.id=${vm.machineId}`);
    const keys = Object.keys(vm.env ?? {});
    if (keys.length) {
      const buf: Buffer[] = [];
      for (const k of keys) {
        if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(k)) throw new Error(`bad env name '${k}'`);
        buf.push(Buffer.from(`${k}=${vm.env[k]}\0`, 'utf8'));
      }
      parts.push(`torpor.env=${Buffer.concat(buf).toString('base64')}`);
    }
    parts.push(...extra);
    const line = parts.join(' ');
    if (line.length > MODULE_LIMIT_CMDLINE) {
      throw new Error(`machine env too large for the kernel command line (${line.length} > ${MODULE_LIMIT_CMDLINE} bytes)`);
    }
    return line;
  }

  private qemuArgs(vm: VmLaunch, accel: 'kvm' | 'tcg', incoming: boolean): string[] {
    const img = this.imageDir(vm.image);
    const vmDir = path.resolve(vm.vmDir);
    const mem = `${vm.memoryMb}M`;
    const args = [
      '-name', `torpor-${vm.machineId}`,
      '-nodefaults', '-no-user-config', '-display', 'none',
      '-accel', accel,
      ...(accel === 'kvm' ? ['-cpu', 'host'] : []),
      '-M', 'microvm,acpi=on,pit=off,pic=off,rtc=on,isa-serial=on,x-option-roms=off,memory-backend=mem',
      '-m', mem,
      '-smp', String(vm.cpus),
      '-object', `memory-backend-file,id=mem,size=${mem},mem-path=${this.memoryPath(vmDir)},share=on`,
      '-kernel', path.join(img, 'vmlinux'),
      '-initrd', path.join(img, 'initramfs.cpio'),
      '-append', this.kernelCmdline(vm),
      '-chardev', `file,id=con,path=${this.consolePath(vmDir)},append=on`,
      '-serial', 'chardev:con',
      '-netdev', `user,id=n0,hostfwd=tcp:127.0.0.1:${vm.hostPort}-:8080`,
      '-device', 'virtio-net-device,netdev=n0',
      '-device', 'virtio-serial-device',
      '-chardev', `pipe,id=clk,path=${this.clockBase(vmDir)}`,
      '-device', 'virtserialport,chardev=clk,name=torpor.clock',
      '-qmp', `unix:${this.qmpSocketPath(vmDir)},server=on,wait=off`,
      '-pidfile', this.pidPath(vmDir),
      '-daemonize',
    ];
    if (incoming) args.push('-S', '-incoming', 'defer');
    return args;
  }

  private async prepareVmDir(vmDir: string): Promise<void> {
    await fs.promises.mkdir(vmDir, { recursive: true, mode: 0o700 });
    await fs.promises.chmod(vmDir, 0o700);
    // Console log: created private, then appended to by every QEMU of this machine.
    const fd = await fs.promises.open(this.consolePath(vmDir), fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_APPEND, 0o600);
    await fd.close();
    for (const suffix of ['.in', '.out']) {
      const p = this.clockBase(vmDir) + suffix;
      let ok = false;
      try {
        ok = (await fs.promises.stat(p)).isFIFO();
      } catch {
        /* missing */
      }
      if (!ok) {
        await fs.promises.rm(p, { force: true });
        await execFileP('mkfifo', ['-m', '0600', p]);
      }
    }
  }

  /** Runs QEMU with -daemonize; resolves with the daemon's pid once QEMU is initialised. */
  private async launch(vm: VmLaunch, args: string[], deadlineMs: number): Promise<number> {
    const vmDir = path.resolve(vm.vmDir);
    await fs.promises.rm(this.pidPath(vmDir), { force: true });
    const qmpPath = this.qmpSocketPath(vmDir);
    await fs.promises.rm(qmpPath, { force: true });
    this.log.debug({ machineId: vm.machineId, args }, 'vmm: spawning qemu');
    const child = spawn(this.qemu, args, { stdio: ['ignore', 'ignore', 'pipe'], cwd: vmDir });
    let stderr = '';
    child.stderr!.on('data', (d) => (stderr += d.toString()));
    const code = await new Promise<number | null>((resolve, reject) => {
      const timer = setTimeout(() => {
        child.kill('SIGKILL');
        reject(new Error(`qemu did not start within ${deadlineMs} ms`));
      }, deadlineMs);
      child.on('error', (e) => {
        clearTimeout(timer);
        reject(e);
      });
      child.on('exit', (c) => {
        clearTimeout(timer);
        resolve(c);
      });
    });
    if (code !== 0) throw new Error(`qemu exited with ${code}: ${stderr.trim().slice(0, 2000)}`);
    let pid = 0;
    for (let i = 0; i < 200 && !pid; i++) {
      try {
        pid = parseInt(fs.readFileSync(this.pidPath(vmDir), 'utf8').trim(), 10) || 0;
      } catch {
        await sleep(5);
      }
    }
    if (!pid) throw new Error('qemu started but wrote no pid file');
    return pid;
  }

  /**
   * Resolves when the guest's HTTP port answers. Attempts overlap (a new one every
   * 25 ms, each kept up to 2 s): a connection that QEMU's user-mode network opened
   * while the guest was not yet listening waits for slirp's SYN retransmission
   * (seconds), so one attempt at a time would add up to a second to every boot.
   */
  private waitHttp(vm: VmLaunch, pid: number, deadline: number, what: string): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      let done = false;
      let inFlight = 0;
      const finish = (err?: Error) => {
        if (done) return;
        done = true;
        clearInterval(timer);
        if (err) reject(err);
        else resolve();
      };
      const attempt = () => {
        if (done || inFlight >= 64) return;
        inFlight++;
        httpAnswers(vm.hostPort, 2000).then((ok) => {
          inFlight--;
          if (ok) finish();
        });
      };
      const timer = setInterval(() => {
        if (!pidAlive(pid)) {
          finish(new Error(`${what}: qemu (pid ${pid}) exited before the guest answered HTTP; see ${this.consolePath(vm.vmDir)}`));
        } else if (Date.now() >= deadline) {
          finish(new Error(`${what}: guest did not answer HTTP on 127.0.0.1:${vm.hostPort} by the deadline`));
        } else {
          attempt();
        }
      }, 25);
      attempt();
    });
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
    if (pidAlive(pid)) {
      try {
        process.kill(pid, 'SIGTERM');
      } catch {
        /* gone */
      }
      if (!(await waitGone(pid, 2000))) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          /* gone */
        }
        await waitGone(pid, 5000);
      }
    }
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
  /**
   * Sets the guest clock to the host's through the virtio-serial port "torpor.clock"
   * (the guest agent answers "ok <before_ms> <after_ms>"). Returns the correction in ms.
   */
  async syncClock(vmDir: string, timeoutMs = 3000): Promise<number> {
    const base = this.clockBase(vmDir);
    const rfd = fs.openSync(base + '.out', fs.constants.O_RDONLY | fs.constants.O_NONBLOCK);
    try {
      const buf = Buffer.alloc(4096);
      const readSome = (): string => {
        try {
          const n = fs.readSync(rfd, buf, 0, buf.length, null);
          return n > 0 ? buf.toString('utf8', 0, n) : '';
        } catch (e) {
          if ((e as NodeJS.ErrnoException).code === 'EAGAIN') return '';
          throw e;
        }
      };
      while (readSome()) {
        /* drain stale answers */
      }
      const wfd = fs.openSync(base + '.in', fs.constants.O_WRONLY | fs.constants.O_NONBLOCK);
      const hostMs = performance.timeOrigin + performance.now();
      try {
        fs.writeSync(wfd, `T ${hostMs.toFixed(3)}\n`);
      } finally {
        fs.closeSync(wfd);
      }
      const deadline = Date.now() + timeoutMs;
      let acc = '';
      for (;;) {
        acc += readSome();
        const m = /(ok|err) ([0-9.]+) ([0-9.]+)\n/.exec(acc);
        if (m) {
          if (m[1] !== 'ok') throw new Error('guest agent could not set the clock');
          return hostMs - parseFloat(m[2]);
        }
        if (Date.now() > deadline) throw new Error(`guest clock agent did not answer within ${timeoutMs} ms`);
        await sleep(1);
      }
    } finally {
      fs.closeSync(rfd);
    }
  }

  // ------------------------------------------------------------------ Vmm
  boot(vm: VmLaunch): Promise<RunningVm> {
    return this.withLock(vm.vmDir, () => this.bootLocked(vm));
  }

  private async bootLocked(vm: VmLaunch): Promise<RunningVm> {
    this.validate(vm);
    const vmDir = path.resolve(vm.vmDir);
    const t0 = Date.now();
    const deadline = t0 + this.bootDeadlineMs;
    if (this.isRunning(vm.machineId, vmDir)) throw new Error(`machine ${vm.machineId} already runs (pid ${this.runningPid(vmDir)})`);
    const img = this.imageDir(vm.image);
    for (const f of ['vmlinux', 'initramfs.cpio']) {
      if (!fs.existsSync(path.join(img, f))) throw new Error(`image '${vm.image}' is not built (${path.join(img, f)} missing): run scripts/build-images.sh`);
    }
    const accel = await this.resolveAccel();
    await this.prepareVmDir(vmDir);
    // A cold boot starts from fresh, private, sparse guest memory.
    const memPath = this.memoryPath(vmDir);
    await fs.promises.rm(memPath, { force: true });
    const fh = await fs.promises.open(memPath, fs.constants.O_RDWR | fs.constants.O_CREAT | fs.constants.O_EXCL, 0o600);
    try {
      await fh.truncate(vm.memoryMb * 1024 * 1024);
    } finally {
      await fh.close();
    }
    const pid = await this.launch(vm, this.qemuArgs(vm, accel, false), this.bootDeadlineMs);
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
    let stateWritten = false;
    const resumeGuest = async () => {
      await q.execute('cont').catch((e) => this.log.error({ machineId: vm.machineId, err: e.message }, 'vmm: cont after abort failed'));
      await fs.promises.rm(statePath, { force: true });
    };
    try {
      if (signal?.aborted) throw abortError();
      await q.execute('migrate-set-capabilities', {
        capabilities: [{ capability: 'x-ignore-shared', state: true }],
      });
      const fh = await fs.promises.open(statePath, 'w', 0o600);
      await fh.close();
      if (signal?.aborted) throw abortError();
      await q.execute('migrate', { uri: `exec:umask 077; cat > ${shq(statePath)}` });
      for (;;) {
        const st = await q.execute<{ status?: string; 'error-desc'?: string }>('query-migrate');
        if (st.status === 'completed') break;
        if (st.status === 'failed' || st.status === 'cancelled') throw new Error(`migration ${st.status}: ${st['error-desc'] ?? ''}`);
        if (signal?.aborted) {
          await q.execute('migrate_cancel').catch(() => undefined);
          throw abortError();
        }
        await sleep(2);
      }
      stateWritten = true;
    } catch (e) {
      if (!stateWritten) await resumeGuest();
      throw e;
    }
    const tState = Date.now();
    // The device state is written: from here the suspend goes through (abort is too late).
    await q.execute('quit').catch(() => undefined);
    if (!(await waitGone(pid, 5000))) {
      this.log.warn({ machineId: vm.machineId, pid }, 'vmm: qemu did not quit after migration; killing');
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        /* gone */
      }
      await waitGone(pid, 5000);
    }
    this.cleanupRuntime(vmDir);
    await moveFile(this.memoryPath(vmDir), snapMem);
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
    this.validate(vm);
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
    await this.prepareVmDir(vmDir);
    const memPath = this.memoryPath(vmDir);
    if (path.resolve(files.memoryPath) !== memPath) await moveFile(files.memoryPath, memPath);
    const pid = await this.launch(vm, this.qemuArgs(vm, accel, true), this.resumeDeadlineMs);
    const tLaunched = Date.now();
    let tLoaded = 0;
    let tClock = 0;
    let clockFix = 0;
    try {
      const q = await this.qmp(vmDir, 5000);
      await q.execute('migrate-set-capabilities', {
        capabilities: [{ capability: 'x-ignore-shared', state: true }],
      });
      await q.execute('migrate-incoming', { uri: `exec:cat ${shq(files.statePath)}` });
      for (;;) {
        const st = await q.execute<{ status?: string; 'error-desc'?: string }>('query-migrate');
        if (st.status === 'completed') break;
        if (st.status === 'failed' || st.status === 'cancelled') throw new Error(`loading the snapshot failed: ${st['error-desc'] ?? st.status}`);
        if (!pidAlive(pid)) throw new Error('qemu exited while loading the snapshot');
        if (Date.now() > deadline) throw new Error('loading the snapshot timed out');
        await sleep(2);
      }
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

  // ------------------------------------------------------------------ KVM probe
  /** A short boot under KVM: true when the guest's init ran within the deadline. */
  private async probeKvm(): Promise<boolean> {
    try {
      fs.accessSync('/dev/kvm', fs.constants.R_OK | fs.constants.W_OK);
    } catch {
      this.log.info({}, 'vmm: /dev/kvm not usable; TCG');
      return false;
    }
    const img = this.imageDir('default');
    if (!fs.existsSync(path.join(img, 'vmlinux'))) {
      this.log.warn({ img }, 'vmm: cannot probe KVM without the default image; TCG');
      return false;
    }
    const dir = await fs.promises.mkdtemp(path.join(os.tmpdir(), 'torpor-kvm-probe-'));
    const con = path.join(dir, 'console.log');
    const t0 = Date.now();
    const vm: VmLaunch = { machineId: 'kvm-probe', image: 'default', cpus: 1, memoryMb: 128, env: {}, hostPort: 1, vmDir: dir };
    const args = [
      '-nodefaults', '-no-user-config', '-display', 'none',
      '-accel', 'kvm', '-cpu', 'host',
      '-M', 'microvm,acpi=on,pit=off,pic=off,rtc=on,isa-serial=on,x-option-roms=off',
      '-m', '128M',
      '-kernel', path.join(img, 'vmlinux'),
      '-initrd', path.join(img, 'initramfs.cpio'),
      '-append', this.kernelCmdline(vm, ['torpor.probe=1']),
      '-chardev', `file,id=con,path=${con}`,
      '-serial', 'chardev:con',
      '-no-reboot',
    ];
    const child = spawn(this.qemu, args, { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr!.on('data', (d) => (stderr += d.toString()));
    let exited = false;
    child.on('exit', () => (exited = true));
    child.on('error', () => (exited = true));
    let ok = false;
    try {
      while (Date.now() - t0 < this.probeDeadlineMs) {
        try {
          if (fs.readFileSync(con, 'utf8').includes('TORPOR-PROBE-OK')) {
            ok = true;
            break;
          }
        } catch {
          /* not yet */
        }
        if (exited) break;
        await sleep(20);
      }
    } finally {
      if (!exited && child.pid) {
        try {
          process.kill(child.pid, 'SIGKILL');
        } catch {
          /* gone */
        }
      }
      await fs.promises.rm(dir, { recursive: true, force: true });
    }
    this.log.info({ ok, ms: Date.now() - t0, stderr: stderr.trim().slice(0, 300) }, 'vmm: KVM probe');
    return ok;
  }
}

async function waitGone(pid: number, ms: number): Promise<boolean> {
  const end = Date.now() + ms;
  while (pidAlive(pid)) {
    if (Date.now() > end) return false;
    await sleep(2);
  }
  return true;
}

async function moveFile(from: string, to: string): Promise<void> {
  try {
    await fs.promises.rename(from, to);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EXDEV') throw e;
    await fs.promises.copyFile(from, to);
    await fs.promises.rm(from, { force: true });
  }
}

function execFileP(cmd: string, args: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    const c = spawn(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    c.stderr!.on('data', (d) => (err += d.toString()));
    c.on('error', reject);
    c.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`${cmd} ${args.join(' ')}: ${err.trim()}`))));
  });
}
