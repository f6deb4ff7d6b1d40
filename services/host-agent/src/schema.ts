/** Numbered migrations of the host agent's local database; append only. */
export const MIGRATIONS = [
  `
  CREATE TABLE vms (
    machine_id TEXT PRIMARY KEY,
    app TEXT NOT NULL,
    instance_id TEXT NOT NULL,
    generation INTEGER NOT NULL,
    image TEXT NOT NULL,
    cpus INTEGER NOT NULL,
    memory_mb INTEGER NOT NULL,
    env TEXT NOT NULL,
    host_port INTEGER NOT NULL,
    running INTEGER NOT NULL
  );
  -- S3: every snapshot this host has ever begun to load; never loaded twice.
  CREATE TABLE loaded_snapshots (
    snapshot_id TEXT PRIMARY KEY,
    machine_id TEXT NOT NULL,
    loaded_at INTEGER NOT NULL
  );
  `,
  // The guest port a machine's url forwards to.
  'ALTER TABLE vms ADD COLUMN guest_port INTEGER NOT NULL DEFAULT 8080',
];
