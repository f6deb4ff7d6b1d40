// The real bin/torpor.js as a child process, with no scheduler listening.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { freePort } from '../../lib/net';

const BIN = path.resolve(__dirname, '../../../bin/torpor.js');

function torpor(args: string[], env: Record<string, string> = {}) {
  const r = spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', timeout: 20_000, env: { ...process.env, ...env } });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe('cli: bin/torpor.js as a process', function () {
  this.timeout(30_000);
  let port: number;
  before(async () => (port = await freePort()));

  it('exits 3 with a hint when the scheduler is unreachable (TORPOR_SCHEDULER)', () => {
    const r = torpor(['machines', 'list'], { TORPOR_SCHEDULER: `127.0.0.1:${port}` });
    assert.equal(r.code, 3, r.stderr);
    assert.equal(r.stdout, '');
    assert.match(r.stderr, new RegExp(`^error: cannot reach the scheduler at 127\\.0\\.0\\.1:${port} \\(connect ECONNREFUSED`));
    assert.match(r.stderr, /hint: is the mesh running\? start it with `npm start`, or set TORPOR_SCHEDULER=host:port/);
  });

  it('with --json and --scheduler, stdout is one JSON error object and the exit code is still 3', () => {
    const r = torpor(['machines', 'status', '0123456789abcd', '--json', '--scheduler', `127.0.0.1:${port}`]);
    assert.equal(r.code, 3);
    const parsed = JSON.parse(r.stdout);
    assert.equal(parsed.error.code, 'UNAVAILABLE');
    assert.match(parsed.error.hint, /npm start/);
  });

  it('a usage error exits 2 and --json output is still valid JSON', () => {
    const r = torpor(['machines', 'wait', '0123456789abcd', '--state', 'asleep', '--json'], { TORPOR_SCHEDULER: `127.0.0.1:${port}` });
    assert.equal(r.code, 2);
    assert.match(r.stderr, /unknown state "asleep"/);
    assert.deepEqual(JSON.parse(r.stdout), { error: { code: 'USAGE', message: 'unknown state "asleep": use one of started, stopped, suspended, destroyed' } });
  });

  it('events and usage exit 3 when NATS or the usage meter are unreachable', () => {
    const e = torpor(['events', '--nats', `nats://127.0.0.1:${port}`]);
    assert.equal(e.code, 3, e.stderr);
    assert.match(e.stderr, /cannot reach NATS/);
    const u = torpor(['usage', '--json'], { TORPOR_USAGE_URL: `http://127.0.0.1:${port}` });
    assert.equal(u.code, 3, u.stderr);
    assert.match(JSON.parse(u.stdout).error.message, /cannot reach the usage meter/);
  });
});
