// N1–N3 end to end: the events reach JetStream in order, numbered, once — even when
// NATS is down while they happen.
import assert from 'node:assert/strict';
import { MachineState } from '../../gen/torpor/machines/v1/machines';
import { EVENTS_STREAM } from '../../lib/nats';
import type { Mesh } from '../../scripts/mesh/mesh';
import { config, readStream, sleep, startMesh, stopMesh, suspendAndWait } from './fixture';

const S = MachineState;

describe('lifecycle events on NATS, end to end', function () {
  this.timeout(180_000);
  let mesh: Mesh;
  let c: ReturnType<Mesh['machines']>;

  before(async () => {
    mesh = await startMesh({ usageMeterPort: 0 });
    c = mesh.machines();
  });
  after(() => stopMesh(mesh));

  const suspend = (id: string) => suspendAndWait(c, id);

  it('N1 + N2: suspend/resume/stop/update/destroy yields exactly the expected subjects, in order, numbered without gaps', async () => {
    const m = await c.createMachine({ app: 'shop', name: 'ev1', region: 'bog', config: config(), skipStart: false });
    await suspend(m.id);
    await c.startMachine({ id: m.id });
    await suspend(m.id);
    await c.stopMachine({ id: m.id });
    await c.updateMachine({ id: m.id, config: config({ memoryMb: 320 }) });
    await c.startMachine({ id: m.id });
    await c.destroyMachine({ id: m.id, force: true });
    const expected = [
      'created', 'starting', 'started', 'suspending', 'suspended', 'starting', 'started',
      'suspending', 'suspended', 'stopping', 'stopped', 'updated', 'starting', 'started', 'destroyed',
    ];
    const got = await readStream(mesh.natsUrl, EVENTS_STREAM, `machine.*.shop.${m.id}`, expected.length);
    assert.deepEqual(got.map((e) => e.subject), expected.map((t) => `machine.${t}.shop.${m.id}`));
    assert.deepEqual(got.map((e) => Number(e.json.sequence)), expected.map((_, i) => i + 1), 'per-machine sequence without gaps');
    // N2: the payload is the proto3 JSON of torpor.events.v1.Event.
    const resumed = got[6].json;
    assert.equal(resumed.type, 'machine.started');
    assert.equal(resumed.fromState, 'starting');
    assert.equal(resumed.toState, 'started');
    assert.equal(resumed.resumed, true);
    assert.equal(resumed.machineId, m.id);
    assert.equal(resumed.app, 'shop');
    assert.equal(resumed.region, 'bog');
    assert.equal(resumed.hostId, 'h1');
    assert.ok(typeof resumed.id === 'string' && typeof resumed.time === 'string' && typeof resumed.instanceId === 'string');
    assert.ok(Number(resumed.hostMs) > 0 && Number(resumed.totalMs) >= Number(resumed.hostMs), 'durations on starts');
    assert.match(String(got[4].json.snapshotId), /^snap_/, 'snapshot id on machine.suspended');
    // snapshot.* events of the same machine: created, resumed, created, invalidated (stop), deleted...
    const snaps = await readStream(mesh.natsUrl, EVENTS_STREAM, `snapshot.*.shop.${m.id}`, 5);
    const kinds = snaps.map((e) => e.subject.split('.')[1]);
    assert.deepEqual(kinds.slice(0, 4), ['created', 'resumed', 'created', 'invalidated']);
    assert.ok(kinds.includes('deleted'), `snapshot.deleted on destroy: ${kinds}`);
    assert.deepEqual(snaps.map((e) => Number(e.json.sequence)), snaps.map((_, i) => i + 1));
  });

  it('N3: with NATS stopped during a suspend and started again, every event still arrives, once', async () => {
    const m = await c.createMachine({ app: 'shop', name: 'ev2', region: 'bog', config: config(), skipStart: false });
    await readStream(mesh.natsUrl, EVENTS_STREAM, `machine.*.shop.${m.id}`, 3);
    await mesh.nats!.stop();
    await suspend(m.id); // the lifecycle does not need NATS; events wait in the outboxes
    const r = await c.startMachine({ id: m.id });
    assert.equal(r.resumed, true);
    await sleep(500);
    await mesh.nats!.restart();
    const expected = ['created', 'starting', 'started', 'suspending', 'suspended', 'starting', 'started'];
    const got = await readStream(mesh.natsUrl, EVENTS_STREAM, `machine.*.shop.${m.id}`, expected.length, 30_000);
    await sleep(1500); // anything extra (a duplicate) would have arrived by now
    const again = await readStream(mesh.natsUrl, EVENTS_STREAM, `machine.*.shop.${m.id}`, expected.length);
    assert.deepEqual(again.map((e) => e.subject.split('.')[1]), expected);
    assert.deepEqual(got.map((e) => e.json.id), again.map((e) => e.json.id));
    assert.equal(new Set(again.map((e) => e.json.id)).size, expected.length, 'no duplicates');
    const snaps = await readStream(mesh.natsUrl, EVENTS_STREAM, `snapshot.*.shop.${m.id}`, 2, 30_000);
    assert.deepEqual(snaps.map((e) => e.subject.split('.')[1]), ['created', 'resumed']);
    await c.destroyMachine({ id: m.id, force: true });
  });

  it('N1: machine.suspended.> receives every suspension (a wildcard subscriber sees them all)', async () => {
    const a = await c.createMachine({ app: 'alpha', name: '', region: 'bog', config: config(), skipStart: false });
    await suspend(a.id);
    const got = await readStream(mesh.natsUrl, EVENTS_STREAM, 'machine.suspended.>', 1);
    assert.ok(got.some((e) => e.subject === `machine.suspended.alpha.${a.id}`));
    assert.ok(got.every((e) => e.subject.startsWith('machine.suspended.')));
    await c.destroyMachine({ id: a.id, force: false });
  });

  it('N4: the usage meter bills a suspended machine like a stopped one', async () => {
    const m = await c.createMachine({ app: 'billing', name: '', region: 'bog', config: config(), skipStart: false });
    await suspend(m.id);
    await sleep(1500);
    const usage = (await (await fetch(`http://127.0.0.1:${mesh.usageMeter!.listening.http_port}/usage`)).json()) as {
      machines: { machine_id: string; state: string; billing_state: string; seconds: Record<string, number> }[];
    };
    const mine = usage.machines.find((x) => x.machine_id === m.id)!;
    assert.equal(mine.state, 'suspended');
    assert.equal(mine.billing_state, 'stopped');
    assert.ok(mine.seconds.stopped >= 1, `stopped seconds: ${JSON.stringify(mine.seconds)}`);
    assert.ok(mine.seconds.running > 0);
    await c.destroyMachine({ id: m.id, force: false });
  });
});
