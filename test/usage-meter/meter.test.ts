// The meter with its SQLite store: commits survive a restart, redeliveries after it are harmless.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { UsageMeter } from '../../services/usage-meter/meter';
import { UsageStore } from '../../services/usage-meter/store';
import { BadEventError } from '../../services/usage-meter/event-json';

const T0 = Date.parse('2025-01-01T00:00:00Z');

function eventJson(machineId: string, sequence: number, tSeconds: number, from: string, to: string, app = 'web'): string {
  return JSON.stringify({
    id: `${machineId}-${sequence}`,
    type: `machine.${to}`,
    time: new Date(T0 + tSeconds * 1000).toISOString(),
    app,
    machineId,
    fromState: from,
    toState: to,
    sequence: String(sequence),
  });
}

describe('usage meter: SQLite accounts', () => {
  let dir: string;
  beforeEach(() => (dir = fs.mkdtempSync(path.join(os.tmpdir(), 'torpor-usage-'))));
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('N4: a restarted meter continues where it stopped and does not double-count redeliveries', () => {
    const file = path.join(dir, 'usage.sqlite');
    const evs = [
      eventJson('m1', 1, 0, '', 'created'),
      eventJson('m1', 2, 0, 'created', 'starting'),
      eventJson('m1', 3, 4, 'starting', 'started'),
      eventJson('m1', 4, 40, 'started', 'suspending'),
      eventJson('m1', 5, 41, 'suspending', 'suspended'),
    ];
    let store = new UsageStore(file);
    let meter = new UsageMeter(store);
    evs.slice(0, 3).forEach((e) => assert.equal(meter.handle(e), 'applied'));
    store.close();

    store = new UsageStore(file);
    meter = new UsageMeter(store);
    // JetStream redelivers the unacked tail and maybe some acked ones too.
    assert.deepEqual(evs.map((e) => meter.handle(e)), ['duplicate', 'duplicate', 'duplicate', 'applied', 'applied']);
    const r = meter.report(T0 + 101_000).machines[0];
    assert.deepEqual(r.seconds, { running: 41, stopped: 60 });
    store.close();
  });

  it('rejects a payload that is not a machine event without touching the store', () => {
    const store = new UsageStore(path.join(dir, 'u.sqlite'));
    const meter = new UsageMeter(store);
    assert.throws(() => meter.handle('{"nope":1}'), BadEventError);
    assert.equal(store.load().length, 0);
    store.close();
  });
});
