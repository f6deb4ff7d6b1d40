import * as assert from 'assert';
import * as fs from 'fs';
import * as path from 'path';
import { FakeVmm } from '../../services/host-agent/src/vmm/fake-vmm';
import { verifySnapshotFiles } from '../../services/host-agent/src/vmm/snapshot-files';
import { VmLaunch } from '../../services/host-agent/src/vmm/vmm';
import { freePort, get, portClosed, tempDir } from './helpers';

describe('vmm/fake-vmm (test double)', () => {
  let dir: string;
  let vm: VmLaunch;
  before(async () => {
    dir = tempDir('torpor-fake-');
    vm = { machineId: 'f1', image: 'default', cpus: 1, memoryMb: 256, env: { A: '1' }, hostPort: await freePort(), vmDir: path.join(dir, 'vm') };
  });
  after(async () => {
    await FakeVmm.stopAll();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('S3: boot, counter, suspend, resume keeps the boot token and the counter; the snapshot is spent', async () => {
    const v = new FakeVmm();
    assert.strictEqual(v.accel, 'fake');
    await v.boot(vm);
    assert.strictEqual(await get(vm.hostPort, '/'), 'f1');
    const token = await get(vm.hostPort, '/boot');
    assert.strictEqual(await get(vm.hostPort, '/counter'), '1');
    const files = await v.suspend(vm, path.join(dir, 'snap'));
    assert.ok(await portClosed(vm.hostPort));
    assert.strictEqual(fs.statSync(files.statePath).mode & 0o777, 0o600);
    assert.strictEqual(await verifySnapshotFiles(files), null);
    assert.ok(new FakeVmm().isRunning('f1', vm.vmDir) === false);
    await v.resume(vm, files);
    assert.strictEqual(await get(vm.hostPort, '/boot'), token);
    assert.strictEqual(await get(vm.hostPort, '/counter'), '2');
    assert.ok(!fs.existsSync(files.statePath));
    await assert.rejects(v.resume(vm, files), /already runs|refused/);
    assert.ok(new FakeVmm().isRunning('f1', vm.vmDir), 'a fresh instance sees the running VM');
  });

  it('L9: an aborted suspend leaves the VM running and rejects with AbortError', async () => {
    const v = new FakeVmm({ suspendDelayMs: 50 });
    const ac = new AbortController();
    const p = v.suspend(vm, path.join(dir, 'snap2'), ac.signal);
    setTimeout(() => ac.abort(), 10);
    await assert.rejects(p, (e: Error) => e.name === 'AbortError');
    assert.ok(v.isRunning('f1', vm.vmDir));
    assert.strictEqual(await get(vm.hostPort, '/counter'), '3');
    await v.stop('f1', vm.vmDir);
    assert.ok(!v.isRunning('f1', vm.vmDir));
  });
});
