import assert from 'node:assert/strict';
import { Autostop, MachineConfig } from '../../gen/torpor/machines/v1/machines';
import { configFromFlags, parseCount } from '../../cli/config-flags';
import { UsageError } from '../../cli/errors';

describe('cli: config flags → MachineConfig', () => {
  it('create: builds a whole config with defaults for what is not given', () => {
    const cfg = configFromFlags({ image: 'default', memory: '256', env: ['A=1', 'B=x=y'] });
    assert.deepEqual(cfg, {
      image: 'default',
      guest: { cpus: 1, memoryMb: 256, cpuKind: 'shared', gpus: 0 },
      swapSizeMb: 0,
      schedule: '',
      env: { A: '1', B: 'x=y' },
      services: [],
      metadata: {},
    });
  });

  it('create: --image and --memory are required', () => {
    assert.throws(() => configFromFlags({ memory: '256' }), { name: 'UsageError', message: /--image is required/ });
    assert.throws(() => configFromFlags({ image: 'default' }), { name: 'UsageError', message: /--memory is required/ });
  });

  it('create: R1-R4 flags and the service flags land in the config', () => {
    const cfg = configFromFlags({
      image: 'default',
      memory: '4096',
      cpus: '2',
      swap: '512',
      schedule: 'hourly',
      gpus: '1',
      port: '8080',
      autostop: 'suspend',
      autostart: true,
      minRunning: '1',
    });
    assert.equal(cfg.guest!.memoryMb, 4096);
    assert.equal(cfg.guest!.cpus, 2);
    assert.equal(cfg.guest!.gpus, 1);
    assert.equal(cfg.swapSizeMb, 512);
    assert.equal(cfg.schedule, 'hourly');
    assert.deepEqual(cfg.services, [
      { internalPort: 8080, ports: [{ port: 8080, handlers: ['http'] }], autostart: true, autostop: Autostop.AUTOSTOP_SUSPEND, minMachinesRunning: 1 },
    ]);
  });

  it('refuses bad values with a usage error naming the flag', () => {
    const bad: [object, RegExp][] = [
      [{ memory: 'lots' }, /--memory must be a whole number/],
      [{ memory: '-5' }, /--memory must be a whole number/],
      [{ memory: '0' }, /--memory must be a whole number of at least 1/],
      [{ cpus: '1.5' }, /--cpus/],
      [{ env: ['NOEQUALS'] }, /--env takes KEY=VALUE/],
      [{ env: ['=v'] }, /--env takes KEY=VALUE/],
      [{ port: '70000' }, /--port must be at most 65535/],
      [{ autostop: 'sometimes', port: '80' }, /--autostop must be off, stop or suspend/],
      [{ autostop: 'suspend' }, /give --port too/],
    ];
    for (const [flags, msg] of bad) {
      assert.throws(() => configFromFlags({ image: 'i', memory: '256', ...flags }), (e: unknown) => e instanceof UsageError && msg.test(e.message), JSON.stringify(flags));
    }
    assert.throws(() => parseCount('--timeout', '9007199254740993'), UsageError);
  });

  it('update: flags not given keep the current values; env and metadata are merged', () => {
    const current: MachineConfig = {
      image: 'default',
      guest: { cpus: 2, memoryMb: 512, cpuKind: 'performance', gpus: 0 },
      swapSizeMb: 0,
      schedule: '',
      env: { KEEP: '1', DROP: '2', CHANGE: 'old' },
      services: [{ internalPort: 8080, ports: [{ port: 8080, handlers: ['http'] }], autostart: true, autostop: Autostop.AUTOSTOP_STOP, minMachinesRunning: 0 }],
      metadata: { team: 'a' },
    };
    const snapshot = JSON.stringify(current);
    const cfg = configFromFlags({ memory: '1024', env: ['CHANGE=new', 'ADD=x'], unsetEnv: ['DROP'], autostop: 'suspend', autostart: false }, current);
    assert.equal(JSON.stringify(current), snapshot, 'the base config is not modified');
    assert.equal(cfg.image, 'default');
    assert.deepEqual(cfg.guest, { cpus: 2, memoryMb: 1024, cpuKind: 'performance', gpus: 0 });
    assert.deepEqual(cfg.env, { KEEP: '1', CHANGE: 'new', ADD: 'x' });
    assert.deepEqual(cfg.metadata, { team: 'a' });
    assert.deepEqual(cfg.services, [
      { internalPort: 8080, ports: [{ port: 8080, handlers: ['http'] }], autostart: false, autostop: Autostop.AUTOSTOP_SUSPEND, minMachinesRunning: 0 },
    ]);
  });

  it('update: with no flags the config is sent back unchanged', () => {
    const current: MachineConfig = { image: 'x', guest: { cpus: 1, memoryMb: 128, cpuKind: 'shared', gpus: 0 }, swapSizeMb: 0, schedule: '', env: {}, services: [], metadata: {} };
    assert.deepEqual(configFromFlags({}, current), current);
  });
});
