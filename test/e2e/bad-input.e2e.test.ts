// Bad input gets the right gRPC status and a message a person can act on; nothing is written.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { status } from '@grpc/grpc-js';
import { MachinesClient, MachineState } from '../../gen/torpor/machines/v1/machines';
import { ServiceError } from '@grpc/grpc-js';
import type { Mesh } from '../../scripts/mesh/mesh';
import { config, startMesh, stopMesh } from './fixture';

const S = MachineState;
const UNKNOWN = '00000000000000';

/** Calls a raw grpc-js method and returns its error (or fails if it succeeded). */
function callRaw(client: MachinesClient, method: string, req: unknown): Promise<ServiceError> {
  return new Promise((resolve, reject) =>
    (client as unknown as Record<string, (r: unknown, cb: (e: ServiceError | null) => void) => void>)[method](req, (err) =>
      err ? resolve(err) : reject(new Error(`${method} succeeded on bad input`)),
    ),
  );
}

describe('bad input, end to end', function () {
  this.timeout(120_000);
  let mesh: Mesh;
  let raw: MachinesClient;
  let started: string;
  let suspended: string;

  before(async () => {
    mesh = await startMesh({ schedulerArgs: ['--suspend-regions', 'bog'] });
    const c = mesh.machines();
    started = (await c.createMachine({ app: 'web', name: 'a', region: 'bog', config: config(), skipStart: false })).id;
    suspended = (await c.createMachine({ app: 'web', name: 'b', region: 'bog', config: config(), skipStart: false })).id;
    await c.suspendMachine({ id: suspended });
    await c.waitMachine({ id: suspended, state: S.MACHINE_STATE_SUSPENDED, timeoutSeconds: 60, instanceId: '' });
    raw = c.raw;
  });
  after(() => stopMesh(mesh));

  const snapshot = async () => {
    const c = mesh.machines();
    const all = await c.listMachines({ app: '', state: S.MACHINE_STATE_UNSPECIFIED });
    const events = await Promise.all(all.machines.map((m) => c.listMachineEvents({ id: m.id })));
    return JSON.stringify({ machines: all.machines.map((m) => [m.id, m.state, m.instanceId, m.updatedAt]), events: events.map((e) => e.events.length) });
  };

  const good = { app: 'web', name: '', region: 'bog', config: config(), skipStart: true };
  const cases: [string, string, () => unknown, status, RegExp][] = [
    ['malformed id', 'getMachine', () => ({ id: 'nope' }), status.INVALID_ARGUMENT, /not a machine id: expected 14 lowercase hex/],
    ['empty id', 'startMachine', () => ({ id: '' }), status.INVALID_ARGUMENT, /id is required/],
    ['unknown machine', 'getMachine', () => ({ id: UNKNOWN }), status.NOT_FOUND, /does not exist/],
    ['unknown machine on start', 'startMachine', () => ({ id: UNKNOWN }), status.NOT_FOUND, /does not exist/],
    ['negative-looking huge memory', 'createMachine', () => ({ ...good, config: config({ memoryMb: 4294967295 }) }), status.INVALID_ARGUMENT, /memory_mb must be from 128 to 16384/],
    ['tiny memory', 'createMachine', () => ({ ...good, config: config({ memoryMb: 1 }) }), status.INVALID_ARGUMENT, /memory_mb must be from 128/],
    ['zero cpus is defaulted but 99 is not', 'createMachine', () => ({ ...good, config: { ...config(), guest: { cpus: 99, memoryMb: 256, cpuKind: '', gpus: 0 } } }), status.INVALID_ARGUMENT, /cpus must be from 1 to 16/],
    ['missing config', 'createMachine', () => ({ ...good, config: undefined }), status.INVALID_ARGUMENT, /config is required/],
    ['bad app name', 'createMachine', () => ({ ...good, app: 'Web App!' }), status.INVALID_ARGUMENT, /app "Web App!" must be 1 to 63 lowercase/],
    ['bad image name', 'createMachine', () => ({ ...good, config: config({ image: '../etc/passwd' }) }), status.INVALID_ARGUMENT, /config.image/],
    ['env with spaces', 'createMachine', () => ({ ...good, config: config({ env: { A: 'x y' } }) }), status.INVALID_ARGUMENT, /white space/],
    ['an image no host has built', 'createMachine', () => ({ ...good, config: config({ image: 'nosuch' }) }), status.FAILED_PRECONDITION, /image "nosuch" is not built on any host in region "bog" \(images there: default, slow-start\); build it with `torpor images build DIR --name nosuch`/],
    ['unknown region', 'createMachine', () => ({ ...good, region: 'zzz' }), status.FAILED_PRECONDITION, /no host serves region "zzz"; regions with hosts: bog/],
    ['more memory than any host has', 'createMachine', () => ({ ...good, config: config({ memoryMb: 16384 }) }), status.RESOURCE_EXHAUSTED, /no host in region "bog" has 16384 MiB free/],
    ['unknown state in WaitMachine', 'waitMachine', () => ({ id: started, state: 99, timeoutSeconds: 1, instanceId: '' }), status.INVALID_ARGUMENT, /not a machine state/],
    ['non-target state in WaitMachine', 'waitMachine', () => ({ id: started, state: S.MACHINE_STATE_SUSPENDING, timeoutSeconds: 1, instanceId: '' }), status.INVALID_ARGUMENT, /cannot wait for state "suspending": use one of started, stopped, suspended, destroyed/],
    ['missing state in WaitMachine', 'waitMachine', () => ({ id: started, state: 0, timeoutSeconds: 1, instanceId: '' }), status.INVALID_ARGUMENT, /state is required/],
    ['huge timeout in WaitMachine', 'waitMachine', () => ({ id: started, state: S.MACHINE_STATE_STOPPED, timeoutSeconds: 100000, instanceId: '' }), status.INVALID_ARGUMENT, /timeout_seconds must be from 1 to 300/],
    ['start a started machine', 'startMachine', () => ({ id: started }), status.FAILED_PRECONDITION, /it is started already/],
    ['suspend a suspended machine', 'suspendMachine', () => ({ id: suspended }), status.FAILED_PRECONDITION, /it is suspended already/],
    ['destroy a started machine without force', 'destroyMachine', () => ({ id: started, force: false }), status.FAILED_PRECONDITION, /stop it first, or destroy with force/],
    ['update to an image no host has built', 'updateMachine', () => ({ id: suspended, config: config({ image: 'nosuch' }) }), status.FAILED_PRECONDITION, /image "nosuch" is not built on any host in region "bog"/],
    ['update with a bad config', 'updateMachine', () => ({ id: suspended, config: config({ memoryMb: 0 }) }), status.INVALID_ARGUMENT, /memory_mb is required/],
    ['list with an unknown state', 'listMachines', () => ({ app: '', state: 42 }), status.INVALID_ARGUMENT, /not a machine state/],
  ];

  for (const [what, method, req, code, msg] of cases) {
    it(`${what}: ${status[code]} with a message that says what to do; nothing is written`, async () => {
      const before = await snapshot();
      const err = await callRaw(raw, method, req());
      assert.equal(status[err.code], status[code], err.details);
      assert.match(err.details, msg);
      assert.equal(await snapshot(), before, 'nothing was written');
    });
  }

  it('R1–R4: a machine that may not be suspended gets FAILED_PRECONDITION naming every reason, before anything starts', async () => {
    const c = mesh.machines();
    const m = await c.createMachine({ app: 'web', name: 'big', region: 'bog', config: config({ memoryMb: 2304, swapSizeMb: 256, schedule: 'hourly' }), skipStart: false });
    const gpu = await c.createMachine({ app: 'web', name: 'gpu', region: 'bog', config: { ...config(), guest: { cpus: 1, memoryMb: 256, cpuKind: 'shared', gpus: 1 } }, skipStart: true });
    const before = await snapshot();
    const err = await callRaw(raw, 'suspendMachine', { id: m.id });
    assert.equal(err.code, status.FAILED_PRECONDITION);
    assert.match(err.details, /R1: .*2304 MiB.*R2: .*swap.*R3: .*schedule/);
    await c.startMachine({ id: gpu.id });
    assert.match((await callRaw(raw, 'suspendMachine', { id: gpu.id })).details, /R4: .*GPU/);
    assert.equal((await c.getMachine({ id: m.id })).state, S.MACHINE_STATE_STARTED, 'the machine goes on running');
    assert.ok(before.length > 0);
    await c.destroyMachine({ id: m.id, force: true });
    await c.destroyMachine({ id: gpu.id, force: true });
  });

  it('the CLI reports the same errors with a non-zero exit and a clear message', () => {
    const bin = path.resolve(__dirname, '..', '..', '..', 'bin', 'torpor.js');
    let out = '';
    let code = 0;
    try {
      execFileSync(process.execPath, [bin, 'machines', 'status', UNKNOWN], { env: { ...process.env, TORPOR_SCHEDULER: mesh.schedulerAddress }, stdio: 'pipe' });
    } catch (e) {
      const err = e as { status: number; stderr: Buffer };
      code = err.status;
      out = err.stderr.toString();
    }
    assert.equal(code, 1);
    assert.match(out, /does not exist.*NOT_FOUND/);
  });
});
