// Host-side process helpers for QEMU: starting the daemon, pid files, liveness,
// ending a process, RSS, and the host TSC frequency.
import { spawn } from 'child_process';
import * as fs from 'fs';

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

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

/** Resolves true once the process is gone, false if it still runs after ms. */
export async function waitGone(pid: number, ms: number): Promise<boolean> {
  const end = Date.now() + ms;
  while (pidAlive(pid)) {
    if (Date.now() > end) return false;
    await sleep(2);
  }
  return true;
}

/** Sends a signal, ignoring a process that is already gone. */
export function signalPid(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch {
    /* gone */
  }
}

/** SIGTERM, then SIGKILL if the process is still there after 2 s. */
export async function terminatePid(pid: number): Promise<void> {
  if (!pidAlive(pid)) return;
  signalPid(pid, 'SIGTERM');
  if (!(await waitGone(pid, 2000))) {
    signalPid(pid, 'SIGKILL');
    await waitGone(pid, 5000);
  }
}

/**
 * The live QEMU whose pid is in pidFile (an absolute path), or null. Works from a
 * fresh agent: it needs only the pid file and /proc.
 */
export function livePidFromFile(pidFile: string): number | null {
  let pid: number;
  try {
    pid = parseInt(fs.readFileSync(pidFile, 'utf8').trim(), 10);
  } catch {
    return null;
  }
  if (!pidAlive(pid)) return null;
  try {
    // Guard against pid reuse: the process must be a QEMU of this vmDir.
    const cmd = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8');
    if (!cmd.includes(pidFile)) return null;
  } catch {
    return null;
  }
  return pid;
}

const GUEST_NICENESS = Number(process.env.TORPOR_GUEST_NICENESS ?? 5);

/**
 * Runs QEMU with -daemonize (args must write pidFile); resolves with the daemon's
 * pid once QEMU is initialised, i.e. once the foreground process has exited 0.
 */
export async function spawnDaemonized(qemu: string, args: string[], cwd: string, pidFile: string, deadlineMs: number): Promise<number> {
  // Guests run a little below the control plane: a guest busy translating code under TCG
  // must not hold up the RPCs and events of every other machine. (Every QEMU thread inherits it.)
  const child = spawn('nice', ['-n', String(GUEST_NICENESS), qemu, ...args], { stdio: ['ignore', 'ignore', 'pipe'], cwd });
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
      pid = parseInt(fs.readFileSync(pidFile, 'utf8').trim(), 10) || 0;
    } catch {
      await sleep(5);
    }
  }
  if (!pid) throw new Error('qemu started but wrote no pid file');
  return pid;
}
