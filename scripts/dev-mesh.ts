// `npm start`: the whole Torpor mesh on this machine, in the foreground.
// Installs what is missing (as root), builds the guest images, starts nats-server
// (unless NATS_URL is set), the snapshot-store, the scheduler, two host agents in
// different regions, the usage meter and the edge proxy, then prints where they are.
// Ctrl-C stops the machines that run and then every service.
import { execFileSync } from 'node:child_process';
import net from 'node:net';
import path from 'node:path';
import { MachineState } from '../gen/torpor/machines/v1/machines';
import { Mesh } from './mesh/mesh';

const ROOT = path.resolve(__dirname, '..', '..');
const DATA = path.resolve(process.env.TORPOR_DATA ?? path.join(ROOT, 'data'));
const PORTS = { scheduler: 7100, agentBog: 7101, agentGdl: 7102, store: 7200, schedulerMetrics: 9100, storeMetrics: 9200, usage: 7300, proxy: 8000 };

function step(msg: string) {
  process.stderr.write(`» ${msg}\n`);
}

async function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.createServer();
    s.once('error', () => resolve(false));
    s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)));
  });
}

async function main() {
  step('checking system packages (qemu, kernel, busybox, nats-server)…');
  execFileSync('bash', [path.join(ROOT, 'scripts', 'install-deps.sh')], { stdio: 'inherit' });
  // The mesh's own nats-server takes NATS's standard port when it is free.
  const natsPort = process.env.NATS_URL ? undefined : (await portFree(4222)) ? 4222 : 4223;
  for (const [name, port] of Object.entries(PORTS)) {
    if (!(await portFree(port))) throw new Error(`port ${port} (${name}) is in use: is another \`npm start\` running? Stop it first.`);
  }
  step(`building guest images into ${DATA}/images (cached after the first run)…`);
  execFileSync('bash', [path.join(ROOT, 'scripts', 'build-images.sh'), DATA], { stdio: ['ignore', 'inherit', 'inherit'] });

  const mesh = new Mesh({
    dataDir: DATA,
    natsUrl: process.env.NATS_URL,
    natsPort,
    vmm: (process.env.TORPOR_VMM as 'qemu' | 'fake') ?? 'qemu',
    hosts: [
      { hostId: 'host-bog-1', region: 'bog', memoryMb: 4096, port: PORTS.agentBog },
      { hostId: 'host-gdl-1', region: 'gdl', memoryMb: 4096, port: PORTS.agentGdl },
    ],
    schedulerPort: PORTS.scheduler,
    snapshotStorePort: PORTS.store,
    metricsPorts: { scheduler: PORTS.schedulerMetrics, snapshotStore: PORTS.storeMetrics },
    usageMeterPort: PORTS.usage,
    proxyPort: PORTS.proxy,
    logDir: path.join(DATA, 'logs'),
  });
  step('starting nats-server, snapshot-store, scheduler, host agents, usage meter, proxy…');
  let stopping = false;
  const shutdown = async () => {
    if (stopping) return;
    stopping = true;
    step('stopping: machines that run are stopped, then every service…');
    try {
      const c = mesh.machines();
      const running = await c.listMachines({ app: '', state: MachineState.MACHINE_STATE_STARTED });
      await Promise.all(running.machines.map((m) => c.stopMachine({ id: m.id }).catch(() => {})));
    } catch {
      /* the scheduler is already gone */
    }
    await mesh.stop();
    process.exit(0);
  };
  process.on('SIGINT', shutdown);
  process.on('SIGTERM', shutdown);
  try {
    await mesh.start();
  } catch (err) {
    await mesh.stop();
    throw err;
  }
  process.stdout.write(`
Torpor is running.
  scheduler (Machines API)  127.0.0.1:${PORTS.scheduler}   metrics http://127.0.0.1:${PORTS.schedulerMetrics}/metrics
  snapshot-store            127.0.0.1:${PORTS.store}   metrics http://127.0.0.1:${PORTS.storeMetrics}/metrics
  host agent host-bog-1     127.0.0.1:${PORTS.agentBog}   region bog
  host agent host-gdl-1     127.0.0.1:${PORTS.agentGdl}   region gdl
  NATS                      ${mesh.natsUrl}
  usage meter               http://127.0.0.1:${PORTS.usage}/usage
  edge proxy                http://127.0.0.1:${PORTS.proxy}   (http://<app>.localhost:${PORTS.proxy}/)
  data and logs             ${DATA}   (${path.join(DATA, 'logs')})

Try, in another terminal:${mesh.natsUrl === 'nats://127.0.0.1:4222' ? '' : `\n  export NATS_URL=${mesh.natsUrl}     # so that \`torpor events\` and \`torpor logs\` read this mesh's NATS`}
  npx torpor machines create --app hello --image default --memory 256 --region bog --port 8080 --autostart --autostop suspend
  npx torpor events --follow

Ctrl-C stops everything.
`);
}

main().catch((err) => {
  process.stderr.write(`npm start: ${err instanceof Error ? err.message : err}\n`);
  process.exit(1);
});
