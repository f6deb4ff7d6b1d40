// The host agent's logic with the VM test double and the real snapshot registry in
// memory: claims, ledger, file checks and memory limits, in milliseconds.
// (Proven again on real QEMU guests in test/e2e.)
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { TorporError } from '../../lib/errors';
import { createLogger } from '../../lib/log';
import { openDatabase } from '../../lib/sqlite';
import { HostAgentCore } from '../../services/host-agent/src/agent';
import type { SnapshotAuthority } from '../../services/host-agent/src/ports';
import { MIGRATIONS as AGENT_MIGRATIONS } from '../../services/host-agent/src/schema';
import { VmRecords } from '../../services/host-agent/src/vm-records';
import { FakeVmm } from '../../services/host-agent/src/vmm/fake-vmm';
import { MIGRATIONS as STORE_MIGRATIONS } from '../../services/snapshot-store/src/schema';
import { SnapshotRegistry } from '../../services/snapshot-store/src/snapshot-registry';

const M = 'abcdef01234567';
const spec = { image: 'default', cpus: 1, memoryMb: 256, env: {}, guestPort: 0 };

function authority(reg: SnapshotRegistry): SnapshotAuthority {
  return {
    async register(s) {
      const { sizeBytes, ...files } = s.files;
      const r = reg.register({ ...s, files, sizeBytes });
      return { id: r.id, sizeBytes: r.sizeBytes, generation: r.generation, state: r.state };
    },
    async claim(s) {
      const c = reg.claim(s);
      return { claimId: c.claimId, files: { ...c.snapshot.files, sizeBytes: c.snapshot.sizeBytes } };
    },
    async complete(id, ok, reason) {
      reg.completeClaim(id, ok, reason);
    },
    async stateOf(id) {
      try {
        return reg.get(id).state;
      } catch {
        return undefined;
      }
    },
  };
}

const refused = (kind: string, re: RegExp) => (e: unknown) => e instanceof TorporError && e.kind === kind && re.test(e.message);

describe('host agent core (VM test double)', () => {
  let dir: string;
  let core: HostAgentCore;
  let reg: SnapshotRegistry;
  const id = (generation: number) => ({ machineId: M, app: 'web', instanceId: 'I1', generation });

  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'torpor-agent-unit-'));
    reg = new SnapshotRegistry(openDatabase(':memory:', STORE_MIGRATIONS));
    core = new HostAgentCore({ hostId: 'h1', dataDir: dir, memoryMbTotal: 1024, images: () => ['default'] }, new FakeVmm(), new VmRecords(openDatabase(':memory:', AGENT_MIGRATIONS)), authority(reg), createLogger('test', 'silent'));
  });
  afterEach(async () => {
    await core.destroy(M).catch(() => {});
    fs.rmSync(dir, { recursive: true, force: true });
  });

  const bootAndSuspend = async () => {
    reg.beginGeneration(M, 'web', 1, '');
    await core.boot(id(1), spec);
    return (await core.suspend(id(1))).snapshot;
  };

  it('S3: resumes a snapshot once; the ledger refuses it again even if the store were fooled', async () => {
    const snap = await bootAndSuspend();
    const v = await core.resume(id(1), spec, snap.id);
    assert.equal(v.resumed, true);
    await core.stop(M);
    await assert.rejects(core.resume(id(1), spec, snap.id), refused('failed_precondition', /already loaded snapshot .* once/));
  });

  it('S3: deletes the snapshot files once loaded', async () => {
    const snap = await bootAndSuspend();
    const snapDir = path.join(dir, 'snapshots', M, snap.id);
    assert.ok(fs.existsSync(snapDir));
    await core.resume(id(1), spec, snap.id);
    assert.equal(fs.existsSync(snapDir), false);
  });

  it('S4: a damaged state file is never loaded; the snapshot is invalidated with the reason', async () => {
    const snap = await bootAndSuspend();
    const snapDir = path.join(dir, 'snapshots', M, snap.id);
    const f = fs.readdirSync(snapDir).find((n) => !/mem/.test(n))!;
    fs.appendFileSync(path.join(snapDir, f), 'x');
    await assert.rejects(core.resume(id(1), spec, snap.id), refused('failed_precondition', /damaged/));
    assert.equal(reg.get(snap.id).state, 'invalidated');
    assert.match(reg.get(snap.id).reason, /damaged/);
  });

  it('S2: a cold boot deletes every local snapshot of the machine', async () => {
    const snap = await bootAndSuspend();
    reg.beginGeneration(M, 'web', 2, '');
    await core.boot(id(2), spec);
    assert.equal(fs.existsSync(path.join(dir, 'snapshots', M, snap.id)), false);
  });

  it('S2: a suspend of a generation the store has moved past is refused and leaves no files', async () => {
    reg.beginGeneration(M, 'web', 1, '');
    await core.boot(id(1), spec);
    reg.beginGeneration(M, 'web', 2, 'a newer boot elsewhere');
    await assert.rejects(core.suspend(id(1)), /generation 1 refused/);
    assert.deepEqual(fs.readdirSync(path.join(dir, 'snapshots', M)), []);
  });

  it('S5: garbage collection deletes files of snapshots the store no longer holds ready', async () => {
    const snap = await bootAndSuspend();
    reg.invalidateMachine(M, 'stopped elsewhere');
    assert.equal(await core.collectGarbage(), 1);
    assert.equal(fs.existsSync(path.join(dir, 'snapshots', M, snap.id)), false);
  });

  it('RESOURCE_EXHAUSTED: a boot or resume past the memory the host offers is refused', async () => {
    await assert.rejects(core.boot(id(1), { ...spec, memoryMb: 2048 }), refused('resource_exhausted', /offers 1024 MiB/));
    const snap = await bootAndSuspend();
    await core.boot({ ...id(1), machineId: 'bbbbbbbbbbbbbb' }, { ...spec, memoryMb: 900 });
    await assert.rejects(core.resume(id(1), spec, snap.id), refused('resource_exhausted', /900 MiB are in use/));
    await core.destroy('bbbbbbbbbbbbbb');
  });

  it('a suspend cancelled before the snapshot is written leaves the VM running (L9)', async () => {
    core = new HostAgentCore({ hostId: 'h1', dataDir: dir, memoryMbTotal: 1024, images: () => ['default'] }, new FakeVmm({ suspendDelayMs: 50 }), new VmRecords(openDatabase(':memory:', AGENT_MIGRATIONS)), authority(reg), createLogger('test', 'silent'));
    reg.beginGeneration(M, 'web', 1, '');
    await core.boot(id(1), spec);
    const abort = new AbortController();
    const p = core.suspend(id(1), abort.signal);
    abort.abort();
    await assert.rejects(p, refused('cancelled', /goes on running/));
    assert.equal(core.get(M).running, true);
  });

  it('an image that is not built on this host is FAILED_PRECONDITION saying how to build it', async () => {
    reg.beginGeneration(M, 'web', 1, '');
    await assert.rejects(core.boot(id(1), { ...spec, image: 'nosuch' }), refused('failed_precondition', /image "nosuch" is not built on host h1 \(built: default\); build it with `torpor images build DIR --name nosuch`/));
  });
});
