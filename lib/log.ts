// pino JSON logs; the request id of the RPC being served rides in AsyncLocalStorage
// so every log line and every outgoing call carries it across service hops.
import { AsyncLocalStorage } from 'node:async_hooks';
import { randomUUID } from 'node:crypto';
import pino from 'pino';

export type Logger = pino.Logger;

export const REQUEST_ID_HEADER = 'x-request-id';

const requestContext = new AsyncLocalStorage<{ requestId: string; startedAt: number }>();

/** Wall-clock milliseconds with sub-millisecond precision. */
export const preciseNow = () => performance.timeOrigin + performance.now();

export function createLogger(service: string, level = process.env.LOG_LEVEL ?? 'info'): Logger {
  return pino({
    level,
    base: { service, pid: process.pid },
    mixin: () => {
      const ctx = requestContext.getStore();
      return ctx ? { request_id: ctx.requestId } : {};
    },
  });
}

export function currentRequestId(): string | undefined {
  return requestContext.getStore()?.requestId;
}

/** When the RPC being served arrived (for the control-plane overhead measure). */
export function currentRequestStartedAt(): number | undefined {
  return requestContext.getStore()?.startedAt;
}

export function withRequestId<T>(requestId: string | undefined, fn: () => T): T {
  return requestContext.run({ requestId: requestId || randomUUID(), startedAt: preciseNow() }, fn);
}
