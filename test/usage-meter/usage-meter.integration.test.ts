// The usage meter as a process against a real nats-server: events in TORPOR_EVENTS become
// seconds on GET /usage; a restart (even with a lost consumer, so everything is redelivered)
// counts nothing twice.
import assert from 'node:assert/strict';
import { ChildProcess, spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { connect } from '@nats-io/transport-node';
import type { NatsConnection } from '@nats-io/nats-core';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { EVENTS_STREAM, streamsReady } from '../../lib/nats';
import type { UsageReport, UsageRow } from '../../services/usage-meter/accumulator';
import { NatsServer } from '../../scripts/mesh/nats-server';

const MAIN = path.resolve(__dirname, '../../services/usage-meter/main.js');

class Meter {
  private proc?: ChildProcess;
  stderr = '';
  port = 0;

  constructor(private readonly args: string[]) {}

  async start(): Promise<void> {
    const proc = spawn(process.execPath, [MAIN, ...this.args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, LOG_LEVEL: 'info' } });
    this.proc = proc;
    proc.stderr!.on('data', (b) => (this.stderr += b.toString()));
    this.port = await new Promise<number>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`usage meter did not log "listening" in 10 s; stderr: ${this.stderr}`)), 10_000);
      proc.once('exit', (code) => reject(new Error(`usage meter exited with ${code}; stderr: ${this.stderr}`)));
      readline.createInterface({ input: proc.stdout! }).on('line', (line) => {
        try {
          const rec = JSON.parse(line) as { msg?: string; http_port?: number };
          if (rec.msg === 'listening' && rec.http_port) {
            clearTimeout(timer);
            resolve(rec.http_port);
          }
        } catch {
          /* not a log line */
        }
      });
    });
  }

  async stop(): Promise<number | null> {
    const proc = this.proc;
    if (!proc || proc.exitCode !== null) return proc?.exitCode ?? null;
    const code = new Promise<number | null>((r) => proc.once('exit', (c) => r(c)));
    process.kill(proc.pid!, 'SIGTERM');
    return code;
  }

  async usage(): Promise<UsageReport> {
    const res = await fetch(`http://127.0.0.1:${this.port}/usage`);
    assert.equal(res.status, 200);
    return (await res.json()) as UsageReport;
  }

  /** Polls /usage until every machine has reached its expected last sequence. */
  async usageAt(expected: Record<string, number>, timeoutMs = 10_000): Promise<UsageReport> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const rep = await this.usage();
      const ok = Object.entries(expected).every(([id, seq]) => rep.machines.find((m) => m.machine_id === id)?.last_sequence === seq);
      if (ok) return rep;
      if (Date.now() > deadline) throw new Error(`usage did not reach ${JSON.stringify(expected)}: ${JSON.stringify(rep)}\n${this.stderr}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}

const row = (rep: UsageReport, id: string): UsageRow => {
  const r = rep.machines.find((m) => m.machine_id === id);
  assert.ok(r, `no row for ${id}`);
  return r;
};

describe('usage meter process (N4, integration)', function () {
  this.timeout(60_000);
  let nats: NatsServer;
  let nc: NatsConnection;
  let dir: string;
  let meter: Meter;
  const base = Date.now() - 200_000;

  async function publish(machineId: string, sequence: number, tSeconds: number, from: string, to: string, msgId?: string) {
    const type = to;
    const ev = {
      id: msgId ?? `${machineId}-${sequence}`,
      type: `machine.${type}`,
      time: new Date(base + tSeconds * 1000).toISOString(),
      app: 'web',
      machineId,
      fromState: from,
      toState: to,
      sequence: String(sequence),
      memoryMb: 256,
    };
    await jetstream(nc).publish(`machine.${type}.web.${machineId}`, JSON.stringify(ev), { msgID: ev.id });
  }

  before(async () => {
    nats = await NatsServer.start();
    nc = await connect({ servers: nats.url });
    await streamsReady(nc);
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'torpor-usage-it-'));
    meter = new Meter(['--nats-url', nats.url, '--port', '0', '--db', path.join(dir, 'usage.sqlite')]);
  });

  after(async () => {
    await meter?.stop();
    await nc?.close();
    await nats?.dispose();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  it('N4: serves per-machine seconds by billing state; suspended is billed as stopped', async () => {
    // m1: started for 48 s, then suspended (open interval).
    await publish('m1', 1, 0, '', 'created');
    await publish('m1', 2, 0, 'created', 'starting');
    await publish('m1', 3, 2, 'starting', 'started');
    await publish('m1', 4, 48, 'started', 'suspending');
    await publish('m1', 5, 50, 'suspending', 'suspended');
    // m2: 10 s started, 20 s stopped, then destroyed: closed for good.
    await publish('m2', 1, 0, '', 'created');
    await publish('m2', 2, 0, 'created', 'starting');
    await publish('m2', 3, 10, 'starting', 'started');
    await publish('m2', 4, 10, 'started', 'stopping');
    await publish('m2', 5, 10, 'stopping', 'stopped');
    await publish('m2', 6, 30, 'stopped', 'destroyed');
    // A snapshot event on the same stream is outside the meter's filter.
    await jetstream(nc).publish('snapshot.created.web.m1', JSON.stringify({ id: 's1', machineId: 'm1', sequence: '1' }), { msgID: 's1' });

    await meter.start();
    const rep = await meter.usageAt({ m1: 5, m2: 6 });
    const m1 = row(rep, 'm1');
    assert.equal(m1.app, 'web');
    assert.equal(m1.state, 'suspended');
    assert.equal(m1.billing_state, 'stopped');
    assert.equal(m1.seconds.running, 50);
    const openStopped = (Date.parse(rep.as_of) - (base + 50_000)) / 1000;
    assert.ok(Math.abs(m1.seconds.stopped - openStopped) < 0.01, `suspended time billed as stopped: ${m1.seconds.stopped} vs ${openStopped}`);
    assert.deepEqual(row(rep, 'm2').seconds, { running: 10, stopped: 20 });
    assert.equal(row(rep, 'm2').billing_state, 'none');

    // The CLI shows the same totals.
    const cli = spawnSync(process.execPath, [path.resolve(__dirname, '../../../bin/torpor.js'), 'usage', '--json', '--usage-url', `http://127.0.0.1:${meter.port}`], { encoding: 'utf8' });
    assert.equal(cli.status, 0, cli.stderr);
    const viaCli = JSON.parse(cli.stdout) as UsageReport;
    assert.deepEqual(row(viaCli, 'm2').seconds, { running: 10, stopped: 20 });
    assert.equal(row(viaCli, 'm1').seconds.running, 50);

    const metrics = await (await fetch(`http://127.0.0.1:${meter.port}/metrics`)).text();
    assert.match(metrics, /torpor_usage_events_total\{[^}]*outcome="applied"[^}]*\} 11/);
  });

  it('N3: a republished event (same sequence, new message id) is not counted twice', async () => {
    await publish('m2', 3, 10, 'starting', 'started', 'm2-3-again');
    await publish('m1', 6, 150, 'suspended', 'starting');
    const rep = await meter.usageAt({ m1: 6 });
    assert.deepEqual(row(rep, 'm2').seconds, { running: 10, stopped: 20 });
    const m1 = row(rep, 'm1');
    assert.equal(m1.seconds.stopped, 100, 'suspended from t=50 to the resume at t=150');
    const openRunning = (Date.parse(rep.as_of) - (base + 150_000)) / 1000;
    assert.ok(Math.abs(m1.seconds.running - (50 + openRunning)) < 0.01);
    assert.equal(row(rep, 'm1').billing_state, 'running');
  });

  it('N4: a restarted meter continues from SQLite and counts nothing twice, even if everything is redelivered', async () => {
    assert.equal(await meter.stop(), 0, 'graceful shutdown on SIGTERM');
    await publish('m1', 7, 151, 'starting', 'started');
    await publish('m1', 8, 171, 'started', 'stopping');
    await publish('m1', 9, 172, 'stopping', 'stopped');
    await meter.start();
    let rep = await meter.usageAt({ m1: 9, m2: 6 });
    const expectedM1 = { running: 50 + 22, stopped: 100 };
    assert.equal(row(rep, 'm1').seconds.running, expectedM1.running);
    const stoppedNow = (at: string) => expectedM1.stopped + (Date.parse(at) - (base + 172_000)) / 1000;
    assert.ok(Math.abs(row(rep, 'm1').seconds.stopped - stoppedNow(rep.as_of)) < 0.01);
    assert.deepEqual(row(rep, 'm2').seconds, { running: 10, stopped: 20 });

    // Lose the durable consumer: the next meter gets the whole stream again.
    assert.equal(await meter.stop(), 0);
    const jsm = await jetstreamManager(nc);
    await jsm.consumers.delete(EVENTS_STREAM, 'usage-meter');
    await meter.start();
    const deadline = Date.now() + 10_000;
    for (;;) {
      const info = await jsm.consumers.info(EVENTS_STREAM, 'usage-meter').catch(() => undefined);
      if (info && info.num_pending === 0 && info.num_ack_pending === 0) break;
      assert.ok(Date.now() < deadline, 'meter did not catch up with the redelivered stream');
      await new Promise((r) => setTimeout(r, 100));
    }
    rep = await meter.usage();
    assert.equal(row(rep, 'm1').seconds.running, expectedM1.running);
    assert.ok(Math.abs(row(rep, 'm1').seconds.stopped - stoppedNow(rep.as_of)) < 0.01);
    assert.deepEqual(row(rep, 'm2').seconds, { running: 10, stopped: 20 });
  });
});
