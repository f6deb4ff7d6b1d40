// Reads the scheduler's control-plane overhead summaries from its /metrics.
import type { Measure } from './stats';

function parse(text: string, name: string, label = ''): Measure | undefined {
  const q = (quantile: string) => {
    const re = new RegExp(`^${name}\\{quantile="${quantile}"${label ? `,op="${label}"` : ''}[^}]*\\} (\\S+)$`, 'm');
    const m = re.exec(text);
    return m ? Math.round(Number(m[1]) * 10) / 10 : NaN;
  };
  const count = new RegExp(`^${name}_count\\{${label ? `op="${label}"` : ''}[^}]*\\} (\\S+)$`, 'm').exec(text);
  if (!count) return undefined;
  return { median: q('0.5'), min: q('0'), max: q('1'), runs: Number(count[1]) };
}

export async function controlPlaneOverhead(metricsPort: number): Promise<{ all: Measure; byOp: Record<string, Measure> }> {
  const text = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
  const byOp: Record<string, Measure> = {};
  for (const op of ['cold_start', 'resume', 'suspend', 'stop', 'destroy']) {
    const m = parse(text, 'torpor_control_plane_overhead_ms', op);
    if (m) byOp[op] = m;
  }
  const all = parse(text, 'torpor_control_plane_overhead_all_ops_ms');
  if (!all) throw new Error('the scheduler has no control-plane overhead samples');
  return { all, byOp };
}
