// The control plane's own cost per lifecycle operation: from the RPC arriving at the
// scheduler to the operation's final event being acknowledged by JetStream, minus the
// time the host agent spent (the event's host_ms). Served on /metrics as summaries.
import { Summary } from 'prom-client';
import type { Metrics } from '../../../lib/metrics';
import type { PublishedEvent } from '../../../lib/outbox';

/** Events that end an operation, and the operation they end. */
function operationOf(type: string, json: { resumed?: boolean; fromState?: string }): string | undefined {
  switch (type) {
    case 'machine.started':
      return json.resumed ? 'resume' : 'cold_start';
    case 'machine.suspended':
      return 'suspend';
    case 'machine.stopped':
      return 'stop';
    case 'machine.destroyed':
      return 'destroy';
    default:
      return undefined;
  }
}

export class OverheadMeter {
  private readonly byOp: Summary<'op'>;
  private readonly all: Summary;

  constructor(metrics: Metrics) {
    const common = { percentiles: [0, 0.5, 0.9, 1], maxAgeSeconds: 3600, ageBuckets: 6, registers: [metrics.registry] };
    this.byOp = new Summary({ name: 'torpor_control_plane_overhead_ms', help: 'RPC arrival to final event acknowledged by JetStream, minus host agent time, by operation', labelNames: ['op'], ...common });
    this.all = new Summary({ name: 'torpor_control_plane_overhead_all_ops_ms', help: 'the same over every operation', ...common });
  }

  observe(e: PublishedEvent): void {
    if (e.requestedAt === null) return;
    const json = JSON.parse(e.payload) as { type: string; hostMs?: number; resumed?: boolean };
    const op = operationOf(json.type, json);
    if (!op) return;
    const ms = e.publishedAt - e.requestedAt - (json.hostMs ?? 0);
    this.byOp.observe({ op }, ms);
    this.all.observe(ms);
  }
}
