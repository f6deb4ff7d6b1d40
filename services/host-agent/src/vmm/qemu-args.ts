// QEMU command lines: checking a VmLaunch, the guest kernel command line, and
// the arguments of a machine's QEMU and of the KVM probe boot.
import * as path from 'path';
import { clockBase, consolePath, memoryPath, pidPath, qmpSocketPath } from './vm-dir';
import { VmLaunch } from './vmm';

const MODULE_LIMIT_CMDLINE = 2000; // x86 COMMAND_LINE_SIZE is 2048

/** Throws on a VmLaunch whose fields cannot go on a command line as they are. */
export function validateLaunch(vm: VmLaunch): void {
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/.test(vm.machineId)) throw new Error(`bad machine id '${vm.machineId}'`);
  if (!Number.isInteger(vm.cpus) || vm.cpus < 1 || vm.cpus > 64) throw new Error(`bad cpus ${vm.cpus}`);
  if (!Number.isInteger(vm.memoryMb) || vm.memoryMb < 64 || vm.memoryMb > 65536) throw new Error(`bad memory_mb ${vm.memoryMb}`);
  if (!Number.isInteger(vm.hostPort) || vm.hostPort < 1 || vm.hostPort > 65535) throw new Error(`bad host port ${vm.hostPort}`);
  if (!path.isAbsolute(vm.vmDir)) throw new Error(`vmDir must be absolute: ${vm.vmDir}`);
}

/** The guest kernel's command line; the machine's env travels in it as base64 (torpor.env). */
export function kernelCmdline(vm: VmLaunch, tscKhz: number | null, extra: string[] = []): string {
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
  if (tscKhz) parts.push(`tsc_early_khz=${tscKhz}`);
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

export interface QemuArgsOptions {
  /** Folder holding the image's vmlinux and initramfs.cpio. */
  imageDir: string;
  accel: 'kvm' | 'tcg';
  /** Start paused, waiting for migrate-incoming (resume from a snapshot). */
  incoming: boolean;
  tscKhz: number | null;
}

/** Arguments of a machine's daemonized QEMU (guest memory file-backed and shared, see qemu-vmm.ts). */
export function qemuArgs(vm: VmLaunch, o: QemuArgsOptions): string[] {
  const img = o.imageDir;
  const vmDir = path.resolve(vm.vmDir);
  const mem = `${vm.memoryMb}M`;
  const args = [
    '-name', `torpor-${vm.machineId}`,
    '-nodefaults', '-no-user-config', '-display', 'none',
    '-accel', o.accel,
    ...(o.accel === 'kvm' ? ['-cpu', 'host'] : []),
    '-M', 'microvm,acpi=on,pit=off,pic=off,rtc=on,isa-serial=on,x-option-roms=off,memory-backend=mem',
    '-m', mem,
    '-smp', String(vm.cpus),
    '-object', `memory-backend-file,id=mem,size=${mem},mem-path=${memoryPath(vmDir)},share=on`,
    '-kernel', path.join(img, 'vmlinux'),
    '-initrd', path.join(img, 'initramfs.cpio'),
    '-append', kernelCmdline(vm, o.tscKhz),
    '-chardev', `file,id=con,path=${consolePath(vmDir)},append=on`,
    '-serial', 'chardev:con',
    '-netdev', `user,id=n0,hostfwd=tcp:127.0.0.1:${vm.hostPort}-:${vm.guestPort ?? 8080}`,
    '-device', 'virtio-net-device,netdev=n0',
    '-device', 'virtio-serial-device',
    '-chardev', `pipe,id=clk,path=${clockBase(vmDir)}`,
    '-device', 'virtserialport,chardev=clk,name=torpor.clock',
    '-qmp', `unix:${qmpSocketPath(vmDir)},server=on,wait=off`,
    '-pidfile', pidPath(vmDir),
    '-daemonize',
  ];
  if (o.incoming) args.push('-S', '-incoming', 'defer');
  return args;
}

/** Arguments of the KVM probe: a foreground 128 MiB boot that prints TORPOR-PROBE-OK to consoleFile. */
export function kvmProbeArgs(imageDir: string, cmdline: string, consoleFile: string): string[] {
  return [
    '-nodefaults', '-no-user-config', '-display', 'none',
    '-accel', 'kvm', '-cpu', 'host',
    '-M', 'microvm,acpi=on,pit=off,pic=off,rtc=on,isa-serial=on,x-option-roms=off',
    '-m', '128M',
    '-kernel', path.join(imageDir, 'vmlinux'),
    '-initrd', path.join(imageDir, 'initramfs.cpio'),
    '-append', cmdline,
    '-chardev', `file,id=con,path=${consoleFile}`,
    '-serial', 'chardev:con',
    '-no-reboot',
  ];
}
