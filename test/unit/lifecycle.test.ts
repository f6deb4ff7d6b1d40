// The lifecycle orchestrator against in-memory ports: ordering and races in milliseconds.
// (The same rules are proven end to end on real VMs in test/e2e.)
import assert from 'node:assert/strict';
import { MachineConfig } from '../../gen/torpor/machines/v1/machines';
import type { VmIdentity } from '../../gen/torpor/hostagent/v1/hostagent';
import { TorporError } from '../../lib/errors';
import { createLogger } from '../../lib/log';
import { eventsOfMachine } from '../../lib/outbox';
import { openDatabase } from '../../lib/sqlite';
import { MachineLifecycle } from '../../services/scheduler/src/lifecycle';
import type { HostAgentPort, SnapshotPort } from '../../services/scheduler/src/ports';
import { MIGRATIONS } from '../../services/scheduler/src/store/schema';
import { MachineStore } from '../../services/scheduler/src/store/machine-store';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

class MemoryHosts implements HostAgentPort {
  calls: string[] = [];
  suspendDelayMs = 20;
  resumeError?: Error;
  stopError?: Error;
  vms = new Set<string>();
  async boot(_a: string, vm: VmIdentity) {
    this.calls.push(`boot:${vm.generation}`);
    await sleep(5);
    this.vms.add(vm.machineId);
    return { url: 'http://127.0.0.1:1', tookMs: 5 };
  }
  async suspend(_a: string, vm: VmIdentity, signal: AbortSignal) {
    this.calls.push('suspend');
    await sleep(this.suspendDelayMs);
    if (signal.aborted) throw new TorporError('cancelled', 'cancelled');
    this.vms.delete(vm.machineId);
    return { snapshotId: `snap_${'0'.repeat(15)}${this.calls.length % 10}`, sizeBytes: 100, tookMs: this.suspendDelayMs };
  }
  async resume(_a: string, vm: VmIdentity) {
    this.calls.push('resume');
    await sleep(5);
    if (this.resumeError) throw this.resumeError;
    this.vms.add(vm.machineId);
    return { url: 'http://127.0.0.1:1', tookMs: 5 };
  }
  async stop(_a: string, id: string) {
    this.calls.push('stop');
    if (this.stopError) throw this.stopError;
    this.vms.delete(id);
    return { tookMs: 1 };
  }
  async destroy(_a: string, id: string) {
    this.calls.push('destroy');
    this.vms.delete(id);
    return { tookMs: 1 };
  }
  async running(_a: string, id: string) {
    return this.vms.has(id);
  }
}

class MemorySnapshots implements SnapshotPort {
  calls: string[] = [];
  ready?: string;
  async beginGeneration(_m: string, _a: string, g: number) {
    this.calls.push(`begin:${g}`);
  }
  async invalidate(_m: string, reason: string) {
    this.calls.push(`invalidate:${reason.split(':')[0]}`);
  }
  async deleteMachine() {
    this.calls.push('delete');
  }
  async readySnapshot() {
    return this.ready;
  }
}

const config = (memoryMb = 256) => MachineConfig.fromPartial({ image: 'default', guest: { cpus: 1, memoryMb, cpuKind: 'shared', gpus: 0 } });

describe('lifecycle orchestration (in-memory ports)', () => {
  let hosts: MemoryHosts;
  let snaps: MemorySnapshots;
  let life: MachineLifecycle;
  let store: MachineStore;
  let db: ReturnType<typeof openDatabase>;

  beforeEach(() => {
    db = openDatabase(':memory:', MIGRATIONS);
    store = new MachineStore(db, () => {});
    store.upsertHost({ hostId: 'h1', region: 'bog', address: 'x:1', memoryMbTotal: 4096, accel: 'fake', lastSeen: Date.now(), images: ['default'] });
    hosts = new MemoryHosts();
    snaps = new MemorySnapshots();
    life = new MachineLifecycle(store, hosts, snaps, { platformVersion: 2, suspendPolicy: { maxMemoryMb: 2048, suspendSinceVersion: 2, regions: [] }, hostTimeoutMs: 60_000 }, createLogger('test', 'silent'));
  });

  const started = () => life.create({ app: 'web', name: '', region: 'bog', config: config(), skipStart: false });
  const suspended = async () => {
    const m = await started();
    await life.suspend(m.id);
    return life.wait(m.id, 'suspended', 2000, '');
  };

  it('L1: suspend answers while suspending and becomes suspended when the snapshot is written', async () => {
    const m = await started();
    const r = await life.suspend(m.id);
    assert.equal(r.state, 'suspending');
    assert.equal((await life.wait(m.id, 'suspended', 2000, '')).state, 'suspended');
  });

  it('L8: two concurrent starts of a suspended machine resume it once', async () => {
    const m = await suspended();
    const [a, b] = await Promise.allSettled([life.start(m.id), life.start(m.id)]);
    assert.equal(hosts.calls.filter((c) => c === 'resume').length, 1);
    const ok = [a, b].filter((x) => x.status === 'fulfilled').map((x) => (x as PromiseFulfilledResult<{ resumed: boolean }>).value);
    assert.equal(ok.filter((r) => r.resumed).length, 1);
    assert.equal(life.get(m.id).state, 'started');
  });

  it('L9: a start during suspending cancels the suspend, never fails, and leaves no snapshot', async () => {
    hosts.suspendDelayMs = 50;
    const m = await started();
    await life.suspend(m.id);
    const r = await life.start(m.id);
    assert.equal(r.previousState, 'suspending');
    assert.equal(r.machine.state, 'started');
    assert.equal(r.machine.snapshotId, '');
  });

  it('L8: a stop racing a suspend ends stopped, with the snapshot thrown away', async () => {
    const m = await started();
    await life.suspend(m.id);
    const stopped = await life.stop(m.id);
    assert.equal(stopped.state, 'stopped');
    assert.ok(snaps.calls.some((c) => c.startsWith('invalidate')));
  });

  it('L3: a resume the host refuses falls back to a cold start in a new generation, saying why', async () => {
    const m = await suspended();
    hosts.resumeError = new TorporError('failed_precondition', 'snapshot is damaged: state file sha256 mismatch');
    const r = await life.start(m.id);
    assert.equal(r.resumed, false);
    assert.match(r.reason, /sha256 mismatch/);
    assert.equal(r.machine.generation, 2);
    assert.deepEqual(snaps.calls.filter((c) => c.startsWith('begin')), ['begin:1', 'begin:2']);
  });

  it('L4: stop on a suspended machine invalidates its snapshot; the next start is cold', async () => {
    const m = await suspended();
    await life.stop(m.id);
    const r = await life.start(m.id);
    assert.equal(r.resumed, false);
    assert.equal(r.previousState, 'stopped');
    assert.ok(!hosts.calls.includes('resume'));
  });

  it('L5: update on a suspended machine throws its snapshot away and cold-starts a new instance', async () => {
    const m = await suspended();
    const u = await life.update(m.id, config(512));
    assert.equal(u.state, 'started');
    assert.notEqual(u.instanceId, m.instanceId);
    assert.equal(u.config.guest!.memoryMb, 512);
    assert.ok(snaps.calls.some((c) => c.startsWith('invalidate:machine updated')));
  });

  it('L6 + L10: destroy needs force for a started machine and deletes every snapshot', async () => {
    const m = await started();
    await assert.rejects(life.destroy(m.id, false), /stop it first, or destroy with force/);
    assert.equal((await life.destroy(m.id, true)).state, 'destroyed');
    assert.ok(snaps.calls.includes('delete'));
  });

  it('L2: wait answers DEADLINE_EXCEEDED saying where the machine is', async () => {
    const m = await started();
    await assert.rejects(life.wait(m.id, 'stopped', 50, ''), (e: unknown) => e instanceof TorporError && e.kind === 'deadline_exceeded' && /still started/.test(e.message));
  });

  it('N1: the sequence of a suspend/resume/stop yields the expected events, numbered without gaps', async () => {
    const m = await suspended();
    await life.start(m.id);
    await life.stop(m.id);
    const ev = eventsOfMachine(db, m.id);
    assert.deepEqual(
      ev.map((e) => e.subject.split('.')[1]),
      ['created', 'starting', 'started', 'suspending', 'suspended', 'starting', 'started', 'stopping', 'stopped'],
    );
    assert.deepEqual(ev.map((e) => e.sequence), [1, 2, 3, 4, 5, 6, 7, 8, 9]);
  });

  it('L8: nothing is left half-done: a stop the host fails leaves the machine failed with the reason, and it can be started again', async () => {
    const m = await started();
    hosts.stopError = new TorporError('internal', 'qemu would not die');
    await assert.rejects(life.stop(m.id), /qemu would not die/);
    const failed = life.get(m.id);
    assert.equal(failed.state, 'failed');
    assert.deepEqual(eventsOfMachine(db, m.id).at(-1)!.subject.split('.')[1], 'failed');
    assert.match(JSON.parse(eventsOfMachine(db, m.id).at(-1)!.payload).reason, /stopping failed: qemu would not die/);
    hosts.stopError = undefined;
    assert.equal((await life.start(m.id)).machine.state, 'started');
  });

  describe('after a scheduler crash (recover)', () => {
    // A crash leaves a machine in a transitional state; recover() finishes or rolls it back.
    const crashedIn = async (state: 'suspending' | 'starting' | 'stopping') => {
      const m = await started();
      if (state === 'starting') {
        await life.stop(m.id);
        store.transition(m.id, 'stopped', 'starting');
      } else store.transition(m.id, 'started', state);
      return m.id;
    };

    it('L8: a suspend whose snapshot was written (VM gone) completes as suspended', async () => {
      const id = await crashedIn('suspending');
      hosts.vms.delete(id);
      snaps.ready = 'snap_00000000000000aa';
      await life.recover();
      assert.equal(life.get(id).state, 'suspended');
      assert.equal(life.get(id).snapshotId, 'snap_00000000000000aa');
    });

    it('L8: a suspend that never reached the host (VM running) goes back to started', async () => {
      const id = await crashedIn('suspending');
      await life.recover();
      assert.equal(life.get(id).state, 'started');
    });

    it('L8: a start whose VM never came up is failed with the reason; a stop is finished', async () => {
      const a = await crashedIn('starting');
      const b = await crashedIn('stopping');
      await life.recover();
      assert.equal(life.get(a).state, 'failed');
      assert.match(JSON.parse(eventsOfMachine(db, a).at(-1)!.payload).reason, /interrupted by a scheduler restart/);
      assert.equal(life.get(b).state, 'stopped');
    });
  });
});
