// `torpor events` against a real nats-server: catch-up read, JSON lines, subject filter, --follow --new.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import path from 'node:path';
import { connect } from '@nats-io/transport-node';
import type { NatsConnection } from '@nats-io/nats-core';
import { jetstream } from '@nats-io/jetstream';
import { streamsReady } from '../../lib/nats';
import { NatsServer } from '../../scripts/mesh/nats-server';

const BIN = path.resolve(__dirname, '../../../bin/torpor.js');

describe('cli: torpor events (N1, N2, real nats-server)', function () {
  this.timeout(30_000);
  let nats: NatsServer;
  let nc: NatsConnection;
  const torpor = (...args: string[]) => spawnSync(process.execPath, [BIN, ...args, '--nats', nats.url], { encoding: 'utf8', timeout: 15_000 });
  const publish = (subject: string, ev: object) => jetstream(nc).publish(subject, JSON.stringify(ev), { msgID: (ev as { id: string }).id });

  before(async () => {
    nats = await NatsServer.start();
    nc = await connect({ servers: nats.url });
    await streamsReady(nc);
  });
  after(async () => {
    await nc?.close();
    await nats?.dispose();
  });

  it('prints nothing and exits 0 on an empty stream', () => {
    const r = torpor('events');
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout, '');
  });

  it('reads the stream from the start, one line per event, machine.> by default', async () => {
    await publish('machine.started.web.m1', { id: 'e1', time: '2025-01-01T00:00:00Z', fromState: 'suspended', toState: 'started', sequence: '3', resumed: true, totalMs: 80 });
    await publish('snapshot.resumed.web.m1', { id: 'e2', sequence: '1', snapshotId: 's1' });
    await publish('machine.stopped.web.m1', { id: 'e3', time: '2025-01-01T00:00:05Z', fromState: 'started', toState: 'stopped', sequence: '4', reason: 'user' });
    const r = torpor('events');
    assert.equal(r.status, 0, r.stderr);
    assert.deepEqual(r.stdout.trimEnd().split('\n'), [
      '2025-01-01T00:00:00Z  machine.started.web.m1  #3  suspended→started  resumed  80ms',
      '2025-01-01T00:00:05Z  machine.stopped.web.m1  #4  started→stopped  reason: user',
    ]);
  });

  it('--json prints JSON lines with the subject; --subject filters', () => {
    const r = torpor('events', '--json', '--subject', 'snapshot.>');
    assert.equal(r.status, 0, r.stderr);
    const lines = r.stdout.trimEnd().split('\n').map((l) => JSON.parse(l));
    assert.deepEqual(lines, [{ subject: 'snapshot.resumed.web.m1', id: 'e2', sequence: '1', snapshotId: 's1' }]);
  });

  it('--follow --new prints only new events and exits 0 on SIGINT', async () => {
    const child = spawn(process.execPath, [BIN, 'events', '--follow', '--new', '--json', '--nats', nats.url]);
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    await new Promise((r) => setTimeout(r, 800));
    await publish('machine.suspended.web.m2', { id: 'e4', fromState: 'suspending', toState: 'suspended', sequence: '9' });
    const deadline = Date.now() + 5000;
    while (!out.includes('\n') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    child.kill('SIGINT');
    const code = await new Promise((r) => child.once('exit', r));
    assert.equal(code, 0);
    assert.deepEqual(out.trimEnd().split('\n').map((l) => JSON.parse(l).id), ['e4']);
  });
});
