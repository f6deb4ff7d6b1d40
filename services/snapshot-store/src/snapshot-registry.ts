// The snapshot registry: the single authority on which snapshot may be loaded.
// Consume-once claims (S3) and boot-generation fencing (S2) are decided here, each
// in one SQLite transaction together with the event it publishes (N3).
// Plain TypeScript over SQLite: no gRPC, no NATS.
import { randomBytes } from 'node:crypto';
import { failedPrecondition, invalidArgument, notFound } from '../../../lib/errors';
import { newSnapshotId } from '../../../lib/ids';
import { appendEvent } from '../../../lib/outbox';
import type { Db } from '../../../lib/sqlite';

export type SnapshotState = 'ready' | 'claimed' | 'consumed' | 'invalidated';

export interface SnapshotFilesRecord {
  statePath: string;
  stateSize: number;
  stateSha256: string;
  memoryPath: string;
  memorySize: number;
  memoryIdentity: string;
}

export interface SnapshotRecord {
  id: string;
  machineId: string;
  app: string;
  hostId: string;
  generation: number;
  instanceId: string;
  state: SnapshotState;
  files: SnapshotFilesRecord;
  sizeBytes: number;
  reason: string;
  createdAt: number;
  updatedAt: number;
}

interface Row {
  id: string;
  machine_id: string;
  app: string;
  host_id: string;
  generation: number;
  instance_id: string;
  state: SnapshotState;
  files: string;
  size_bytes: number;
  reason: string;
  created_at: number;
  updated_at: number;
}

const toRecord = (r: Row): SnapshotRecord => ({
  id: r.id,
  machineId: r.machine_id,
  app: r.app,
  hostId: r.host_id,
  generation: r.generation,
  instanceId: r.instance_id,
  state: r.state,
  files: JSON.parse(r.files),
  sizeBytes: r.size_bytes,
  reason: r.reason,
  createdAt: r.created_at,
  updatedAt: r.updated_at,
});

export interface RegisterInput {
  id?: string;
  machineId: string;
  app: string;
  hostId: string;
  generation: number;
  instanceId: string;
  files: SnapshotFilesRecord;
  sizeBytes: number;
}

export interface ClaimInput {
  snapshotId: string;
  machineId: string;
  hostId: string;
  generation: number;
}

export class SnapshotRegistry {
  constructor(
    private readonly db: Db,
    /** Called after each commit that wrote events, to wake the relay. */
    private readonly onEvents: () => void = () => {},
    private readonly now: () => number = Date.now,
  ) {}

  currentGeneration(machineId: string): number {
    return (this.db.prepare('SELECT generation FROM generations WHERE machine_id = ?').pluck().get(machineId) as number | undefined) ?? 0;
  }

  /** S2: a new boot generation invalidates every snapshot of an earlier one. */
  beginGeneration(machineId: string, app: string, generation: number, reason: string): SnapshotRecord[] {
    return this.write(() => {
      const current = this.currentGeneration(machineId);
      if (generation <= current) {
        throw failedPrecondition(
          `generation ${generation} of machine ${machineId} is not newer than the current generation ${current}: a newer boot has already begun`,
        );
      }
      this.db
        .prepare('INSERT INTO generations (machine_id, app, generation) VALUES (?, ?, ?) ON CONFLICT (machine_id) DO UPDATE SET generation = excluded.generation')
        .run(machineId, app, generation);
      const stale = this.rows('SELECT * FROM snapshots WHERE machine_id = ? AND generation < ? AND state IN (\'ready\', \'claimed\')', machineId, generation);
      return stale.map((s) => this.invalidate(s, reason || `generation ${generation} began (cold start)`));
    });
  }

  register(input: RegisterInput): SnapshotRecord {
    return this.write(() => {
      const id = input.id || newSnapshotId();
      const existing = this.find(id);
      if (existing) {
        if (existing.machineId !== input.machineId) throw invalidArgument(`snapshot id ${id} is already used by machine ${existing.machineId}`);
        return existing; // a retried register
      }
      const current = this.currentGeneration(input.machineId);
      if (input.generation !== current) {
        throw failedPrecondition(
          `snapshot of generation ${input.generation} refused: machine ${input.machineId} is in generation ${current} (S2: no going back in time)`,
        );
      }
      // One live snapshot per machine: an older ready one can never be the right one to resume.
      for (const old of this.rows("SELECT * FROM snapshots WHERE machine_id = ? AND state = 'ready'", input.machineId)) {
        this.invalidate(old, `superseded by snapshot ${id}`);
      }
      const t = this.now();
      this.db
        .prepare(
          `INSERT INTO snapshots (id, machine_id, app, host_id, generation, instance_id, state, files, size_bytes, created_at, updated_at)
           VALUES (?, ?, ?, ?, ?, ?, 'ready', ?, ?, ?, ?)`,
        )
        .run(id, input.machineId, input.app, input.hostId, input.generation, input.instanceId, JSON.stringify(input.files), input.sizeBytes, t, t);
      const snap = this.find(id)!;
      this.event('snapshot.created', snap, '');
      return snap;
    });
  }

  /** S3: atomically moves a ready snapshot to claimed, once; every other case is refused with why. */
  claim(input: ClaimInput): { claimId: string; snapshot: SnapshotRecord } {
    return this.write(() => {
      const snap = this.find(input.snapshotId);
      if (!snap) throw notFound(`snapshot ${input.snapshotId} does not exist (it may have been deleted with its machine)`);
      if (snap.machineId !== input.machineId) throw failedPrecondition(`snapshot ${snap.id} belongs to machine ${snap.machineId}, not ${input.machineId}`);
      if (snap.state === 'claimed' || snap.state === 'consumed') {
        throw failedPrecondition(`snapshot ${snap.id} was already ${snap.state === 'claimed' ? 'claimed' : 'resumed'} once; a snapshot is resumed at most once (S3)`);
      }
      if (snap.state === 'invalidated') throw failedPrecondition(`snapshot ${snap.id} was invalidated: ${snap.reason}`);
      const current = this.currentGeneration(snap.machineId);
      if (snap.generation !== current || input.generation !== current) {
        throw failedPrecondition(`snapshot ${snap.id} is of generation ${snap.generation} but the machine is in generation ${current} (S2)`);
      }
      if (snap.hostId !== input.hostId) throw failedPrecondition(`snapshot ${snap.id} is on host ${snap.hostId}, not ${input.hostId} (S1)`);
      const claimId = `claim_${randomBytes(8).toString('hex')}`;
      this.db.prepare("UPDATE snapshots SET state = 'claimed', updated_at = ? WHERE id = ?").run(this.now(), snap.id);
      this.db.prepare('INSERT INTO claims (id, snapshot_id, host_id, created_at) VALUES (?, ?, ?, ?)').run(claimId, snap.id, input.hostId, this.now());
      return { claimId, snapshot: this.find(snap.id)! };
    });
  }

  /** Ends a claim: loaded → consumed (snapshot.resumed); not loaded → invalidated with the reason. */
  completeClaim(claimId: string, success: boolean, reason: string): SnapshotRecord {
    return this.write(() => {
      const claim = this.db.prepare('SELECT snapshot_id, completed_at FROM claims WHERE id = ?').get(claimId) as
        | { snapshot_id: string; completed_at: number | null }
        | undefined;
      if (!claim) throw notFound(`claim ${claimId} does not exist`);
      const snap = this.find(claim.snapshot_id)!;
      if (claim.completed_at !== null) return snap; // a retried completion
      this.db.prepare('UPDATE claims SET completed_at = ? WHERE id = ?').run(this.now(), claimId);
      if (snap.state !== 'claimed') return snap; // invalidated meanwhile (e.g. destroy)
      if (success) {
        this.db.prepare("UPDATE snapshots SET state = 'consumed', updated_at = ? WHERE id = ?").run(this.now(), snap.id);
        const done = this.find(snap.id)!;
        this.event('snapshot.resumed', done, '');
        return done;
      }
      return this.invalidate(snap, reason || 'the host agent could not load it');
    });
  }

  /** L4, L5, S1: throws away every live snapshot of a machine. */
  invalidateMachine(machineId: string, reason: string): SnapshotRecord[] {
    return this.write(() =>
      this.rows("SELECT * FROM snapshots WHERE machine_id = ? AND state IN ('ready', 'claimed')", machineId).map((s) => this.invalidate(s, reason)),
    );
  }

  /** L6: forgets a machine: every snapshot record (snapshot.deleted each) and its generation. */
  deleteMachine(machineId: string): number {
    return this.write(() => {
      const all = this.rows('SELECT * FROM snapshots WHERE machine_id = ?', machineId);
      for (const s of all) this.event('snapshot.deleted', s, 'machine destroyed');
      this.db.prepare('DELETE FROM snapshots WHERE machine_id = ?').run(machineId);
      this.db.prepare('DELETE FROM generations WHERE machine_id = ?').run(machineId);
      return all.length;
    });
  }

  get(id: string): SnapshotRecord {
    const s = this.find(id);
    if (!s) throw notFound(`snapshot ${id} does not exist`);
    return s;
  }

  list(filter: { machineId?: string; hostId?: string; state?: SnapshotState }): SnapshotRecord[] {
    const where: string[] = [];
    const args: unknown[] = [];
    if (filter.machineId) (where.push('machine_id = ?'), args.push(filter.machineId));
    if (filter.hostId) (where.push('host_id = ?'), args.push(filter.hostId));
    if (filter.state) (where.push('state = ?'), args.push(filter.state));
    if (!where.length) throw invalidArgument('ListSnapshots needs machine_id, host_id or state');
    return this.rows(`SELECT * FROM snapshots WHERE ${where.join(' AND ')} ORDER BY created_at, id`, ...args);
  }

  private invalidate(s: SnapshotRecord, reason: string): SnapshotRecord {
    this.db.prepare("UPDATE snapshots SET state = 'invalidated', reason = ?, updated_at = ? WHERE id = ?").run(reason, this.now(), s.id);
    const done = this.find(s.id)!;
    this.event('snapshot.invalidated', done, reason);
    return done;
  }

  private event(type: string, s: SnapshotRecord, reason: string): void {
    appendEvent(this.db, {
      type,
      app: s.app,
      machineId: s.machineId,
      instanceId: s.instanceId,
      hostId: s.hostId,
      snapshotId: s.id,
      snapshotBytes: s.sizeBytes,
      generation: s.generation,
      reason,
    });
  }

  private write<T>(fn: () => T): T {
    const out = this.db.transaction(fn).immediate();
    this.onEvents();
    return out;
  }

  private find(id: string): SnapshotRecord | undefined {
    const r = this.db.prepare('SELECT * FROM snapshots WHERE id = ?').get(id) as Row | undefined;
    return r && toRecord(r);
  }

  private rows(sql: string, ...args: unknown[]): SnapshotRecord[] {
    return (this.db.prepare(sql).all(...args) as Row[]).map(toRecord);
  }
}
