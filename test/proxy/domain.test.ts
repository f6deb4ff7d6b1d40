// Unit tests of the proxy's domain pieces: no HTTP, no NATS, no VMs; milliseconds.
import assert from 'node:assert/strict';
import { resolveApp } from '../../services/proxy/src/app-resolver';
import { Balancer } from '../../services/proxy/src/balancer';
import { parseEvent } from '../../services/proxy/src/event-feed';
import { IdleSweeper } from '../../services/proxy/src/idle-sweeper';
import { idleDecisions, IdleTracker } from '../../services/proxy/src/idle-tracker';
import type { SchedulerPort, StartOutcome } from '../../services/proxy/src/ports';
import { MachineDetails, RoutingTable, StateEvent } from '../../services/proxy/src/routing-table';
import { WakeCoordinator, WakeError } from '../../services/proxy/src/wake-coordinator';

const details = (id: string, state: string, over: Partial<MachineDetails> = {}): MachineDetails => ({
  id,
  app: 'web',
  state,
  url: state === 'started' || state === 'suspended' ? `http://127.0.0.1:1${id.length}` : '',
  autostart: true,
  autostop: 'suspend',
  minRunning: 0,
  ...over,
});
const ev = (machineId: string, toState: string, sequence: number, over: Partial<StateEvent> = {}): StateEvent => ({
  type: `machine.${toState}`,
  machineId,
  app: 'web',
  toState,
  sequence,
  resumed: false,
  ...over,
});

class Deferred<T> {
  resolve!: (v: T) => void;
  reject!: (e: unknown) => void;
  promise = new Promise<T>((res, rej) => {
    this.resolve = res;
    this.reject = rej;
  });
}

/** A scheduler whose starts the test finishes by hand. */
class FakeScheduler implements SchedulerPort {
  starts: { id: string; d: Deferred<StartOutcome> }[] = [];
  suspends: string[] = [];
  stops: string[] = [];
  refuseSuspend = false;
  machines = new Map<string, MachineDetails>();
  async list() {
    return [...this.machines.values()];
  }
  async get(id: string) {
    const m = this.machines.get(id);
    if (!m) throw Object.assign(new Error('not found'), { kind: 'not_found' });
    return m;
  }
  start(id: string): Promise<StartOutcome> {
    const d = new Deferred<StartOutcome>();
    this.starts.push({ id, d });
    return d.promise;
  }
  async suspend(id: string) {
    this.suspends.push(id);
    if (this.refuseSuspend) throw Object.assign(new Error(`machine ${id} cannot be suspended: R1 memory_mb 4096 is above 2048`), { kind: 'failed_precondition' });
    return details(id, 'suspending');
  }
  async stop(id: string) {
    this.stops.push(id);
    return details(id, 'stopping');
  }
}

const tick = () => new Promise((r) => setImmediate(r));

describe('proxy domain (unit)', () => {
  describe('app resolution', () => {
    it('L7: Host <app>.localhost picks the app, with or without a port; the path is kept', () => {
      assert.deepEqual(resolveApp('web.localhost:8080', '/counter?x=1'), { app: 'web', path: '/counter?x=1' });
      assert.deepEqual(resolveApp('Web.LOCALHOST', '/'), { app: 'web', path: '/' });
    });
    it('L7: a path prefix /apps/<app>/ picks the app and is stripped', () => {
      assert.deepEqual(resolveApp('127.0.0.1:8080', '/apps/web/boot'), { app: 'web', path: '/boot' });
      assert.deepEqual(resolveApp('127.0.0.1', '/apps/web'), { app: 'web', path: '/' });
      assert.deepEqual(resolveApp('127.0.0.1', '/apps/web?q=2'), { app: 'web', path: '/?q=2' });
    });
    it('no app: a plain host, a bad name', () => {
      assert.equal(resolveApp('127.0.0.1:8080', '/boot'), undefined);
      assert.equal(resolveApp('a_b.localhost', '/'), undefined);
      assert.equal(resolveApp(undefined, '/apps/-x/'), undefined);
    });
  });

  describe('balancer', () => {
    it('fewest in flight first, round robin among equals', () => {
      const load = new Map([['a', 1]]);
      const b = new Balancer((id) => load.get(id) ?? 0);
      const ms = [{ id: 'a' }, { id: 'b' }, { id: 'c' }];
      const picks = [b.pick(ms)!.id, b.pick(ms)!.id, b.pick(ms)!.id, b.pick(ms)!.id];
      assert.ok(!picks.includes('a'));
      assert.deepEqual(new Set(picks), new Set(['b', 'c']));
      assert.equal(b.pick([]), undefined);
    });
  });

  describe('routing table from events (N1, N2)', () => {
    it('events move the state; replays (sequence not above the last) are ignored', () => {
      const t = new RoutingTable();
      t.load([details('m1', 'started')]);
      assert.equal(t.routable('web').length, 1);
      t.applyEvent(ev('m1', 'suspending', 5));
      assert.equal(t.routable('web').length, 0);
      t.applyEvent(ev('m1', 'suspended', 6));
      t.applyEvent(ev('m1', 'suspending', 5)); // replayed
      assert.equal(t.get('m1')!.state, 'suspended');
    });
    it('a resumed start keeps the url; a cold start waits for the details', () => {
      const t = new RoutingTable();
      t.load([details('m1', 'suspended')]);
      assert.deepEqual(t.applyEvent(ev('m1', 'started', 3, { resumed: true })), { needsDetails: true });
      assert.equal(t.routable('web').length, 1, 'resumed: url unchanged');
      t.applyEvent(ev('m1', 'stopped', 4));
      t.applyEvent(ev('m1', 'started', 5, { resumed: false }));
      assert.equal(t.routable('web').length, 0, 'cold start: url unknown until GetMachine answers');
      t.setDetails(details('m1', 'started', { url: 'http://127.0.0.1:999' }));
      assert.equal(t.routable('web')[0].url, 'http://127.0.0.1:999');
    });
    it('an unknown machine asks for details; setDetails does not override the state from events', () => {
      const t = new RoutingTable();
      assert.equal(t.applyEvent(ev('m9', 'created', 1)).needsDetails, true);
      t.applyEvent(ev('m9', 'stopped', 2));
      t.setDetails(details('m9', 'started', { url: 'http://x:1' })); // stale read
      assert.equal(t.get('m9')!.state, 'stopped');
      t.applyEvent(ev('m9', 'destroyed', 3));
      assert.equal(t.hasApp('web'), false);
    });
    it('L7: wake candidates: draining, suspending, suspended, stopped, created, failed; only with autostart', () => {
      const t = new RoutingTable();
      t.load([
        details('f', 'failed'),
        details('c', 'created'),
        details('st', 'stopped'),
        details('su', 'suspended'),
        details('no', 'suspended', { autostart: false }),
        details('x', 'stopping'),
        details('r', 'started'),
      ]);
      assert.deepEqual(t.wakeCandidates('web').map((m) => m.id), ['su', 'st', 'c', 'f']);
      t.setDraining('r', true);
      assert.equal(t.routable('web').length, 0);
      assert.equal(t.wakeCandidates('web')[0].id, 'r');
    });
  });

  describe('wake coordinator (L7)', () => {
    const setup = (list: MachineDetails[]) => {
      const t = new RoutingTable();
      t.load(list);
      const s = new FakeScheduler();
      for (const m of list) s.machines.set(m.id, m);
      const woken: string[] = [];
      const w = new WakeCoordinator(t, s, { hooks: { onWake: (_a, id, kind) => woken.push(`${id}:${kind}`) } });
      return { t, s, w, woken };
    };

    it('L7: a started machine is returned at once, without a start', async () => {
      const { s, w } = setup([details('m1', 'started')]);
      assert.equal((await w.acquire('web', 1000)).id, 'm1');
      assert.equal(s.starts.length, 0);
    });

    it('L7: fifty concurrent requests share one start of the suspended machine (not the stopped one)', async () => {
      const { s, w, woken } = setup([details('st', 'stopped'), details('su', 'suspended')]);
      const all = Promise.all(Array.from({ length: 50 }, () => w.acquire('web', 5000)));
      await tick();
      assert.equal(s.starts.length, 1);
      assert.equal(s.starts[0].id, 'su');
      s.starts[0].d.resolve({ machine: details('su', 'started'), previousState: 'suspended', resumed: true, reason: '' });
      const got = await all;
      assert.ok(got.every((m) => m.id === 'su'));
      assert.deepEqual(woken, ['su:resume']);
      assert.deepEqual(w.inProgress(), []);
    });

    it('unknown app: 404', async () => {
      const { w } = setup([details('m1', 'suspended')]);
      await assert.rejects(w.acquire('nope', 1000), (e: WakeError) => e.status === 404 && /unknown app/.test(e.message));
    });

    it('a start that fails tries the next machine, then answers 503 with every reason', async () => {
      const { s, w } = setup([details('a', 'suspended'), details('b', 'stopped')]);
      const p = w.acquire('web', 5000);
      await tick();
      s.starts[0].d.reject(new Error('image broken'));
      await tick();
      await tick();
      assert.equal(s.starts[1].id, 'b');
      s.starts[1].d.reject(new Error('no host'));
      await assert.rejects(p, (e: WakeError) => e.status === 503 && /image broken/.test(e.message) && /no host/.test(e.message));
    });

    it('the hold has a deadline: 503 with a reason, never a hang', async () => {
      const { w } = setup([details('a', 'suspended')]);
      const t0 = Date.now();
      await assert.rejects(w.acquire('web', 100), (e: WakeError) => e.status === 503 && /within 0.1 s/.test(e.message) && /a suspended/.test(e.message));
      assert.ok(Date.now() - t0 < 1000);
    });

    it('no machine with autostart: 503 that says so', async () => {
      const { w } = setup([details('a', 'stopped', { autostart: false })]);
      await assert.rejects(w.acquire('web', 1000), (e: WakeError) => e.status === 503 && /autostart/.test(e.message));
    });

    it('L8: "already started" from a concurrent start counts as success', async () => {
      const { s, w, woken } = setup([details('a', 'suspended')]);
      const p = w.acquire('web', 5000);
      await tick();
      s.machines.set('a', details('a', 'started'));
      s.starts[0].d.reject(Object.assign(new Error('machine a is already started'), { kind: 'failed_precondition' }));
      assert.equal((await p).id, 'a');
      assert.deepEqual(woken, ['a:already_started']);
    });

    it('a machine started by someone else (event) releases held requests', async () => {
      const { t, w } = setup([details('a', 'suspended', { url: 'http://h:1' })]);
      const p = w.acquire('web', 5000);
      await tick();
      t.applyEvent(ev('a', 'started', 9, { resumed: true }));
      assert.equal((await p).id, 'a');
    });
  });

  describe('idle decisions (E1)', () => {
    let now = 0;
    const clock = () => now;
    it('E1: suspends only machines idle for the whole period, with nothing in flight', () => {
      now = 0;
      const tr = new IdleTracker(clock);
      const ms = [details('a', 'started'), details('b', 'started'), details('c', 'started', { autostop: 'stop' }), details('d', 'started', { autostop: 'off' })].map((d) => ({
        ...d,
        sequence: 0,
        draining: false,
      }));
      for (const m of ms) tr.woken(m.id);
      now = 5000;
      tr.begin('b'); // b has a request in flight
      const out = idleDecisions(ms, tr, now, 3000);
      assert.deepEqual(out.map((d) => `${d.machineId}:${d.action}`).sort(), ['a:suspend', 'c:stop']);
      assert.deepEqual(idleDecisions(ms, tr, now, 6000), [], 'not idle long enough');
    });
    it('E1: a machine just woken is never swept', () => {
      now = 0;
      const tr = new IdleTracker(clock);
      const ms = [{ ...details('a', 'started'), sequence: 0, draining: false }];
      tr.woken('a');
      now = 10_000;
      tr.woken('a'); // a start woke it again just now
      assert.deepEqual(idleDecisions(ms, tr, now, 3000), []);
    });
    it('E1: min_machines_running is respected, longest idle swept first', () => {
      now = 0;
      const tr = new IdleTracker(clock);
      const ms = ['a', 'b', 'c'].map((id) => ({ ...details(id, 'started', { minRunning: 2 }), sequence: 0, draining: false }));
      tr.woken('b');
      now = 1000;
      tr.woken('a');
      tr.woken('c');
      now = 100_000;
      assert.deepEqual(idleDecisions(ms, tr, now, 3000).map((d) => d.machineId), ['b']);
      ms[1].draining = true;
      assert.deepEqual(idleDecisions(ms, tr, now, 3000), [], 'a draining machine no longer counts as running');
    });
  });

  describe('idle sweeper (E1)', () => {
    it('E1: suspends; marks the machine draining so nothing new is routed to it', async () => {
      let now = 0;
      const t = new RoutingTable();
      t.load([details('a', 'started')]);
      const tr = new IdleTracker(() => now);
      tr.woken('a');
      const s = new FakeScheduler();
      const actions: string[] = [];
      const sw = new IdleSweeper(t, tr, s, 3000, { onAction: (a, o) => actions.push(`${a}:${o}`) }, () => now);
      now = 4000;
      const p = sw.sweep();
      assert.equal(t.routable('web').length, 0, 'draining at once');
      assert.ok(sw.pending('a'));
      await p;
      assert.deepEqual(s.suspends, ['a']);
      assert.deepEqual(actions, ['suspend:ok']);
      t.applyEvent(ev('a', 'suspending', 7));
      assert.equal(t.get('a')!.draining, false);
      assert.equal(sw.pending('a'), undefined);
    });
    it('E1: where the scheduler refuses a suspend (R1-R6), the machine is stopped instead', async () => {
      let now = 0;
      const t = new RoutingTable();
      t.load([details('a', 'started')]);
      const tr = new IdleTracker(() => now);
      tr.woken('a');
      const s = new FakeScheduler();
      s.refuseSuspend = true;
      const actions: string[] = [];
      const sw = new IdleSweeper(t, tr, s, 3000, { onAction: (a, o) => actions.push(`${a}:${o}`) }, () => now);
      now = 4000;
      await sw.sweep();
      assert.deepEqual(s.stops, ['a']);
      assert.deepEqual(actions, ['suspend:refused', 'stop:ok']);
    });
  });

  it('N2: event payloads are read from their proto3 JSON', () => {
    const e = parseEvent(JSON.stringify({ id: 'e1', type: 'machine.started', app: 'web', machineId: 'abc', toState: 'started', fromState: 'suspended', sequence: '4', resumed: true }));
    assert.deepEqual(e, { type: 'machine.started', machineId: 'abc', app: 'web', toState: 'started', sequence: 4, resumed: true });
    assert.equal(parseEvent('not json'), undefined);
  });
});
