// Closers run in reverse order of registration on SIGTERM/SIGINT, so a service
// stops taking requests before it closes the stores those requests use.
import type { Logger } from './log';

type Closer = { name: string; close: () => Promise<void> | void };

export class Lifecycle {
  private closers: Closer[] = [];
  private closing?: Promise<void>;

  constructor(private readonly log: Logger) {}

  onClose(name: string, close: Closer['close']): void {
    this.closers.push({ name, close });
  }

  async close(): Promise<void> {
    this.closing ??= (async () => {
      for (const c of [...this.closers].reverse()) {
        try {
          await c.close();
        } catch (err) {
          this.log.warn({ err, closer: c.name }, 'closer failed');
        }
      }
    })();
    return this.closing;
  }

  handleSignals(): void {
    const stop = (signal: string) => {
      this.log.info({ signal }, 'shutting down');
      const hard = setTimeout(() => process.exit(1), 10_000);
      hard.unref();
      this.close().then(() => process.exit(0));
    };
    process.once('SIGTERM', () => stop('SIGTERM'));
    process.once('SIGINT', () => stop('SIGINT'));
  }
}
