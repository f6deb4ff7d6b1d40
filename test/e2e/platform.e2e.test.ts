// Hosts, regions, platform versions and operator tooling end to end:
// S1 (a machine moved off a dead host cold-starts), R5, R6, reflection for grpcurl /
// buf curl, health, metrics, request ids across hops.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { Metadata } from '@grpc/grpc-js';
import { MachineState } from '../../gen/torpor/machines/v1/machines';
import { SnapshotsClient, SnapshotState } from '../../gen/torpor/snapshots/v1/snapshots';
import { TorporError } from '../../lib/errors';
import { asyncClient } from '../../lib/grpc/client';
import { waitForLine, type Mesh } from '../../scripts/mesh/mesh';
import { config, get, sleep, startMesh, stopMesh, suspendAndWait } from './fixture';

const S = MachineState;
const BUF = path.resolve(__dirname, '..', '..', '..', 'node_modules', '.bin', 'buf');

function bufCurl(address: string, args: string[]): string {
  return execFileSync(BUF, ['curl', '--protocol', 'grpc', '--http2-prior-knowledge', ...args.slice(0, -1), `http://${address}${args.at(-1)}`], { encoding: 'utf8', stdio: 'pipe' });
}

describe('hosts, regions, platform versions and operator tools, end to end', function () {
  this.timeout(180_000);
  let mesh: Mesh;
  let c: ReturnType<Mesh['machines']>;

  before(async () => {
    mesh = await startMesh({
      hosts: [
        { hostId: 'h1', region: 'bog', memoryMb: 2048 },
        { hostId: 'h2', region: 'bog', memoryMb: 2048 },
        { hostId: 'h3', region: 'gdl', memoryMb: 2048 },
      ],
      schedulerArgs: ['--suspend-regions', 'bog', '--host-timeout-seconds', '3', '--heartbeat-seconds', '1', '--platform-version', '1', '--suspend-since-version', '2'],
    });
    c = mesh.machines();
  });
  after(() => stopMesh(mesh));

  const suspend = (id: string) => suspendAndWait(c, id);

  it('R5: a machine last updated before suspend support is refused with "run an update"; after an update it suspends', async () => {
    const m = await c.createMachine({ app: 'old', name: '', region: 'bog', config: config(), skipStart: false });
    assert.equal(m.platformVersion, 1);
    await assert.rejects(c.suspendMachine({ id: m.id }), (e: unknown) => e instanceof TorporError && e.kind === 'failed_precondition' && /R5: .*run `torpor machines update/.test(e.message));
    // The platform is upgraded: the scheduler restarts (same port) under version 2.
    const port = String(mesh.scheduler.listening.grpc_port);
    mesh.scheduler.args = mesh.scheduler.args.map((a, i, all) => (all[i - 1] === '--platform-version' ? '2' : all[i - 1] === '--port' ? port : a));
    await mesh.scheduler.restart();
    c = mesh.machines();
    await assert.rejects(c.suspendMachine({ id: m.id }), /R5/, 'still refused: the machine itself has not been updated');
    const u = await c.updateMachine({ id: m.id, config: config() });
    assert.equal(u.platformVersion, 2);
    assert.equal((await suspend(m.id)).state, S.MACHINE_STATE_SUSPENDED);
    await c.destroyMachine({ id: m.id, force: false });
  });

  it('L8: a scheduler killed (SIGKILL) right after a suspend began recovers the machine to a well-defined state', async () => {
    const m = await c.createMachine({ app: 'crash', name: '', region: 'bog', config: config(), skipStart: false });
    await c.updateMachine({ id: m.id, config: config() }); // platform version 2, so it may suspend
    const boot = await get((await c.getMachine({ id: m.id })).url, '/boot');
    await c.suspendMachine({ id: m.id });
    await mesh.scheduler.kill();
    const port = String(mesh.scheduler.listening.grpc_port);
    mesh.scheduler.args = mesh.scheduler.args.map((a, i, all) => (all[i - 1] === '--port' ? port : a));
    await mesh.scheduler.start();
    c = mesh.machines();
    const deadline = Date.now() + 15_000;
    let state = (await c.getMachine({ id: m.id })).state;
    while (state === S.MACHINE_STATE_SUSPENDING && Date.now() < deadline) {
      await sleep(200);
      state = (await c.getMachine({ id: m.id })).state;
    }
    assert.ok([S.MACHINE_STATE_SUSPENDED, S.MACHINE_STATE_STARTED].includes(state), `recovered to ${S[state]}`);
    const r = await c.startMachine({ id: m.id }).catch(() => undefined); // started already is fine too
    const now = await c.getMachine({ id: m.id });
    assert.equal(now.state, S.MACHINE_STATE_STARTED);
    assert.equal(await get(now.url, '/boot'), boot, `the same guest, resumed or never stopped (${r ? 'resumed: ' + r.resumed : 'was running'})`);
    await c.destroyMachine({ id: m.id, force: true });
  });

  it('R6: suspend is refused in a region where it is not enabled, naming where it is', async () => {
    const m = await c.createMachine({ app: 'gdlapp', name: '', region: 'gdl', config: config(), skipStart: false });
    assert.equal(m.hostId, 'h3');
    await assert.rejects(c.suspendMachine({ id: m.id }), /R6: suspend is not enabled in region gdl \(enabled in: bog\)/);
    await c.destroyMachine({ id: m.id, force: true });
  });

  it('placement: a machine goes to a host of its region with room; RESOURCE_EXHAUSTED when none has', async () => {
    const a = await c.createMachine({ app: 'fill', name: '', region: 'bog', config: config({ memoryMb: 1536 }), skipStart: true });
    const b = await c.createMachine({ app: 'fill', name: '', region: 'bog', config: config({ memoryMb: 1536 }), skipStart: true });
    assert.ok(['h1', 'h2'].includes(a.hostId) && ['h1', 'h2'].includes(b.hostId));
    await c.destroyMachine({ id: a.id, force: false });
    await c.destroyMachine({ id: b.id, force: false });
    await assert.rejects(c.createMachine({ app: 'fill', name: '', region: 'bog', config: config({ memoryMb: 4096 }), skipStart: true }), (e: unknown) => e instanceof TorporError && e.kind === 'resource_exhausted');
  });

  it('S1: a suspended machine whose host is gone moves to another host, cold-starts, and its snapshot is invalidated; the files go when the host is back (S5)', async () => {
    const m = await c.createMachine({ app: 'mover', name: '', region: 'bog', config: config(), skipStart: false });
    const boot = await get(m.url, '/boot');
    const s = await suspend(m.id);
    const oldHost = m.hostId;
    const snapDir = path.join(mesh.opts.dataDir, 'hosts', oldHost, 'snapshots', m.id, s.snapshotId);
    assert.ok(fs.existsSync(snapDir));
    await mesh.agent(oldHost).kill();
    await sleep(4500); // past the host timeout
    const r = await c.startMachine({ id: m.id });
    assert.equal(r.resumed, false);
    assert.match(r.reason, new RegExp(`host ${oldHost} is unavailable.*S1`));
    assert.notEqual(r.machine!.hostId, oldHost);
    assert.notEqual(await get(r.machine!.url, '/boot'), boot, 'cold-started elsewhere');
    const snaps = asyncClient(SnapshotsClient, mesh.storeAddress);
    assert.equal((await snaps.getSnapshot({ id: s.snapshotId })).state, SnapshotState.SNAPSHOT_STATE_INVALIDATED);
    snaps.close();
    await mesh.agent(oldHost).start();
    const deadline = Date.now() + 15_000;
    while (fs.existsSync(snapDir) && Date.now() < deadline) await sleep(250);
    assert.equal(fs.existsSync(snapDir), false, 'S5: the returning host deletes files of invalidated snapshots');
    await c.destroyMachine({ id: m.id, force: true });
  });

  it('reflection: buf curl (the grpcurl stand-in) lists and calls the Machines service of the scheduler', () => {
    const services = bufCurl(mesh.schedulerAddress, ['--list-services', '']).trim().split('\n');
    assert.ok(services.includes('torpor.machines.v1.Machines'), services.join(','));
    assert.ok(services.includes('grpc.health.v1.Health'));
    const methods = bufCurl(mesh.schedulerAddress, ['--list-methods', '']);
    assert.match(methods, /torpor\.machines\.v1\.Machines\/SuspendMachine/);
    const list = JSON.parse(bufCurl(mesh.schedulerAddress, ['-d', '{"app":"nobody"}', '/torpor.machines.v1.Machines/ListMachines']));
    assert.deepEqual(list, {});
    let err = '';
    try {
      bufCurl(mesh.schedulerAddress, ['-d', '{"id":"nope"}', '/torpor.machines.v1.Machines/GetMachine']);
    } catch (e) {
      const x = e as { stdout: string; stderr: string };
      err = String(x.stdout) + String(x.stderr);
    }
    assert.match(err, /invalid_argument[\s\S]*not a machine id/);
  });

  it('health: every service answers the standard health check, and reflection on each', () => {
    for (const addr of [mesh.schedulerAddress, mesh.storeAddress, mesh.agentAddress('h3')]) {
      assert.deepEqual(JSON.parse(bufCurl(addr, ['/grpc.health.v1.Health/Check'])), { status: 'SERVING' });
      assert.ok(bufCurl(addr, ['--list-services', '']).includes('torpor.'));
    }
  });

  it('metrics: /metrics has RPC latency and lifecycle transition counters', async () => {
    const text = await get(`http://127.0.0.1:${mesh.scheduler.listening.metrics_port}`, '/metrics');
    assert.match(text, /torpor_rpc_duration_seconds_bucket\{.*method="\/torpor\.machines\.v1\.Machines\/CreateMachine"/);
    assert.match(text, /torpor_machine_transitions_total\{to="started",service="scheduler"\} \d+/);
  });

  it('a request id travels across service hops into every log', async () => {
    const m = await c.createMachine({ app: 'rid', name: '', region: 'bog', config: config(), skipStart: false });
    const md = new Metadata();
    md.set('x-request-id', 'rid-e2e-4711');
    await new Promise<void>((resolve, reject) => c.raw.suspendMachine({ id: m.id }, md, (err) => (err ? reject(err) : resolve())));
    await c.waitMachine({ id: m.id, state: S.MACHINE_STATE_SUSPENDED, timeoutSeconds: 60, instanceId: '' });
    assert.ok(mesh.scheduler.grep('rid-e2e-4711').length > 0, 'scheduler log');
    await waitForLine(mesh.agent(m.hostId), 'rid-e2e-4711', 5000);
    await waitForLine(mesh.store, 'rid-e2e-4711', 5000);
    await c.destroyMachine({ id: m.id, force: false });
  });
});
