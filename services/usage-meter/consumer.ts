// The NATS side of the meter: a durable pull consumer on TORPOR_EVENTS (filter machine.>,
// explicit ack). Each message is committed to SQLite by the meter before it is acked.
import type { NatsConnection } from '@nats-io/nats-core';
import { AckPolicy, DeliverPolicy, jetstream, JetStreamManager } from '@nats-io/jetstream';
import type { ConsumerMessages } from '@nats-io/jetstream';
import { EVENTS_STREAM } from '../../lib/nats';
import type { Logger } from '../../lib/log';
import type { Outcome } from './accumulator';
import { BadEventError } from './event-json';

export interface EventHandler {
  handle(payload: string): Outcome;
}

export interface ConsumerOptions {
  durable: string;
  filter: string;
  onOutcome?: (outcome: Outcome | 'bad' | 'error') => void;
}

/** Creates the durable consumer if missing (idempotent for the same config). */
export async function ensureConsumer(jsm: JetStreamManager, o: ConsumerOptions): Promise<void> {
  try {
    await jsm.consumers.info(EVENTS_STREAM, o.durable);
    return;
  } catch {
    /* missing: create it */
  }
  await jsm.consumers.add(EVENTS_STREAM, {
    durable_name: o.durable,
    filter_subject: o.filter,
    ack_policy: AckPolicy.Explicit,
    deliver_policy: DeliverPolicy.All,
    ack_wait: 30 * 1e9,
    max_ack_pending: 1000,
  });
}

export class EventConsumer {
  private messages?: ConsumerMessages;
  private stopped = false;
  private loop?: Promise<void>;

  constructor(
    private readonly nc: NatsConnection,
    private readonly handler: EventHandler,
    private readonly o: ConsumerOptions,
    private readonly log: Logger,
  ) {}

  start(): void {
    this.loop = this.run();
  }

  private async run(): Promise<void> {
    const js = jetstream(this.nc);
    while (!this.stopped) {
      try {
        const consumer = await js.consumers.get(EVENTS_STREAM, this.o.durable);
        this.messages = await consumer.consume({ max_messages: 256 });
        if (this.stopped) await this.messages.close();
        for await (const m of this.messages) {
          let outcome: Outcome | 'bad' | 'error';
          try {
            outcome = this.handler.handle(m.string());
            m.ack();
          } catch (err) {
            if (err instanceof BadEventError) {
              this.log.warn({ err: err.message, subject: m.subject, stream_seq: m.seq }, 'dropping a message that is not a machine event');
              m.term();
              outcome = 'bad';
            } else {
              this.log.error({ err, subject: m.subject }, 'could not record an event; it will be redelivered');
              m.nak(1000);
              outcome = 'error';
            }
          }
          this.o.onOutcome?.(outcome);
          if (outcome === 'gap') this.log.warn({ subject: m.subject }, 'sequence gap: some events of this machine never arrived');
        }
      } catch (err) {
        if (this.stopped) break;
        this.log.warn({ err: err instanceof Error ? err.message : String(err) }, 'event consumer interrupted; retrying');
      }
      if (!this.stopped) await new Promise((r) => setTimeout(r, 1000));
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.messages?.close();
    await this.loop;
  }
}
