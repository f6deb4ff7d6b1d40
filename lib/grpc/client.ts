// Promise wrappers over ts-proto grpc-js clients: the request id of the RPC being
// served travels on every outgoing call; errors come back as domain errors.
import { CallOptions, ChannelCredentials, Client, credentials, Metadata, ServiceError } from '@grpc/grpc-js';
import { currentRequestId, REQUEST_ID_HEADER } from '../log';
import { fromServiceError } from './status';

type Callback<Res> = (err: ServiceError | null, res: Res) => void;
type UnaryMethod<Req, Res> = (req: Req, metadata: Metadata, options: Partial<CallOptions>, cb: Callback<Res>) => unknown;

/** The async form of a ts-proto client: every unary method returns a promise. */
export type AsyncClient<C> = {
  [K in keyof C as C[K] extends UnaryMethod<any, any> ? K : never]: C[K] extends UnaryMethod<infer Req, infer Res>
    ? (req: Req, opts?: { timeoutMs?: number; signal?: AbortSignal }) => Promise<Res>
    : never;
} & { close(): void; raw: C };

export function asyncClient<C extends Client>(
  Ctor: new (address: string, creds: ChannelCredentials, options?: object) => C,
  address: string,
  defaultTimeoutMs = 30_000,
): AsyncClient<C> {
  const raw = new Ctor(address, credentials.createInsecure(), {
    'grpc.keepalive_time_ms': 30_000,
  });
  const proxy = new Proxy({} as AsyncClient<C>, {
    get(_t, prop: string) {
      if (prop === 'close') return () => raw.close();
      if (prop === 'raw') return raw;
      const method = (raw as unknown as Record<string, UnaryMethod<unknown, unknown>>)[prop];
      if (typeof method !== 'function') return undefined;
      return (req: unknown, opts: { timeoutMs?: number; signal?: AbortSignal } = {}) =>
        new Promise((resolve, reject) => {
          const md = new Metadata();
          const rid = currentRequestId();
          if (rid) md.set(REQUEST_ID_HEADER, rid);
          const deadline = new Date(Date.now() + (opts.timeoutMs ?? defaultTimeoutMs));
          const call = method.call(raw, req, md, { deadline }, (err, res) => (err ? reject(fromServiceError(err)) : resolve(res))) as {
            cancel(): void;
          };
          opts.signal?.addEventListener('abort', () => call.cancel(), { once: true });
        });
    },
  });
  return proxy;
}
