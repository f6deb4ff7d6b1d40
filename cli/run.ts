// Glue between commander actions and the CLI's error handling: every action gets
// a Context, its clients are closed afterwards, and its errors carry the context.
import type { Command } from 'commander';
import { Context } from './context';

/** An error thrown by an action, with what the error report needs to know about the run. */
export class ActionFailure extends Error {
  constructor(
    override readonly cause: unknown,
    readonly json: boolean,
    readonly schedulerAddress: string,
  ) {
    super(cause instanceof Error ? cause.message : String(cause));
  }
}

/** The Context for a command; tests replace it to inject fakes. */
export let makeContext: (cmd: Command) => Context = (cmd) => Context.of(cmd);

export function setContextFactory(f: (cmd: Command) => Context): void {
  makeContext = f;
}

export function action<A extends unknown[]>(fn: (ctx: Context, ...args: A) => Promise<void>) {
  return async (...args: unknown[]): Promise<void> => {
    const cmd = args[args.length - 1] as Command;
    const ctx = makeContext(cmd);
    try {
      await fn(ctx, ...(args.slice(0, -1) as A));
    } catch (err) {
      throw new ActionFailure(err, ctx.json, ctx.schedulerAddress);
    } finally {
      ctx.close();
    }
  };
}
