import assert from 'node:assert/strict';
import { TorporError } from '../../lib/errors';
import { eventsOfMachine } from '../../lib/outbox';
import { openDatabase } from '../../lib/sqlite';
import { MIGRATIONS } from '../../services/snapshot-store/src/schema';
import { SnapshotRegistry } from '../../services/snapshot-store/src/snapshot-registry';

const M = '0123456789abcd';
const files = { statePath: '/s', stateSize: 10, stateSha256: 'a'.repeat(64), memoryPath: '/m', memorySize: 20, memoryIdentity: '1:2:3' };
const refused = (kind: string, re: RegExp) => (e: unknown) => e instanceof TorporError && e.kind === kind && re.test(e.message);

describe('snapshot registry', () => {
  let reg: SnapshotRegistry;
  let db: ReturnType<typeof openDatabase>;
  beforeEach(() => {
    db = openDatabase(':memory:', MIGRATIONS);
    reg = new SnapshotRegistry(db);
  });
  const register = (generation: number, hostId = 'h1') => reg.register({ machineId: M, app: 'web', hostId, generation, instanceId: 'I1', files, sizeBytes: 30 });

  it('S3: a snapshot is claimed at most once', () => {
    reg.beginGeneration(M, 'web', 1, 'cold start');
    const s = register(1);
    reg.claim({ snapshotId: s.id, machineId: M, hostId: 'h1', generation: 1 });
    assert.throws(() => reg.claim({ snapshotId: s.id, machineId: M, hostId: 'h1', generation: 1 }), refused('failed_precondition', /already claimed.*at most once/));
  });

  it('S3: a consumed snapshot cannot be claimed again', () => {
    reg.beginGeneration(M, 'web', 1, '');
    const s = register(1);
    const c = reg.claim({ snapshotId: s.id, machineId: M, hostId: 'h1', generation: 1 });
    assert.equal(reg.completeClaim(c.claimId, true, '').state, 'consumed');
    assert.throws(() => reg.claim({ snapshotId: s.id, machineId: M, hostId: 'h1', generation: 1 }), /already resumed once/);
  });

  it('S2: a new generation invalidates older snapshots, with snapshot.invalidated', () => {
    reg.beginGeneration(M, 'web', 1, '');
    const s = register(1);
    const inv = reg.beginGeneration(M, 'web', 2, 'cold start');
    assert.deepEqual(inv.map((x) => [x.id, x.state]), [[s.id, 'invalidated']]);
    assert.throws(() => reg.claim({ snapshotId: s.id, machineId: M, hostId: 'h1', generation: 2 }), /invalidated/);
    assert.deepEqual(eventsOfMachine(db, M).map((e) => e.subject), [`snapshot.created.web.${M}`, `snapshot.invalidated.web.${M}`]);
  });

  it('S2: a snapshot of an older generation cannot be registered, and a generation cannot go back', () => {
    reg.beginGeneration(M, 'web', 2, '');
    assert.throws(() => register(1), refused('failed_precondition', /generation 1 refused.*generation 2/));
    assert.throws(() => reg.beginGeneration(M, 'web', 2, ''), refused('failed_precondition', /not newer/));
  });

  it('S2: a claim must name the current generation', () => {
    reg.beginGeneration(M, 'web', 1, '');
    const s = register(1);
    assert.throws(() => reg.claim({ snapshotId: s.id, machineId: M, hostId: 'h1', generation: 0 }), /generation/);
  });

  it('S1: a snapshot can only be claimed by the host that holds it', () => {
    reg.beginGeneration(M, 'web', 1, '');
    const s = register(1, 'h1');
    assert.throws(() => reg.claim({ snapshotId: s.id, machineId: M, hostId: 'h2', generation: 1 }), /on host h1, not h2/);
  });

  it('S4: a failed load invalidates the snapshot with its reason', () => {
    reg.beginGeneration(M, 'web', 1, '');
    const c = reg.claim({ snapshotId: register(1).id, machineId: M, hostId: 'h1', generation: 1 });
    const s = reg.completeClaim(c.claimId, false, 'state file sha256 mismatch');
    assert.equal(s.state, 'invalidated');
    assert.equal(s.reason, 'state file sha256 mismatch');
  });

  it('L4: invalidating a machine throws away its ready snapshots', () => {
    reg.beginGeneration(M, 'web', 1, '');
    register(1);
    assert.equal(reg.invalidateMachine(M, 'stopped')[0].state, 'invalidated');
    assert.deepEqual(reg.list({ machineId: M, state: 'ready' }), []);
  });

  it('L6: deleting a machine removes every record with snapshot.deleted, and forgets its generation', () => {
    reg.beginGeneration(M, 'web', 1, '');
    register(1);
    assert.equal(reg.deleteMachine(M), 1);
    assert.deepEqual(reg.list({ machineId: M }), []);
    assert.equal(reg.currentGeneration(M), 0);
    assert.match(eventsOfMachine(db, M).at(-1)!.subject, /^snapshot\.deleted\.web\./);
  });

  it('N1: snapshot events carry gapless per-machine sequence numbers', () => {
    reg.beginGeneration(M, 'web', 1, '');
    register(1);
    register(1); // supersedes the first
    reg.beginGeneration(M, 'web', 2, '');
    assert.deepEqual(eventsOfMachine(db, M).map((e) => e.sequence), [1, 2, 3, 4]);
  });

  it('a retried register with the same id is idempotent', () => {
    reg.beginGeneration(M, 'web', 1, '');
    const a = reg.register({ id: 'snap_0000000000000001', machineId: M, app: 'web', hostId: 'h1', generation: 1, instanceId: 'I', files, sizeBytes: 1 });
    const b = reg.register({ id: 'snap_0000000000000001', machineId: M, app: 'web', hostId: 'h1', generation: 1, instanceId: 'I', files, sizeBytes: 1 });
    assert.equal(a.id, b.id);
    assert.equal(reg.list({ machineId: M }).length, 1);
  });
});
