// The agent's own records of the VMs it runs and the snapshots it has loaded.
import type { Db } from '../../../lib/sqlite';

export interface VmRecord {
  machineId: string;
  app: string;
  instanceId: string;
  generation: number;
  image: string;
  cpus: number;
  memoryMb: number;
  env: Record<string, string>;
  hostPort: number;
  guestPort: number;
  running: boolean;
}

export class VmRecords {
  constructor(private readonly db: Db) {}

  get(machineId: string): VmRecord | undefined {
    const r = this.db.prepare('SELECT * FROM vms WHERE machine_id = ?').get(machineId) as Record<string, never> | undefined;
    return r && this.toRecord(r);
  }

  all(): VmRecord[] {
    return (this.db.prepare('SELECT * FROM vms').all() as Record<string, never>[]).map((r) => this.toRecord(r));
  }

  put(v: VmRecord): void {
    this.db
      .prepare(
        `INSERT INTO vms (machine_id, app, instance_id, generation, image, cpus, memory_mb, env, host_port, guest_port, running) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
         ON CONFLICT (machine_id) DO UPDATE SET app = excluded.app, instance_id = excluded.instance_id, generation = excluded.generation,
           image = excluded.image, cpus = excluded.cpus, memory_mb = excluded.memory_mb, env = excluded.env, host_port = excluded.host_port,
           guest_port = excluded.guest_port, running = excluded.running`,
      )
      .run(v.machineId, v.app, v.instanceId, v.generation, v.image, v.cpus, v.memoryMb, JSON.stringify(v.env), v.hostPort, v.guestPort, v.running ? 1 : 0);
  }

  setRunning(machineId: string, running: boolean): void {
    this.db.prepare('UPDATE vms SET running = ? WHERE machine_id = ?').run(running ? 1 : 0, machineId);
  }

  remove(machineId: string): void {
    this.db.prepare('DELETE FROM vms WHERE machine_id = ?').run(machineId);
  }

  /** S3: records that this host begins to load a snapshot; false if it ever did before. */
  markLoaded(snapshotId: string, machineId: string): boolean {
    return this.db.prepare('INSERT OR IGNORE INTO loaded_snapshots (snapshot_id, machine_id, loaded_at) VALUES (?, ?, ?)').run(snapshotId, machineId, Date.now()).changes === 1;
  }

  wasLoaded(snapshotId: string): boolean {
    return !!this.db.prepare('SELECT 1 FROM loaded_snapshots WHERE snapshot_id = ?').get(snapshotId);
  }

  private toRecord(r: Record<string, never>): VmRecord {
    return {
      machineId: r.machine_id,
      app: r.app,
      instanceId: r.instance_id,
      generation: r.generation,
      image: r.image,
      cpus: r.cpus,
      memoryMb: r.memory_mb,
      env: JSON.parse(r.env),
      hostPort: r.host_port,
      guestPort: r.guest_port,
      running: r.running === 1,
    };
  }
}
