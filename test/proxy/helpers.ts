// HTTP through the edge proxy, for the proxy's end-to-end tests and its benchmark.
import http from 'node:http';

export interface ProxyResponse {
  status: number;
  body: string;
  headers: http.IncomingHttpHeaders;
  /** Time to the first byte of the response (status line), in ms. */
  ttfbMs: number;
  totalMs: number;
}

/** GET proxyUrl + path, with `Host: <app>.localhost` when app is given. */
export function proxyGet(proxyUrl: string, path: string, app?: string, timeoutMs = 30_000): Promise<ProxyResponse> {
  const u = new URL(proxyUrl);
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const req = http.request(
      { host: u.hostname, port: u.port, path, method: 'GET', agent: false, headers: app ? { host: `${app}.localhost:${u.port}` } : {}, timeout: timeoutMs },
      (res) => {
        const ttfbMs = performance.now() - t0;
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (d) => (body += d));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body, headers: res.headers, ttfbMs, totalMs: performance.now() - t0 }));
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error(`GET ${path} via the proxy: no answer within ${timeoutMs} ms`)));
    req.on('error', reject);
    req.end();
  });
}
