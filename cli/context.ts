// What every command gets: the global options, where to write, and lazily made clients.
import type { Command } from 'commander';
import { AsyncClient, asyncClient } from '../lib/grpc/client';
import { MachinesClient } from '../gen/torpor/machines/v1/machines';
import { UsageError } from './errors';

export const DEFAULT_SCHEDULER = '127.0.0.1:7100';
export const DEFAULT_NATS = 'nats://127.0.0.1:4222';
export const DEFAULT_USAGE_URL = 'http://127.0.0.1:7300';

export interface GlobalOptions {
  json?: boolean;
  scheduler?: string;
  nats?: string;
  usageUrl?: string;
}

export interface Io {
  out: (text: string) => void;
  err: (text: string) => void;
}

export const processIo: Io = {
  out: (t) => process.stdout.write(t),
  err: (t) => process.stderr.write(t),
};

export class Context {
  readonly json: boolean;
  readonly schedulerAddress: string;
  readonly natsUrl: string;
  readonly usageUrl: string;
  private machinesClient?: AsyncClient<MachinesClient>;

  constructor(
    opts: GlobalOptions,
    readonly io: Io = processIo,
    env: NodeJS.ProcessEnv = process.env,
  ) {
    this.json = !!opts.json;
    this.schedulerAddress = (opts.scheduler ?? env.TORPOR_SCHEDULER ?? DEFAULT_SCHEDULER).trim();
    this.natsUrl = opts.nats ?? env.NATS_URL ?? DEFAULT_NATS;
    this.usageUrl = (opts.usageUrl ?? env.TORPOR_USAGE_URL ?? DEFAULT_USAGE_URL).replace(/\/+$/, '');
  }

  static of(cmd: Command): Context {
    return new Context(cmd.optsWithGlobals() as GlobalOptions);
  }

  machines(): AsyncClient<MachinesClient> {
    this.machinesClient ??= asyncClient(MachinesClient, checkAddress(this.schedulerAddress));
    return this.machinesClient;
  }

  /** The one JSON value of a --json run. */
  printJson(value: unknown): void {
    this.io.out(JSON.stringify(value, null, 2) + '\n');
  }

  /** Human output (skipped with --json). */
  print(text: string): void {
    if (!this.json) this.io.out(text.endsWith('\n') ? text : text + '\n');
  }

  /** Progress and notes: always stderr, so stdout stays clean. */
  note(text: string): void {
    this.io.err(text.endsWith('\n') ? text : text + '\n');
  }

  close(): void {
    this.machinesClient?.close();
  }
}

/** host:port with a port from 1 to 65535. */
export function checkAddress(address: string): string {
  const m = /^(.+):(\d+)$/.exec(address.trim());
  const port = m ? Number(m[2]) : NaN;
  if (!m || port < 1 || port > 65535) {
    throw new UsageError(`scheduler address must be host:port, got "${address}" (from --scheduler or TORPOR_SCHEDULER)`);
  }
  return address.trim();
}
