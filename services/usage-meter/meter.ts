// The meter: accumulator + store. One event in, committed to SQLite before the caller acks.
import { Outcome, UsageAccumulator, UsageReport } from './accumulator';
import { machineEventFromJson } from './event-json';
import { UsageStore } from './store';

export class UsageMeter {
  private acc: UsageAccumulator;

  constructor(private readonly store: UsageStore) {
    this.acc = new UsageAccumulator(store.load());
  }

  /**
   * Applies one event payload and commits the result. Throws BadEventError for a
   * payload that is not a machine event (the caller terminates it), or the store's
   * error (the caller leaves it unacked for redelivery; memory is reloaded from disk).
   */
  handle(payload: string): Outcome {
    const ev = machineEventFromJson(payload);
    const { outcome, account } = this.acc.apply(ev);
    if (account) {
      try {
        this.store.save(account);
      } catch (err) {
        this.acc = new UsageAccumulator(this.store.load());
        throw err;
      }
    }
    return outcome;
  }

  report(nowMs = Date.now()): UsageReport {
    return this.acc.report(nowMs);
  }
}
