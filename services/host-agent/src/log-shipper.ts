// E2: ships every console line of every VM on this host to JetStream, subject
// logs.<app>.<machine_id>, in order, once: a line's message id is <machine>-<seq>,
// so a batch re-sent after a crash is deduplicated, and the tail position only moves
// after JetStream has acknowledged the batch.
import path from 'node:path';
import type { NatsConnection } from '@nats-io/nats-core';
import { jetstream } from '@nats-io/jetstream';
import { LogLine } from '../../../gen/torpor/events/v1/events';
import type { Logger } from '../../../lib/log';
import { streamsReady } from '../../../lib/nats';
import { ConsoleTail } from './vmm/console-tail';

export class LogShipper {
  private follows = new Map<string, () => void>();
  private ready?: Promise<ReturnType<typeof jetstream>>;

  constructor(
    private readonly nats: () => Promise<NatsConnection>,
    private readonly paths: (machineId: string) => { console: string; vmDir: string },
    private readonly log: Logger,
  ) {}

  watch(machineId: string, app: string): void {
    if (this.follows.has(machineId)) return;
    const { console: consolePath, vmDir } = this.paths(machineId);
    const tail = new ConsoleTail(consolePath, path.join(vmDir, 'console.tail.json'));
    const subject = `logs.${app}.${machineId}`;
    let warned = false;
    const stop = tail.follow(
      async (lines) => {
        const js = await this.jetstream();
        for (const l of lines) {
          const payload = JSON.stringify(LogLine.toJSON({ machineId, app, sequence: l.seq, line: l.text, time: new Date() }));
          await js.publish(subject, payload, { msgID: `${machineId}-${l.seq}` });
        }
        warned = false;
      },
      {
        intervalMs: 100,
        onError: (err) => {
          if (!warned) this.log.warn({ machine: machineId, err: err.message }, 'console lines not shipped yet; retrying');
          warned = true;
        },
      },
    );
    this.follows.set(machineId, stop);
  }

  unwatch(machineId: string): void {
    this.follows.get(machineId)?.();
    this.follows.delete(machineId);
  }

  close(): void {
    for (const id of [...this.follows.keys()]) this.unwatch(id);
  }

  private jetstream() {
    this.ready ??= (async () => {
      const nc = await this.nats();
      await streamsReady(nc);
      return jetstream(nc, { timeout: 2000 });
    })();
    this.ready.catch(() => (this.ready = undefined));
    return this.ready;
  }
}
