import assert from 'node:assert/strict';
import { MachineState } from '../../gen/torpor/machines/v1/machines';
import { parseState, stateName, STATE_NAMES, WAIT_TARGETS } from '../../cli/states';
import { UsageError } from '../../cli/errors';

describe('cli: state words', () => {
  it('prints enum states as lower-case words', () => {
    assert.equal(stateName(MachineState.MACHINE_STATE_SUSPENDED), 'suspended');
    assert.equal(stateName(MachineState.MACHINE_STATE_STARTING), 'starting');
    assert.deepEqual(STATE_NAMES, ['created', 'starting', 'started', 'stopping', 'stopped', 'suspending', 'suspended', 'replacing', 'destroying', 'destroyed', 'failed']);
  });

  it('parses words (any case, or the enum name) into the enum', () => {
    assert.equal(parseState('suspended'), MachineState.MACHINE_STATE_SUSPENDED);
    assert.equal(parseState(' Started '), MachineState.MACHINE_STATE_STARTED);
    assert.equal(parseState('MACHINE_STATE_STOPPED'), MachineState.MACHINE_STATE_STOPPED);
  });

  it('L2: wait accepts only started, stopped, suspended and destroyed', () => {
    assert.equal(parseState('destroyed', WAIT_TARGETS), MachineState.MACHINE_STATE_DESTROYED);
    assert.throws(() => parseState('suspending', WAIT_TARGETS), (e: unknown) => e instanceof UsageError && /use one of started, stopped, suspended, destroyed/.test(e.message));
    assert.throws(() => parseState('asleep'), (e: unknown) => e instanceof UsageError && /unknown state "asleep"/.test(e.message));
    assert.throws(() => parseState('unspecified'), UsageError);
  });
});
