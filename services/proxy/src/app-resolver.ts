// Which app a request is for: Host header "<app>.localhost[:port]", or a path prefix
// "/apps/<app>/..." for tools that cannot set the header (the prefix is stripped).

export interface Resolved {
  app: string;
  /** Path and query to send to the guest. */
  path: string;
}

const APP_RE = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/;

export function resolveApp(host: string | undefined, url: string | undefined): Resolved | undefined {
  const path = url && url.startsWith('/') ? url : '/';
  const hostname = (host ?? '').toLowerCase().replace(/:\d+$/, '');
  if (hostname.endsWith('.localhost')) {
    const app = hostname.slice(0, -'.localhost'.length);
    if (APP_RE.test(app)) return { app, path };
  }
  const m = /^\/apps\/([^/?#]+)(.*)$/.exec(path);
  if (m && APP_RE.test(m[1])) {
    let rest = m[2];
    if (!rest.startsWith('/')) rest = '/' + rest; // "/apps/x?q" -> "/?q", "/apps/x" -> "/"
    return { app: m[1], path: rest };
  }
  return undefined;
}
