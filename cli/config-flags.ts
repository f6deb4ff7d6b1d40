// Machine config flags (shared by `machines create` and `machines update`) and
// the pure function that turns them into a MachineConfig, over a base config for updates.
import { Command, Option } from 'commander';
import { Autostop, MachineConfig, ServiceConfig } from '../gen/torpor/machines/v1/machines';
import { UsageError } from './errors';

/** The config flags as commander hands them over (all strings, all optional). */
export interface ConfigFlags {
  image?: string;
  memory?: string;
  cpus?: string;
  cpuKind?: string;
  env?: string[];
  unsetEnv?: string[];
  metadata?: string[];
  swap?: string;
  schedule?: string;
  gpus?: string;
  port?: string;
  autostop?: string;
  autostart?: boolean;
  minRunning?: string;
}

const collect = (value: string, previous: string[] = []) => [...previous, value];

/** Adds the config flags to a command. */
export function addConfigFlags(cmd: Command, forUpdate: boolean): Command {
  const keep = forUpdate ? ' (default: keep the current value)' : '';
  cmd
    .option('--image <image>', 'guest image name' + keep)
    .option('--memory <mb>', 'guest memory in MiB' + keep)
    .option('--cpus <n>', 'virtual CPUs' + (forUpdate ? keep : ' (default: 1)'))
    .option('--cpu-kind <kind>', 'shared or performance' + (forUpdate ? keep : ' (default: shared)'))
    .option('--env <K=V>', 'environment variable for the guest (repeatable)' + (forUpdate ? '; merged into the current ones' : ''), collect)
    .option('--metadata <K=V>', 'free-form label (repeatable)' + (forUpdate ? '; merged into the current ones' : ''), collect)
    .option('--swap <mb>', 'swap inside the guest in MiB (must be 0 to suspend)' + keep)
    .option('--schedule <schedule>', 'schedule, e.g. hourly (must be empty to suspend)' + keep)
    .option('--gpus <n>', 'GPUs (must be 0 to suspend)' + keep)
    .option('--port <port>', 'port the guest app serves HTTP on: the app gets it as $PORT, the machine url and the edge proxy forward to it' + keep)
    .addOption(new Option('--autostop <mode>', 'what to do when idle' + keep).choices(['off', 'stop', 'suspend']))
    .option('--autostart', 'start (resume) the machine when a request arrives')
    .option('--no-autostart', 'do not start the machine on requests')
    .option('--min-running <n>', 'idle sweeps keep at least this many machines of the app started' + keep);
  if (forUpdate) cmd.option('--unset-env <K>', 'remove an environment variable (repeatable)', collect);
  return cmd;
}

export function parseCount(flag: string, value: string, min = 0): number {
  const t = value.trim();
  if (!/^\d+$/.test(t)) throw new UsageError(`${flag} must be a whole number, got "${value}"`);
  const n = Number(t);
  if (!Number.isSafeInteger(n) || n < min) throw new UsageError(`${flag} must be a whole number of at least ${min}, got "${value}"`);
  return n;
}

export function parsePairs(flag: string, values: string[] | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const v of values ?? []) {
    const eq = v.indexOf('=');
    if (eq <= 0) throw new UsageError(`${flag} takes KEY=VALUE, got "${v}"`);
    out[v.slice(0, eq)] = v.slice(eq + 1);
  }
  return out;
}

const AUTOSTOP: Record<string, Autostop> = { off: Autostop.AUTOSTOP_OFF, stop: Autostop.AUTOSTOP_STOP, suspend: Autostop.AUTOSTOP_SUSPEND };

export function parseAutostop(value: string): Autostop {
  const a = AUTOSTOP[value.trim().toLowerCase()];
  if (a === undefined) throw new UsageError(`--autostop must be off, stop or suspend, got "${value}"`);
  return a;
}

/** A fresh config with the values `machines create` uses when a flag is not given. */
export function defaultConfig(): MachineConfig {
  return {
    image: '',
    guest: { cpus: 1, memoryMb: 0, cpuKind: 'shared', gpus: 0 },
    swapSizeMb: 0,
    schedule: '',
    env: {},
    services: [],
    metadata: {},
  };
}

/**
 * The config the flags describe. With a base (update), flags that are not
 * given keep the base's values; env and metadata are merged. Without one
 * (create), --image and --memory are required.
 */
export function configFromFlags(flags: ConfigFlags, base?: MachineConfig): MachineConfig {
  const creating = base === undefined;
  const from = base ?? defaultConfig();
  const cfg: MachineConfig = {
    ...from,
    guest: { ...(from.guest ?? defaultConfig().guest!) },
    env: { ...from.env },
    metadata: { ...from.metadata },
    services: from.services.map((s) => ({ ...s, ports: s.ports.map((p) => ({ ...p, handlers: [...p.handlers] })) })),
  };
  const guest = cfg.guest!;

  if (flags.image !== undefined) {
    if (!flags.image.trim()) throw new UsageError('--image must not be empty');
    cfg.image = flags.image.trim();
  }
  if (flags.memory !== undefined) guest.memoryMb = parseCount('--memory', flags.memory, 1);
  if (flags.cpus !== undefined) guest.cpus = parseCount('--cpus', flags.cpus, 1);
  if (flags.cpuKind !== undefined) guest.cpuKind = flags.cpuKind.trim();
  if (flags.gpus !== undefined) guest.gpus = parseCount('--gpus', flags.gpus);
  if (flags.swap !== undefined) cfg.swapSizeMb = parseCount('--swap', flags.swap);
  if (flags.schedule !== undefined) cfg.schedule = flags.schedule.trim();
  Object.assign(cfg.env, parsePairs('--env', flags.env));
  for (const k of flags.unsetEnv ?? []) delete cfg.env[k];
  Object.assign(cfg.metadata, parsePairs('--metadata', flags.metadata));

  const touchesService =
    flags.port !== undefined || flags.autostop !== undefined || flags.autostart !== undefined || flags.minRunning !== undefined;
  if (touchesService) {
    let svc: ServiceConfig | undefined = cfg.services[0];
    if (!svc) {
      if (flags.port === undefined) {
        throw new UsageError('--autostop, --autostart and --min-running need a service: give --port too');
      }
      svc = { internalPort: 0, ports: [], autostart: false, autostop: Autostop.AUTOSTOP_OFF, minMachinesRunning: 0 };
      cfg.services.push(svc);
    }
    if (flags.port !== undefined) {
      const port = parseCount('--port', flags.port, 1);
      if (port > 65535) throw new UsageError(`--port must be at most 65535, got "${flags.port}"`);
      svc.internalPort = port;
      svc.ports = [{ port, handlers: ['http'] }];
    }
    if (flags.autostop !== undefined) svc.autostop = parseAutostop(flags.autostop);
    if (flags.autostart !== undefined) svc.autostart = flags.autostart;
    if (flags.minRunning !== undefined) svc.minMachinesRunning = parseCount('--min-running', flags.minRunning);
  }

  if (creating) {
    if (!cfg.image) throw new UsageError('--image is required');
    if (!guest.memoryMb) throw new UsageError('--memory is required (MiB)');
  }
  return cfg;
}
