// Domain machine records ↔ torpor.machines.v1 messages.
import { Machine, MachineState } from '../../../../gen/torpor/machines/v1/machines';
import { invalidArgument } from '../../../../lib/errors';
import type { State } from '../domain/states';
import type { MachineRecord } from '../store/machine-store';

const PREFIX = 'MACHINE_STATE_';

export function stateToProto(s: State): MachineState {
  return MachineState[(PREFIX + s.toUpperCase()) as keyof typeof MachineState];
}

export function stateFromProto(s: MachineState, field = 'state'): State {
  const name = MachineState[s];
  if (name === undefined || s === MachineState.MACHINE_STATE_UNSPECIFIED || s === MachineState.UNRECOGNIZED) {
    throw invalidArgument(`${field} ${s} is not a machine state`);
  }
  return name.slice(PREFIX.length).toLowerCase() as State;
}

export function machineToProto(m: MachineRecord): Machine {
  return Machine.fromPartial({
    id: m.id,
    name: m.name,
    app: m.app,
    region: m.region,
    hostId: m.hostId,
    state: stateToProto(m.state),
    config: m.config,
    instanceId: m.instanceId,
    generation: m.generation,
    url: m.url,
    platformVersion: m.platformVersion,
    lastStart: m.lastStart ?? undefined,
    snapshotId: m.snapshotId,
    createdAt: new Date(m.createdAt),
    updatedAt: new Date(m.updatedAt),
  });
}
