// A small QMP (QEMU Machine Protocol) client: one connection per VM, commands
// serialised in order, events delivered to listeners. QMP serves one client at
// a time, so the owner keeps this connection for the VM's lifetime.
import * as net from 'net';
import { EventEmitter } from 'events';

export interface QmpEvent {
  event: string;
  data?: Record<string, unknown>;
  timestamp?: { seconds: number; microseconds: number };
}

export class QmpError extends Error {
  constructor(readonly command: string, readonly qmpClass: string, desc: string) {
    super(`QMP ${command}: ${qmpClass}: ${desc}`);
    this.name = 'QmpError';
  }
}

interface Pending {
  command: string;
  resolve: (v: any) => void;
  reject: (e: Error) => void;
}

export class QmpClient extends EventEmitter {
  private sock: net.Socket | null = null;
  private buf = '';
  private pending: Pending[] = [];
  private closed = false;
  private greeting: ((ok: boolean) => void) | null = null;

  private constructor(readonly socketPath: string) {
    super();
  }

  /** Connects (retrying until `timeoutMs`) and negotiates capabilities. */
  static async connect(socketPath: string, timeoutMs = 5000): Promise<QmpClient> {
    const deadline = Date.now() + timeoutMs;
    let lastErr: unknown;
    for (;;) {
      const c = new QmpClient(socketPath);
      try {
        await c.open(Math.max(200, deadline - Date.now()));
        return c;
      } catch (e) {
        lastErr = e;
        c.close();
        if (Date.now() >= deadline) break;
        await new Promise((r) => setTimeout(r, 10));
      }
    }
    throw new Error(`QMP connect ${socketPath}: ${(lastErr as Error)?.message ?? lastErr}`);
  }

  private open(timeoutMs: number): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        reject(new Error('QMP greeting timeout'));
        this.sock?.destroy();
      }, timeoutMs);
      const sock = net.connect(this.socketPath);
      this.sock = sock;
      sock.setEncoding('utf8');
      sock.on('error', (e) => {
        clearTimeout(timer);
        this.fail(e);
        reject(e);
      });
      sock.on('close', () => {
        clearTimeout(timer);
        this.fail(new Error('QMP connection closed'));
        reject(new Error('QMP connection closed'));
      });
      sock.on('data', (d: string) => this.onData(d));
      this.greeting = (ok) => {
        this.greeting = null;
        if (!ok) return;
        this.execute('qmp_capabilities')
          .then(() => {
            clearTimeout(timer);
            resolve();
          })
          .catch((e) => {
            clearTimeout(timer);
            reject(e);
          });
      };
    });
  }

  private onData(d: string): void {
    this.buf += d;
    let i: number;
    while ((i = this.buf.indexOf('\n')) >= 0) {
      const line = this.buf.slice(0, i).trim();
      this.buf = this.buf.slice(i + 1);
      if (!line) continue;
      let msg: any;
      try {
        msg = JSON.parse(line);
      } catch {
        continue;
      }
      if (msg.QMP) {
        this.greeting?.(true);
      } else if (msg.event) {
        this.emit('event', msg as QmpEvent);
      } else if ('return' in msg || 'error' in msg) {
        const p = this.pending.shift();
        if (!p) continue;
        if (msg.error) p.reject(new QmpError(p.command, msg.error.class, msg.error.desc));
        else p.resolve(msg.return);
      }
    }
  }

  private fail(e: Error): void {
    if (this.closed) return;
    this.closed = true;
    const p = this.pending;
    this.pending = [];
    for (const x of p) x.reject(e);
    this.emit('close', e);
  }

  get isOpen(): boolean {
    return !this.closed && !!this.sock && !this.sock.destroyed;
  }

  /** Sends one command; resolves with its `return` value. */
  execute<T = any>(command: string, args?: Record<string, unknown>): Promise<T> {
    if (this.closed || !this.sock) return Promise.reject(new Error(`QMP ${command}: connection closed`));
    return new Promise<T>((resolve, reject) => {
      this.pending.push({ command, resolve, reject });
      this.sock!.write(JSON.stringify(args ? { execute: command, arguments: args } : { execute: command }) + '\n');
    });
  }

  /** Resolves with the first event named `name` (matching `pred`) or rejects after `timeoutMs`. */
  waitEvent(name: string, timeoutMs: number, pred?: (e: QmpEvent) => boolean): Promise<QmpEvent> {
    return new Promise((resolve, reject) => {
      const onEv = (e: QmpEvent) => {
        if (e.event === name && (!pred || pred(e))) {
          cleanup();
          resolve(e);
        }
      };
      const onClose = (err: Error) => {
        cleanup();
        reject(err);
      };
      const timer = setTimeout(() => {
        cleanup();
        reject(new Error(`QMP: no ${name} event within ${timeoutMs} ms`));
      }, timeoutMs);
      const cleanup = () => {
        clearTimeout(timer);
        this.off('event', onEv);
        this.off('close', onClose);
      };
      this.on('event', onEv);
      this.on('close', onClose);
    });
  }

  close(): void {
    this.closed = true;
    const p = this.pending;
    this.pending = [];
    for (const x of p) x.reject(new Error('QMP connection closed'));
    this.sock?.destroy();
    this.sock = null;
  }
}
