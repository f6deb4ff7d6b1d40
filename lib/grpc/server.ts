// A gRPC server with what every Torpor service serves: reflection (from the real
// descriptor set built by scripts/gen-proto.sh, so grpcurl / buf curl resolve every
// type), the standard health service, request ids, logs, latency metrics, and the
// domain-error-to-status mapping.
import fs from 'node:fs';
import path from 'node:path';
import {
  handleUnaryCall,
  Metadata,
  sendUnaryData,
  Server,
  ServerCredentials,
  ServerUnaryCall,
  ServiceDefinition,
  status,
  UntypedServiceImplementation,
} from '@grpc/grpc-js';
import { ReflectionService } from '@grpc/reflection';
import { HealthImplementation } from 'grpc-health-check';
import { FileDescriptorProto, FileDescriptorSet } from 'protobufjs/ext/descriptor';
import { currentRequestId, Logger, REQUEST_ID_HEADER, withRequestId } from '../log';
import { Metrics } from '../metrics';
import { toStatus } from './status';

export interface RpcContext {
  requestId: string;
  /** Aborts when the caller cancels or its deadline passes. */
  signal: AbortSignal;
  metadata: Metadata;
}

/** A service implemented with async functions instead of callbacks. */
export type AsyncService<S> = {
  // (skips the string index signature of grpc-js' UntypedServiceImplementation)
  [K in keyof S as string extends K ? never : K]: S[K] extends handleUnaryCall<infer Req, infer Res> ? (req: Req, ctx: RpcContext) => Promise<Res> : never;
};

export interface ServiceBinding {
  definition: ServiceDefinition;
  /** Full name, e.g. "torpor.machines.v1.Machines" (for health). */
  name: string;
  impl: Record<string, (req: any, ctx: RpcContext) => Promise<any>>;
}

export function bind<S>(name: string, definition: ServiceDefinition, impl: AsyncService<S>): ServiceBinding {
  return { name, definition, impl: impl as ServiceBinding['impl'] };
}

const DESCRIPTORS = path.resolve(__dirname, '..', '..', '..', 'gen', 'descriptors.binpb');

function reflectionPackage(): object {
  const set = FileDescriptorSet.decode(fs.readFileSync(DESCRIPTORS)) as unknown as { file: unknown[] };
  const files = set.file.map((f) => FileDescriptorProto.encode(f as never).finish());
  // @grpc/reflection only reads fileDescriptorProtos from each entry.
  return { all: { fileDescriptorProtos: files } };
}

function wrapUnary(
  method: string,
  fn: (req: unknown, ctx: RpcContext) => Promise<unknown>,
  log: Logger,
  metrics: Metrics,
): handleUnaryCall<unknown, unknown> {
  return (call: ServerUnaryCall<unknown, unknown>, callback: sendUnaryData<unknown>) => {
    const incoming = call.metadata.get(REQUEST_ID_HEADER)[0];
    withRequestId(typeof incoming === 'string' ? incoming : undefined, () => {
      const started = process.hrtime.bigint();
      const abort = new AbortController();
      call.on('cancelled', () => abort.abort(new Error('cancelled by the caller')));
      const ctx: RpcContext = { requestId: currentRequestId()!, signal: abort.signal, metadata: call.metadata };
      const done = (code: status) => {
        const secs = Number(process.hrtime.bigint() - started) / 1e9;
        metrics.rpcDuration.observe({ method, code: status[code] }, secs);
        log.info({ method, code: status[code], ms: Math.round(secs * 1000) }, 'rpc');
      };
      fn(call.request, ctx).then(
        (res) => {
          done(status.OK);
          callback(null, res);
        },
        (err) => {
          const { status: st, internal } = toStatus(err);
          if (internal) log.error({ err, method }, 'rpc failed');
          else log.info({ method, code: status[st.code], msg: st.details }, 'rpc refused');
          done(st.code);
          callback(st);
        },
      );
    });
  };
}

export interface GrpcServerHandle {
  port: number;
  health: HealthImplementation;
  server: Server;
  close(): Promise<void>;
}

export async function startGrpcServer(opts: {
  host: string;
  port: number;
  services: ServiceBinding[];
  log: Logger;
  metrics: Metrics;
}): Promise<GrpcServerHandle> {
  const server = new Server();
  for (const svc of opts.services) {
    const impl: UntypedServiceImplementation = {};
    for (const [key, def] of Object.entries(svc.definition)) {
      const fn = svc.impl[key];
      if (!fn) throw new Error(`${svc.name}: no handler for ${key}`);
      impl[key] = wrapUnary(def.path, fn.bind(svc.impl), opts.log, opts.metrics);
    }
    server.addService(svc.definition, impl);
  }
  const health = new HealthImplementation({ '': 'SERVING', ...Object.fromEntries(opts.services.map((s) => [s.name, 'SERVING'])) });
  health.addToServer(server);
  new ReflectionService(reflectionPackage() as never, {
    services: [...opts.services.map((s) => s.name), 'grpc.health.v1.Health'],
  }).addToServer(server);
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync(`${opts.host}:${opts.port}`, ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))),
  );
  return {
    port,
    health,
    server,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of opts.services) health.setStatus(s.name, 'NOT_SERVING');
        const force = setTimeout(() => server.forceShutdown(), 5000);
        server.tryShutdown(() => {
          clearTimeout(force);
          resolve();
        });
      }),
  };
}
