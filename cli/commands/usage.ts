// `torpor usage`: the usage meter's per-machine seconds by billing state (N4).
import { Command } from 'commander';
import type { UsageReport } from '../../services/usage-meter/accumulator';
import { Context } from '../context';
import { UnreachableError } from '../errors';
import { duration, table } from '../format';
import { action } from '../run';

export const USAGE_HINT = 'is the usage meter running? start the mesh with `npm start`, or set TORPOR_USAGE_URL (or --usage-url)';

export function usageCommand(): Command {
  return new Command('usage').description("print the usage meter's seconds per machine by billing state").action(
    action(async (ctx: Context) => {
      const report = await fetchUsage(ctx.usageUrl);
      if (ctx.json) return ctx.printJson(report);
      ctx.print(usageText(report));
    }),
  );
}

export async function fetchUsage(baseUrl: string): Promise<UsageReport> {
  let res: Response;
  try {
    res = await fetch(`${baseUrl}/usage`, { signal: AbortSignal.timeout(5000) });
  } catch (err) {
    const why = err instanceof Error ? ((err.cause as Error | undefined)?.message ?? err.message) : String(err);
    throw new UnreachableError(`cannot reach the usage meter at ${baseUrl} (${why})`, USAGE_HINT);
  }
  if (!res.ok) throw new Error(`usage meter answered ${res.status} ${res.statusText}`);
  return (await res.json()) as UsageReport;
}

export function usageText(r: UsageReport): string {
  if (r.machines.length === 0) return `no machine events metered yet (as of ${r.as_of})\n`;
  return (
    table(
      ['MACHINE', 'APP', 'STATE', 'RUNNING', 'STOPPED'],
      r.machines.map((m) => [m.machine_id, m.app, m.state, duration(m.seconds.running), duration(m.seconds.stopped)]),
    ) + `total: running ${duration(r.totals.running)}, stopped ${duration(r.totals.stopped)} (as of ${r.as_of}; suspended is billed as stopped)\n`
  );
}
