// Shared helpers of the VMM tests: image cache, free ports, HTTP GET, cleanup by pid.
import { execFileSync } from 'child_process';
import * as fs from 'fs';
import * as http from 'http';
import * as net from 'net';
import * as os from 'os';
import * as path from 'path';
import { buildScriptPath } from '../../services/host-agent/src/vmm/images';
import { pidAlive } from '../../services/host-agent/src/vmm/qemu-vmm';

/** Images are built once into TORPOR_IMAGES_CACHE (default <tmp>/torpor-images-cache) and reused. */
export function imagesDataDir(): string {
  const dir = process.env.TORPOR_IMAGES_CACHE ?? path.join(os.tmpdir(), 'torpor-images-cache');
  execFileSync('bash', [buildScriptPath(), dir], { stdio: ['ignore', 'ignore', 'inherit'] });
  return dir;
}

export function tempDir(prefix: string): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}

export { freePort } from '../../lib/net';

export function get(port: number, p: string, timeoutMs = 5000): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path: p, agent: false, timeout: timeoutMs }, (res) => {
      let b = '';
      res.setEncoding('utf8');
      res.on('data', (d) => (b += d));
      res.on('end', () => (res.statusCode === 200 ? resolve(b.trim()) : reject(new Error(`GET ${p}: ${res.statusCode} ${b}`))));
    });
    req.on('timeout', () => req.destroy(new Error(`GET ${p}: timeout`)));
    req.on('error', reject);
  });
}

/** Resolves true when nothing accepts connections on 127.0.0.1:port. */
export function portClosed(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    s.on('connect', () => {
      s.destroy();
      resolve(false);
    });
    s.on('error', () => resolve(true));
  });
}

/** Kills QEMU processes started by a test, by the pids in their vmDirs (never by name). */
export function killVmDirs(vmDirs: string[]): void {
  for (const d of vmDirs) {
    try {
      const pid = parseInt(fs.readFileSync(path.join(d, 'qemu.pid'), 'utf8'), 10);
      const cmd = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8');
      if (pidAlive(pid) && cmd.includes(d)) process.kill(pid, 'SIGKILL');
    } catch {
      /* not running */
    }
  }
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}
