// `torpor logs ID`: a machine's console lines from stream TORPOR_LOGS (logs.<app>.<id>).
import { Command } from 'commander';
import { LOGS_STREAM } from '../../lib/nats';
import { LogLine } from '../../gen/torpor/events/v1/events';
import { Context } from '../context';
import { connectCli, interruptSignal, readStream } from '../nats';
import { action } from '../run';

export function logsCommand(): Command {
  return new Command('logs')
    .description("print a machine's console log (JSON lines of LogLine with --json)")
    .argument('<id>', 'machine id')
    .option('--follow', 'keep printing new lines')
    .action(
      action(async (ctx: Context, id: string, opts: { follow?: boolean }) => {
        const m = await ctx.machines().getMachine({ id });
        const follow = !!opts.follow;
        const nc = await connectCli(ctx.natsUrl, follow);
        try {
          await readStream(nc, {
            stream: LOGS_STREAM,
            filter: `logs.${m.app}.${m.id}`,
            follow,
            signal: follow ? interruptSignal() : undefined,
            onMessage: (_subject, data) => ctx.io.out(renderLogLine(ctx.json, data) + '\n'),
          });
        } finally {
          await nc.close();
        }
      }),
    );
}

export function renderLogLine(json: boolean, data: string): string {
  try {
    const l = LogLine.fromJSON(JSON.parse(data));
    return json ? JSON.stringify(LogLine.toJSON(l)) : l.line;
  } catch {
    return json ? JSON.stringify({ raw: data }) : data;
  }
}
