// `torpor events`: the lifecycle events in stream TORPOR_EVENTS.
import { Command } from 'commander';
import { EVENTS_STREAM } from '../../lib/nats';
import { Context } from '../context';
import { eventLine, EventLike } from '../format';
import { connectCli, interruptSignal, readStream } from '../nats';
import { action } from '../run';

export function eventsCommand(): Command {
  return new Command('events')
    .description('print lifecycle events from NATS (one line each; JSON lines with --json)')
    .option('--follow', 'keep printing new events')
    .option('--new', 'with --follow: only events published from now on')
    .option('--subject <subject>', 'subject filter', 'machine.>')
    .action(
      action(async (ctx: Context, opts: { follow?: boolean; new?: boolean; subject: string }) => {
        const follow = !!opts.follow;
        const nc = await connectCli(ctx.natsUrl, follow);
        let count = 0;
        try {
          await readStream(nc, {
            stream: EVENTS_STREAM,
            filter: opts.subject,
            follow,
            onlyNew: follow && !!opts.new,
            signal: follow ? interruptSignal() : undefined,
            onMessage: (subject, data) => {
              count++;
              ctx.io.out(render(ctx.json, subject, data) + '\n');
            },
          });
          // Nothing at all is more often the wrong NATS than a quiet mesh: say where we looked.
          if (!follow && count === 0) ctx.io.err(`no events under ${opts.subject} in ${EVENTS_STREAM} at ${ctx.natsUrl} (\`npm start\` prints the NATS_URL of its mesh)\n`);
        } finally {
          await nc.close();
        }
      }),
    );
}

function render(json: boolean, subject: string, data: string): string {
  let ev: EventLike & Record<string, unknown>;
  try {
    ev = JSON.parse(data);
  } catch {
    return json ? JSON.stringify({ subject, raw: data }) : `${subject}  (not JSON: ${data.slice(0, 80)})`;
  }
  return json ? JSON.stringify({ subject, ...ev }) : eventLine(subject, ev);
}
