// Domain errors. Domain code throws these; lib/grpc/status.ts is the one place
// that maps them to gRPC status codes and back.

export type ErrorKind =
  | 'invalid_argument'
  | 'not_found'
  | 'already_exists'
  | 'failed_precondition'
  | 'resource_exhausted'
  | 'deadline_exceeded'
  | 'unavailable'
  | 'aborted'
  | 'cancelled'
  | 'internal';

export class TorporError extends Error {
  constructor(
    readonly kind: ErrorKind,
    message: string,
  ) {
    super(message);
    this.name = 'TorporError';
  }
}

export const invalidArgument = (msg: string) => new TorporError('invalid_argument', msg);
export const notFound = (msg: string) => new TorporError('not_found', msg);
export const alreadyExists = (msg: string) => new TorporError('already_exists', msg);
export const failedPrecondition = (msg: string) => new TorporError('failed_precondition', msg);
export const resourceExhausted = (msg: string) => new TorporError('resource_exhausted', msg);
export const deadlineExceeded = (msg: string) => new TorporError('deadline_exceeded', msg);
export const unavailable = (msg: string) => new TorporError('unavailable', msg);

export function isKind(err: unknown, kind: ErrorKind): err is TorporError {
  return err instanceof TorporError && err.kind === kind;
}
