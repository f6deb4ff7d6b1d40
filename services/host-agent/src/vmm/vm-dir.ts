// The files of one machine's vmDir, and the image folders: their paths, and
// getting a vmDir ready for QEMU.
//
// Files in vmDir: memory (live guest RAM), console.log (append=on, survives
// suspend/resume), qemu.pid, qmp.sock (or a short path, see qmpSocketPath),
// clock.in/clock.out (FIFOs of the virtio-serial port "torpor.clock").
import { spawn } from 'child_process';
import * as crypto from 'crypto';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

export function consolePath(vmDir: string): string {
  return path.join(vmDir, 'console.log');
}

export function memoryPath(vmDir: string): string {
  return path.join(vmDir, 'memory');
}

export function pidPath(vmDir: string): string {
  return path.join(vmDir, 'qemu.pid');
}

/** QMP socket: <vmDir>/qmp.sock, or a short private path when that is too long for a unix socket. */
export function qmpSocketPath(vmDir: string): string {
  const p = path.join(path.resolve(vmDir), 'qmp.sock');
  if (Buffer.byteLength(p) <= 100) return p;
  const dir = path.join(os.tmpdir(), `torpor-qmp-${process.getuid?.() ?? 0}`);
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  const h = crypto.createHash('sha256').update(path.resolve(vmDir)).digest('hex').slice(0, 24);
  return path.join(dir, `${h}.sock`);
}

/** Base path of the clock FIFOs; QEMU's pipe chardev adds .in and .out. */
export function clockBase(vmDir: string): string {
  return path.join(vmDir, 'clock');
}

/** <dataDir>/images/<image>, after checking the name. */
export function imageDir(dataDir: string, image: string): string {
  if (!/^[a-z0-9][a-z0-9._-]{0,62}$/.test(image)) throw new Error(`bad image name '${image}'`);
  return path.join(dataDir, 'images', image);
}

/** Creates vmDir (private), the console log and the clock FIFOs. */
export async function prepareVmDir(vmDir: string): Promise<void> {
  await fs.promises.mkdir(vmDir, { recursive: true, mode: 0o700 });
  await fs.promises.chmod(vmDir, 0o700);
  // Console log: created private, then appended to by every QEMU of this machine.
  const fd = await fs.promises.open(consolePath(vmDir), fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_APPEND, 0o600);
  await fd.close();
  for (const suffix of ['.in', '.out']) {
    const p = clockBase(vmDir) + suffix;
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

/** rename, or copy and delete when the two paths are on different filesystems. */
export async function moveFile(from: string, to: string): Promise<void> {
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
