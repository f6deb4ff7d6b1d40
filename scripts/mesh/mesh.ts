// The whole Torpor mesh on one machine, each service its own process on loopback:
// nats-server (unless a NATS_URL is given), snapshot-store, scheduler, host agents.
// Used by `npm start` (fixed ports) and by the integration tests (free ports).
import fs from 'node:fs';
import path from 'node:path';
import { MachinesClient } from '../../gen/torpor/machines/v1/machines';
import { AsyncClient, asyncClient } from '../../lib/grpc/client';
import { NatsServer } from './nats-server';
import { ServiceProcess } from './service-process';

export interface HostSpec {
  hostId: string;
  region: string;
  memoryMb: number;
  port?: number;
}

export interface MeshOptions {
  dataDir: string;
  /** Use this NATS instead of starting one. */
  natsUrl?: string;
  /** Port of the nats-server the mesh starts (default: a free one). */
  natsPort?: number;
  vmm: 'qemu' | 'fake';
  hosts: HostSpec[];
  schedulerPort?: number;
  snapshotStorePort?: number;
  metricsPorts?: { scheduler: number; snapshotStore: number };
  schedulerArgs?: string[];
  agentArgs?: string[];
  /** Also run the edge proxy (services/proxy) on this HTTP port (0: a free one). */
  proxyPort?: number;
  proxyArgs?: string[];
  /** Also run the usage meter (services/usage-meter) on this HTTP port (0: a free one). */
  usageMeterPort?: number;
  /** Write each service's log to <logDir>/<name>.log. */
  logDir?: string;
}

export class Mesh {
  nats?: NatsServer;
  natsUrl = '';
  store!: ServiceProcess;
  scheduler!: ServiceProcess;
  agents: ServiceProcess[] = [];
  proxy?: ServiceProcess;
  usageMeter?: ServiceProcess;
  private clients: AsyncClient<MachinesClient>[] = [];

  constructor(readonly opts: MeshOptions) {}

  get schedulerAddress(): string {
    return `127.0.0.1:${this.scheduler.listening.grpc_port}`;
  }

  get storeAddress(): string {
    return `127.0.0.1:${this.store.listening.grpc_port}`;
  }

  agent(hostId: string): ServiceProcess {
    const a = this.agents.find((x) => x.name === hostId);
    if (!a) throw new Error(`no host agent ${hostId}`);
    return a;
  }

  agentAddress(hostId: string): string {
    return `127.0.0.1:${this.agent(hostId).listening.grpc_port}`;
  }

  /** A Machines client for this mesh (closed by stop()). */
  machines(): AsyncClient<MachinesClient> {
    const c = asyncClient(MachinesClient, this.schedulerAddress, 120_000);
    this.clients.push(c);
    return c;
  }

  async start(): Promise<void> {
    const o = this.opts;
    fs.mkdirSync(o.dataDir, { recursive: true });
    if (o.logDir) fs.mkdirSync(o.logDir, { recursive: true });
    if (o.natsUrl) this.natsUrl = o.natsUrl;
    else {
      this.nats = await NatsServer.start({ dataDir: path.join(o.dataDir, 'nats'), port: o.natsPort });
      this.natsUrl = this.nats.url;
    }
    const logFile = (n: string) => (o.logDir ? path.join(o.logDir, `${n}.log`) : undefined);
    const common = ['--data-dir', o.dataDir, '--nats-url', this.natsUrl];
    this.store = new ServiceProcess('snapshot-store', 'snapshot-store', [...common, '--port', String(o.snapshotStorePort ?? 0), '--metrics-port', String(o.metricsPorts?.snapshotStore ?? 0)], { logFile: logFile('snapshot-store') });
    await this.store.start();
    this.scheduler = new ServiceProcess(
      'scheduler',
      'scheduler',
      [...common, '--port', String(o.schedulerPort ?? 0), '--metrics-port', String(o.metricsPorts?.scheduler ?? 0), '--snapshot-store', this.storeAddress, ...(o.schedulerArgs ?? [])],
      { logFile: logFile('scheduler') },
    );
    await this.scheduler.start();
    for (const h of o.hosts) {
      const agent = new ServiceProcess(
        h.hostId,
        'host-agent',
        [
          ...common,
          '--host-id', h.hostId,
          '--region', h.region,
          '--memory-mb', String(h.memoryMb),
          '--port', String(h.port ?? 0),
          '--scheduler', this.schedulerAddress,
          '--snapshot-store', this.storeAddress,
          '--vmm', o.vmm,
          ...(o.agentArgs ?? []),
        ],
        { logFile: logFile(`host-agent-${h.hostId}`) },
      );
      this.agents.push(agent);
    }
    await Promise.all(this.agents.map((a) => a.start()));
    await Promise.all(this.agents.map((a) => waitForLine(a, 'registered with the scheduler', 15_000)));
    if (o.usageMeterPort !== undefined) {
      this.usageMeter = new ServiceProcess('usage-meter', 'usage-meter', ['--port', String(o.usageMeterPort), '--nats-url', this.natsUrl, '--db', path.join(o.dataDir, 'usage-meter', 'usage.sqlite')], {
        logFile: logFile('usage-meter'),
      });
      await this.usageMeter.start();
    }
    if (o.proxyPort !== undefined) {
      this.proxy = new ServiceProcess('proxy', 'proxy', ['--port', String(o.proxyPort), '--scheduler', this.schedulerAddress, '--nats-url', this.natsUrl, ...(o.proxyArgs ?? [])], {
        logFile: logFile('proxy'),
      });
      await this.proxy.start();
    }
  }

  /** Base URL of the edge proxy, when it runs. */
  get proxyUrl(): string {
    return `http://127.0.0.1:${this.proxy?.listening.http_port}`;
  }

  async stop(): Promise<void> {
    for (const c of this.clients) c.close();
    this.clients = [];
    await this.proxy?.stop();
    await this.usageMeter?.stop();
    await Promise.all(this.agents.map((a) => a.stop()));
    await this.scheduler?.stop();
    await this.store?.stop();
    await this.nats?.stop();
  }
}

export async function waitForLine(p: ServiceProcess, needle: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!p.grep(needle).length) {
    if (!p.running) throw new Error(`${p.name} exited while waiting for "${needle}":\n${p.log()}`);
    if (Date.now() > deadline) throw new Error(`${p.name} did not log "${needle}" within ${timeoutMs} ms:\n${p.log()}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
