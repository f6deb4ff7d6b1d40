// `npm run bench`: measures Torpor on real VMs through the whole mesh and writes
// bench/results.json; prints a table with the targets of issues 2, 3 and 4.
// BENCH_RUNS (default 5) runs per memory size; BENCH_SCALE (default 10000) machines for the RSS figure.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Mesh } from '../scripts/mesh/mesh';
import { benchProxy } from './proxy';
import { controlPlaneOverhead } from './scheduler-metrics';
import { benchScale } from './scale-bench';
import { Measure, summarize } from './stats';
import { benchAgentWithTenVms, benchVm, VmRun } from './vm-bench';

const ROOT = path.resolve(__dirname, '..', '..');
const RUNS = Number(process.env.BENCH_RUNS ?? 5);
const SCALE = Number(process.env.BENCH_SCALE ?? 10_000);
const log = (s: string) => process.stderr.write(s + '\n');

function dataDir(name: string): string {
  const images = path.join(ROOT, 'data', 'bench');
  execFileSync('bash', [path.join(ROOT, 'scripts', 'build-images.sh'), images], { stdio: ['ignore', 'ignore', 'inherit'] });
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `torpor-bench-${name}-`));
  fs.symlinkSync(path.join(images, 'images'), path.join(dir, 'images'));
  return dir;
}

async function withMesh<T>(mesh: Mesh, fn: (m: Mesh) => Promise<T>): Promise<T> {
  try {
    await mesh.start();
    return await fn(mesh);
  } finally {
    await mesh.stop();
    fs.rmSync(mesh.opts.dataDir, { recursive: true, force: true });
  }
}

async function main() {
  const results: Record<string, unknown> = { when: new Date().toISOString(), runs: RUNS, machine: `${os.cpus().length} cores, ${Math.round(os.totalmem() / 2 ** 30)} GiB, ${os.cpus()[0]?.model}` };
  log(`real VMs, ${RUNS} runs per size…`);
  const runs: VmRun[] = [];
  let agentRss = NaN;
  const vmMesh = new Mesh({ dataDir: dataDir('vm'), vmm: 'qemu', hosts: [{ hostId: 'h1', region: 'bog', memoryMb: 8192 }], proxyPort: 0, proxyArgs: ['--idle-seconds', '3600'] });
  await withMesh(vmMesh, async (mesh) => {
    const accelLine = mesh.agent('h1').grep('vmm: using')[0];
    for (let i = 0; i < RUNS; i++) for (const mb of [256, 2048]) runs.push(await benchVm(mesh, mb, log));
    results.accel = accelLine ? JSON.parse(accelLine).accel : (JSON.parse(mesh.agent('h1').grep('vmm: using')[0] ?? '{}').accel ?? 'unknown');
    const overhead = await controlPlaneOverhead(mesh.scheduler.listening.metrics_port!);
    results.control_plane_overhead_ms = overhead.all;
    results.control_plane_overhead_ms_by_op = overhead.byOp;
    log('host agent with ten VMs…');
    agentRss = await benchAgentWithTenVms(mesh);
    log('edge proxy: time to first byte…');
    results.proxy_wake_ttfb_ms = await benchProxy(mesh, Math.max(RUNS, 5));
  });
  for (const mb of [256, 2048]) {
    const mine = runs.filter((r) => r.memoryMb === mb);
    (results.cold_boot_ms ??= {} as Record<string, Measure>) && ((results.cold_boot_ms as Record<string, Measure>)[mb] = summarize(mine.map((r) => r.coldBootMs)));
    (results.suspend_ms ??= {}) && ((results.suspend_ms as Record<string, Measure>)[mb] = summarize(mine.map((r) => r.suspendMs)));
    (results.resume_ms ??= {}) && ((results.resume_ms as Record<string, Measure>)[mb] = summarize(mine.map((r) => r.resumeMs)));
    (results.snapshot_bytes ??= {}) && ((results.snapshot_bytes as Record<string, Measure>)[mb] = summarize(mine.map((r) => r.snapshotBytes)));
    (results.snapshot_state_bytes ??= {}) && ((results.snapshot_state_bytes as Record<string, Measure>)[mb] = summarize(mine.map((r) => r.stateBytes)));
    (results.qemu_rss_mb_by_size ??= {}) &&
      ((results.qemu_rss_mb_by_size as Record<string, unknown>)[mb] = { after_boot: summarize(mine.map((r) => r.qemuRssAfterBootMb)), after_resume: summarize(mine.map((r) => r.qemuRssAfterResumeMb)) });
  }
  // The qemu_rss_mb.{after_boot,after_resume}: the 2 GiB guest.
  results.qemu_rss_mb = (results.qemu_rss_mb_by_size as Record<string, unknown>)['2048'];
  results.host_agent_rss_mb = agentRss;

  log(`scheduler and snapshot-store holding ${SCALE} machines and snapshot records…`);
  results.service_rss_mb = await withMesh(
    new Mesh({ dataDir: dataDir('scale'), vmm: 'fake', hosts: [{ hostId: 'h1', region: 'bog', memoryMb: 4 * 1024 * 1024 }] }),
    async (mesh) => {
      const r = await benchScale(mesh, SCALE, log);
      return { scheduler: r.scheduler, snapshot_store: r.snapshotStore, machines: SCALE };
    },
  );

  fs.writeFileSync(path.join(ROOT, 'bench', 'results.json'), JSON.stringify(results, null, 2) + '\n');
  printTable(results);
}

function printTable(r: Record<string, any>) {
  const m = (x: Measure) => `${x.median} (${x.min}–${x.max}, n=${x.runs})`;
  const rows: [string, string, string, string][] = [];
  const check = (ok: boolean) => (ok ? 'met' : 'MISSED');
  for (const mb of ['256', '2048']) {
    rows.push([`cold boot → first HTTP, ${mb} MiB (ms)`, m(r.cold_boot_ms[mb]), '≤ 2500', check(r.cold_boot_ms[mb].median <= 2500)]);
    rows.push([`suspend, ${mb} MiB (ms)`, m(r.suspend_ms[mb]), '≤ 100', check(r.suspend_ms[mb].median <= 100)]);
    rows.push([`snapshot on disk: state + memory file, ${mb} MiB (MB)`, `${(r.snapshot_state_bytes[mb].median / 1024).toFixed(0)} KB + ${((r.snapshot_bytes[mb].median - r.snapshot_state_bytes[mb].median) / 2 ** 20).toFixed(0)} MB`, '', '']);
    rows.push([`resume → first HTTP via scheduler, ${mb} MiB (ms)`, m(r.resume_ms[mb]), '≤ 150', check(r.resume_ms[mb].median <= 150)]);
    const ratio = r.cold_boot_ms[mb].median / r.resume_ms[mb].median;
    rows.push([`cold boot / resume, ${mb} MiB`, ratio.toFixed(1) + '×', '≥ 15×', check(ratio >= 15)]);
    const rss = r.qemu_rss_mb_by_size[mb];
    rows.push([`QEMU RSS after boot → after resume, ${mb} MiB (MB)`, `${rss.after_boot.median} → ${rss.after_resume.median}`, '≤ half', check(rss.after_resume.median <= rss.after_boot.median / 2)]);
  }
  const growth = r.resume_ms['2048'].median / r.resume_ms['256'].median;
  rows.push(['resume 2048 MiB / 256 MiB', growth.toFixed(2) + '×', '≤ 1.5×', check(growth <= 1.5)]);
  rows.push(['host agent RSS with ten VMs (MB)', String(r.host_agent_rss_mb), '≤ 150', check(r.host_agent_rss_mb <= 150)]);
  rows.push(['control plane overhead per operation (ms)', m(r.control_plane_overhead_ms), '≤ 5 median', check(r.control_plane_overhead_ms.median <= 5)]);
  for (const k of ['started', 'suspended', 'stopped']) {
    const target = k === 'suspended' ? '≤ 250' : '';
    rows.push([`proxy time to first byte, only machine ${k} (ms)`, m(r.proxy_wake_ttfb_ms[k]), target, target ? check(r.proxy_wake_ttfb_ms[k].median <= 250) : '']);
  }
  rows.push([`scheduler RSS, ${r.service_rss_mb.machines} machines (MB)`, String(r.service_rss_mb.scheduler), '≤ 150', check(r.service_rss_mb.scheduler <= 150)]);
  rows.push([`snapshot-store RSS, ${r.service_rss_mb.machines} snapshots (MB)`, String(r.service_rss_mb.snapshot_store), '≤ 150', check(r.service_rss_mb.snapshot_store <= 150)]);
  const w = [0, 1, 2, 3].map((i) => Math.max(...rows.map((row) => row[i].length), 6));
  const line = (row: string[]) => row.map((c, i) => c.padEnd(w[i])).join('  ');
  process.stdout.write(`\nTorpor bench (${r.accel}, ${r.machine})\n${line(['measure', 'median (min–max, n)', 'target', ''])}\n${rows.map(line).join('\n')}\n\nwritten to bench/results.json\n`);
}

main().catch((err) => {
  process.stderr.write(`bench: ${err instanceof Error ? err.stack : err}\n`);
  process.exit(1);
});
