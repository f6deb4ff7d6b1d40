// Shared fixtures of the CLI tests.
import { Machine, MachineState } from '../../gen/torpor/machines/v1/machines';

export function sampleMachine(over: Partial<Machine> = {}): Machine {
  return {
    id: '0123456789abcd',
    name: 'web-1',
    app: 'web',
    region: 'bog',
    hostId: 'host-bog-1',
    state: MachineState.MACHINE_STATE_STARTED,
    config: { image: 'default', guest: { cpus: 1, memoryMb: 256, cpuKind: 'shared', gpus: 0 }, swapSizeMb: 0, schedule: '', env: { A: '1' }, services: [], metadata: {} },
    instanceId: 'inst-1',
    generation: 3,
    url: 'http://127.0.0.1:40001',
    platformVersion: 2,
    lastStart: { resumed: false, reason: 'snapshot corrupt', hostMs: 900, totalMs: 950 },
    snapshotId: '',
    createdAt: new Date('2025-01-01T00:00:00Z'),
    updatedAt: new Date('2025-01-01T00:01:00Z'),
    ...over,
  };
}
