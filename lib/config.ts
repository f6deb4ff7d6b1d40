// Config from flags (--name value / --name=value) over environment over defaults.
// Each service declares its options with their defaults and env names in one table,
// printed by --help.

export interface OptionSpec {
  env: string;
  default: string;
  help: string;
}

export type Options<K extends string> = Record<K, OptionSpec>;

export function loadConfig<K extends string>(
  service: string,
  spec: Options<K>,
  argv = process.argv.slice(2),
  env = process.env,
): Record<K, string> {
  const flags = new Map<string, string>();
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--help' || a === '-h') {
      process.stdout.write(helpText(service, spec));
      process.exit(0);
    }
    if (!a.startsWith('--')) throw new Error(`unexpected argument "${a}" (see --help)`);
    const eq = a.indexOf('=');
    if (eq > 0) flags.set(a.slice(2, eq), a.slice(eq + 1));
    else {
      const v = argv[i + 1];
      if (v === undefined || v.startsWith('--')) throw new Error(`flag ${a} needs a value (see --help)`);
      flags.set(a.slice(2), v);
      i++;
    }
  }
  const out = {} as Record<K, string>;
  for (const key of Object.keys(spec) as K[]) {
    const flag = toFlag(key);
    out[key] = flags.get(flag) ?? env[spec[key].env] ?? spec[key].default;
    flags.delete(flag);
  }
  if (flags.size) throw new Error(`unknown flag --${[...flags.keys()][0]} (see --help)`);
  return out;
}

const toFlag = (key: string) => key.replace(/[A-Z]/g, (c) => '-' + c.toLowerCase());

export function helpText<K extends string>(service: string, spec: Options<K>): string {
  const rows = (Object.keys(spec) as K[]).map(
    (k) => `  --${toFlag(k).padEnd(22)} ${spec[k].env.padEnd(36)} ${spec[k].help} (default: ${spec[k].default || '""'})`,
  );
  return `${service}\n\nflag / environment variable / meaning:\n${rows.join('\n')}\n`;
}

export function intOption(name: string, value: string, min: number, max: number): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < min || n > max) throw new Error(`${name} must be a whole number from ${min} to ${max}, got "${value}"`);
  return n;
}

/** The options every Torpor server has: where it listens, its data folder and NATS. */
export function serverOptions(envPrefix: string, defaults: { port: string; metricsPort: string; portHelp?: string; dataHelp: string }) {
  return {
    host: { env: `${envPrefix}_HOST`, default: '127.0.0.1', help: 'address to listen on' },
    port: { env: `${envPrefix}_PORT`, default: defaults.port, help: defaults.portHelp ?? 'gRPC port (0 picks a free one)' },
    metricsPort: { env: `${envPrefix}_METRICS_PORT`, default: defaults.metricsPort, help: 'Prometheus /metrics port (0 picks a free one)' },
    dataDir: { env: 'TORPOR_DATA', default: './data', help: defaults.dataHelp },
    natsUrl: { env: 'NATS_URL', default: 'nats://127.0.0.1:4222', help: 'NATS server(s) with JetStream, comma separated' },
  };
}
