// Measures the real VMM on this host (not a test): cold boot to first HTTP,
// suspend time, state file size, resume to first HTTP at 256 and 2048 MiB with
// the guest having written 90 % of its available memory, QEMU RSS after boot
// and after resume. Usage (after `npx tsc -p .`):
//   node dist/scripts/vmm-measure.js [DATA_DIR] [runs]
// DATA_DIR holds the images (built if needed by scripts/build-images.sh).
import { execFileSync } from 'child_process';
import * as fs from 'fs';
import * as http from 'http';
import * as net from 'net';
import * as os from 'os';
import * as path from 'path';
import { buildScriptPath } from '../services/host-agent/src/vmm/images';
import { QemuVmm } from '../services/host-agent/src/vmm/qemu-vmm';
import { VmLaunch } from '../services/host-agent/src/vmm/vmm';

const get = (port: number, p: string) =>
  new Promise<string>((res, rej) =>
    http
      .get({ host: '127.0.0.1', port, path: p, agent: false }, (r) => {
        let b = '';
        r.on('data', (d) => (b += d));
        r.on('end', () => res(b.trim()));
      })
      .on('error', rej),
  );
const freePort = () =>
  new Promise<number>((res) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const p = (s.address() as net.AddressInfo).port;
      s.close(() => res(p));
    });
  });
const med = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor((xs.length - 1) / 2)];

async function main() {
  const dataDir = path.resolve(process.argv[2] ?? process.env.TORPOR_DATA ?? 'data');
  const runs = parseInt(process.argv[3] ?? '5', 10);
  execFileSync('bash', [buildScriptPath(), dataDir], { stdio: 'inherit' });
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'torpor-measure-'));
  const vmm = new QemuVmm({ dataDir, accel: (process.env.TORPOR_ACCEL as 'kvm' | 'tcg') ?? 'auto' });
  const out: Record<string, unknown> = {};
  try {
    const boots: number[] = [];
    for (let i = 0; i < runs; i++) {
      const vm: VmLaunch = { machineId: `cold${i}`, image: 'default', cpus: 1, memoryMb: 256, env: {}, hostPort: await freePort(), vmDir: path.join(work, `cold${i}`) };
      const t0 = Date.now();
      await vmm.boot(vm);
      boots.push(Date.now() - t0);
      await vmm.stop(vm.machineId, vm.vmDir);
    }
    out.accel = vmm.accel;
    out.cold_boot_ms = { median: med(boots), min: Math.min(...boots), max: Math.max(...boots), runs: boots };
    for (const mb of [256, 2048]) {
      const vm: VmLaunch = { machineId: `m${mb}`, image: 'default', cpus: 1, memoryMb: mb, env: {}, hostPort: await freePort(), vmDir: path.join(work, `m${mb}`) };
      await vmm.boot(vm);
      const rssBoot = vmm.qemuRssBytes(vm.vmDir);
      const filled = await get(vm.hostPort, '/mem?pct=90');
      const sus: number[] = [];
      const res: number[] = [];
      let state = 0;
      let rssResume = 0;
      for (let i = 0; i < runs; i++) {
        let t0 = Date.now();
        const f = await vmm.suspend(vm, path.join(work, `snap${mb}-${i}`));
        sus.push(Date.now() - t0);
        state = f.stateSize;
        t0 = Date.now();
        await vmm.resume(vm, f);
        res.push(Date.now() - t0);
        rssResume = vmm.qemuRssBytes(vm.vmDir);
      }
      out[`mem_${mb}`] = {
        guest_written_mb: parseInt(filled, 10),
        suspend_ms: { median: med(sus), runs: sus },
        resume_ms: { median: med(res), runs: res },
        state_bytes: state,
        qemu_rss_mb_after_boot: Math.round(rssBoot / 1048576),
        qemu_rss_mb_after_resume: Math.round(rssResume / 1048576),
      };
      await vmm.stop(vm.machineId, vm.vmDir);
    }
  } finally {
    vmm.close();
    fs.rmSync(work, { recursive: true, force: true });
  }
  console.log(JSON.stringify(out, null, 2));
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
