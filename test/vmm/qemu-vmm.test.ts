// Real QEMU tests (TCG on this machine): each cold boot takes 2-4 s. Images are
// built once into TORPOR_IMAGES_CACHE and reused; VMs live in a temp dir and are
// killed by pid in after hooks.
import * as assert from 'assert';
import * as fs from 'fs';
import * as path from 'path';
import { ConsoleTail } from '../../services/host-agent/src/vmm/console-tail';
import { buildImageFromDir } from '../../services/host-agent/src/vmm/images';
import { pidAlive, QemuVmm } from '../../services/host-agent/src/vmm/qemu-vmm';
import { describeSnapshotFiles, verifySnapshotFiles } from '../../services/host-agent/src/vmm/snapshot-files';
import { SnapshotFileSet, VmLaunch } from '../../services/host-agent/src/vmm/vmm';
import { freePort, get, imagesDataDir, killVmDirs, median, portClosed, sleep, tempDir } from './helpers';

const mode = (p: string) => fs.statSync(p).mode & 0o777;

describe('vmm/qemu-vmm (real VMs)', function () {
  this.timeout(120000);
  let dataDir: string;
  let work: string;
  const vmDirs: string[] = [];
  let vmm: QemuVmm;

  async function launch(id: string, memoryMb = 256, env: Record<string, string> = {}, image = 'default'): Promise<VmLaunch> {
    const vmDir = path.join(work, id);
    vmDirs.push(vmDir);
    return { machineId: id, image, cpus: 1, memoryMb, env, hostPort: await freePort(), vmDir };
  }

  before(function () {
    this.timeout(300000);
    dataDir = imagesDataDir();
    work = tempDir('torpor-vmm-test-');
    vmm = new QemuVmm({ dataDir, accel: (process.env.TORPOR_ACCEL as 'kvm' | 'tcg') ?? 'auto' });
  });
  after(() => {
    killVmDirs(vmDirs);
    vmm.close();
    fs.rmSync(work, { recursive: true, force: true });
  });

  describe('one machine through boot, suspend, resume', () => {
    let vm: VmLaunch;
    let token: string;
    let files: SnapshotFileSet;
    let pid: number;

    it('boots to HTTP: / answers the machine id and the env reaches the app', async () => {
      vm = await launch('m-life', 256, { GREETING: 'hello world', X: 'a=b' });
      pid = (await vmm.boot(vm)).pid;
      assert.ok(pidAlive(pid));
      assert.strictEqual(await get(vm.hostPort, '/'), 'm-life');
      const env = await get(vm.hostPort, '/env');
      assert.match(env, /^GREETING=hello world$/m);
      assert.match(env, /^X=a=b$/m);
      assert.strictEqual(mode(vm.vmDir), 0o700);
      assert.strictEqual(mode(path.join(vm.vmDir, 'memory')), 0o600);
      token = await get(vm.hostPort, '/boot');
      assert.match(token, /^[0-9a-f]{32}$/);
      assert.strictEqual(await get(vm.hostPort, '/counter'), '1');
      assert.strictEqual(await get(vm.hostPort, '/counter'), '2');
    });

    it('L9: an aborted suspend continues the guest and rejects with AbortError', async () => {
      const ac = new AbortController();
      ac.abort();
      await assert.rejects(vmm.suspend(vm, path.join(work, 'snap-aborted'), ac.signal), (e: Error) => e.name === 'AbortError');
      const ac2 = new AbortController();
      const p = vmm.suspend(vm, path.join(work, 'snap-aborted2'), ac2.signal);
      ac2.abort(); // aborts during stop/migration setup
      await assert.rejects(p, (e: Error) => e.name === 'AbortError');
      assert.ok(vmm.isRunning(vm.machineId, vm.vmDir));
      assert.strictEqual(await get(vm.hostPort, '/boot'), token);
      assert.ok(!fs.existsSync(path.join(work, 'snap-aborted2', 'state')), 'no snapshot left behind');
    });

    it('S5: suspend writes private snapshot files and ends QEMU', async () => {
      const t0 = Date.now();
      files = await vmm.suspend(vm, path.join(work, 'snap1'));
      const ms = Date.now() - t0;
      assert.ok(fs.existsSync(files.statePath) && fs.existsSync(files.memoryPath));
      assert.strictEqual(mode(files.statePath), 0o600);
      assert.strictEqual(mode(files.memoryPath), 0o600);
      assert.strictEqual(mode(path.dirname(files.statePath)), 0o700);
      assert.strictEqual(files.memorySize, 256 * 1024 * 1024);
      assert.ok(files.stateSize < 1024 * 1024, `state file ${files.stateSize} bytes`);
      assert.ok(!pidAlive(pid), 'QEMU is gone');
      assert.ok(!vmm.isRunning(vm.machineId, vm.vmDir));
      assert.ok(await portClosed(vm.hostPort));
      assert.ok(!fs.existsSync(path.join(vm.vmDir, 'memory')), 'memory moved into the snapshot');
      assert.strictEqual(await verifySnapshotFiles(files), null);
      console.log(`      suspend ${ms} ms, state ${files.stateSize} bytes`);
    });

    it('S3: resume brings back the same guest (same /boot token, counter continues); the snapshot is spent', async () => {
      const t0 = Date.now();
      const r = await vmm.resume(vm, files);
      console.log(`      resume to first HTTP ${Date.now() - t0} ms`);
      pid = r.pid;
      assert.strictEqual(await get(vm.hostPort, '/boot'), token);
      assert.strictEqual(await get(vm.hostPort, '/counter'), '3');
      assert.ok(!fs.existsSync(files.statePath), 'state file deleted');
      assert.ok(!fs.existsSync(files.memoryPath), 'memory moved back to the VM');
      assert.notStrictEqual(await verifySnapshotFiles(files), null);
      await assert.rejects(vmm.resume(vm, files), /already runs/);
    });

    it('isRunning and suspend/resume work from a fresh QemuVmm after an agent restart', async () => {
      const fresh = new QemuVmm({ dataDir, accel: vmm.accel === 'kvm' ? 'kvm' : 'tcg' });
      try {
        vmm.close(); // the old agent's QMP connection goes away
        assert.ok(fresh.isRunning(vm.machineId, vm.vmDir));
        const f = await fresh.suspend(vm, path.join(work, 'snap2'));
        assert.ok(!fresh.isRunning(vm.machineId, vm.vmDir));
        await fresh.resume(vm, f);
        assert.strictEqual(await get(vm.hostPort, '/boot'), token);
        assert.strictEqual(await get(vm.hostPort, '/counter'), '4');
      } finally {
        fresh.close();
      }
    });

    it('S4: a damaged snapshot is caught before load (state altered, memory truncated or replaced)', async () => {
      const f = await vmm.suspend(vm, path.join(work, 'snap3'));
      // state file altered in place
      const orig = fs.readFileSync(f.statePath);
      const bad = Buffer.from(orig);
      bad[bad.length >> 1] ^= 0xff;
      fs.writeFileSync(f.statePath, bad);
      assert.strictEqual(await verifySnapshotFiles(f), 'state file sha256 mismatch');
      await assert.rejects(vmm.resume(vm, f), /state file sha256 mismatch/);
      fs.writeFileSync(f.statePath, orig);
      // memory file replaced by a copy (same bytes, new identity)
      fs.copyFileSync(f.memoryPath, f.memoryPath + '.copy');
      fs.renameSync(f.memoryPath, f.memoryPath + '.orig');
      fs.renameSync(f.memoryPath + '.copy', f.memoryPath);
      assert.strictEqual(await verifySnapshotFiles(f), 'memory file replaced (identity changed)');
      fs.renameSync(f.memoryPath + '.orig', f.memoryPath);
      assert.strictEqual(await verifySnapshotFiles(f), null);
      // memory file truncated
      const keep = f.memoryPath + '.keep';
      fs.linkSync(f.memoryPath, keep);
      fs.rmSync(f.memoryPath);
      fs.copyFileSync(keep, f.memoryPath);
      fs.truncateSync(f.memoryPath, 1 << 20);
      assert.strictEqual(await verifySnapshotFiles(f), `memory file truncated: ${1 << 20} of ${f.memorySize} bytes`);
      await assert.rejects(vmm.resume(vm, f), /truncated/);
      assert.ok(!vmm.isRunning(vm.machineId, vm.vmDir));
      fs.rmSync(f.memoryPath);
      fs.renameSync(keep, f.memoryPath);
      assert.strictEqual(await verifySnapshotFiles(f), null);
      await vmm.resume(vm, f);
      assert.strictEqual(await get(vm.hostPort, '/boot'), token);
    });

    it('stop ends QEMU and deletes the guest memory', async () => {
      await vmm.stop(vm.machineId, vm.vmDir);
      assert.ok(!vmm.isRunning(vm.machineId, vm.vmDir));
      assert.ok(!fs.existsSync(path.join(vm.vmDir, 'memory')));
      assert.ok(await portClosed(vm.hostPort));
    });
  });

  it('images: an image built from a folder runs its entrypoint as the app, with the env', async () => {
    const src = path.join(work, 'app-src');
    fs.mkdirSync(path.join(src, 'www'), { recursive: true });
    fs.writeFileSync(path.join(src, 'entrypoint'), '#!/bin/sh\necho "custom app for $TORPOR_MACHINE_ID says $GREETING" > www/index.html\nexec httpd -f -p 8080 -h /app/www\n');
    await buildImageFromDir(dataDir, src, 'test-custom');
    const vm = await launch('m-custom', 256, { GREETING: 'hi' }, 'test-custom');
    await vmm.boot(vm);
    assert.strictEqual(await get(vm.hostPort, '/'), 'custom app for m-custom says hi');
    await vmm.stop(vm.machineId, vm.vmDir);
  });

  it('E2: numbered console lines arrive complete, in order, once, across suspend/resume', async () => {
    const vm = await launch('m-console');
    await vmm.boot(vm);
    const tail = new ConsoleTail(vmm.consolePath(vm.vmDir), path.join(vm.vmDir, 'console.tail.json'));
    await tail.ack(await tail.read(100000)); // boot messages
    const token = await get(vm.hostPort, '/boot');
    const n = 300;
    await get(vm.hostPort, `/log?n=${n}&ms=5`);
    await sleep(300);
    const files = await vmm.suspend(vm, path.join(work, 'snap-console'));
    await sleep(500);
    await vmm.resume(vm, files);
    const seen: string[] = [];
    const seqs: number[] = [];
    const deadline = Date.now() + 30000;
    while (Date.now() < deadline && !seen.includes(`${n}/${n}`)) {
      const b = await tail.read();
      for (const l of b.lines) {
        seqs.push(l.seq);
        const m = new RegExp(`^torpor-log ${token} (\\d+/\\d+)$`).exec(l.text);
        if (m) seen.push(m[1]);
      }
      await tail.ack(b);
      await sleep(50);
    }
    assert.deepStrictEqual(seen, Array.from({ length: n }, (_, i) => `${i + 1}/${n}`));
    for (let i = 1; i < seqs.length; i++) assert.strictEqual(seqs[i], seqs[i - 1] + 1);
    await vmm.stop(vm.machineId, vm.vmDir);
  });

  it('S1/resume: 256 MiB and 2048 MiB guests with most memory written resume fast, and the 2048 MiB one within 1.5x', async function () {
    this.timeout(240000);
    const res: Record<number, number[]> = {};
    for (const mb of [256, 2048]) {
      const vm = await launch(`m-mem${mb}`, mb);
      await vmm.boot(vm);
      // "most of its memory": 90 % of what the guest kernel reports available
      const filled = parseInt(await get(vm.hostPort, '/mem?pct=90', 120000), 10);
      assert.ok(filled > mb * 0.5, `guest wrote ${filled} MiB of ${mb}`);
      res[mb] = [];
      for (let i = 0; i < 3; i++) {
        const f = await vmm.suspend(vm, path.join(work, `snap-mem${mb}-${i}`));
        const t0 = Date.now();
        await vmm.resume(vm, f);
        res[mb].push(Date.now() - t0);
        await get(vm.hostPort, '/counter');
      }
      await vmm.stop(vm.machineId, vm.vmDir);
    }
    const m256 = median(res[256]);
    const m2048 = median(res[2048]);
    console.log(`      resume to first HTTP: 256 MiB ${res[256].join('/')} ms, 2048 MiB ${res[2048].join('/')} ms`);
    assert.ok(m256 < 1000 && m2048 < 1000, 'resume under a second');
    // 1.5x, with 30 ms of slack for scheduling noise on a shared 2-core host.
    assert.ok(m2048 <= 1.5 * m256 + 30, `2048 MiB resume ${m2048} ms vs 256 MiB ${m256} ms`);
  });

  it('E3: the guest clock is within 1 s of the host right after a resume that followed a 20 s suspension (slow: ~25 s)', async function () {
    this.timeout(90000);
    const vm = await launch('m-clock');
    await vmm.boot(vm);
    const files = await vmm.suspend(vm, path.join(work, 'snap-clock'));
    await sleep(20000);
    await vmm.resume(vm, files);
    const before = Date.now();
    const guest = parseFloat(await get(vm.hostPort, '/time'));
    const after = Date.now();
    const skew = guest - (before + after) / 2;
    console.log(`      guest clock - host clock = ${skew.toFixed(1)} ms (request took ${after - before} ms)`);
    assert.ok(Math.abs(skew) < 1000, `skew ${skew} ms`);
    await vmm.stop(vm.machineId, vm.vmDir);
  });
});
