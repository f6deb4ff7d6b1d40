// The suspend/resume lifecycle end to end: real QEMU guests, every service its own process.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { HostAgentClient } from '../../gen/torpor/hostagent/v1/hostagent';
import { MachineState, ServiceConfig, StartMachineResponse } from '../../gen/torpor/machines/v1/machines';
import { SnapshotsClient, SnapshotState } from '../../gen/torpor/snapshots/v1/snapshots';
import { TorporError } from '../../lib/errors';
import { asyncClient } from '../../lib/grpc/client';
import type { Mesh } from '../../scripts/mesh/mesh';
import { config, get, sleep, startMesh, stopMesh, suspendAndWait as suspendAndWaitFor } from './fixture';

const S = MachineState;

describe('lifecycle end to end on real VMs', function () {
  this.timeout(120_000);
  let mesh: Mesh;
  let c: ReturnType<Mesh['machines']>;

  before(async () => {
    mesh = await startMesh();
    c = mesh.machines();
  });
  after(() => stopMesh(mesh));

  const create = (over: Parameters<typeof config>[0] = {}) => c.createMachine({ app: 'web', name: '', region: 'bog', config: config(over), skipStart: false });
  const suspendAndWait = (id: string) => suspendAndWaitFor(c, id);
  const snapshotDir = (machineId: string) => path.join(mesh.opts.dataDir, 'hosts', 'h1', 'snapshots', machineId);

  it('L1 + L3 + L10: create → suspend → start resumes the same guest: same /boot token, counter continues', async () => {
    const m = await create();
    assert.equal(m.state, S.MACHINE_STATE_STARTED);
    const boot = await get(m.url, '/boot');
    assert.equal(await get(m.url, '/counter'), '1');
    assert.equal(await get(m.url, '/counter'), '2');
    const s = await suspendAndWait(m.id);
    assert.equal(s.state, S.MACHINE_STATE_SUSPENDED);
    assert.match(s.snapshotId, /^snap_/);
    const r = await c.startMachine({ id: m.id });
    assert.equal(r.previousState, S.MACHINE_STATE_SUSPENDED, 'L10: previous_state');
    assert.equal(r.resumed, true, `L10: resumed (reason: ${r.reason})`);
    assert.equal(r.machine!.url, m.url, 'the url stays the same across suspend and resume');
    assert.equal(await get(r.machine!.url, '/boot'), boot, 'same boot: resumed, not rebooted');
    assert.equal(await get(r.machine!.url, '/counter'), '3', 'memory intact');
  });

  it('S5: snapshot files are private to the host agent (mode 0600, folder 0700) and deleted once loaded (S3)', async () => {
    const m = await create();
    const s = await suspendAndWait(m.id);
    const dir = path.join(snapshotDir(m.id), s.snapshotId);
    const files = fs.readdirSync(dir);
    assert.ok(files.length >= 2, `state and memory files in ${dir}: ${files}`);
    assert.equal(fs.statSync(dir).mode & 0o777, 0o700);
    for (const f of files) assert.equal(fs.statSync(path.join(dir, f)).mode & 0o777, 0o600, `${f} is 0600`);
    await c.startMachine({ id: m.id });
    assert.equal(fs.existsSync(dir), false, 'S3: files gone once loaded');
    await c.destroyMachine({ id: m.id, force: true });
  });

  it('L4: stop on a suspended machine throws its snapshot away; the next start is cold (new /boot token)', async () => {
    const m = await create();
    const boot = await get(m.url, '/boot');
    const s = await suspendAndWait(m.id);
    const stopped = await c.stopMachine({ id: m.id });
    assert.equal(stopped.state, S.MACHINE_STATE_STOPPED);
    assert.equal(fs.existsSync(path.join(snapshotDir(m.id), s.snapshotId)), false, 'S5: files deleted');
    const snaps = asyncClient(SnapshotsClient, mesh.storeAddress);
    assert.equal((await snaps.getSnapshot({ id: s.snapshotId })).state, SnapshotState.SNAPSHOT_STATE_INVALIDATED);
    snaps.close();
    const r = await c.startMachine({ id: m.id });
    assert.equal(r.resumed, false);
    assert.equal(r.previousState, S.MACHINE_STATE_STOPPED);
    assert.notEqual(await get(r.machine!.url, '/boot'), boot);
    await c.destroyMachine({ id: m.id, force: true });
  });

  it('L5: update on a suspended machine cold-starts it with the new config and a new instance_id', async () => {
    const m = await create();
    const boot = await get(m.url, '/boot');
    const s = await suspendAndWait(m.id);
    const u = await c.updateMachine({ id: m.id, config: config({ memoryMb: 384, env: { GREETING: 'hello' } }) });
    assert.equal(u.state, S.MACHINE_STATE_STARTED);
    assert.notEqual(u.instanceId, m.instanceId);
    assert.equal(u.config!.guest!.memoryMb, 384);
    assert.equal(u.generation, m.generation + 1, 'S2: a cold start begins a new generation');
    assert.notEqual(await get(u.url, '/boot'), boot, 'cold-started');
    const snaps = asyncClient(SnapshotsClient, mesh.storeAddress);
    assert.equal((await snaps.getSnapshot({ id: s.snapshotId })).state, SnapshotState.SNAPSHOT_STATE_INVALIDATED);
    snaps.close();
    await c.destroyMachine({ id: m.id, force: true });
  });

  it('S4 + L3: a damaged snapshot is never loaded: the start cold-starts and says why', async () => {
    const m = await create();
    const boot = await get(m.url, '/boot');
    const s = await suspendAndWait(m.id);
    const dir = path.join(snapshotDir(m.id), s.snapshotId);
    const state = fs.readdirSync(dir).find((f) => !/mem/.test(f))!;
    const p = path.join(dir, state);
    const buf = fs.readFileSync(p);
    buf[buf.length >> 1] ^= 0xff; // one flipped byte, same size
    fs.writeFileSync(p, buf);
    const r = await c.startMachine({ id: m.id });
    assert.equal(r.resumed, false);
    assert.match(r.reason, /damaged|sha256/i);
    assert.equal(r.machine!.lastStart!.reason, r.reason, 'the reason is kept on the machine');
    assert.notEqual(await get(r.machine!.url, '/boot'), boot);
    await c.destroyMachine({ id: m.id, force: true });
  });

  it('S4: a truncated memory file is caught the same way', async () => {
    const m = await create();
    const s = await suspendAndWait(m.id);
    const dir = path.join(snapshotDir(m.id), s.snapshotId);
    const mem = fs.readdirSync(dir).find((f) => /mem/.test(f))!;
    fs.truncateSync(path.join(dir, mem), 4096);
    const r = await c.startMachine({ id: m.id });
    assert.equal(r.resumed, false);
    assert.match(r.reason, /memory/i);
    await c.destroyMachine({ id: m.id, force: true });
  });

  it('S3: a snapshot resumed once cannot be resumed again, even by calling the host agent directly', async () => {
    const m = await create();
    const s = await suspendAndWait(m.id);
    const r = await c.startMachine({ id: m.id });
    assert.equal(r.resumed, true);
    await c.stopMachine({ id: m.id });
    const agent = asyncClient(HostAgentClient, mesh.agentAddress('h1'));
    await assert.rejects(
      agent.resumeMachine({ vm: { machineId: m.id, app: 'web', instanceId: m.instanceId, generation: r.machine!.generation }, spec: { image: 'default', cpus: 1, memoryMb: 256, env: {}, guestPort: 0 }, snapshotId: s.snapshotId }),
      (e: unknown) => e instanceof TorporError && e.kind === 'failed_precondition' && /already loaded snapshot|at most once|resumed once/.test(e.message),
    );
    agent.close();
    await c.destroyMachine({ id: m.id, force: true });
  });

  it('S2: after a cold start an older snapshot is refused (no going back in time)', async () => {
    const m = await create();
    const s = await suspendAndWait(m.id);
    const snaps = asyncClient(SnapshotsClient, mesh.storeAddress);
    // Stop + start: a cold start in generation 2; the generation-1 snapshot must be dead.
    await c.stopMachine({ id: m.id });
    const r = await c.startMachine({ id: m.id });
    assert.equal(r.machine!.generation, 2);
    assert.equal((await snaps.getSnapshot({ id: s.snapshotId })).state, SnapshotState.SNAPSHOT_STATE_INVALIDATED);
    await assert.rejects(snaps.claimSnapshot({ snapshotId: s.snapshotId, machineId: m.id, hostId: 'h1', generation: 1 }), /invalidated|generation/);
    const agent = asyncClient(HostAgentClient, mesh.agentAddress('h1'));
    await c.suspendMachine({ id: m.id });
    await c.waitMachine({ id: m.id, state: S.MACHINE_STATE_SUSPENDED, timeoutSeconds: 60, instanceId: '' });
    await assert.rejects(
      agent.resumeMachine({ vm: { machineId: m.id, app: 'web', instanceId: m.instanceId, generation: 1 }, spec: { image: 'default', cpus: 1, memoryMb: 256, env: {}, guestPort: 0 }, snapshotId: s.snapshotId }),
      /invalidated|generation/,
    );
    agent.close();
    snaps.close();
    await c.destroyMachine({ id: m.id, force: true });
  });

  it('L8: two concurrent starts of a suspended machine resume it once', async () => {
    const m = await create();
    await suspendAndWait(m.id);
    const results = await Promise.allSettled([c.startMachine({ id: m.id }), c.startMachine({ id: m.id })]);
    const ok = results.filter((r): r is PromiseFulfilledResult<StartMachineResponse> => r.status === 'fulfilled').map((r) => r.value);
    assert.equal(ok.filter((r) => r.resumed).length, 1, 'exactly one resume');
    for (const r of results) if (r.status === 'rejected') assert.match((r.reason as Error).message, /already/);
    const events = await c.listMachineEvents({ id: m.id });
    assert.equal(events.events.filter((e) => e.subject.startsWith('machine.started.') && JSON.parse(e.json).resumed).length, 1);
    await c.destroyMachine({ id: m.id, force: true });
  });

  it('L9: a start that arrives while suspending cancels the suspend; the machine goes on running (at every moment of the suspend)', async () => {
    const m = await create();
    const boot = await get(m.url, '/boot');
    const snaps = asyncClient(SnapshotsClient, mesh.storeAddress);
    // From "before the host has begun" to "after the snapshot is written": every case must end running.
    const previous: MachineState[] = [];
    for (const delayMs of [0, 5, 10, 20, 35, 60]) {
      await c.suspendMachine({ id: m.id });
      await sleep(delayMs);
      const r = await c.startMachine({ id: m.id });
      previous.push(r.previousState);
      // A late start may find the suspend already done: then it is an ordinary resume.
      assert.ok([S.MACHINE_STATE_SUSPENDING, S.MACHINE_STATE_SUSPENDED].includes(r.previousState), `delay ${delayMs} ms`);
      assert.equal(r.machine!.state, S.MACHINE_STATE_STARTED, `delay ${delayMs} ms`);
      assert.equal(await get(r.machine!.url, '/boot'), boot, `the same guest goes on running (delay ${delayMs} ms)`);
      const ready = await snaps.listSnapshots({ machineId: m.id, hostId: '', state: SnapshotState.SNAPSHOT_STATE_READY });
      assert.equal(ready.snapshots.length, 0, `no snapshot is left behind (delay ${delayMs} ms)`);
    }
    assert.equal(previous[0], S.MACHINE_STATE_SUSPENDING, 'an immediate start arrives while suspending');
    snaps.close();
    await c.destroyMachine({ id: m.id, force: true });
  });

  it('L8: a stop racing a suspend ends in one well-defined state (stopped, no snapshot)', async () => {
    const m = await create();
    await c.suspendMachine({ id: m.id });
    const stopped = await c.stopMachine({ id: m.id });
    assert.equal(stopped.state, S.MACHINE_STATE_STOPPED);
    assert.equal(stopped.snapshotId, '');
    await sleep(200);
    assert.equal((await c.getMachine({ id: m.id })).state, S.MACHINE_STATE_STOPPED);
    await c.destroyMachine({ id: m.id, force: true });
  });

  it('L6 + L10: destroy takes a suspended machine without force and removes every snapshot', async () => {
    const m = await create();
    const s = await suspendAndWait(m.id);
    const d = await c.destroyMachine({ id: m.id, force: false });
    assert.equal(d.machine!.state, S.MACHINE_STATE_DESTROYED);
    assert.equal(fs.existsSync(snapshotDir(m.id)), false);
    const snaps = asyncClient(SnapshotsClient, mesh.storeAddress);
    await assert.rejects(snaps.getSnapshot({ id: s.snapshotId }), /does not exist/);
    snaps.close();
  });

  it('L10: destroy of a started machine needs force', async () => {
    const m = await create();
    await assert.rejects(c.destroyMachine({ id: m.id, force: false }), (e: unknown) => e instanceof TorporError && e.kind === 'failed_precondition' && /started.*force/.test(e.message));
    assert.equal((await c.destroyMachine({ id: m.id, force: true })).machine!.state, S.MACHINE_STATE_DESTROYED);
  });

  it('L2: WaitMachine answers when the state is reached, or DEADLINE_EXCEEDED', async () => {
    const m = await create();
    await assert.rejects(c.waitMachine({ id: m.id, state: S.MACHINE_STATE_STOPPED, timeoutSeconds: 1, instanceId: '' }), (e: unknown) => e instanceof TorporError && e.kind === 'deadline_exceeded');
    const waiting = c.waitMachine({ id: m.id, state: S.MACHINE_STATE_STOPPED, timeoutSeconds: 30, instanceId: m.instanceId });
    await c.stopMachine({ id: m.id });
    assert.equal((await waiting).state, S.MACHINE_STATE_STOPPED);
    await c.destroyMachine({ id: m.id, force: true });
  });

  it('VMs keep running when the host agent restarts: it adopts them, and they suspend and resume as before', async () => {
    const m = await create();
    const boot = await get(m.url, '/boot');
    await mesh.agent('h1').restart();
    await sleep(2500); // re-registers with its new address within a heartbeat
    assert.equal(await get(m.url, '/boot'), boot, 'the guest never stopped');
    await suspendAndWait(m.id);
    const r = await c.startMachine({ id: m.id });
    assert.equal(r.resumed, true, r.reason);
    assert.equal(await get(r.machine!.url, '/boot'), boot);
    await c.destroyMachine({ id: m.id, force: true });
  });

  it('a host agent refuses a boot past the memory it offers with RESOURCE_EXHAUSTED', async () => {
    const agent = asyncClient(HostAgentClient, mesh.agentAddress('h1'));
    await assert.rejects(
      agent.bootMachine({ vm: { machineId: 'ffffffffffffff', app: 'web', instanceId: 'X', generation: 1 }, spec: { image: 'default', cpus: 1, memoryMb: 16384, env: {}, guestPort: 0 } }),
      (e: unknown) => e instanceof TorporError && e.kind === 'resource_exhausted' && /offers 6144 MiB/.test(e.message),
    );
    agent.close();
  });

  it('a machine whose service is on another port: the app is told $PORT and its url forwards there, across suspend and resume', async () => {
    const m = await c.createMachine({
      app: 'porty',
      name: '',
      region: 'bog',
      config: config({ services: [ServiceConfig.fromPartial({ internalPort: 3000, autostart: true })] }), // the app is told $PORT
      skipStart: false,
    });
    const boot = await get(m.url, '/boot');
    await suspendAndWait(m.id);
    const r = await c.startMachine({ id: m.id });
    assert.equal(r.resumed, true, r.reason);
    assert.equal(await get(r.machine!.url, '/boot'), boot);
    await c.destroyMachine({ id: m.id, force: true });
  });
});
