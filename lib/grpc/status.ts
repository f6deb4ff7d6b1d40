// The one place that maps domain errors to gRPC status codes, both ways.
import { Metadata, ServiceError, status } from '@grpc/grpc-js';
import { ErrorKind, TorporError } from '../errors';

const toCode: Record<ErrorKind, status> = {
  invalid_argument: status.INVALID_ARGUMENT,
  not_found: status.NOT_FOUND,
  already_exists: status.ALREADY_EXISTS,
  failed_precondition: status.FAILED_PRECONDITION,
  resource_exhausted: status.RESOURCE_EXHAUSTED,
  deadline_exceeded: status.DEADLINE_EXCEEDED,
  unavailable: status.UNAVAILABLE,
  aborted: status.ABORTED,
  cancelled: status.CANCELLED,
  internal: status.INTERNAL,
};

const fromCode = new Map<number, ErrorKind>(
  Object.entries(toCode).map(([kind, code]) => [code, kind as ErrorKind]),
);

export interface StatusObject {
  code: status;
  details: string;
  metadata?: Metadata;
}

/**
 * Turns anything thrown by a handler into a status. Unknown errors become
 * INTERNAL with a generic message: their detail goes to the log, never to the caller.
 */
export function toStatus(err: unknown): { status: StatusObject; internal: boolean } {
  if (err instanceof TorporError) {
    return { status: { code: toCode[err.kind], details: err.message }, internal: err.kind === 'internal' };
  }
  if (isServiceError(err)) {
    // An error from a downstream service we did not translate: keep its code.
    return { status: { code: err.code, details: err.details }, internal: false };
  }
  return { status: { code: status.INTERNAL, details: 'internal error (see the service log)' }, internal: true };
}

/** Turns a gRPC client error into a domain error, so callers branch on kinds, not codes. */
export function fromServiceError(err: unknown): TorporError {
  if (err instanceof TorporError) return err;
  if (isServiceError(err)) {
    const kind = fromCode.get(err.code) ?? (err.code === status.UNKNOWN ? 'internal' : 'unavailable');
    return new TorporError(kind, err.details || err.message);
  }
  return new TorporError('internal', err instanceof Error ? err.message : String(err));
}

export function isServiceError(err: unknown): err is ServiceError {
  return typeof err === 'object' && err !== null && 'code' in err && 'details' in err && typeof (err as ServiceError).code === 'number';
}
