// Human-readable output: compact tables, key: value blocks, one-line events.
import { Machine, MachineEventRecord } from '../gen/torpor/machines/v1/machines';
import { stateName } from './states';

/** Left-aligned columns separated by two spaces; empty cells show "-". */
export function table(headers: string[], rows: string[][]): string {
  const cells = [headers, ...rows.map((r) => r.map((c) => (c === '' ? '-' : c)))];
  const widths = headers.map((_, i) => Math.max(...cells.map((r) => (r[i] ?? '').length)));
  return cells.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]))).join('  ')).join('\n') + '\n';
}

/** "key: value" lines with the values aligned; undefined/empty values are left out. */
export function keyValues(pairs: [string, string | number | undefined][]): string {
  const shown = pairs.filter(([, v]) => v !== undefined && v !== '');
  const width = Math.max(0, ...shown.map(([k]) => k.length)) + 1;
  return shown.map(([k, v]) => `${(k + ':').padEnd(width)} ${v}`).join('\n') + '\n';
}

export function machineTable(machines: Machine[]): string {
  if (machines.length === 0) return 'no machines\n';
  return table(
    ['ID', 'NAME', 'APP', 'REGION', 'STATE', 'HOST', 'IMAGE', 'MEMORY', 'URL'],
    machines.map((m) => [
      m.id,
      m.name,
      m.app,
      m.region,
      stateName(m.state),
      m.hostId,
      m.config?.image ?? '',
      m.config?.guest ? `${m.config.guest.memoryMb}MB` : '',
      m.url,
    ]),
  );
}

/** How the last start went, in words. */
export function lastStartText(m: Machine): string | undefined {
  const s = m.lastStart;
  if (!s) return undefined;
  const how = s.resumed ? 'resumed from snapshot' : 'cold start';
  const why = !s.resumed && s.reason ? ` (${s.reason})` : '';
  return `${how}${why}, host ${s.hostMs} ms, total ${s.totalMs} ms`;
}

export function machineStatus(m: Machine): string {
  const c = m.config;
  const g = c?.guest;
  const svc = c?.services[0];
  const env = c ? Object.keys(c.env).sort() : [];
  return keyValues([
    ['id', m.id],
    ['name', m.name],
    ['app', m.app],
    ['state', stateName(m.state)],
    ['url', m.url],
    ['region', m.region],
    ['host', m.hostId],
    ['image', c?.image],
    ['guest', g ? `${g.cpus} cpu ${g.cpuKind}, ${g.memoryMb} MB${g.gpus ? `, ${g.gpus} gpu` : ''}` : undefined],
    ['swap_mb', c?.swapSizeMb || undefined],
    ['schedule', c?.schedule],
    ['service', svc ? `port ${svc.internalPort}, autostart ${svc.autostart ? 'on' : 'off'}, autostop ${autostopWord(svc.autostop)}, min running ${svc.minMachinesRunning}` : undefined],
    ['env', env.length ? env.join(', ') : undefined],
    ['instance_id', m.instanceId],
    ['generation', m.generation],
    ['platform_version', m.platformVersion],
    ['snapshot_id', m.snapshotId],
    ['last_start', lastStartText(m)],
    ['created_at', m.createdAt?.toISOString()],
    ['updated_at', m.updatedAt?.toISOString()],
  ]);
}

function autostopWord(a: number): string {
  return ['off', 'off', 'stop', 'suspend'][a] ?? String(a);
}

/** The fields of an event JSON (proto3 JSON of torpor.events.v1.Event) that the line shows. */
export interface EventLike {
  time?: string;
  type?: string;
  fromState?: string;
  toState?: string;
  sequence?: string | number;
  reason?: string;
  resumed?: boolean;
  snapshotId?: string;
  hostMs?: number;
  totalMs?: number;
}

/** "2024-05-01T10:00:00.000Z  machine.started.app.id  #4  suspended→started  resumed". */
export function eventLine(subject: string, ev: EventLike): string {
  const parts = [ev.time ?? '-', subject];
  if (ev.sequence !== undefined) parts.push(`#${ev.sequence}`);
  if (ev.fromState || ev.toState) parts.push(`${ev.fromState || '?'}→${ev.toState || '?'}`);
  if (subject.startsWith('machine.started')) {
    parts.push(ev.resumed ? 'resumed' : 'cold');
    if (ev.totalMs) parts.push(`${ev.totalMs}ms`);
  }
  if (ev.snapshotId) parts.push(`snapshot=${ev.snapshotId}`);
  if (ev.reason) parts.push(`reason: ${ev.reason}`);
  return parts.join('  ');
}

export function eventRecordLine(r: MachineEventRecord): string {
  let ev: EventLike = {};
  try {
    ev = JSON.parse(r.json) as EventLike;
  } catch {
    /* shown without details */
  }
  return eventLine(r.subject, { ...ev, sequence: r.sequence }) + (r.published ? '' : '  (not yet published)');
}

/** Seconds as "1h02m03s" / "4m05s" / "12.3s". */
export function duration(seconds: number): string {
  if (seconds < 60) return `${seconds.toFixed(1)}s`;
  const s = Math.floor(seconds);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const r = s % 60;
  const mm = String(m).padStart(h ? 2 : 1, '0');
  return `${h ? `${h}h` : ''}${mm}m${String(r).padStart(2, '0')}s`;
}
