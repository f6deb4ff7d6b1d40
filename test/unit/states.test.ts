import assert from 'node:assert/strict';
import { TorporError } from '../../lib/errors';
import { acceptsOperation, assertOperation, canTransition, eventTypeFor, Operation, State, STATES } from '../../services/scheduler/src/domain/states';

// Every allowed transition of the lifecycle; everything else is refused.
const ALLOWED: Record<State, State[]> = {
  created: ['created', 'starting', 'destroyed'],
  starting: ['started', 'failed'],
  started: ['stopping', 'suspending', 'replacing', 'destroyed', 'failed'],
  stopping: ['stopped', 'failed'],
  stopped: ['starting', 'stopped', 'destroyed'],
  suspending: ['suspended', 'started', 'failed'],
  suspended: ['starting', 'stopping', 'replacing', 'destroyed'],
  replacing: ['starting', 'stopped', 'failed'],
  destroying: ['destroyed'],
  destroyed: [],
  failed: ['failed', 'starting', 'stopping', 'stopped', 'destroyed'],
};

describe('lifecycle state machine', () => {
  for (const from of STATES) {
    for (const to of STATES) {
      const allowed = ALLOWED[from].includes(to);
      it(`${allowed ? 'allows' : 'refuses'} ${from} → ${to}`, () => assert.equal(canTransition(from, to), allowed));
    }
  }

  const ACCEPTS: Record<Operation, State[]> = {
    start: ['created', 'stopped', 'suspended', 'failed'],
    stop: ['started', 'suspended', 'failed'],
    suspend: ['started'],
    update: ['created', 'started', 'stopped', 'suspended', 'failed'],
    destroy: ['created', 'stopped', 'suspended', 'failed'],
    'force-destroy': ['created', 'started', 'stopped', 'suspended', 'failed'],
  };
  for (const op of Object.keys(ACCEPTS) as Operation[]) {
    for (const s of STATES) {
      const ok = ACCEPTS[op].includes(s);
      it(`${op} on a ${s} machine is ${ok ? 'accepted' : 'FAILED_PRECONDITION naming the state'}`, () => {
        assert.equal(acceptsOperation(op, s), ok);
        if (ok) assertOperation('m1', op, s);
        else
          assert.throws(
            () => assertOperation('m1', op, s),
            (e: unknown) => e instanceof TorporError && e.kind === 'failed_precondition' && e.message.includes(`it is ${s}`),
          );
      });
    }
  }

  it('L10: destroying a started machine without force says to stop it or use force', () => {
    assert.throws(() => assertOperation('m1', 'destroy', 'started'), /stop it first, or destroy with force/);
  });

  it('N1: each entered state names its event; updates publish machine.updated', () => {
    assert.equal(eventTypeFor('suspended', 'suspending'), 'machine.suspended');
    assert.equal(eventTypeFor('replacing', 'started'), 'machine.updated');
    assert.equal(eventTypeFor('stopped', 'stopped'), 'machine.updated');
    assert.equal(eventTypeFor('destroyed', 'stopped'), 'machine.destroyed');
  });
});
