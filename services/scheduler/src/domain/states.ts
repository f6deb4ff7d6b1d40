// The machine lifecycle state machine: which transitions exist and which
// operations make sense in which state. Pure data and functions, no I/O.
import { failedPrecondition } from '../../../../lib/errors';

export const STATES = [
  'created',
  'starting',
  'started',
  'stopping',
  'stopped',
  'suspending',
  'suspended',
  'replacing',
  'destroying',
  'destroyed',
  'failed',
] as const;
export type State = (typeof STATES)[number];

const TRANSITIONS: Record<State, readonly State[]> = {
  // A state going to itself is an update of a machine that is not running (machine.updated).
  created: ['created', 'starting', 'destroyed'],
  starting: ['started', 'failed'],
  started: ['stopping', 'suspending', 'replacing', 'destroyed', 'failed'],
  stopping: ['stopped', 'failed'],
  stopped: ['starting', 'stopped', 'destroyed'],
  // → started: a start cancelled the suspend (L9) or the suspend failed with the VM still running.
  suspending: ['suspended', 'started', 'failed'],
  suspended: ['starting', 'stopping', 'replacing', 'destroyed'],
  replacing: ['starting', 'stopped', 'failed'],
  destroying: ['destroyed'],
  destroyed: [],
  failed: ['failed', 'starting', 'stopping', 'stopped', 'destroyed'],
};

export function canTransition(from: State, to: State): boolean {
  return TRANSITIONS[from].includes(to);
}

export function assertTransition(id: string, from: State, to: State): void {
  if (!canTransition(from, to)) throw failedPrecondition(`machine ${id} cannot go from ${from} to ${to}`);
}

export type Operation = 'start' | 'stop' | 'suspend' | 'update' | 'destroy' | 'force-destroy';

/** States each operation accepts (after earlier operations on the machine have finished). */
const ACCEPTS: Record<Operation, readonly State[]> = {
  start: ['created', 'stopped', 'suspended', 'failed'],
  stop: ['started', 'suspended', 'failed'],
  suspend: ['started'],
  update: ['created', 'started', 'stopped', 'suspended', 'failed'],
  destroy: ['created', 'stopped', 'suspended', 'failed'],
  'force-destroy': ['created', 'started', 'stopped', 'suspended', 'failed'],
};

const HINTS: Partial<Record<State, string>> = {
  started: 'stop or suspend it first',
  stopped: 'start it',
  suspended: 'start it to resume, or stop it to discard its snapshot',
  created: 'start it',
  destroyed: 'create a new machine',
  failed: 'start it again or destroy it',
};

/** FAILED_PRECONDITION naming the state and what would work, unless `op` makes sense in `state`. */
export function assertOperation(id: string, op: Operation, state: State): void {
  if (ACCEPTS[op].includes(state)) return;
  const verb = op === 'force-destroy' ? 'destroy' : op;
  let msg = `cannot ${verb} machine ${id}: it is ${state}`;
  if (op === 'destroy' && state === 'started') msg += '; stop it first, or destroy with force';
  else if (op === 'start' && state === 'started') msg += ' already';
  else if (op === 'suspend' && state === 'suspended') msg += ' already';
  else if (op === 'stop' && state === 'stopped') msg += ' already';
  else if (HINTS[state]) msg += `; ${HINTS[state]}`;
  throw failedPrecondition(msg);
}

export function acceptsOperation(op: Operation, state: State): boolean {
  return ACCEPTS[op].includes(state);
}

/** States in which a machine holds memory on its host (for placement). */
export const HOLDS_MEMORY: readonly State[] = ['starting', 'started', 'stopping', 'suspending', 'replacing'];

/** Event type published when a machine enters a state (N1). */
export function eventTypeFor(to: State, from: State): string {
  if (to === 'replacing' || to === from) return 'machine.updated';
  return `machine.${to}`;
}

/** Targets WaitMachine accepts (L2). */
export const WAIT_TARGETS: readonly State[] = ['started', 'stopped', 'suspended', 'destroyed'];
