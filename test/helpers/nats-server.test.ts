// The NatsServer test helper itself: start, stop, restart on the same port with the same
// JetStream data, and cleanup.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import { connect } from '@nats-io/transport-node';
import { jetstream } from '@nats-io/jetstream';
import { EVENTS_STREAM, streamsReady } from '../../lib/nats';
import { NatsServer } from '../../scripts/mesh/nats-server';

const accepts = (port: number) =>
  new Promise<boolean>((resolve) => {
    const s = net.connect({ port, host: '127.0.0.1' });
    s.once('connect', () => (s.destroy(), resolve(true)));
    s.once('error', () => resolve(false));
  });

describe('test helper: NatsServer', function () {
  this.timeout(30_000);

  it('restarts on the same port and keeps JetStream data; dispose removes its temp dir', async () => {
    const nats = await NatsServer.start();
    try {
      assert.ok(await accepts(nats.port));
      let nc = await connect({ servers: nats.url });
      await streamsReady(nc);
      await jetstream(nc).publish('machine.created.a.m1', '{}', { msgID: 'x1' });
      await nc.close();

      await nats.stop();
      assert.equal(nats.running, false);
      assert.equal(await accepts(nats.port), false);

      await nats.restart();
      nc = await connect({ servers: nats.url });
      const info = await (await streamsReady(nc)).streams.info(EVENTS_STREAM);
      assert.equal(info.state.messages, 1, 'the stream survived the restart');
      await nc.close();
    } finally {
      await nats.dispose();
    }
    assert.equal(nats.running, false);
    assert.equal(fs.existsSync(nats.dataDir), false);
  });
});
