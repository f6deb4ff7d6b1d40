// The `torpor` command tree and its one error handler (exit codes in errors.ts).
import { Command, CommanderError } from 'commander';
import { DEFAULT_NATS, DEFAULT_SCHEDULER, DEFAULT_USAGE_URL, Io, processIo } from './context';
import { describeError, EXIT_USAGE } from './errors';
import { ActionFailure } from './run';
import { machinesCommand } from './commands/machines';
import { eventsCommand } from './commands/events';
import { logsCommand } from './commands/logs';
import { usageCommand } from './commands/usage';
import { imagesCommand } from './commands/images';

export function buildProgram(io: Io = processIo): Command {
  const program = new Command('torpor')
    .description('control plane CLI for Torpor microVMs that suspend and resume')
    .option('--json', 'print exactly one JSON value on stdout (JSON lines for streams)')
    .option('--scheduler <host:port>', `scheduler address (env TORPOR_SCHEDULER, default ${DEFAULT_SCHEDULER})`)
    .option('--nats <url>', `NATS server (env NATS_URL, default ${DEFAULT_NATS})`)
    .option('--usage-url <url>', `usage meter HTTP address (env TORPOR_USAGE_URL, default ${DEFAULT_USAGE_URL})`)
    .addCommand(machinesCommand())
    .addCommand(eventsCommand())
    .addCommand(logsCommand())
    .addCommand(usageCommand())
    .addCommand(imagesCommand());
  configureAll(program, io);
  return program;
}

/** addCommand does not pass settings down, so apply them to every command. */
function configureAll(cmd: Command, io: Io): void {
  cmd.exitOverride().configureOutput({ writeOut: io.out, writeErr: io.err });
  cmd.showHelpAfterError('(add --help for usage)');
  for (const sub of cmd.commands) configureAll(sub, io);
}

/** Runs the CLI; resolves with the process exit code. */
export async function run(argv: string[], io: Io = processIo): Promise<number> {
  const program = buildProgram(io);
  const wantsJson = argv.includes('--json');
  try {
    await program.parseAsync(argv);
    return 0;
  } catch (err) {
    if (err instanceof CommanderError) {
      if (err.code === 'commander.helpDisplayed' || err.code === 'commander.version') return 0;
      // commander has already written its message (or the help) to stderr.
      const message = err.code === 'commander.help' ? 'a command is missing (see the help above, or --help)' : err.message.replace(/^error: /, '');
      if (err.code === 'commander.help') io.err(`error: ${message}\n`);
      if (wantsJson) io.out(JSON.stringify({ error: { code: 'USAGE', message } }) + '\n');
      return EXIT_USAGE;
    }
    const cause = err instanceof ActionFailure ? err.cause : err;
    const json = err instanceof ActionFailure ? err.json : wantsJson;
    const f = describeError(cause, err instanceof ActionFailure ? err.schedulerAddress : undefined);
    io.err(f.text + '\n');
    if (json) io.out(JSON.stringify(f.json) + '\n');
    return f.exitCode;
  }
}
