// Unit tests of the usage accumulator (N4): events in, seconds by billing state out.
import assert from 'node:assert/strict';
import { billingStateOf, MachineEvent, UsageAccumulator } from '../../services/usage-meter/accumulator';
import { machineEventFromJson, BadEventError } from '../../services/usage-meter/event-json';

const T0 = Date.parse('2025-01-01T00:00:00Z');
const s = (seconds: number) => T0 + seconds * 1000;

/** Builds a machine's event history: [timeSeconds, from, to] with sequences from 1. */
function history(id: string, steps: [number, string, string][], app = 'web'): MachineEvent[] {
  return steps.map(([t, from, to], i) => ({ machineId: id, app, sequence: i + 1, timeMs: s(t), fromState: from, toState: to }));
}

function row(acc: UsageAccumulator, id: string, nowSeconds: number) {
  const r = acc.report(s(nowSeconds)).machines.find((m) => m.machine_id === id);
  assert.ok(r, `no usage row for ${id}`);
  return r;
}

describe('usage meter: accumulator (N4)', () => {
  it('N4: maps machine states to billing states', () => {
    for (const st of ['starting', 'started', 'stopping', 'suspending']) assert.equal(billingStateOf(st), 'running', st);
    for (const st of ['created', 'stopped', 'suspended', 'failed']) assert.equal(billingStateOf(st), 'stopped', st);
    assert.equal(billingStateOf('destroyed'), 'none');
    assert.equal(billingStateOf('MACHINE_STATE_SUSPENDED'), 'stopped');
    assert.equal(billingStateOf('replacing'), undefined, 'replacing carries over the previous billing state');
    assert.equal(billingStateOf('destroying'), undefined, 'destroying carries over the previous billing state');
  });

  it('N4: suspended seconds are billed as stopped', () => {
    const acc = new UsageAccumulator();
    for (const ev of history('m1', [
      [0, '', 'created'],
      [10, 'created', 'starting'],
      [12, 'starting', 'started'],
      [100, 'started', 'suspending'],
      [103, 'suspending', 'suspended'],
    ]))
      acc.apply(ev);
    const r = row(acc, 'm1', 403); // 300 s suspended so far
    assert.deepEqual(r.seconds, { running: 93, stopped: 310 });
    assert.equal(r.state, 'suspended');
    assert.equal(r.billing_state, 'stopped');
  });

  it('N4: a resume after a suspend is billed as running again', () => {
    const acc = new UsageAccumulator();
    for (const ev of history('m1', [
      [0, '', 'created'],
      [0, 'created', 'starting'],
      [1, 'starting', 'started'],
      [11, 'started', 'suspending'],
      [12, 'suspending', 'suspended'],
      [72, 'suspended', 'starting'],
      [72.5, 'starting', 'started'],
    ]))
      acc.apply(ev);
    assert.deepEqual(row(acc, 'm1', 82.5).seconds, { running: 22.5, stopped: 60 });
  });

  it('N4: nothing is billed after destroyed', () => {
    const acc = new UsageAccumulator();
    for (const ev of history('m1', [
      [0, '', 'created'],
      [0, 'created', 'starting'],
      [5, 'starting', 'started'],
      [20, 'started', 'destroying'],
      [21, 'destroying', 'destroyed'],
    ]))
      acc.apply(ev);
    const r = row(acc, 'm1', 10_000);
    assert.deepEqual(r.seconds, { running: 21, stopped: 0 }, 'destroying a started machine is still running');
    assert.equal(r.billing_state, 'none');
  });

  it('N4: destroying a suspended machine stays billed as stopped', () => {
    const acc = new UsageAccumulator();
    for (const ev of history('m1', [
      [0, '', 'suspended'],
      [10, 'suspended', 'destroying'],
      [12, 'destroying', 'destroyed'],
    ]))
      acc.apply(ev);
    assert.deepEqual(row(acc, 'm1', 50).seconds, { running: 0, stopped: 12 });
  });

  it('N4: the open interval counts up to now in the current billing state', () => {
    const acc = new UsageAccumulator();
    for (const ev of history('m1', [[0, '', 'created'], [0, 'created', 'starting'], [2, 'starting', 'started']])) acc.apply(ev);
    assert.deepEqual(row(acc, 'm1', 10).seconds, { running: 10, stopped: 0 });
    assert.deepEqual(row(acc, 'm1', 20).seconds, { running: 20, stopped: 0 });
  });

  it('N3: a redelivered event (sequence already counted) is ignored', () => {
    const acc = new UsageAccumulator();
    const evs = history('m1', [[0, '', 'created'], [0, 'created', 'starting'], [5, 'starting', 'started'], [50, 'started', 'stopping'], [51, 'stopping', 'stopped']]);
    for (const ev of evs) assert.equal(acc.apply(ev).outcome, 'applied');
    const before = acc.report(s(100));
    for (const ev of [evs[2], evs[4], evs[0]]) {
      const r = acc.apply(ev);
      assert.equal(r.outcome, 'duplicate');
      assert.equal(r.account, undefined, 'nothing to persist for a duplicate');
    }
    assert.deepEqual(acc.report(s(100)), before);
    assert.deepEqual(row(acc, 'm1', 100).seconds, { running: 51, stopped: 49 });
  });

  it('N4: a gap in the sequence is applied, billed in the last known state and counted', () => {
    const acc = new UsageAccumulator();
    const evs = history('m1', [[0, '', 'created'], [0, 'created', 'starting'], [5, 'starting', 'started'], [50, 'started', 'stopping'], [51, 'stopping', 'stopped']]);
    acc.apply(evs[0]);
    acc.apply(evs[1]);
    // 3 and 4 never arrive; 5 says the machine is stopped at t=51.
    assert.equal(acc.apply(evs[4]).outcome, 'gap');
    const r = row(acc, 'm1', 61);
    assert.equal(r.gaps, 1);
    assert.equal(r.state, 'stopped');
    assert.deepEqual(r.seconds, { running: 51, stopped: 10 }, 'the missing interval is billed as the last known state (starting = running)');
    // A missing event turning up late is older than what was billed: ignored.
    assert.equal(acc.apply(evs[2]).outcome, 'duplicate');
    assert.deepEqual(row(acc, 'm1', 61).seconds, { running: 51, stopped: 10 });
  });

  it('N4: an event stamped before the previous one adds no negative time', () => {
    const acc = new UsageAccumulator();
    acc.apply({ machineId: 'm1', app: 'a', sequence: 1, timeMs: s(10), fromState: '', toState: 'started' });
    acc.apply({ machineId: 'm1', app: 'a', sequence: 2, timeMs: s(9), fromState: 'started', toState: 'stopped' });
    assert.deepEqual(row(acc, 'm1', 20).seconds, { running: 0, stopped: 10 });
  });

  it('N4: the first event seen of a machine starts its accounting (no time before it is billed)', () => {
    const acc = new UsageAccumulator();
    assert.equal(acc.apply({ machineId: 'm1', app: 'a', sequence: 7, timeMs: s(100), fromState: 'stopped', toState: 'starting' }).outcome, 'gap');
    assert.deepEqual(row(acc, 'm1', 110).seconds, { running: 10, stopped: 0 });
  });

  it('N4: machines are accounted separately and totalled', () => {
    const acc = new UsageAccumulator();
    for (const ev of history('m1', [[0, '', 'started']], 'a')) acc.apply(ev);
    for (const ev of history('m2', [[0, '', 'suspended']], 'b')) acc.apply(ev);
    const rep = acc.report(s(30));
    assert.deepEqual(rep.machines.map((m) => [m.machine_id, m.app, m.seconds]), [
      ['m1', 'a', { running: 30, stopped: 0 }],
      ['m2', 'b', { running: 0, stopped: 30 }],
    ]);
    assert.deepEqual(rep.totals, { running: 30, stopped: 30 });
  });

  it('N4: accounts saved and reloaded continue where they stopped', () => {
    const acc = new UsageAccumulator();
    const evs = history('m1', [[0, '', 'created'], [0, 'created', 'starting'], [5, 'starting', 'started'], [50, 'started', 'suspending'], [51, 'suspending', 'suspended']]);
    evs.slice(0, 3).forEach((e) => acc.apply(e));
    const reloaded = new UsageAccumulator(acc.all());
    for (const e of evs) reloaded.apply(e); // the first three are redeliveries
    assert.deepEqual(row(reloaded, 'm1', 60).seconds, { running: 51, stopped: 9 });
  });

  it('ignores events without a machine id or a valid sequence', () => {
    const acc = new UsageAccumulator();
    assert.equal(acc.apply({ machineId: '', app: 'a', sequence: 1, timeMs: s(0), fromState: '', toState: 'started' }).outcome, 'ignored');
    assert.equal(acc.apply({ machineId: 'm', app: 'a', sequence: 0, timeMs: s(0), fromState: '', toState: 'started' }).outcome, 'ignored');
    assert.equal(acc.report(s(1)).machines.length, 0);
  });

  it('N2: decodes the proto3 JSON of an Event', () => {
    const ev = machineEventFromJson(
      JSON.stringify({ id: 'e1', type: 'machine.suspended', time: '2025-01-01T00:00:03Z', app: 'web', machineId: 'm1', fromState: 'suspending', toState: 'suspended', sequence: '4', memoryMb: 256 }),
    );
    assert.deepEqual(ev, { machineId: 'm1', app: 'web', sequence: 4, timeMs: s(3), fromState: 'suspending', toState: 'suspended', memoryMb: 256 });
    assert.throws(() => machineEventFromJson('not json'), BadEventError);
    assert.throws(() => machineEventFromJson(JSON.stringify({ machineId: 'm1', sequence: 1 })), BadEventError);
  });
});
