// Sends one request to a machine's guest with node's http, streaming both bodies.
// A guest that refuses the connection right after a wake-up is tried again briefly
// (only for requests without a body, which can be replayed).
import http from 'node:http';

const HOP_BY_HOP = ['connection', 'keep-alive', 'proxy-authenticate', 'proxy-authorization', 'te', 'trailer', 'transfer-encoding', 'upgrade'];

/**
 * One connection pool per guest: a guest serves one connection at a time behind
 * QEMU's user network, and a burst of connections makes it drop SYNs (seconds of
 * TCP back-off), so requests beyond `maxSockets` wait here instead.
 */
export class UpstreamAgents {
  private readonly agents = new Map<string, http.Agent>();

  constructor(private readonly maxSockets: number) {}

  get(url: string): http.Agent {
    let a = this.agents.get(url);
    if (!a) {
      a = new http.Agent({ keepAlive: false, maxSockets: this.maxSockets });
      this.agents.set(url, a);
    }
    return a;
  }

  close(): void {
    for (const a of this.agents.values()) a.destroy();
    this.agents.clear();
  }
}

export interface ForwardTarget {
  machineId: string;
  url: string;
}

export interface ForwardResult {
  status: number;
  /** Set when the guest could not be reached (the client got a 502). */
  error?: string;
}

export function forward(
  req: http.IncomingMessage,
  res: http.ServerResponse,
  target: ForwardTarget,
  path: string,
  agent: http.Agent | false,
  extraResponseHeaders: Record<string, string> = {},
  retryMs = 1000,
): Promise<ForwardResult> {
  const base = new URL(target.url);
  const headers: http.OutgoingHttpHeaders = { ...req.headers };
  for (const h of HOP_BY_HOP) delete headers[h];
  const prior = req.headers['x-forwarded-for'];
  headers['x-forwarded-for'] = (prior ? `${prior}, ` : '') + (req.socket.remoteAddress ?? '');
  headers['x-forwarded-host'] = req.headers.host ?? '';
  headers['x-forwarded-proto'] = 'http';
  const hasBody = req.headers['content-length'] !== undefined ? req.headers['content-length'] !== '0' : req.headers['transfer-encoding'] !== undefined;
  const giveUpAt = Date.now() + retryMs;

  return new Promise<ForwardResult>((resolve) => {
    const attempt = () => {
      const up = http.request(
        { host: base.hostname, port: base.port || 80, method: req.method, path, headers, agent },
        (upRes) => {
          const out: http.OutgoingHttpHeaders = { ...upRes.headers, ...extraResponseHeaders };
          for (const h of HOP_BY_HOP) if (h !== 'transfer-encoding') delete out[h];
          res.writeHead(upRes.statusCode ?? 502, out);
          upRes.pipe(res);
          upRes.on('error', () => res.destroy());
          res.on('close', () => {
            if (!upRes.complete) upRes.destroy();
            resolve({ status: upRes.statusCode ?? 502 });
          });
        },
      );
      up.on('error', (err: NodeJS.ErrnoException) => {
        if (res.headersSent) {
          res.destroy();
          resolve({ status: 502, error: err.message });
          return;
        }
        if (!hasBody && (err.code === 'ECONNREFUSED' || err.code === 'ECONNRESET') && Date.now() < giveUpAt && !req.destroyed) {
          setTimeout(attempt, 25);
          return;
        }
        const reason = `machine ${target.machineId} at ${target.url} did not answer: ${err.code ?? err.message}`;
        res.writeHead(502, { 'content-type': 'application/json', ...extraResponseHeaders });
        res.end(JSON.stringify({ error: 'bad gateway', reason }) + '\n');
        resolve({ status: 502, error: reason });
      });
      req.on('aborted', () => up.destroy());
      if (hasBody) req.pipe(up);
      else up.end();
    };
    attempt();
  });
}
