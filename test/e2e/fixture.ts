// Shared set-up of the end-to-end tests: the whole mesh as separate processes on
// loopback, real nats-server, real QEMU guests (TORPOR_TEST_VMM=fake swaps in the
// test double, for debugging the wiring only), plus helpers to read JetStream.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { connect } from '@nats-io/transport-node';
import { DeliverPolicy, jetstream } from '@nats-io/jetstream';
import { Machine, MachineConfig, MachinesClient, MachineState } from '../../gen/torpor/machines/v1/machines';
import type { AsyncClient } from '../../lib/grpc/client';
import { Mesh, MeshOptions } from '../../scripts/mesh/mesh';

const ROOT = path.resolve(__dirname, '..', '..', '..');
export const TEST_DATA = process.env.TORPOR_TEST_DATA ?? path.join(ROOT, 'data', 'test');
export const VMM = (process.env.TORPOR_TEST_VMM ?? 'qemu') as 'qemu' | 'fake';

/** Builds the guest images once (cached in TEST_DATA) and links them into a fresh data folder. */
export function freshDataDir(): string {
  if (!fs.existsSync(path.join(TEST_DATA, 'images', 'default', 'vmlinux'))) {
    execFileSync('bash', [path.join(ROOT, 'scripts', 'build-images.sh'), TEST_DATA], { stdio: 'inherit' });
  }
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'torpor-e2e-'));
  fs.symlinkSync(path.join(TEST_DATA, 'images'), path.join(dir, 'images'));
  return dir;
}

export async function startMesh(opts: Partial<MeshOptions> = {}): Promise<Mesh> {
  const mesh = new Mesh({
    dataDir: freshDataDir(),
    vmm: VMM,
    hosts: [{ hostId: 'h1', region: 'bog', memoryMb: 6144 }],
    ...opts,
    agentArgs: ['--gc-seconds', '2', ...(opts.agentArgs ?? [])],
  });
  try {
    await mesh.start();
  } catch (err) {
    await mesh.stop();
    throw err;
  }
  return mesh;
}

/** Stops the mesh and removes its data folder (VMs first: the agents leave them running). */
export async function stopMesh(mesh: Mesh | undefined, destroyAll = true): Promise<void> {
  if (!mesh) return;
  if (destroyAll && mesh.scheduler?.running) {
    const c = mesh.machines();
    const all = await c.listMachines({ app: '', state: MachineState.MACHINE_STATE_UNSPECIFIED }).catch(() => ({ machines: [] }));
    await Promise.all(all.machines.map((m) => c.destroyMachine({ id: m.id, force: true }).catch(() => {})));
  }
  await mesh.stop();
  killLeftoverQemus(mesh.opts.dataDir);
  fs.rmSync(mesh.opts.dataDir, { recursive: true, force: true });
}

/** Any QEMU still running from this data folder (a failed test): ended by the pid in its pid file. */
function killLeftoverQemus(dataDir: string): void {
  const hosts = path.join(dataDir, 'hosts');
  for (const h of fs.existsSync(hosts) ? fs.readdirSync(hosts) : []) {
    const vms = path.join(hosts, h, 'vms');
    for (const vm of fs.existsSync(vms) ? fs.readdirSync(vms) : []) {
      for (const f of ['qemu.pid', 'pid']) {
        const p = path.join(vms, vm, f);
        if (!fs.existsSync(p)) continue;
        const pid = Number(fs.readFileSync(p, 'utf8').trim());
        try {
          // Only a QEMU of this folder: a stale pid file must not kill a stranger.
          const cmd = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8');
          if (pid > 0 && cmd.includes('qemu') && cmd.includes(dataDir)) process.kill(pid, 'SIGKILL');
        } catch {
          /* already gone */
        }
      }
    }
  }
}

export function config(over: Partial<MachineConfig> & { memoryMb?: number } = {}): MachineConfig {
  const { memoryMb, ...rest } = over;
  return MachineConfig.fromPartial({ image: 'default', guest: { cpus: 1, memoryMb: memoryMb ?? 256, cpuKind: 'shared', gpus: 0 }, ...rest });
}

export async function get(url: string, p: string): Promise<string> {
  const r = await fetch(url + p, { signal: AbortSignal.timeout(10_000) });
  if (!r.ok) throw new Error(`GET ${url}${p}: ${r.status}`);
  return (await r.text()).trim();
}

export interface StreamMessage {
  subject: string;
  json: Record<string, unknown>;
}

/** Every message of a stream under `filter`, waiting until at least `atLeast` have arrived. */
export async function readStream(natsUrl: string, stream: string, filter: string, atLeast: number, timeoutMs = 10_000): Promise<StreamMessage[]> {
  const nc = await connect({ servers: natsUrl, timeout: 3000 });
  try {
    const js = jetstream(nc);
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const out: StreamMessage[] = [];
      const consumer = await js.consumers.get(stream, { filter_subjects: filter, deliver_policy: DeliverPolicy.All });
      const pending = (await consumer.info()).num_pending;
      if (pending > 0) {
        const msgs = await consumer.fetch({ max_messages: pending, expires: 5000 });
        for await (const m of msgs) {
          out.push({ subject: m.subject, json: JSON.parse(m.string()) });
          if (out.length >= pending) break;
        }
      }
      if (out.length >= atLeast || Date.now() > deadline) return out;
      await new Promise((r) => setTimeout(r, 200));
    }
  } finally {
    await nc.close();
  }
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** L1: SuspendMachine answers once the machine is suspending; then waits until it is suspended. */
export async function suspendAndWait(c: AsyncClient<MachinesClient>, id: string): Promise<Machine> {
  const s = await c.suspendMachine({ id });
  assert.equal(s.state, MachineState.MACHINE_STATE_SUSPENDING, 'L1: SuspendMachine answers once the machine is suspending');
  return c.waitMachine({ id, state: MachineState.MACHINE_STATE_SUSPENDED, timeoutSeconds: 60, instanceId: '' });
}
