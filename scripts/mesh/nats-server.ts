// A real nats-server (JetStream on) for integration tests: a free loopback port and a
// temporary data folder; stop, restart on the same port and data, and clean up by pid.
//
//   const nats = await NatsServer.start();
//   ... nats.url ...
//   await nats.stop(); await nats.restart();   // same port, same JetStream data
//   await nats.dispose();                      // in after(): kill and remove the temp dir
import { ChildProcess, spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { freePort } from '../../lib/net';

export const NATS_SERVER_BIN = process.env.NATS_SERVER_BIN ?? '/usr/sbin/nats-server';

/** Resolves once host:port accepts a TCP connection; rejects after timeoutMs. */
export async function waitForPort(port: number, timeoutMs = 10_000, host = '127.0.0.1', alive: () => boolean = () => true): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const sock = net.connect({ port, host });
      sock.once('connect', () => {
        sock.destroy();
        resolve(true);
      });
      sock.once('error', () => resolve(false));
    });
    if (ok) return;
    if (!alive()) throw new Error(`process exited before port ${port} accepted connections`);
    if (Date.now() > deadline) throw new Error(`nothing accepted connections on ${host}:${port} within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

export class NatsServer {
  private proc?: ChildProcess;
  private output = '';
  private exited = true;

  private constructor(
    readonly port: number,
    readonly dataDir: string,
    private readonly ownsDir: boolean,
  ) {}

  /** Starts on a free port with a fresh temp data folder (or the given one). */
  static async start(opts: { port?: number; dataDir?: string } = {}): Promise<NatsServer> {
    if (!fs.existsSync(NATS_SERVER_BIN)) {
      throw new Error(`${NATS_SERVER_BIN} not found: install it with \`sudo apt-get install nats-server\` (or set NATS_SERVER_BIN)`);
    }
    const dataDir = opts.dataDir ?? fs.mkdtempSync(path.join(os.tmpdir(), 'torpor-nats-'));
    const server = new NatsServer(opts.port ?? (await freePort()), dataDir, !opts.dataDir);
    try {
      await server.launch();
    } catch (err) {
      await server.dispose();
      throw err;
    }
    return server;
  }

  get url(): string {
    return `nats://127.0.0.1:${this.port}`;
  }

  get pid(): number | undefined {
    return this.exited ? undefined : this.proc?.pid;
  }

  get running(): boolean {
    return !this.exited;
  }

  /** What the server printed (for failure messages). */
  get log(): string {
    return this.output;
  }

  private async launch(): Promise<void> {
    if (this.running) return;
    const proc = spawn(NATS_SERVER_BIN, ['-js', '-sd', this.dataDir, '-a', '127.0.0.1', '-p', String(this.port)], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.proc = proc;
    this.exited = false;
    const keep = (b: Buffer) => {
      this.output = (this.output + b.toString()).slice(-20_000);
    };
    proc.stdout?.on('data', keep);
    proc.stderr?.on('data', keep);
    proc.once('exit', () => {
      if (this.proc === proc) this.exited = true;
    });
    try {
      await waitForPort(this.port, 15_000, '127.0.0.1', () => !this.exited);
    } catch (err) {
      throw new Error(`${(err as Error).message}\nnats-server output:\n${this.output}`);
    }
  }

  /** Stops the server (SIGTERM, then SIGKILL after 5 s); resolves once it has exited. */
  async stop(): Promise<void> {
    const proc = this.proc;
    if (!proc || this.exited) return;
    const gone = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
    process.kill(proc.pid!, 'SIGTERM');
    const hard = setTimeout(() => {
      if (!this.exited) process.kill(proc.pid!, 'SIGKILL');
    }, 5000);
    await gone;
    clearTimeout(hard);
    this.exited = true;
  }

  /** Stops it if running and starts it again on the same port and data folder. */
  async restart(): Promise<void> {
    await this.stop();
    await this.launch();
  }

  /** Stops the server and removes the temp data folder it created. Safe to call twice. */
  async dispose(): Promise<void> {
    await this.stop();
    if (this.ownsDir) fs.rmSync(this.dataDir, { recursive: true, force: true });
  }
}
