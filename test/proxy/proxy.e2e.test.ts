// The edge proxy end to end: the whole mesh as processes, real QEMU guests (L7, E1).
import assert from 'node:assert/strict';
import { Autostop, MachineState, ServiceConfig } from '../../gen/torpor/machines/v1/machines';
import type { Mesh } from '../../scripts/mesh/mesh';
import { config, get, sleep, startMesh, stopMesh } from '../e2e/fixture';
import { proxyGet } from './helpers';

const S = MachineState;
const IDLE_SECONDS = 3;
const HOLD_SECONDS = 8;

const service = (over: Partial<ServiceConfig> = {}): ServiceConfig =>
  ServiceConfig.fromPartial({ internalPort: 8080, ports: [{ port: 80, handlers: ['http'] }], autostart: true, autostop: Autostop.AUTOSTOP_OFF, minMachinesRunning: 0, ...over });

describe('edge proxy end to end on real VMs', function () {
  this.timeout(120_000);
  let mesh: Mesh;
  let c: ReturnType<Mesh['machines']>;

  before(async () => {
    mesh = await startMesh({ proxyPort: 0, proxyArgs: ['--idle-seconds', String(IDLE_SECONDS), '--sweep-seconds', '1', '--hold-seconds', String(HOLD_SECONDS)] });
    c = mesh.machines();
  });
  after(() => stopMesh(mesh));

  const create = (app: string, svc: Partial<ServiceConfig>, over: { image?: string; skipStart?: boolean } = {}) =>
    c.createMachine({ app, name: '', region: 'bog', config: config({ image: over.image ?? 'default', services: [service(svc)] }), skipStart: over.skipStart ?? false });
  const suspendAndWait = async (id: string) => {
    await c.suspendMachine({ id });
    return c.waitMachine({ id, state: S.MACHINE_STATE_SUSPENDED, timeoutSeconds: 60, instanceId: '' });
  };
  const startedResumes = async (id: string) =>
    (await c.listMachineEvents({ id })).events.filter((e) => e.subject.startsWith('machine.started.') && JSON.parse(e.json).resumed).length;

  let sleepyId = '';
  let sleepyBoot = '';

  it('L7: a request to a suspended app is answered and the machine is resumed (same /boot token)', async () => {
    const m = await create('sleepy', { autostop: Autostop.AUTOSTOP_OFF });
    sleepyId = m.id;
    sleepyBoot = await get(m.url, '/boot');
    await suspendAndWait(m.id);
    await sleep(100); // let the suspended event reach the proxy
    const r = await proxyGet(mesh.proxyUrl, '/boot', 'sleepy');
    assert.equal(r.status, 200, r.body);
    assert.equal(r.body.trim(), sleepyBoot, 'same boot token: resumed, not cold-started');
    assert.equal(r.headers['x-torpor-machine'], m.id);
    assert.ok(r.headers['x-torpor-held-ms'], 'the request was held while the machine woke');
    const after = await c.getMachine({ id: m.id });
    assert.equal(after.state, S.MACHINE_STATE_STARTED);
    assert.equal(after.lastStart?.resumed, true, `resumed (reason: ${after.lastStart?.reason})`);
    // The path-prefix form reaches the same machine, now started, without a hold.
    const again = await proxyGet(mesh.proxyUrl, '/apps/sleepy/');
    assert.equal(again.status, 200);
    assert.equal(again.body.trim(), m.id);
    assert.equal(again.headers['x-torpor-held-ms'], undefined);
  });

  it('L7 + L8: fifty concurrent requests to a suspended app all succeed with exactly one resume', async () => {
    assert.ok(sleepyId, 'needs the machine of the test before');
    await suspendAndWait(sleepyId);
    await sleep(100);
    const before = await startedResumes(sleepyId);
    const rs = await Promise.all(Array.from({ length: 50 }, (_, i) => proxyGet(mesh.proxyUrl, i % 2 ? '/apps/sleepy/boot' : '/boot', i % 2 ? undefined : 'sleepy')));
    assert.deepEqual(rs.map((r) => r.status), Array(50).fill(200));
    assert.ok(rs.every((r) => r.body.trim() === sleepyBoot), 'every answer from the resumed guest');
    await sleep(300);
    assert.equal((await startedResumes(sleepyId)) - before, 1, 'exactly one machine.started with resumed: true');
    const metrics = await (await fetch(`http://127.0.0.1:${mesh.proxy!.listening.metrics_port}/metrics`)).text();
    assert.match(metrics, /torpor_proxy_wakeups_total\{[^}]*kind="resume"[^}]*\} 2\n/);
    assert.match(metrics, /torpor_proxy_hold_seconds_count\{[^}]*outcome="served"[^}]*\} 51\n/);
  });

  it('E1: an idle machine with autostop suspend is suspended after the idle period and wakes on the next request', async () => {
    const m = await create('idler', { autostop: Autostop.AUTOSTOP_SUSPEND });
    const boot = await get(m.url, '/boot');
    const t0 = Date.now();
    const s = await c.waitMachine({ id: m.id, state: S.MACHINE_STATE_SUSPENDED, timeoutSeconds: 30, instanceId: '' });
    assert.equal(s.state, S.MACHINE_STATE_SUSPENDED);
    assert.ok(Date.now() - t0 >= (IDLE_SECONDS - 1) * 1000, `not before the idle period (${Date.now() - t0} ms)`);
    await sleep(100);
    const r = await proxyGet(mesh.proxyUrl, '/boot', 'idler');
    assert.equal(r.status, 200, r.body);
    assert.equal(r.body.trim(), boot, 'woken by a resume');
    assert.equal((await c.getMachine({ id: m.id })).state, S.MACHINE_STATE_STARTED);
    // E1: the machine a request just woke is not swept before a whole idle period.
    await sleep((IDLE_SECONDS - 1) * 1000);
    assert.equal((await c.getMachine({ id: m.id })).state, S.MACHINE_STATE_STARTED, 'a machine just woken is never swept at once');
  });

  it('E1: min_machines_running is respected: two idle machines, min 1: one is suspended, one stays started', async () => {
    const svc = { autostop: Autostop.AUTOSTOP_SUSPEND, minMachinesRunning: 1 };
    const [a, b] = await Promise.all([create('pair', svc), create('pair', svc)]);
    const deadline = Date.now() + 30_000;
    const states = async () => (await c.listMachines({ app: 'pair', state: S.MACHINE_STATE_UNSPECIFIED })).machines.map((m) => m.state);
    while (!(await states()).includes(S.MACHINE_STATE_SUSPENDED) && Date.now() < deadline) await sleep(250);
    await sleep((IDLE_SECONDS * 2 + 1) * 1000); // two more idle periods: nothing else may go
    const final = await states();
    assert.equal(final.filter((x) => x === S.MACHINE_STATE_SUSPENDED).length, 1, `states: ${final}`);
    assert.equal(final.filter((x) => x === S.MACHINE_STATE_STARTED).length, 1, `states: ${final}`);
    const r = await proxyGet(mesh.proxyUrl, '/', 'pair');
    assert.equal(r.status, 200);
    assert.ok([a.id, b.id].includes(r.body.trim()));
    assert.equal(r.headers['x-torpor-held-ms'], undefined, 'served by the machine kept running, no wake-up');
  });

  it('L7: a machine that cannot be started yields a 503 with a reason within the deadline', async () => {
    // Recorded, then updated to more memory than any host has: its start cannot be placed.
    const m = await create('broken', {}, { skipStart: true });
    await c.updateMachine({ id: m.id, config: { ...m.config!, guest: { ...m.config!.guest!, memoryMb: 16384 } } });
    await sleep(200);
    const r = await proxyGet(mesh.proxyUrl, '/', 'broken');
    assert.equal(r.status, 503, r.body);
    assert.ok(r.totalMs < HOLD_SECONDS * 1000 + 500, `answered within the hold deadline (${r.totalMs} ms)`);
    const body = JSON.parse(r.body);
    assert.match(body.reason, new RegExp(m.id));
    assert.match(body.reason, /could not be started/);
  });

  it('an unknown app gets 404 (by Host header and by path), a request naming no app too', async () => {
    for (const r of [await proxyGet(mesh.proxyUrl, '/', 'nobody-here'), await proxyGet(mesh.proxyUrl, '/apps/nobody-here/x')]) {
      assert.equal(r.status, 404);
      assert.match(JSON.parse(r.body).reason, /unknown app "nobody-here"/);
    }
    const none = await proxyGet(mesh.proxyUrl, '/boot');
    assert.equal(none.status, 404);
    assert.match(JSON.parse(none.body).reason, /no app in the request/);
  });
});
