// Real-VM figures through the whole mesh: cold boot, suspend, snapshot size, resume
// (StartMachine call → first HTTP answer), QEMU RSS, host agent RSS with ten VMs, and
// the control plane's own cost per lifecycle operation.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { MachineConfig, MachineState } from '../gen/torpor/machines/v1/machines';
import { SnapshotsClient } from '../gen/torpor/snapshots/v1/snapshots';
import { asyncClient } from '../lib/grpc/client';
import type { Mesh } from '../scripts/mesh/mesh';
import { EventClock } from './event-clock';
import { rssMb } from './stats';

/**
 * Lets the kernel finish writing back what the previous step dirtied (a suspended guest's
 * memory file holds up to its whole RAM in dirty page cache) so that each timed step runs
 * on a settled host, as a wake-up some time after a suspend does.
 */
const settle = () => execFileSync('sync');

const config = (memoryMb: number) => MachineConfig.fromPartial({ image: 'default', guest: { cpus: 1, memoryMb, cpuKind: 'shared', gpus: 0 } });

async function firstAnswer(url: string, deadlineMs = 30_000): Promise<number> {
  const end = performance.now() + deadlineMs;
  for (;;) {
    try {
      const r = await fetch(url + '/', { signal: AbortSignal.timeout(5000) });
      if (r.ok) {
        await r.text();
        return performance.now();
      }
    } catch {
      /* not yet */
    }
    if (performance.now() > end) throw new Error(`${url} did not answer`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

export interface VmRun {
  memoryMb: number;
  coldBootMs: number;
  suspendMs: number;
  /** Bytes on disk: device state plus the guest memory file (allocated pages). */
  snapshotBytes: number;
  /** The device-state file alone. */
  stateBytes: number;
  resumeMs: number;
  qemuRssAfterBootMb: number;
  qemuRssAfterResumeMb: number;
}

export async function benchVm(mesh: Mesh, memoryMb: number, log: (s: string) => void): Promise<VmRun> {
  const c = mesh.machines();
  const snaps = asyncClient(SnapshotsClient, mesh.storeAddress);
  const clock = await EventClock.start(mesh.natsUrl);
  try {
    settle();
    let t0 = performance.now();
    const m = await c.createMachine({ app: 'bench', name: '', region: 'bog', config: config(memoryMb), skipStart: false });
    const coldBootMs = (await firstAnswer(m.url)) - t0;
    const pidFile = path.join(mesh.opts.dataDir, 'hosts', m.hostId, 'vms', m.id, 'qemu.pid');
    const qemuRssAfterBootMb = rssMb(Number(fs.readFileSync(pidFile, 'utf8')));
    // Most of the guest's memory written, so the resume cannot hide behind an empty guest.
    await (await fetch(`${m.url}/mem?pct=80`, { signal: AbortSignal.timeout(120_000) })).text();

    t0 = performance.now();
    await c.suspendMachine({ id: m.id });
    const suspended = await clock.next(m.id, 'machine.suspended', t0);
    const suspendMs = suspended.at - t0;
    const snap = await snaps.getSnapshot({ id: String(suspended.json.snapshotId) });

    settle();
    t0 = performance.now();
    const r = await c.startMachine({ id: m.id });
    const resumeMs = (await firstAnswer(r.machine!.url)) - t0;
    if (!r.resumed) throw new Error(`bench: the machine did not resume (${r.reason})`);
    const qemuRssAfterResumeMb = rssMb(Number(fs.readFileSync(pidFile, 'utf8')));
    // A stop, a cold start and a destroy too, for the control-plane overhead of each.
    await c.stopMachine({ id: m.id });
    await c.startMachine({ id: m.id });
    await c.destroyMachine({ id: m.id, force: true });
    log(`  ${memoryMb} MiB: cold boot ${coldBootMs.toFixed(0)} ms, suspend ${suspendMs.toFixed(0)} ms, snapshot ${(snap.sizeBytes / 1024).toFixed(0)} KiB, resume ${resumeMs.toFixed(0)} ms`);
    return { memoryMb, coldBootMs, suspendMs, snapshotBytes: snap.sizeBytes, stateBytes: snap.files!.stateSize, resumeMs, qemuRssAfterBootMb, qemuRssAfterResumeMb };
  } finally {
    await clock.close();
    snaps.close();
  }
}

/** Resident memory of the host agent while it runs ten VMs. */
export async function benchAgentWithTenVms(mesh: Mesh): Promise<number> {
  const c = mesh.machines();
  const ids: string[] = [];
  for (let batch = 0; batch < 10; batch += 5) {
    const made = await Promise.all(
      Array.from({ length: 5 }, () => c.createMachine({ app: 'ten', name: '', region: 'bog', config: config(128), skipStart: false })),
    );
    ids.push(...made.map((m) => m.id));
  }
  const running = await c.listMachines({ app: 'ten', state: MachineState.MACHINE_STATE_STARTED });
  if (running.machines.length !== 10) throw new Error(`expected 10 running VMs, have ${running.machines.length}`);
  const rss = rssMb(mesh.agent('h1').pid);
  await Promise.all(ids.map((id) => c.destroyMachine({ id, force: true })));
  return rss;
}
