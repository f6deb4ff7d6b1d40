// Machine states as the command line spells them: lower-case words ("suspended").
import { MachineState, machineStateToJSON } from '../gen/torpor/machines/v1/machines';
import { UsageError } from './errors';

const PREFIX = 'MACHINE_STATE_';

/** "suspended" for MACHINE_STATE_SUSPENDED. */
export function stateName(state: MachineState): string {
  const s = machineStateToJSON(state);
  return s.startsWith(PREFIX) ? s.slice(PREFIX.length).toLowerCase() : s.toLowerCase();
}

const ALL: MachineState[] = Object.values(MachineState).filter(
  (v): v is MachineState => typeof v === 'number' && v !== MachineState.MACHINE_STATE_UNSPECIFIED && v !== MachineState.UNRECOGNIZED,
);

export const STATE_NAMES = ALL.map(stateName);

/** Targets WaitMachine accepts (L2). */
export const WAIT_TARGETS = [
  MachineState.MACHINE_STATE_STARTED,
  MachineState.MACHINE_STATE_STOPPED,
  MachineState.MACHINE_STATE_SUSPENDED,
  MachineState.MACHINE_STATE_DESTROYED,
];

/** Parses "suspended" (any case, or the full enum name) into the enum; usage error otherwise. */
export function parseState(word: string, allowed: readonly MachineState[] = ALL): MachineState {
  const w = word.trim().toLowerCase().replace(/^machine_state_/, '');
  const found = allowed.find((s) => stateName(s) === w);
  if (found === undefined) {
    throw new UsageError(`unknown state "${word}": use one of ${allowed.map(stateName).join(', ')}`);
  }
  return found;
}
