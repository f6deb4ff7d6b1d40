// Spreads requests across an app's started machines: fewest requests in flight,
// round robin among equals.

export class Balancer {
  private turn = 0;

  constructor(private readonly inFlight: (machineId: string) => number) {}

  pick<M extends { id: string }>(machines: M[]): M | undefined {
    if (!machines.length) return undefined;
    const least = Math.min(...machines.map((m) => this.inFlight(m.id)));
    const best = machines.filter((m) => this.inFlight(m.id) === least);
    return best[this.turn++ % best.length];
  }
}
