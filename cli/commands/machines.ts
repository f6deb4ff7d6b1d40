// `torpor machines ...`: thin wrappers over the Machines API.
import { Command } from 'commander';
import {
  ListMachineEventsResponse,
  Machine,
  MachineEventRecord,
  MachineState,
  StartMachineResponse,
} from '../../gen/torpor/machines/v1/machines';
import { addConfigFlags, ConfigFlags, configFromFlags, parseCount } from '../config-flags';
import { Context } from '../context';
import { UsageError } from '../errors';
import { eventRecordLine, machineStatus, machineTable } from '../format';
import { parseState, stateName, WAIT_TARGETS } from '../states';
import { waitForState } from '../wait';
import { action } from '../run';

const machineJson = (m: Machine) => Machine.toJSON(m);

export function machinesCommand(): Command {
  const cmd = new Command('machines').description('create, inspect and drive machines');

  addConfigFlags(
    cmd
      .command('create')
      .description('create a machine and start it (unless --skip-start)')
      .requiredOption('--app <app>', 'app the machine belongs to')
      .requiredOption('--region <region>', 'region to place it in')
      .option('--name <name>', 'name, unique within the app (generated when left out)')
      .option('--skip-start', 'record and place the machine without booting it'),
    false,
  ).action(
    action(async (ctx: Context, opts: ConfigFlags & { app: string; region: string; name?: string; skipStart?: boolean }) => {
      const config = configFromFlags(opts);
      const m = await ctx.machines().createMachine(
        { app: opts.app, region: opts.region, name: opts.name ?? '', config, skipStart: !!opts.skipStart },
        { timeoutMs: 180_000 },
      );
      if (ctx.json) return ctx.printJson(machineJson(m));
      ctx.print(machineStatus(m));
    }),
  );

  cmd
    .command('list')
    .description('list machines')
    .option('--app <app>', 'only this app')
    .option('--state <state>', 'only machines in this state (e.g. suspended)')
    .action(
      action(async (ctx: Context, opts: { app?: string; state?: string }) => {
        const state = opts.state ? parseState(opts.state) : MachineState.MACHINE_STATE_UNSPECIFIED;
        const res = await ctx.machines().listMachines({ app: opts.app ?? '', state });
        if (ctx.json) return ctx.printJson(res.machines.map(machineJson));
        ctx.print(machineTable(res.machines));
      }),
    );

  cmd
    .command('status')
    .description('show one machine')
    .argument('<id>', 'machine id')
    .action(
      action(async (ctx: Context, id: string) => {
        const m = await ctx.machines().getMachine({ id });
        if (ctx.json) return ctx.printJson(machineJson(m));
        ctx.print(machineStatus(m));
      }),
    );

  cmd
    .command('start')
    .description('start a machine; a suspended one resumes from its snapshot')
    .argument('<id>', 'machine id')
    .action(
      action(async (ctx: Context, id: string) => {
        const res = await ctx.machines().startMachine({ id }, { timeoutMs: 180_000 });
        if (ctx.json) return ctx.printJson(StartMachineResponse.toJSON(res));
        ctx.print(startText(res));
      }),
    );

  for (const [name, description] of [
    ['stop', 'stop a machine (a suspended one loses its snapshot)'],
    ['suspend', 'begin suspending a machine (answers once it is suspending)'],
  ] as const) {
    cmd
      .command(name)
      .description(description)
      .argument('<id>', 'machine id')
      .action(
        action(async (ctx: Context, id: string) => {
          const client = ctx.machines();
          const m = name === 'stop' ? await client.stopMachine({ id }, { timeoutMs: 120_000 }) : await client.suspendMachine({ id });
          if (ctx.json) return ctx.printJson(machineJson(m));
          ctx.print(`${m.id} is ${stateName(m.state)}`);
        }),
      );
  }

  cmd
    .command('wait')
    .description('wait until a machine is in a state')
    .argument('<id>', 'machine id')
    .requiredOption('--state <state>', 'started, stopped, suspended or destroyed')
    .option('--timeout <seconds>', 'give up after this many seconds', '60')
    .option('--instance-id <id>', 'only for this instance (after an update)')
    .action(
      action(async (ctx: Context, id: string, opts: { state: string; timeout: string; instanceId?: string }) => {
        const target = parseState(opts.state, WAIT_TARGETS);
        const timeoutSeconds = parseCount('--timeout', opts.timeout, 1);
        const m = await waitForState(ctx.machines(), {
          id,
          target,
          timeoutSeconds,
          instanceId: opts.instanceId,
          onProgress: (line) => ctx.note(line),
        });
        if (ctx.json) return ctx.printJson(machineJson(m));
        ctx.print(`${m.id} is ${stateName(m.state)}`);
      }),
    );

  addConfigFlags(cmd.command('update').description('change a machine config (a deploy); unspecified flags keep their values').argument('<id>', 'machine id'), true).action(
    action(async (ctx: Context, id: string, opts: ConfigFlags) => {
      const client = ctx.machines();
      const current = await client.getMachine({ id });
      if (!current.config) throw new UsageError(`machine ${id} has no config to update`);
      const config = configFromFlags(opts, current.config);
      const m = await client.updateMachine({ id, config }, { timeoutMs: 180_000 });
      if (ctx.json) return ctx.printJson(machineJson(m));
      ctx.print(machineStatus(m));
    }),
  );

  cmd
    .command('destroy')
    .description('destroy a machine and its snapshots')
    .argument('<id>', 'machine id')
    .option('--force', 'destroy a started machine too')
    .action(
      action(async (ctx: Context, id: string, opts: { force?: boolean }) => {
        const res = await ctx.machines().destroyMachine({ id, force: !!opts.force }, { timeoutMs: 120_000 });
        if (ctx.json) return ctx.printJson(machineJson(res.machine!));
        ctx.print(`${id} is destroyed`);
      }),
    );

  cmd
    .command('events')
    .description("list a machine's lifecycle events, oldest first")
    .argument('<id>', 'machine id')
    .action(
      action(async (ctx: Context, id: string) => {
        const res = await ctx.machines().listMachineEvents({ id });
        if (ctx.json) return ctx.printJson(ListMachineEventsResponse.toJSON(res));
        ctx.print(res.events.length ? res.events.map((r: MachineEventRecord) => eventRecordLine(r)).join('\n') : 'no events');
      }),
    );

  return cmd;
}

export function startText(res: StartMachineResponse): string {
  const m = res.machine;
  const how = res.resumed ? 'resumed from snapshot' : `cold-started${res.reason ? ` (did not resume: ${res.reason})` : ''}`;
  const ms = m?.lastStart?.totalMs ? ` in ${m.lastStart.totalMs} ms` : '';
  return `${m?.id ?? ''} ${how}${ms}; was ${stateName(res.previousState)}, now ${m ? stateName(m.state) : '?'}`;
}
