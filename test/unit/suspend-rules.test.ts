import assert from 'node:assert/strict';
import { MachineConfig } from '../../gen/torpor/machines/v1/machines';
import { SuspendPolicy, suspendRefusals } from '../../services/scheduler/src/domain/suspend-rules';

const policy: SuspendPolicy = { maxMemoryMb: 2048, suspendSinceVersion: 2, regions: [] };
const machine = (patch: Partial<MachineConfig> = {}, more: { platformVersion?: number; region?: string } = {}) => ({
  config: MachineConfig.fromPartial({ image: 'default', guest: { cpus: 1, memoryMb: 256, cpuKind: 'shared', gpus: 0 }, ...patch }),
  platformVersion: more.platformVersion ?? 2,
  region: more.region ?? 'bog',
});

describe('suspend restrictions (R1–R6)', () => {
  it('a small machine without swap, schedule or GPU may be suspended', () => assert.deepEqual(suspendRefusals(machine(), policy), []));
  it('R1: more than 2048 MiB of memory is refused; exactly 2048 is allowed', () => {
    assert.match(suspendRefusals(machine({ guest: { cpus: 1, memoryMb: 2049, cpuKind: '', gpus: 0 } }), policy)[0], /^R1: .*2049 MiB.*at most 2048/);
    assert.deepEqual(suspendRefusals(machine({ guest: { cpus: 1, memoryMb: 2048, cpuKind: '', gpus: 0 } }), policy), []);
  });
  it('R2: swap is refused', () => assert.match(suspendRefusals(machine({ swapSizeMb: 512 }), policy)[0], /^R2: .*swap/));
  it('R3: a schedule is refused', () => assert.match(suspendRefusals(machine({ schedule: 'hourly' }), policy)[0], /^R3: .*schedule/));
  it('R4: GPUs are refused', () => assert.match(suspendRefusals(machine({ guest: { cpus: 1, memoryMb: 256, cpuKind: '', gpus: 1 } }), policy)[0], /^R4: .*GPU/));
  it('R5: a machine not updated since suspend support tells the user to run an update', () => {
    assert.match(suspendRefusals(machine({}, { platformVersion: 1 }), policy)[0], /^R5: .*run `torpor machines update/);
  });
  it('R6: a region without suspend is refused, naming the regions that have it', () => {
    const r = suspendRefusals(machine({}, { region: 'phx' }), { ...policy, regions: ['bog', 'gdl'] });
    assert.match(r[0], /^R6: .*phx.*bog, gdl/);
    assert.deepEqual(suspendRefusals(machine({}, { region: 'gdl' }), { ...policy, regions: ['bog', 'gdl'] }), []);
  });
  it('lists every refusal at once', () => {
    assert.equal(suspendRefusals(machine({ swapSizeMb: 1, schedule: 'daily' }, { platformVersion: 1 }), policy).length, 3);
  });
});
