// Machines and hosts in SQLite. Every state change is written together with its
// event in one transaction (N3); listeners hear about it after the commit.
import type { MachineConfig, StartInfo } from '../../../../gen/torpor/machines/v1/machines';
import { notFound } from '../../../../lib/errors';
import { appendEvent, EventInput } from '../../../../lib/outbox';
import type { Db } from '../../../../lib/sqlite';
import { assertTransition, eventTypeFor, HOLDS_MEMORY, State } from '../domain/states';
import type { HostView } from '../domain/placement';

export interface MachineRecord {
  id: string;
  name: string;
  app: string;
  region: string;
  hostId: string;
  state: State;
  config: MachineConfig;
  instanceId: string;
  generation: number;
  url: string;
  platformVersion: number;
  lastStart: StartInfo | null;
  snapshotId: string;
  createdAt: number;
  updatedAt: number;
}

export interface HostRecord {
  hostId: string;
  region: string;
  address: string;
  memoryMbTotal: number;
  accel: string;
  lastSeen: number;
  images: string[];
}

interface MachineRow {
  id: string;
  name: string;
  app: string;
  region: string;
  host_id: string;
  state: State;
  config: string;
  instance_id: string;
  generation: number;
  url: string;
  platform_version: number;
  last_start: string | null;
  snapshot_id: string;
  created_at: number;
  updated_at: number;
}

const toRecord = (r: MachineRow): MachineRecord => ({
  id: r.id,
  name: r.name,
  app: r.app,
  region: r.region,
  hostId: r.host_id,
  state: r.state,
  config: JSON.parse(r.config),
  instanceId: r.instance_id,
  generation: r.generation,
  url: r.url,
  platformVersion: r.platform_version,
  lastStart: r.last_start ? JSON.parse(r.last_start) : null,
  snapshotId: r.snapshot_id,
  createdAt: r.created_at,
  updatedAt: r.updated_at,
});

/** Fields a transition may change besides the state. */
export type MachinePatch = Partial<Pick<MachineRecord, 'hostId' | 'config' | 'instanceId' | 'generation' | 'url' | 'platformVersion' | 'lastStart' | 'snapshotId'>>;

/** Event fields a transition may add (reason, snapshot, durations). */
export type EventExtra = Partial<Omit<EventInput, 'type' | 'app' | 'machineId'>>;

export type ChangeListener = (m: MachineRecord) => void;

export class MachineStore {
  private listeners = new Set<ChangeListener>();

  constructor(
    private readonly db: Db,
    private readonly onEvents: () => void,
    private readonly now: () => number = Date.now,
  ) {}

  onChange(fn: ChangeListener): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  insert(m: Omit<MachineRecord, 'createdAt' | 'updatedAt'>): MachineRecord {
    const t = this.now();
    const rec = this.db.transaction(() => {
      this.db
        .prepare(
          `INSERT INTO machines (id, name, app, region, host_id, state, config, instance_id, generation, url, platform_version, last_start, snapshot_id, created_at, updated_at)
           VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
        )
        .run(m.id, m.name, m.app, m.region, m.hostId, m.state, JSON.stringify(m.config), m.instanceId, m.generation, m.url, m.platformVersion, null, '', t, t);
      const rec = this.get(m.id);
      this.event(rec, 'machine.created', '', m.state, {});
      return rec;
    })();
    this.changed(rec);
    return rec;
  }

  /**
   * Moves a machine from the state the caller saw to `to`, with its event, atomically.
   * Refuses if the machine is no longer in `from` (a lost race) or the transition does not exist.
   */
  transition(id: string, from: State, to: State, patch: MachinePatch = {}, extra: EventExtra = {}): MachineRecord {
    assertTransition(id, from, to);
    const rec = this.db.transaction(() => {
      const cur = this.get(id);
      if (cur.state !== from) throw new Error(`machine ${id} is ${cur.state}, expected ${from}: transitions must be serialised`);
      const next: MachineRecord = { ...cur, ...patch, state: to, updatedAt: this.now() };
      this.db
        .prepare(
          `UPDATE machines SET state = ?, host_id = ?, config = ?, instance_id = ?, generation = ?, url = ?, platform_version = ?, last_start = ?, snapshot_id = ?, updated_at = ? WHERE id = ?`,
        )
        .run(next.state, next.hostId, JSON.stringify(next.config), next.instanceId, next.generation, next.url, next.platformVersion, next.lastStart ? JSON.stringify(next.lastStart) : null, next.snapshotId, next.updatedAt, id);
      this.event(next, eventTypeFor(to, from), from, to, extra);
      return next;
    })();
    this.changed(rec);
    return rec;
  }

  get(id: string): MachineRecord {
    const r = this.db.prepare('SELECT * FROM machines WHERE id = ?').get(id) as MachineRow | undefined;
    if (!r) throw notFound(`machine ${id} does not exist`);
    return toRecord(r);
  }

  find(id: string): MachineRecord | undefined {
    const r = this.db.prepare('SELECT * FROM machines WHERE id = ?').get(id) as MachineRow | undefined;
    return r && toRecord(r);
  }

  nameTaken(app: string, name: string): boolean {
    return !!this.db.prepare("SELECT 1 FROM machines WHERE app = ? AND name = ? AND state != 'destroyed'").get(app, name);
  }

  list(filter: { app?: string; state?: State }): MachineRecord[] {
    const where = ["state != 'destroyed'"];
    const args: unknown[] = [];
    if (filter.state) (where[0] = 'state = ?'), args.push(filter.state);
    if (filter.app) where.push('app = ?'), args.push(filter.app);
    return (this.db.prepare(`SELECT * FROM machines WHERE ${where.join(' AND ')} ORDER BY created_at, id`).all(...args) as MachineRow[]).map(toRecord);
  }

  inStates(states: readonly State[]): MachineRecord[] {
    return (this.db.prepare(`SELECT * FROM machines WHERE state IN (${states.map(() => '?').join(',')})`).all(...states) as MachineRow[]).map(toRecord);
  }

  upsertHost(h: HostRecord): void {
    this.db
      .prepare(
        `INSERT INTO hosts (host_id, region, address, memory_mb_total, accel, last_seen, images) VALUES (?, ?, ?, ?, ?, ?, ?)
         ON CONFLICT (host_id) DO UPDATE SET region = excluded.region, address = excluded.address,
           memory_mb_total = excluded.memory_mb_total, accel = excluded.accel, last_seen = excluded.last_seen, images = excluded.images`,
      )
      .run(h.hostId, h.region, h.address, h.memoryMbTotal, h.accel, h.lastSeen, JSON.stringify(h.images));
  }

  host(hostId: string): HostRecord | undefined {
    const r = this.db.prepare('SELECT * FROM hosts WHERE host_id = ?').get(hostId) as Record<string, never> | undefined;
    return r && { hostId: r.host_id, region: r.region, address: r.address, memoryMbTotal: r.memory_mb_total, accel: r.accel, lastSeen: r.last_seen, images: JSON.parse(r.images) };
  }

  /** Hosts with the memory their machines hold, for placement (summed in SQL: no row is parsed). */
  hostViews(aliveSince: number): HostView[] {
    const held = HOLDS_MEMORY.map(() => '?').join(',');
    const used = new Map(
      (this.db
        .prepare(`SELECT host_id, SUM(json_extract(config, '$.guest.memoryMb')) AS mb FROM machines WHERE state IN (${held}) GROUP BY host_id`)
        .all(...HOLDS_MEMORY) as { host_id: string; mb: number }[]).map((r) => [r.host_id, r.mb]),
    );
    return (this.db.prepare('SELECT * FROM hosts').all() as Record<string, never>[]).map((r) => ({
      hostId: r.host_id,
      region: r.region,
      memoryMbTotal: r.memory_mb_total,
      memoryMbUsed: used.get(r.host_id) ?? 0,
      alive: r.last_seen >= aliveSince,
      images: JSON.parse(r.images),
    }));
  }

  private event(m: MachineRecord, type: string, from: string, to: string, extra: EventExtra): void {
    appendEvent(this.db, {
      instanceId: m.instanceId,
      region: m.region,
      hostId: m.hostId,
      generation: m.generation,
      memoryMb: m.config.guest?.memoryMb ?? 0,
      snapshotId: m.snapshotId,
      ...extra,
      type,
      app: m.app,
      machineId: m.id,
      fromState: from,
      toState: to,
    });
  }

  private changed(m: MachineRecord): void {
    this.onEvents();
    for (const l of this.listeners) l(m);
  }
}
