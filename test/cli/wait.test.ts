import assert from 'node:assert/strict';
import { Machine, MachineState, WaitMachineRequest } from '../../gen/torpor/machines/v1/machines';
import { TorporError } from '../../lib/errors';
import { progressLine, waitForState } from '../../cli/wait';
import { sampleMachine } from './fixtures';

describe('cli: machines wait (L2)', () => {
  it('reports progress on stderr while the WaitMachine call runs', async () => {
    const lines: string[] = [];
    const waits: WaitMachineRequest[] = [];
    const m = await waitForState(
      {
        waitMachine: async (req) => {
          waits.push(req);
          await new Promise((r) => setTimeout(r, 120));
          return sampleMachine({ state: MachineState.MACHINE_STATE_SUSPENDED });
        },
        getMachine: async () => sampleMachine({ state: MachineState.MACHINE_STATE_SUSPENDING }),
      },
      { id: '0123456789abcd', target: MachineState.MACHINE_STATE_SUSPENDED, timeoutSeconds: 30, instanceId: 'i-2', onProgress: (l) => lines.push(l), progressIntervalMs: 20 },
    );
    assert.equal(m.state, MachineState.MACHINE_STATE_SUSPENDED);
    assert.deepEqual(waits, [{ id: '0123456789abcd', state: MachineState.MACHINE_STATE_SUSPENDED, timeoutSeconds: 30, instanceId: 'i-2' }]);
    assert.ok(lines.length >= 2, `progress lines: ${lines.length}`);
    assert.match(lines[0], /^waiting for 0123456789abcd to be suspended \(now: suspending, \d+s\)$/);
  });

  it('splits long waits into calls of at most 300 s and times out with the last seen state', async () => {
    const waits: number[] = [];
    let clock = 0;
    const realNow = Date.now;
    Date.now = () => realNow() + clock;
    try {
      await assert.rejects(
        waitForState(
          {
            waitMachine: async (req) => {
              waits.push(req.timeoutSeconds);
              clock += req.timeoutSeconds * 1000;
              throw new TorporError('deadline_exceeded', 'not yet');
            },
            getMachine: async (): Promise<Machine> => sampleMachine({ state: MachineState.MACHINE_STATE_STARTED }),
          },
          { id: 'm', target: MachineState.MACHINE_STATE_STOPPED, timeoutSeconds: 700 },
        ),
        (e: unknown) => e instanceof TorporError && e.kind === 'deadline_exceeded' && /timed out after 700s waiting for m to be stopped \(last seen: started\)/.test(e.message),
      );
    } finally {
      Date.now = realNow;
    }
    assert.deepEqual(waits, [300, 300, 100]);
  });

  it('passes other errors through at once', async () => {
    await assert.rejects(
      waitForState(
        { waitMachine: async () => Promise.reject(new TorporError('not_found', 'machine m not found')), getMachine: async () => sampleMachine() },
        { id: 'm', target: MachineState.MACHINE_STATE_STARTED, timeoutSeconds: 5 },
      ),
      { kind: 'not_found' },
    );
    assert.equal(progressLine('m', MachineState.MACHINE_STATE_DESTROYED, 'destroying', 4), 'waiting for m to be destroyed (now: destroying, 4s)');
  });
});
