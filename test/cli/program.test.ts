// The command tree run in-process against a fake Machines client: what is sent, what is printed, exit codes.
import assert from 'node:assert/strict';
import type { Command } from 'commander';
import { Machine, MachineState, UpdateMachineRequest } from '../../gen/torpor/machines/v1/machines';
import { TorporError } from '../../lib/errors';
import { Context, GlobalOptions, Io } from '../../cli/context';
import { run } from '../../cli/program';
import { makeContext, setContextFactory } from '../../cli/run';
import { sampleMachine } from './fixtures';

class FakeMachines {
  calls: [string, unknown][] = [];
  machine = sampleMachine();
  getMachine = async (req: { id: string }) => {
    this.calls.push(['getMachine', req]);
    if (req.id !== this.machine.id) throw new TorporError('not_found', `machine ${req.id} not found`);
    return this.machine;
  };
  listMachines = async (req: unknown) => {
    this.calls.push(['listMachines', req]);
    return { machines: [this.machine, { ...this.machine, id: 'ffffffffffffff' }] };
  };
  updateMachine = async (req: UpdateMachineRequest) => {
    this.calls.push(['updateMachine', req]);
    return { ...this.machine, config: req.config } as Machine;
  };
  close() {}
}

function harness() {
  const out: string[] = [];
  const err: string[] = [];
  const io: Io = { out: (t) => void out.push(t), err: (t) => void err.push(t) };
  const fake = new FakeMachines();
  class FakeContext extends Context {
    override machines() {
      return fake as unknown as ReturnType<Context['machines']>;
    }
  }
  setContextFactory((cmd: Command) => new FakeContext(cmd.optsWithGlobals() as GlobalOptions, io, {}));
  const exec = (...args: string[]) => run(['node', 'torpor', ...args], io);
  return { out, err, fake, exec, stdout: () => out.join(''), stderr: () => err.join('') };
}

describe('cli: commands (in-process, fake scheduler)', () => {
  const original = makeContext;
  after(() => setContextFactory(original));

  it('--json prints exactly one JSON value on stdout (proto3 JSON)', async () => {
    const h = harness();
    assert.equal(await h.exec('machines', 'list', '--json', '--state', 'started'), 0);
    const parsed = JSON.parse(h.stdout());
    assert.ok(Array.isArray(parsed));
    assert.equal(parsed.length, 2);
    assert.equal(parsed[0].state, 'MACHINE_STATE_STARTED');
    assert.equal(parsed[0].hostId, 'host-bog-1');
    assert.deepEqual(h.fake.calls[0], ['listMachines', { app: '', state: MachineState.MACHINE_STATE_STARTED }]);
  });

  it('--json works before the subcommand too', async () => {
    const h = harness();
    assert.equal(await h.exec('--json', 'machines', 'status', '0123456789abcd'), 0);
    assert.equal(JSON.parse(h.stdout()).id, '0123456789abcd');
  });

  it('machines update fetches the machine, merges the flags and sends the whole config', async () => {
    const h = harness();
    assert.equal(await h.exec('machines', 'update', '0123456789abcd', '--memory', '512', '--env', 'B=2'), 0);
    const [, req] = h.fake.calls.find(([n]) => n === 'updateMachine')!;
    const cfg = (req as UpdateMachineRequest).config!;
    assert.equal(cfg.image, 'default');
    assert.deepEqual(cfg.guest, { cpus: 1, memoryMb: 512, cpuKind: 'shared', gpus: 0 });
    assert.deepEqual(cfg.env, { A: '1', B: '2' });
    assert.match(h.stdout(), /^id:\s+0123456789abcd$/m);
  });

  it('a refused request exits 1 with "error: … (NOT_FOUND)" on stderr and nothing on stdout', async () => {
    const h = harness();
    assert.equal(await h.exec('machines', 'status', 'ffffffffffff00'), 1);
    assert.equal(h.stderr(), 'error: machine ffffffffffff00 not found (NOT_FOUND)\n');
    assert.equal(h.stdout(), '');
  });

  it('with --json a refused request prints one JSON error object on stdout', async () => {
    const h = harness();
    assert.equal(await h.exec('machines', 'status', 'ffffffffffff00', '--json'), 1);
    assert.deepEqual(JSON.parse(h.stdout()), { error: { code: 'NOT_FOUND', message: 'machine ffffffffffff00 not found (NOT_FOUND)' } });
  });

  it('usage errors exit 2: unknown option, missing required flag, bad state, bad number', async () => {
    for (const args of [
      ['machines', 'list', '--bogus'],
      ['machines', 'create', '--app', 'a', '--region', 'bog', '--image', 'default'],
      ['machines', 'create', '--image', 'default', '--memory', '256', '--region', 'bog'],
      ['machines', 'wait', '0123456789abcd', '--state', 'suspending'],
      ['machines', 'wait', '0123456789abcd', '--state', 'suspended', '--timeout', 'soon'],
      ['machines', 'create', '--app', 'a', '--region', 'bog', '--image', 'i', '--memory', '256', '--autostop', 'maybe'],
      ['machines'],
      ['frobnicate'],
    ]) {
      const h = harness();
      assert.equal(await h.exec(...args, '--json'), 2, args.join(' '));
      assert.match(h.stderr(), /error/, args.join(' '));
      const parsed = JSON.parse(h.stdout());
      assert.equal(parsed.error.code, 'USAGE', args.join(' '));
      assert.equal(h.fake.calls.length, 0, 'nothing was sent');
    }
  });

  it('--help exits 0', async () => {
    const h = harness();
    assert.equal(await h.exec('machines', 'create', '--help'), 0);
    assert.match(h.stdout(), /--autostop <mode>/);
  });
});
