// Edge proxy benchmark (issue 4): time to first byte of a request to an app whose only
// machine is suspended (a resume), stopped (a cold start) or started, through the proxy,
// on the mesh's real VMs. Called by the bench runner with a Mesh that runs the proxy.
import http from 'node:http';
import { Autostop, MachineConfig, MachineState } from '../gen/torpor/machines/v1/machines';
import type { Mesh } from '../scripts/mesh/mesh';
import { Measure, summarize } from './stats';

export interface ProxyBenchResult {
  suspended: Measure;
  stopped: Measure;
  started: Measure;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** GET / through the proxy with Host: <app>.localhost; resolves with the time to the status line. */
function ttfb(proxyUrl: string, app: string): Promise<number> {
  const u = new URL(proxyUrl);
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const req = http.request({ host: u.hostname, port: u.port, path: '/', agent: false, headers: { host: `${app}.localhost` }, timeout: 30_000 }, (res) => {
      const ms = performance.now() - t0;
      res.resume();
      res.on('end', () => (res.statusCode === 200 ? resolve(ms) : reject(new Error(`${app}: HTTP ${res.statusCode}`))));
    });
    req.on('timeout', () => req.destroy(new Error(`${app}: no answer in 30 s`)));
    req.on('error', reject);
    req.end();
  });
}

export async function benchProxy(mesh: Mesh, runs = 5): Promise<ProxyBenchResult> {
  if (!mesh.proxy) throw new Error('benchProxy needs a mesh started with proxyPort');
  const c = mesh.machines();
  const region = mesh.opts.hosts[0].region;
  const tag = Date.now().toString(36);
  const config = MachineConfig.fromPartial({
    image: 'default',
    guest: { cpus: 1, memoryMb: 256, cpuKind: 'shared', gpus: 0 },
    services: [{ internalPort: 8080, ports: [{ port: 80, handlers: ['http'] }], autostart: true, autostop: Autostop.AUTOSTOP_OFF, minMachinesRunning: 0 }],
  });
  const ids: string[] = [];
  const out: Partial<ProxyBenchResult> = {};
  try {
    for (const kind of ['started', 'suspended', 'stopped'] as const) {
      const app = `bench-${kind}-${tag}`;
      const m = await c.createMachine({ app, name: '', region, config, skipStart: false });
      ids.push(m.id);
      await sleep(300); // the proxy learns of the machine from its events
      await ttfb(mesh.proxyUrl, app); // warm-up, not counted
      const xs: number[] = [];
      for (let i = 0; i < runs; i++) {
        if (kind === 'suspended') {
          await c.suspendMachine({ id: m.id });
          await c.waitMachine({ id: m.id, state: MachineState.MACHINE_STATE_SUSPENDED, timeoutSeconds: 60, instanceId: '' });
        } else if (kind === 'stopped') {
          await c.stopMachine({ id: m.id });
        }
        if (kind !== 'started') await sleep(250); // the event reaches the proxy
        xs.push(await ttfb(mesh.proxyUrl, app));
      }
      out[kind] = summarize(xs);
    }
  } finally {
    await Promise.all(ids.map((id) => c.destroyMachine({ id, force: true }).catch(() => {})));
  }
  return out as ProxyBenchResult;
}
