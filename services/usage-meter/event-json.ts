// Decodes a TORPOR_EVENTS payload (proto3 JSON of torpor.events.v1.Event) into what the accumulator needs.
import { Event } from '../../gen/torpor/events/v1/events';
import type { MachineEvent } from './accumulator';

export class BadEventError extends Error {}

export function machineEventFromJson(payload: string): MachineEvent {
  let ev: Event;
  try {
    ev = Event.fromJSON(JSON.parse(payload));
  } catch (err) {
    throw new BadEventError(`not an Event JSON: ${err instanceof Error ? err.message : String(err)}`);
  }
  if (!ev.machineId) throw new BadEventError('event has no machineId');
  if (!ev.time || Number.isNaN(ev.time.getTime())) throw new BadEventError(`event ${ev.id} has no valid time`);
  if (!Number.isSafeInteger(ev.sequence) || ev.sequence < 1) throw new BadEventError(`event ${ev.id} has no sequence`);
  return {
    machineId: ev.machineId,
    app: ev.app,
    sequence: ev.sequence,
    timeMs: ev.time.getTime(),
    fromState: ev.fromState,
    toState: ev.toState,
    memoryMb: ev.memoryMb,
  };
}
