// NATS JetStream plumbing shared by the publishers (outbox relays, log shipper) and consumers.
import { connect } from '@nats-io/transport-node';
import type { NatsConnection } from '@nats-io/nats-core';
import { jetstreamManager, JetStreamManager, RetentionPolicy, StorageType } from '@nats-io/jetstream';
import type { Logger } from './log';

export const EVENTS_STREAM = 'TORPOR_EVENTS';
export const LOGS_STREAM = 'TORPOR_LOGS';

const STREAMS = [
  { name: EVENTS_STREAM, subjects: ['machine.>', 'snapshot.>'] },
  { name: LOGS_STREAM, subjects: ['logs.>'] },
];

/** Connects, retrying for ever in the background; resolves once the first connection is up. */
export async function connectNats(url: string, name: string, log: Logger): Promise<NatsConnection> {
  const nc = await connect({
    servers: url.split(','),
    name,
    reconnect: true,
    maxReconnectAttempts: -1,
    reconnectTimeWait: 250,
    waitOnFirstConnect: true,
  });
  (async () => {
    for await (const s of nc.status()) {
      if (s.type === 'disconnect' || s.type === 'reconnect') log.info({ nats: s.type }, 'nats connection');
    }
  })().catch(() => {});
  return nc;
}

/** Creates the Torpor streams if missing (idempotent). Message ids dedupe within 2 minutes (N3). */
export async function ensureStreams(jsm: JetStreamManager): Promise<void> {
  for (const s of STREAMS) {
    try {
      await jsm.streams.info(s.name);
    } catch {
      await jsm.streams.add({
        name: s.name,
        subjects: s.subjects,
        retention: RetentionPolicy.Limits,
        storage: StorageType.File,
        duplicate_window: 120 * 1e9,
      });
    }
  }
}

export async function streamsReady(nc: NatsConnection): Promise<JetStreamManager> {
  const jsm = await jetstreamManager(nc);
  await ensureStreams(jsm);
  return jsm;
}
