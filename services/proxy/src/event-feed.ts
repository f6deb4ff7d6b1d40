// Machine events from JetStream into the routing table: the stream's last sequence
// is noted, the scheduler is read once (ListMachines), then an ordered consumer on
// machine.> delivers everything after that sequence (events that raced the read are
// replayed in order, so the table converges). No polling.
import type { NatsConnection } from '@nats-io/nats-core';
import { DeliverPolicy, jetstream, JetStreamManager } from '@nats-io/jetstream';
import type { ConsumerMessages } from '@nats-io/jetstream';
import { Event } from '../../../gen/torpor/events/v1/events';
import { EVENTS_STREAM } from '../../../lib/nats';
import type { Logger } from '../../../lib/log';
import type { StateEvent } from './routing-table';

export function parseEvent(payload: string): StateEvent | undefined {
  try {
    const ev = Event.fromJSON(JSON.parse(payload));
    if (!ev.machineId) return undefined;
    return { type: ev.type, machineId: ev.machineId, app: ev.app, toState: ev.toState, sequence: ev.sequence, resumed: ev.resumed };
  } catch {
    return undefined;
  }
}

export class EventFeed {
  private messages?: ConsumerMessages;
  private stopped = false;
  private loop?: Promise<void>;

  constructor(
    private readonly nc: NatsConnection,
    private readonly jsm: JetStreamManager,
    private readonly onEvent: (ev: StateEvent) => void,
    private readonly log: Logger,
  ) {}

  /** The stream position to start after; read it before the scheduler is listed. */
  async position(): Promise<number> {
    const info = await this.jsm.streams.info(EVENTS_STREAM);
    return info.state.last_seq;
  }

  /** Starts delivering events after stream sequence `after`; resolves once subscribed. */
  async start(after: number): Promise<void> {
    const js = jetstream(this.nc);
    const consumer = await js.consumers.get(EVENTS_STREAM, {
      filter_subjects: 'machine.>',
      deliver_policy: DeliverPolicy.StartSequence,
      opt_start_seq: after + 1,
    });
    this.messages = await consumer.consume();
    this.loop = (async () => {
      for await (const m of this.messages!) {
        const ev = parseEvent(m.string());
        if (!ev) {
          this.log.warn({ subject: m.subject }, 'ignoring a message that is not a machine event');
          continue;
        }
        try {
          this.onEvent(ev);
        } catch (err) {
          this.log.error({ err, subject: m.subject }, 'event handler failed');
        }
      }
    })().catch((err) => {
      if (!this.stopped) this.log.error({ err }, 'event feed ended');
    });
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.messages?.close();
    await this.loop;
  }
}
