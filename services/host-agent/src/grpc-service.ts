// gRPC adapter of the host agent: validates input, calls HostAgentCore, maps results.
import { HostAgentServer, VmIdentity, VmSpec, VmStatus } from '../../../gen/torpor/hostagent/v1/hostagent';
import { Snapshot, SnapshotState } from '../../../gen/torpor/snapshots/v1/snapshots';
import { invalidArgument } from '../../../lib/errors';
import type { AsyncService } from '../../../lib/grpc/server';
import * as check from '../../../lib/validate';
import type { HostAgentCore, Identity, Spec, VmView } from './agent';

function identity(v: VmIdentity | undefined): Identity {
  const vm = check.required(v, 'vm');
  check.machineId(vm.machineId, 'vm.machine_id');
  check.name(vm.app, 'vm.app');
  if (!Number.isInteger(vm.generation) || vm.generation < 1) throw invalidArgument(`vm.generation must be 1 or more, got ${vm.generation}`);
  return { machineId: vm.machineId, app: vm.app, instanceId: check.text(vm.instanceId, 'vm.instance_id', 64), generation: vm.generation };
}

function spec(s: VmSpec | undefined): Spec {
  const v = check.required(s, 'spec');
  if (!/^[a-z0-9][a-z0-9._-]{0,62}$/.test(v.image)) throw invalidArgument(`spec.image "${v.image.slice(0, 80)}" is not an image name`);
  check.intInRange(v.cpus, 'spec.cpus', 1, 16);
  check.intInRange(v.memoryMb, 'spec.memory_mb', 128, 16384);
  check.intInRange(v.guestPort, 'spec.guest_port', 0, 65535);
  return { image: v.image, cpus: v.cpus, memoryMb: v.memoryMb, env: v.env, guestPort: v.guestPort };
}

const status = (v: VmView): VmStatus => VmStatus.fromPartial(v);

export function hostAgentService(core: HostAgentCore, info: () => { hostId: string; region: string; address: string; memoryMbTotal: number; images: string[] }): AsyncService<HostAgentServer> {
  return {
    async getHost() {
      return { ...info(), memoryMbUsed: core.memoryUsed(), accel: core.accel, runningVms: core.runningCount() };
    },
    async bootMachine(req) {
      return status(await core.boot(identity(req.vm), spec(req.spec)));
    },
    async suspendMachine(req, ctx) {
      const r = await core.suspend(identity(req.vm), ctx.signal);
      return { snapshot: Snapshot.fromPartial({ id: r.snapshot.id, sizeBytes: r.snapshot.sizeBytes, generation: r.snapshot.generation, state: SnapshotState.SNAPSHOT_STATE_READY }), tookMs: r.tookMs };
    },
    async resumeMachine(req) {
      return status(await core.resume(identity(req.vm), spec(req.spec), check.snapshotId(req.snapshotId)));
    },
    async stopMachine(req) {
      return core.stop(check.machineId(req.machineId, 'machine_id'));
    },
    async destroyMachine(req) {
      return core.destroy(check.machineId(req.machineId, 'machine_id'));
    },
    async getVm(req) {
      return status(await core.settled(check.machineId(req.machineId, 'machine_id')));
    },
  };
}
