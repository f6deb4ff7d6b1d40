// HostAgentPort over gRPC: one client per host agent address, reused.
import { HostAgentClient, VmIdentity, VmSpec } from '../../../../gen/torpor/hostagent/v1/hostagent';
import { AsyncClient, asyncClient } from '../../../../lib/grpc/client';
import type { HostAgentPort } from '../ports';

export class GrpcHostAgents implements HostAgentPort {
  private clients = new Map<string, AsyncClient<HostAgentClient>>();

  private client(address: string): AsyncClient<HostAgentClient> {
    let c = this.clients.get(address);
    if (!c) this.clients.set(address, (c = asyncClient(HostAgentClient, address, 60_000)));
    return c;
  }

  async boot(address: string, vm: VmIdentity, spec: VmSpec) {
    const s = await this.client(address).bootMachine({ vm, spec });
    return { url: s.url, tookMs: s.tookMs };
  }

  async suspend(address: string, vm: VmIdentity, signal: AbortSignal) {
    const r = await this.client(address).suspendMachine({ vm }, { signal });
    return { snapshotId: r.snapshot!.id, sizeBytes: r.snapshot!.sizeBytes, tookMs: r.tookMs };
  }

  async resume(address: string, vm: VmIdentity, spec: VmSpec, snapshotId: string) {
    const s = await this.client(address).resumeMachine({ vm, spec, snapshotId });
    return { url: s.url, tookMs: s.tookMs };
  }

  async stop(address: string, machineId: string) {
    return { tookMs: (await this.client(address).stopMachine({ machineId })).tookMs };
  }

  async destroy(address: string, machineId: string) {
    return { tookMs: (await this.client(address).destroyMachine({ machineId })).tookMs };
  }

  async running(address: string, machineId: string) {
    return (await this.client(address).getVm({ machineId }, { timeoutMs: 5000 })).running;
  }

  close(): void {
    for (const c of this.clients.values()) c.close();
  }
}
