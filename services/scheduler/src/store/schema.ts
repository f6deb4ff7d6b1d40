import { OUTBOX_MIGRATION, OUTBOX_REQUESTED_AT_MIGRATION } from '../../../../lib/outbox';

/** Numbered migrations of the scheduler database; append only. */
export const MIGRATIONS = [
  OUTBOX_MIGRATION,
  `
  CREATE TABLE machines (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    app TEXT NOT NULL,
    region TEXT NOT NULL,
    host_id TEXT NOT NULL,
    state TEXT NOT NULL,
    config TEXT NOT NULL,
    instance_id TEXT NOT NULL,
    generation INTEGER NOT NULL DEFAULT 0,
    url TEXT NOT NULL DEFAULT '',
    platform_version INTEGER NOT NULL,
    last_start TEXT,
    snapshot_id TEXT NOT NULL DEFAULT '',
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
  );
  CREATE UNIQUE INDEX machines_app_name ON machines (app, name) WHERE state != 'destroyed';
  CREATE INDEX machines_host ON machines (host_id, state);
  CREATE TABLE hosts (
    host_id TEXT PRIMARY KEY,
    region TEXT NOT NULL,
    address TEXT NOT NULL,
    memory_mb_total INTEGER NOT NULL,
    accel TEXT NOT NULL,
    last_seen INTEGER NOT NULL
  );
  `,
  OUTBOX_REQUESTED_AT_MIGRATION,
  // Guest images each host has built, JSON array.
  `ALTER TABLE hosts ADD COLUMN images TEXT NOT NULL DEFAULT '[]'`,
];
