// The gRPC adapter of SchedulerPort over the public Machines API.
import { Autostop, Machine, MachinesClient, MachineState, machineStateToJSON } from '../../../gen/torpor/machines/v1/machines';
import { AsyncClient, asyncClient } from '../../../lib/grpc/client';
import type { SchedulerPort, StartOutcome } from './ports';
import type { AutostopMode, MachineDetails } from './routing-table';

export function stateWord(s: MachineState): string {
  return machineStateToJSON(s).replace(/^MACHINE_STATE_/, '').toLowerCase();
}

function autostopMode(a: Autostop): AutostopMode {
  return a === Autostop.AUTOSTOP_SUSPEND ? 'suspend' : a === Autostop.AUTOSTOP_STOP ? 'stop' : 'off';
}

/** The proxy's view of a Machine: its first service with autostart/autostop decides. */
export function toDetails(m: Machine): MachineDetails {
  const services = m.config?.services ?? [];
  const svc = services.find((s) => s.autostart || (s.autostop !== Autostop.AUTOSTOP_OFF && s.autostop !== Autostop.AUTOSTOP_UNSPECIFIED)) ?? services[0];
  return {
    id: m.id,
    app: m.app,
    state: stateWord(m.state),
    url: m.url,
    autostart: services.some((s) => s.autostart),
    autostop: svc ? autostopMode(svc.autostop) : 'off',
    minRunning: Math.max(0, ...services.map((s) => s.minMachinesRunning)),
  };
}

export class GrpcScheduler implements SchedulerPort {
  private readonly client: AsyncClient<MachinesClient>;

  constructor(address: string) {
    this.client = asyncClient(MachinesClient, address, 30_000);
  }

  async list(): Promise<MachineDetails[]> {
    const r = await this.client.listMachines({ app: '', state: MachineState.MACHINE_STATE_UNSPECIFIED });
    return r.machines.map(toDetails);
  }

  async get(id: string): Promise<MachineDetails> {
    return toDetails(await this.client.getMachine({ id }));
  }

  async start(id: string, timeoutMs: number): Promise<StartOutcome> {
    const r = await this.client.startMachine({ id }, { timeoutMs });
    return { machine: toDetails(r.machine!), previousState: stateWord(r.previousState), resumed: r.resumed, reason: r.reason };
  }

  async suspend(id: string): Promise<MachineDetails> {
    return toDetails(await this.client.suspendMachine({ id }));
  }

  async stop(id: string): Promise<MachineDetails> {
    return toDetails(await this.client.stopMachine({ id }));
  }

  close(): void {
    this.client.close();
  }
}
