import assert from 'node:assert/strict';
import { MachineState } from '../../gen/torpor/machines/v1/machines';
import { TorporError } from '../../lib/errors';
import { describeError, EXIT_REFUSED, EXIT_UNREACHABLE, EXIT_USAGE, UnreachableError, UsageError } from '../../cli/errors';
import { duration, eventLine, machineStatus, machineTable, table } from '../../cli/format';
import { startText } from '../../cli/commands/machines';
import { usageText } from '../../cli/commands/usage';
import { sampleMachine } from './fixtures';

describe('cli: output formatting', () => {
  it('tables are aligned, empty cells show "-"', () => {
    assert.equal(table(['A', 'BB'], [['xyz', ''], ['1', '2']]), 'A    BB\nxyz  -\n1    2\n');
  });

  it('machine list is a compact table with the state as a word', () => {
    const out = machineTable([sampleMachine(), sampleMachine({ id: 'ffffffffffffff', state: MachineState.MACHINE_STATE_SUSPENDED, url: '' })]);
    const lines = out.trimEnd().split('\n');
    assert.equal(lines.length, 3);
    assert.match(lines[0], /^ID\s+NAME\s+APP\s+REGION\s+STATE\s+HOST/);
    assert.match(lines[1], /0123456789abcd\s+web-1\s+web\s+bog\s+started\s+host-bog-1\s+default\s+256MB\s+http:\/\/127\.0\.0\.1:40001/);
    assert.match(lines[2], /suspended/);
    assert.equal(machineTable([]), 'no machines\n');
  });

  it('status shows url, state, host, region, instance_id, generation and how the last start went', () => {
    const out = machineStatus(sampleMachine());
    for (const re of [/^url:\s+http:\/\/127\.0\.0\.1:40001$/m, /^state:\s+started$/m, /^host:\s+host-bog-1$/m, /^region:\s+bog$/m, /^instance_id:\s+inst-1$/m, /^generation:\s+3$/m, /^last_start:\s+cold start \(snapshot corrupt\), host 900 ms, total 950 ms$/m]) {
      assert.match(out, re);
    }
    assert.match(machineStatus(sampleMachine({ lastStart: { resumed: true, reason: '', hostMs: 40, totalMs: 55 } })), /^last_start:\s+resumed from snapshot, host 40 ms/m);
  });

  it('L3/L10: start output says whether it resumed, why not, and the previous state', () => {
    assert.equal(
      startText({ machine: sampleMachine(), previousState: MachineState.MACHINE_STATE_SUSPENDED, resumed: false, reason: 'snapshot corrupt' }),
      '0123456789abcd cold-started (did not resume: snapshot corrupt) in 950 ms; was suspended, now started',
    );
    assert.match(startText({ machine: sampleMachine(), previousState: MachineState.MACHINE_STATE_SUSPENDED, resumed: true, reason: '' }), /resumed from snapshot/);
  });

  it('events are one line each: time, subject, from→to, resumed/reason', () => {
    assert.equal(
      eventLine('machine.started.web.m1', { time: '2025-01-01T00:00:00Z', fromState: 'suspended', toState: 'started', sequence: '7', resumed: true, totalMs: 120 }),
      '2025-01-01T00:00:00Z  machine.started.web.m1  #7  suspended→started  resumed  120ms',
    );
    assert.equal(
      eventLine('machine.started.web.m1', { time: 't', fromState: 'suspended', toState: 'started', reason: 'snapshot stale' }),
      't  machine.started.web.m1  suspended→started  cold  reason: snapshot stale',
    );
  });

  it('N4: usage shows seconds per machine and notes that suspended is billed as stopped', () => {
    const out = usageText({
      as_of: '2025-01-01T00:00:00.000Z',
      machines: [{ machine_id: 'm1', app: 'web', state: 'suspended', billing_state: 'stopped', memory_mb: 256, seconds: { running: 3725, stopped: 12.34 }, last_sequence: 5, gaps: 0 }],
      totals: { running: 3725, stopped: 12.34 },
    });
    assert.match(out, /m1\s+web\s+suspended\s+1h02m05s\s+12\.3s/);
    assert.match(out, /suspended is billed as stopped/);
    assert.equal(duration(65), '1m05s');
  });
});

describe('cli: errors → message and exit code', () => {
  it('refused requests exit 1 with the server message and code', () => {
    const f = describeError(new TorporError('not_found', 'machine 0123456789abcd not found'));
    assert.equal(f.exitCode, EXIT_REFUSED);
    assert.equal(f.text, 'error: machine 0123456789abcd not found (NOT_FOUND)');
    assert.deepEqual(f.json, { error: { code: 'NOT_FOUND', message: 'machine 0123456789abcd not found (NOT_FOUND)' } });
    assert.equal(describeError(new TorporError('failed_precondition', 'machine is stopped')).exitCode, EXIT_REFUSED);
    assert.equal(describeError(new TorporError('deadline_exceeded', 'timed out')).exitCode, EXIT_REFUSED);
  });

  it('usage errors exit 2', () => {
    const f = describeError(new UsageError('--memory is required (MiB)'));
    assert.equal(f.exitCode, EXIT_USAGE);
    assert.equal(f.text, 'error: --memory is required (MiB)');
  });

  it('an unreachable scheduler exits 3 with a hint', () => {
    const err = new TorporError('unavailable', 'No connection established. Last error: Error: connect ECONNREFUSED 127.0.0.1:7100. Resolution note: ');
    const f = describeError(err, '127.0.0.1:7100');
    assert.equal(f.exitCode, EXIT_UNREACHABLE);
    assert.equal(
      f.text,
      'error: cannot reach the scheduler at 127.0.0.1:7100 (connect ECONNREFUSED 127.0.0.1:7100)\nhint: is the mesh running? start it with `npm start`, or set TORPOR_SCHEDULER=host:port',
    );
    assert.equal(describeError(new UnreachableError('cannot reach NATS', 'start it')).exitCode, EXIT_UNREACHABLE);
  });

  it('UNAVAILABLE answered by a running scheduler is a refusal, not "unreachable"', () => {
    const f = describeError(new TorporError('unavailable', 'no host agent in region bog is up'));
    assert.equal(f.exitCode, EXIT_REFUSED);
    assert.match(f.text, /no host agent in region bog is up \(UNAVAILABLE\)/);
  });
});

describe('cli: torpor logs output', () => {
  it('E2: prints the line of each LogLine payload (JSON lines with --json)', async () => {
    const { renderLogLine } = await import('../../cli/commands/logs');
    const payload = JSON.stringify({ machineId: 'm1', app: 'web', sequence: '12', line: 'hello from the guest', time: '2025-01-01T00:00:00Z' });
    assert.equal(renderLogLine(false, payload), 'hello from the guest');
    assert.deepEqual(JSON.parse(renderLogLine(true, payload)), { machineId: 'm1', app: 'web', sequence: 12, line: 'hello from the guest', time: '2025-01-01T00:00:00.000Z' });
    assert.equal(renderLogLine(false, 'raw text'), 'raw text');
  });
});
