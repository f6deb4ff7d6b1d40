// What the guest sees across a suspension: its console lines all reach NATS in order,
// once (E2), and its clock is set right after a resume (E3).
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { MachineState } from '../../gen/torpor/machines/v1/machines';
import { LOGS_STREAM } from '../../lib/nats';
import type { Mesh } from '../../scripts/mesh/mesh';
import { config, get, readStream, sleep, startMesh, stopMesh, suspendAndWait } from './fixture';

const S = MachineState;

describe('guest console and clock across suspend/resume, end to end', function () {
  this.timeout(180_000);
  let mesh: Mesh;
  let c: ReturnType<Mesh['machines']>;

  before(async () => {
    mesh = await startMesh();
    c = mesh.machines();
  });
  after(() => stopMesh(mesh));

  const suspend = (id: string) => suspendAndWait(c, id);

  it('E2: a numbered stream of console lines arrives complete, in order, once, across suspend and resume', async () => {
    const m = await c.createMachine({ app: 'logs', name: '', region: 'bog', config: config(), skipStart: false });
    const boot = await get(m.url, '/boot');
    const N = 60;
    await get(m.url, `/log?n=${N}&ms=20`); // the guest writes them in the background, 20 ms apart
    await sleep(300);
    await suspend(m.id); // mid-stream
    await sleep(500);
    const r = await c.startMachine({ id: m.id });
    assert.equal(r.resumed, true);
    const mine = (msgs: Awaited<ReturnType<typeof readStream>>) => msgs.map((x) => String(x.json.line)).filter((l) => l.startsWith(`torpor-log ${boot} `));
    let got: string[] = [];
    const deadline = Date.now() + 30_000;
    while (Date.now() < deadline) {
      got = mine(await readStream(mesh.natsUrl, LOGS_STREAM, `logs.logs.${m.id}`, 1));
      if (got.length >= N) break;
      await sleep(300);
    }
    assert.deepEqual(got, Array.from({ length: N }, (_, i) => `torpor-log ${boot} ${i + 1}/${N}`));
    const all = await readStream(mesh.natsUrl, LOGS_STREAM, `logs.logs.${m.id}`, 1);
    assert.deepEqual(all.map((x) => Number(x.json.sequence)), all.map((_, i) => i + 1), 'console line numbers without gaps or repeats');
    // The CLI shows them too.
    const bin = path.resolve(__dirname, '..', '..', '..', 'bin', 'torpor.js');
    const out = execFileSync(process.execPath, [bin, 'logs', m.id], { env: { ...process.env, TORPOR_SCHEDULER: mesh.schedulerAddress, NATS_URL: mesh.natsUrl }, encoding: 'utf8' });
    assert.ok(out.includes(`torpor-log ${boot} ${N}/${N}`));
    await c.destroyMachine({ id: m.id, force: true });
  });

  it('E3: right after a resume that followed a 20 s suspension, the guest clock is within 1 s of the host', async () => {
    const m = await c.createMachine({ app: 'clock', name: '', region: 'bog', config: config(), skipStart: false });
    await suspend(m.id);
    await sleep(20_000);
    const r = await c.startMachine({ id: m.id });
    assert.equal(r.resumed, true);
    const before = Date.now();
    const guest = Number(await get(r.machine!.url, '/time'));
    const after = Date.now();
    const skew = Math.abs(guest - (before + after) / 2);
    assert.ok(skew < 1000, `guest clock is ${Math.round(guest - (before + after) / 2)} ms off the host`);
    await c.destroyMachine({ id: m.id, force: true });
  });
});
