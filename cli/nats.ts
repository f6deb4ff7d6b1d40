// Reading the Torpor JetStream streams from the CLI: an ordered consumer from the
// start (or only new messages), stopping when caught up unless following.
import { connect } from '@nats-io/transport-node';
import type { NatsConnection } from '@nats-io/nats-core';
import { DeliverPolicy, jetstream } from '@nats-io/jetstream';
import { UnreachableError } from './errors';

export const NATS_HINT = 'is the mesh running? start it with `npm start`, or set NATS_URL (or --nats) to your NATS server';

export async function connectCli(url: string, follow: boolean): Promise<NatsConnection> {
  try {
    return await connect({
      servers: url.split(','),
      name: 'torpor-cli',
      timeout: 3000,
      reconnect: follow,
      maxReconnectAttempts: follow ? -1 : 0,
    });
  } catch (err) {
    throw new UnreachableError(`cannot reach NATS at ${url} (${err instanceof Error ? err.message : String(err)})`, NATS_HINT);
  }
}

export interface ReadOptions {
  stream: string;
  filter: string;
  /** Keep reading new messages after catching up. */
  follow: boolean;
  /** Skip what is already in the stream. */
  onlyNew?: boolean;
  onMessage: (subject: string, data: string) => void;
  /** Ends a follow (e.g. on SIGINT). */
  signal?: AbortSignal;
}

export async function readStream(nc: NatsConnection, o: ReadOptions): Promise<void> {
  const js = jetstream(nc);
  let consumer;
  try {
    consumer = await js.consumers.get(o.stream, {
      filter_subjects: o.filter,
      deliver_policy: o.onlyNew ? DeliverPolicy.New : DeliverPolicy.All,
    });
  } catch (err) {
    const msg = err instanceof Error ? err.message : String(err);
    if (/stream not found/i.test(msg)) {
      throw new Error(`stream ${o.stream} does not exist yet: no Torpor service has connected to this NATS server`);
    }
    throw err;
  }
  if (!o.follow) {
    const info = await consumer.info();
    if (info.num_pending === 0) return;
  }
  const messages = await consumer.consume();
  o.signal?.addEventListener('abort', () => void messages.close(), { once: true });
  for await (const m of messages) {
    o.onMessage(m.subject, m.string());
    if (!o.follow && m.info.pending === 0) break;
  }
}

/** An AbortSignal that fires on SIGINT/SIGTERM, for --follow. */
export function interruptSignal(): AbortSignal {
  const ac = new AbortController();
  const stop = () => ac.abort();
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  return ac.signal;
}
