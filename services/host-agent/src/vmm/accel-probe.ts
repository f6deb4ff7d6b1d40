// Choosing the accelerator: the TORPOR_ACCEL override, and the short KVM probe
// boot behind 'auto' (TCG when it fails).
import { spawn } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { kernelCmdline, kvmProbeArgs } from './qemu-args';
import { sleep } from './qemu-process';
import type { VmmLogger } from './qemu-vmm';
import { VmLaunch } from './vmm';

export type Accel = 'kvm' | 'tcg';

/** The configured accelerator; env TORPOR_ACCEL ('kvm' or 'tcg') overrides 'auto'. */
export function requestedAccel(opt: 'auto' | Accel | undefined): 'auto' | Accel {
  const accel = opt ?? 'auto';
  const envAccel = process.env.TORPOR_ACCEL;
  if (accel === 'auto' && (envAccel === 'kvm' || envAccel === 'tcg')) return envAccel;
  return accel;
}

export interface KvmProbeOptions {
  qemu: string;
  /** Folder of the 'default' image, which the probe boots. */
  imageDir: string;
  tscKhz: number | null;
  deadlineMs: number;
  log: VmmLogger;
}

/** A short boot under KVM: true when the guest's init ran within the deadline. */
export async function probeKvm(o: KvmProbeOptions): Promise<boolean> {
  try {
    fs.accessSync('/dev/kvm', fs.constants.R_OK | fs.constants.W_OK);
  } catch {
    o.log.info({}, 'vmm: /dev/kvm not usable; TCG');
    return false;
  }
  const img = o.imageDir;
  if (!fs.existsSync(path.join(img, 'vmlinux'))) {
    o.log.warn({ img }, 'vmm: cannot probe KVM without the default image; TCG');
    return false;
  }
  const dir = await fs.promises.mkdtemp(path.join(os.tmpdir(), 'torpor-kvm-probe-'));
  const con = path.join(dir, 'console.log');
  const t0 = Date.now();
  const vm: VmLaunch = { machineId: 'kvm-probe', image: 'default', cpus: 1, memoryMb: 128, env: {}, hostPort: 1, vmDir: dir };
  const args = kvmProbeArgs(img, kernelCmdline(vm, o.tscKhz, ['torpor.probe=1']), con);
  const child = spawn(o.qemu, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (d) => (stderr += d.toString()));
  let exited = false;
  child.on('exit', () => (exited = true));
  child.on('error', () => (exited = true));
  let ok = false;
  try {
    while (Date.now() - t0 < o.deadlineMs) {
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
  o.log.info({ ok, ms: Date.now() - t0, stderr: stderr.trim().slice(0, 300) }, 'vmm: KVM probe');
  return ok;
}
