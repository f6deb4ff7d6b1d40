// TEST DOUBLE. FakeVmm stands in for QemuVmm in unit tests of the host agent:
// no QEMU, no guest. Each "VM" is a tiny Node HTTP server on 127.0.0.1:hostPort
// in this process, answering like the default guest image (/, /counter, /boot,
// /time, /env, /log?n=K), and a suspend writes small fake snapshot files
// (a JSON "device state" holding the counter and boot token, and a small
// "memory" file) so that the agent's file handling, S3/S4 checks and
// resume-vs-cold-boot logic run for real, in milliseconds.
//
// Running VMs are kept in a module-level map shared by all FakeVmm instances of
// the process, so a new FakeVmm (an "agent restart" inside one test process)
// still sees them through isRunning(). A pid file with this process's pid is
// written too, for code that looks at vmDir.
import * as crypto from 'crypto';
import * as fs from 'fs';
import * as http from 'http';
import * as path from 'path';
import { describeSnapshotFiles, verifySnapshotFiles } from './snapshot-files';
import { RunningVm, SnapshotFileSet, Vmm, VmLaunch } from './vmm';

interface FakeGuest {
  machineId: string;
  vmDir: string;
  server: http.Server;
  bootToken: string;
  counter: number;
  env: Record<string, string>;
  clockOffsetMs: number;
  paused: boolean;
}

const guests = new Map<string, FakeGuest>();

export interface FakeVmmOptions {
  /** Simulated cold boot time (default 0). */
  bootDelayMs?: number;
  /** Simulated suspend time before the state is written (default 0); lets tests abort a suspend. */
  suspendDelayMs?: number;
  /** Simulated resume time (default 0). */
  resumeDelayMs?: number;
  /** Size of the fake memory file in bytes (default 4096). */
  memoryFileBytes?: number;
}

function abortError(): Error {
  const e = new Error('suspend aborted');
  e.name = 'AbortError';
  return e;
}

const sleep = (ms: number) => (ms > 0 ? new Promise((r) => setTimeout(r, ms)) : Promise.resolve());

export class FakeVmm implements Vmm {
  readonly accel = 'fake';
  constructor(private readonly opts: FakeVmmOptions = {}) {}

  consolePath(vmDir: string): string {
    return path.join(vmDir, 'console.log');
  }

  isRunning(_machineId: string, vmDir: string): boolean {
    return guests.has(path.resolve(vmDir));
  }

  async boot(vm: VmLaunch): Promise<RunningVm> {
    if (this.isRunning(vm.machineId, vm.vmDir)) throw new Error(`machine ${vm.machineId} already runs`);
    await fs.promises.mkdir(vm.vmDir, { recursive: true, mode: 0o700 });
    await sleep(this.opts.bootDelayMs ?? 0);
    await fs.promises.writeFile(path.join(vm.vmDir, 'memory'), Buffer.alloc(this.opts.memoryFileBytes ?? 4096), { mode: 0o600 });
    const g = await this.start(vm, crypto.randomBytes(16).toString('hex'), 0);
    this.console(g, `fake: booted ${vm.machineId} boot=${g.bootToken}`);
    return { machineId: vm.machineId, pid: process.pid };
  }

  async suspend(vm: VmLaunch, snapshotDir: string, signal?: AbortSignal): Promise<SnapshotFileSet> {
    const key = path.resolve(vm.vmDir);
    const g = guests.get(key);
    if (!g) throw new Error(`machine ${vm.machineId} is not running`);
    if (signal?.aborted) throw abortError();
    g.paused = true;
    await sleep(this.opts.suspendDelayMs ?? 0);
    if (signal?.aborted) {
      g.paused = false;
      throw abortError();
    }
    await fs.promises.mkdir(snapshotDir, { recursive: true, mode: 0o700 });
    const statePath = path.join(snapshotDir, 'state');
    const memoryPath = path.join(snapshotDir, 'memory');
    await fs.promises.writeFile(
      statePath,
      JSON.stringify({ machineId: g.machineId, bootToken: g.bootToken, counter: g.counter }),
      { mode: 0o600 },
    );
    await this.halt(key);
    await fs.promises.rename(path.join(vm.vmDir, 'memory'), memoryPath);
    await fs.promises.chmod(memoryPath, 0o600);
    return describeSnapshotFiles(statePath, memoryPath);
  }

  async resume(vm: VmLaunch, files: SnapshotFileSet): Promise<RunningVm> {
    if (this.isRunning(vm.machineId, vm.vmDir)) throw new Error(`machine ${vm.machineId} already runs: refusing a second VM on its memory`);
    const bad = await verifySnapshotFiles(files);
    if (bad) throw new Error(`snapshot refused: ${bad}`);
    const st = JSON.parse(await fs.promises.readFile(files.statePath, 'utf8')) as { bootToken: string; counter: number };
    await fs.promises.mkdir(vm.vmDir, { recursive: true, mode: 0o700 });
    await fs.promises.rename(files.memoryPath, path.join(vm.vmDir, 'memory'));
    await fs.promises.rm(files.statePath, { force: true });
    await sleep(this.opts.resumeDelayMs ?? 0);
    const g = await this.start(vm, st.bootToken, st.counter);
    this.console(g, `fake: resumed ${vm.machineId}`);
    return { machineId: vm.machineId, pid: process.pid };
  }

  async stop(_machineId: string, vmDir: string): Promise<void> {
    await this.halt(path.resolve(vmDir));
    await fs.promises.rm(path.join(vmDir, 'memory'), { force: true });
  }

  /** Stops every fake VM of this process (for test teardown). */
  static async stopAll(): Promise<void> {
    await Promise.all([...guests.keys()].map((k) => new FakeVmm().halt(k)));
  }

  private async halt(key: string): Promise<void> {
    const g = guests.get(key);
    if (!g) return;
    guests.delete(key);
    await new Promise<void>((r) => {
      g.server.close(() => r());
      g.server.closeAllConnections();
    });
    fs.rmSync(path.join(key, 'qemu.pid'), { force: true });
  }

  private console(g: FakeGuest, line: string): void {
    fs.appendFileSync(this.consolePath(g.vmDir), line + '\n', { mode: 0o600 });
  }

  private async start(vm: VmLaunch, bootToken: string, counter: number): Promise<FakeGuest> {
    const key = path.resolve(vm.vmDir);
    const g: FakeGuest = {
      machineId: vm.machineId,
      vmDir: key,
      bootToken,
      counter,
      env: { ...vm.env },
      clockOffsetMs: 0,
      paused: false,
      server: http.createServer((req, res) => {
        const u = new URL(req.url ?? '/', 'http://x');
        let body: string;
        switch (u.pathname) {
          case '/':
            body = g.machineId;
            break;
          case '/counter':
            body = String(++g.counter);
            break;
          case '/boot':
            body = g.bootToken;
            break;
          case '/time':
            body = (Date.now() + g.clockOffsetMs).toFixed(3);
            break;
          case '/env':
            body = Object.entries({ TORPOR_MACHINE_ID: g.machineId, ...g.env })
              .map(([k, v]) => `${k}=${v}`)
              .join('\n');
            break;
          case '/log': {
            const n = Math.max(0, Math.min(1_000_000, parseInt(u.searchParams.get('n') ?? '10', 10) || 0));
            for (let i = 1; i <= n; i++) this.console(g, `torpor-log ${g.bootToken} ${i}/${n}`);
            body = `logging ${n} lines`;
            break;
          }
          default:
            res.writeHead(404, { 'content-type': 'text/plain' });
            res.end('not found\n');
            return;
        }
        res.writeHead(200, { 'content-type': 'text/plain', connection: 'close' });
        res.end(body + '\n');
      }),
    };
    await new Promise<void>((resolve, reject) => {
      g.server.once('error', reject);
      g.server.listen(vm.hostPort, '127.0.0.1', () => resolve());
    });
    guests.set(key, g);
    fs.writeFileSync(path.join(key, 'qemu.pid'), String(process.pid), { mode: 0o600 });
    return g;
  }
}
