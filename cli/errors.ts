// Errors the CLI shows, and the exit code each one gets:
// 1 the request was refused (or failed on the server), 2 bad usage, 3 the service is unreachable.
import { TorporError } from '../lib/errors';

export const EXIT_REFUSED = 1;
export const EXIT_USAGE = 2;
export const EXIT_UNREACHABLE = 3;

/** A command line the CLI cannot act on (bad flag value, unknown state, ...). */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

/** A service the CLI needs (scheduler, NATS, usage meter) did not answer. */
export class UnreachableError extends Error {
  constructor(
    message: string,
    readonly hint: string,
  ) {
    super(message);
    this.name = 'UnreachableError';
  }
}

export const SCHEDULER_HINT = 'is the mesh running? start it with `npm start`, or set TORPOR_SCHEDULER=host:port';

/** grpc-js reports a refused or dropped connection as UNAVAILABLE with these details. */
const CONNECTION_FAILURE = /No connection established|ECONNREFUSED|ECONNRESET|EHOSTUNREACH|ENOTFOUND|Connection dropped|failed to connect/i;

export function isUnreachable(err: unknown): boolean {
  return err instanceof TorporError && err.kind === 'unavailable' && CONNECTION_FAILURE.test(err.message);
}

/** "connect ECONNREFUSED 127.0.0.1:7100" out of grpc-js's longer text. */
export function connectionReason(details: string): string {
  const m = /(connect E[A-Z]+ [^\s.]+(?:\.[^\s.]+)*(?::\d+)?)/.exec(details) ?? /Last error: (?:Error: )?([^.]+)/.exec(details);
  return m ? m[1].trim() : details.trim();
}

export interface Failure {
  exitCode: number;
  /** Lines for stderr, starting with "error: ". */
  text: string;
  /** The --json form, for stdout. */
  json: { error: { code: string; message: string; hint?: string } };
}

/** Maps anything a command throws to what the user sees and the exit code. */
export function describeError(err: unknown, schedulerAddress?: string): Failure {
  if (err instanceof UsageError) {
    return failure(EXIT_USAGE, 'USAGE', err.message);
  }
  if (err instanceof UnreachableError) {
    return failure(EXIT_UNREACHABLE, 'UNAVAILABLE', err.message, err.hint);
  }
  if (isUnreachable(err)) {
    const where = schedulerAddress ? ` at ${schedulerAddress}` : '';
    return failure(EXIT_UNREACHABLE, 'UNAVAILABLE', `cannot reach the scheduler${where} (${connectionReason((err as Error).message)})`, SCHEDULER_HINT);
  }
  if (err instanceof TorporError) {
    const code = err.kind.toUpperCase();
    return failure(EXIT_REFUSED, code, `${err.message} (${code})`);
  }
  const message = err instanceof Error ? err.message : String(err);
  return failure(EXIT_REFUSED, 'FAILED', message);
}

function failure(exitCode: number, code: string, message: string, hint?: string): Failure {
  const text = `error: ${message}` + (hint ? `\nhint: ${hint}` : '');
  return { exitCode, text, json: { error: { code, message, ...(hint ? { hint } : {}) } } };
}
