import { OUTBOX_MIGRATION, OUTBOX_REQUESTED_AT_MIGRATION } from '../../../lib/outbox';

/** Numbered migrations of the snapshot-store database; append only. */
export const MIGRATIONS = [
  OUTBOX_MIGRATION,
  `
  CREATE TABLE generations (
    machine_id TEXT PRIMARY KEY,
    app TEXT NOT NULL,
    generation INTEGER NOT NULL
  );
  CREATE TABLE snapshots (
    id TEXT PRIMARY KEY,
    machine_id TEXT NOT NULL,
    app TEXT NOT NULL,
    host_id TEXT NOT NULL,
    generation INTEGER NOT NULL,
    instance_id TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('ready', 'claimed', 'consumed', 'invalidated')),
    files TEXT NOT NULL,
    size_bytes INTEGER NOT NULL,
    reason TEXT NOT NULL DEFAULT '',
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
  );
  CREATE INDEX snapshots_machine ON snapshots (machine_id, created_at);
  CREATE INDEX snapshots_host ON snapshots (host_id, state);
  CREATE TABLE claims (
    id TEXT PRIMARY KEY,
    snapshot_id TEXT NOT NULL UNIQUE REFERENCES snapshots (id) ON DELETE CASCADE,
    host_id TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    completed_at INTEGER
  );
  `,
  OUTBOX_REQUESTED_AT_MIGRATION,
];
