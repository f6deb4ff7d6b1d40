// Transactional outbox (N3): a state change and its event are written in one SQLite
// transaction; the relay publishes pending events to JetStream in order, with the
// event id as Nats-Msg-Id so a re-publish after a crash or an outage is deduplicated.
import type { NatsConnection } from '@nats-io/nats-core';
import { jetstream, JetStreamClient } from '@nats-io/jetstream';
import { Event } from '../gen/torpor/events/v1/events';
import { newEventId } from './ids';
import { currentRequestStartedAt, Logger, preciseNow } from './log';
import { streamsReady } from './nats';
import type { Db } from './sqlite';

export const OUTBOX_MIGRATION = `
CREATE TABLE outbox (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  id TEXT NOT NULL UNIQUE,
  subject TEXT NOT NULL,
  machine_id TEXT NOT NULL,
  sequence INTEGER NOT NULL,
  payload TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  published_at INTEGER
);
CREATE INDEX outbox_pending ON outbox (seq) WHERE published_at IS NULL;
CREATE INDEX outbox_machine ON outbox (machine_id, seq);
CREATE TABLE event_sequences (
  machine_id TEXT NOT NULL,
  family TEXT NOT NULL,
  last INTEGER NOT NULL,
  PRIMARY KEY (machine_id, family)
);
`;

/** Second outbox migration: when the RPC that caused each event arrived. */
export const OUTBOX_REQUESTED_AT_MIGRATION = 'ALTER TABLE outbox ADD COLUMN requested_at REAL';

export type EventInput = Omit<Partial<Event>, 'id' | 'time' | 'sequence'> & { type: string; app: string; machineId: string };

/** `machine.suspended` → `machine.suspended.<app>.<machine_id>` (N1). */
export function subjectFor(type: string, app: string, machineId: string): string {
  return `${type}.${app}.${machineId}`;
}

/** Appends an event; call inside the transaction that makes the change. */
export function appendEvent(db: Db, input: EventInput, now = new Date()): Event {
  const family = input.type.split('.')[0];
  const row = db
    .prepare(
      `INSERT INTO event_sequences (machine_id, family, last) VALUES (?, ?, 1)
       ON CONFLICT (machine_id, family) DO UPDATE SET last = last + 1 RETURNING last`,
    )
    .get(input.machineId, family) as { last: number };
  const event = Event.fromPartial({ ...input, id: newEventId(), time: now, sequence: row.last });
  db.prepare(
    'INSERT INTO outbox (id, subject, machine_id, sequence, payload, created_at, requested_at) VALUES (?, ?, ?, ?, ?, ?, ?)',
  ).run(event.id, subjectFor(event.type, event.app, event.machineId), event.machineId, event.sequence, JSON.stringify(Event.toJSON(event)), now.getTime(), currentRequestStartedAt() ?? null);
  return event;
}

export interface OutboxRow {
  id: string;
  subject: string;
  sequence: number;
  payload: string;
  published_at: number | null;
}

export function eventsOfMachine(db: Db, machineId: string): OutboxRow[] {
  return db.prepare('SELECT id, subject, sequence, payload, published_at FROM outbox WHERE machine_id = ? ORDER BY seq').all(machineId) as OutboxRow[];
}

export interface PublishedEvent {
  subject: string;
  payload: string;
  /** When the RPC that caused it arrived (wall-clock ms), if an RPC did. */
  requestedAt: number | null;
  /** When JetStream acknowledged it (wall-clock ms). */
  publishedAt: number;
}

/** Publishes pending outbox rows in order; survives NATS outages by retrying with backoff. */
export class OutboxRelay {
  private wake?: () => void;
  /** Set by notify(); checked before sleeping, so a commit during a publish is not missed. */
  private dirty = false;
  private stopped = false;
  private loop?: Promise<void>;
  private js?: JetStreamClient;

  constructor(
    private readonly db: Db,
    private readonly nc: () => Promise<NatsConnection>,
    private readonly log: Logger,
    private readonly onPublished?: (e: PublishedEvent) => void,
  ) {}

  start(): void {
    this.loop = this.run();
  }

  /** Call after committing events so they go out now rather than at the next poll. */
  notify(): void {
    this.dirty = true;
    this.wake?.();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.wake?.();
    await this.loop;
  }

  pendingCount(): number {
    return (this.db.prepare('SELECT count(*) FROM outbox WHERE published_at IS NULL').pluck().get() as number) ?? 0;
  }

  private async run(): Promise<void> {
    const pending = this.db.prepare('SELECT seq, id, subject, payload, requested_at FROM outbox WHERE published_at IS NULL ORDER BY seq LIMIT 256');
    const markDone = this.db.prepare('UPDATE outbox SET published_at = ? WHERE seq = ?');
    let backoff = 100;
    while (!this.stopped) {
      try {
        if (!this.js) {
          const nc = await this.nc();
          await streamsReady(nc);
          this.js = jetstream(nc, { timeout: 2000 });
        }
        this.dirty = false;
        const rows = pending.all() as { seq: number; id: string; subject: string; payload: string; requested_at: number | null }[];
        // One at a time: a later event never reaches the stream before an earlier one.
        for (const r of rows) {
          if (this.stopped) return;
          await this.js.publish(r.subject, r.payload, { msgID: r.id });
          const publishedAt = preciseNow();
          markDone.run(Date.now(), r.seq);
          this.onPublished?.({ subject: r.subject, payload: r.payload, requestedAt: r.requested_at, publishedAt });
        }
        backoff = 100;
        if (rows.length === 256 || this.dirty) continue;
        await this.sleep(1000);
      } catch (err) {
        this.log.warn({ err: (err as Error).message, retry_ms: backoff }, 'event relay: publish failed, will retry');
        await this.sleep(backoff);
        backoff = Math.min(backoff * 2, 2000);
      }
    }
  }

  private sleep(ms: number): Promise<void> {
    if (this.dirty && !this.stopped) return Promise.resolve();
    return new Promise((resolve) => {
      const t = setTimeout(done, ms);
      function done() {
        clearTimeout(t);
        resolve();
      }
      this.wake = done;
    });
  }
}
