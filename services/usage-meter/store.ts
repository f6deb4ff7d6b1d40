// SQLite persistence of the meter's accounts, so a restarted meter continues where it stopped.
import { Db, openDatabase } from '../../lib/sqlite';
import type { BillingState, MachineAccount } from './accumulator';

const MIGRATIONS = [
  `CREATE TABLE accounts (
     machine_id    TEXT PRIMARY KEY,
     app           TEXT NOT NULL,
     state         TEXT NOT NULL,
     billing       TEXT NOT NULL CHECK (billing IN ('running', 'stopped', 'none')),
     since_ms      INTEGER NOT NULL,
     last_sequence INTEGER NOT NULL,
     running_ms    INTEGER NOT NULL,
     stopped_ms    INTEGER NOT NULL,
     gaps          INTEGER NOT NULL,
     memory_mb     INTEGER NOT NULL
   )`,
];

interface Row {
  machine_id: string;
  app: string;
  state: string;
  billing: BillingState;
  since_ms: number;
  last_sequence: number;
  running_ms: number;
  stopped_ms: number;
  gaps: number;
  memory_mb: number;
}

export class UsageStore {
  private readonly db: Db;
  private readonly upsert;

  constructor(file: string) {
    this.db = openDatabase(file, MIGRATIONS);
    this.upsert = this.db.prepare(
      `INSERT INTO accounts (machine_id, app, state, billing, since_ms, last_sequence, running_ms, stopped_ms, gaps, memory_mb)
       VALUES (@machine_id, @app, @state, @billing, @since_ms, @last_sequence, @running_ms, @stopped_ms, @gaps, @memory_mb)
       ON CONFLICT (machine_id) DO UPDATE SET
         app = excluded.app, state = excluded.state, billing = excluded.billing, since_ms = excluded.since_ms,
         last_sequence = excluded.last_sequence, running_ms = excluded.running_ms, stopped_ms = excluded.stopped_ms,
         gaps = excluded.gaps, memory_mb = excluded.memory_mb`,
    );
  }

  load(): MachineAccount[] {
    return (this.db.prepare('SELECT * FROM accounts').all() as Row[]).map((r) => ({
      machineId: r.machine_id,
      app: r.app,
      state: r.state,
      billing: r.billing,
      sinceMs: r.since_ms,
      lastSequence: r.last_sequence,
      runningMs: r.running_ms,
      stoppedMs: r.stopped_ms,
      gaps: r.gaps,
      memoryMb: r.memory_mb,
    }));
  }

  /** Writes one account; returns once committed. */
  save(a: MachineAccount): void {
    this.db.transaction(() =>
      this.upsert.run({
        machine_id: a.machineId,
        app: a.app,
        state: a.state,
        billing: a.billing,
        since_ms: Math.round(a.sinceMs),
        last_sequence: a.lastSequence,
        running_ms: Math.round(a.runningMs),
        stopped_ms: Math.round(a.stoppedMs),
        gaps: a.gaps,
        memory_mb: a.memoryMb,
      }),
    )();
  }

  close(): void {
    this.db.close();
  }
}
