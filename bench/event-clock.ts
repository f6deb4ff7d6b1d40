// Times when lifecycle events reach NATS, as seen by a plain subscriber on machine.>.
import { connect } from '@nats-io/transport-node';
import type { NatsConnection } from '@nats-io/nats-core';

export class EventClock {
  private arrivals = new Map<string, { at: number; json: Record<string, unknown> }[]>();
  private waiters: (() => void)[] = [];

  private constructor(private readonly nc: NatsConnection) {}

  static async start(url: string): Promise<EventClock> {
    const nc = await connect({ servers: url });
    const clock = new EventClock(nc);
    const sub = nc.subscribe('machine.>');
    (async () => {
      for await (const m of sub) {
        const at = performance.now();
        const json = JSON.parse(m.string()) as Record<string, unknown>;
        const key = `${json.machineId}/${json.type}`;
        const list = clock.arrivals.get(key) ?? [];
        list.push({ at, json });
        clock.arrivals.set(key, list);
        for (const w of clock.waiters.splice(0)) w();
      }
    })();
    await nc.flush();
    return clock;
  }

  /** The first `type` event of a machine that arrived after `since` (performance.now()). */
  async next(machineId: string, type: string, since: number, timeoutMs = 60_000): Promise<{ at: number; json: Record<string, unknown> }> {
    const deadline = performance.now() + timeoutMs;
    for (;;) {
      const hit = (this.arrivals.get(`${machineId}/${type}`) ?? []).find((a) => a.at >= since);
      if (hit) return hit;
      if (performance.now() > deadline) throw new Error(`no ${type} event for ${machineId}`);
      await new Promise<void>((r) => {
        this.waiters.push(r);
        setTimeout(r, 200);
      });
    }
  }

  close(): Promise<void> {
    return this.nc.close();
  }
}
