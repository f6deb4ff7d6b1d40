// Runs one Torpor service as a child process (`node dist/services/<name>/main.js`),
// waits for its JSON "listening" log line to learn its ports, keeps its log, and
// stops it by pid (SIGTERM, then SIGKILL) — never by name.
import { ChildProcess, spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

const ROOT = path.resolve(__dirname, '..', '..', '..');

export interface Listening {
  grpc_port?: number;
  metrics_port?: number;
  http_port?: number;
  [k: string]: unknown;
}

export class ServiceProcess {
  private proc?: ChildProcess;
  private exited = true;
  private lines: string[] = [];
  listening: Listening = {};

  constructor(
    readonly name: string,
    /** Folder under dist/services, e.g. "scheduler". */
    readonly service: string,
    public args: string[],
    readonly opts: { env?: NodeJS.ProcessEnv; logFile?: string; onLine?: (line: string) => void } = {},
  ) {}

  get pid(): number | undefined {
    return this.exited ? undefined : this.proc?.pid;
  }

  get running(): boolean {
    return !this.exited;
  }

  /** The last lines it printed (for failure messages). */
  log(n = 40): string {
    return this.lines.slice(-n).join('\n');
  }

  /** Lines it printed that contain `needle`. */
  grep(needle: string): string[] {
    return this.lines.filter((l) => l.includes(needle));
  }

  async start(timeoutMs = 20_000): Promise<Listening> {
    const main = path.join(ROOT, 'dist', 'services', this.service, 'main.js');
    const proc = spawn(process.execPath, [main, ...this.args], { cwd: ROOT, env: { ...process.env, ...this.opts.env }, stdio: ['ignore', 'pipe', 'pipe'] });
    this.proc = proc;
    this.exited = false;
    const logStream = this.opts.logFile ? fs.createWriteStream(this.opts.logFile, { flags: 'a' }) : undefined;
    proc.once('exit', () => {
      if (this.proc === proc) this.exited = true;
      logStream?.end();
    });
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${this.name} did not start within ${timeoutMs} ms:\n${this.log()}`)), timeoutMs);
      let buf = '';
      const onData = (chunk: Buffer) => {
        logStream?.write(chunk);
        buf += chunk.toString();
        let nl;
        while ((nl = buf.indexOf('\n')) >= 0) {
          const line = buf.slice(0, nl);
          buf = buf.slice(nl + 1);
          this.lines.push(line);
          if (this.lines.length > 5000) this.lines.splice(0, 1000);
          this.opts.onLine?.(line);
          if (line.includes('"listening"')) {
            try {
              this.listening = JSON.parse(line);
              clearTimeout(timer);
              resolve(this.listening);
            } catch {
              /* not JSON */
            }
          }
        }
      };
      proc.stdout!.on('data', onData);
      proc.stderr!.on('data', onData);
      proc.once('exit', (code) => {
        clearTimeout(timer);
        reject(new Error(`${this.name} exited with code ${code} before it was listening:\n${this.log()}`));
      });
    });
  }

  async stop(signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
    const proc = this.proc;
    if (!proc || this.exited) return;
    const gone = new Promise<void>((r) => proc.once('exit', () => r()));
    process.kill(proc.pid!, signal);
    const hard = setTimeout(() => !this.exited && process.kill(proc.pid!, 'SIGKILL'), 8000);
    await gone;
    clearTimeout(hard);
    this.exited = true;
  }

  /** SIGKILL: a crash, for tests of what survives one. */
  kill(): Promise<void> {
    return this.stop('SIGKILL');
  }

  async restart(): Promise<Listening> {
    await this.stop();
    return this.start();
  }
}
