// Input checks shared by the gRPC adapters; each throws INVALID_ARGUMENT with a
// message that says what was wrong and what would be right.
import { invalidArgument } from './errors';
import { MACHINE_ID_RE, SNAPSHOT_ID_RE } from './ids';

const show = (v: unknown) => JSON.stringify(typeof v === 'string' && v.length > 80 ? v.slice(0, 80) + '…' : v);

export function machineId(v: string, field = 'id'): string {
  if (!v) throw invalidArgument(`${field} is required: a machine id (14 lowercase hex characters)`);
  if (!MACHINE_ID_RE.test(v)) throw invalidArgument(`${field} ${show(v)} is not a machine id: expected 14 lowercase hex characters`);
  return v;
}

export function snapshotId(v: string, field = 'snapshot_id'): string {
  if (!v) throw invalidArgument(`${field} is required`);
  if (!SNAPSHOT_ID_RE.test(v)) throw invalidArgument(`${field} ${show(v)} is not a snapshot id: expected "snap_" and 16 hex characters`);
  return v;
}

const NAME_RE = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;

/** App names, host ids, regions: lowercase letters, digits and dashes, 1 to 63 characters. */
export function name(v: string, field: string): string {
  if (!v) throw invalidArgument(`${field} is required`);
  if (!NAME_RE.test(v)) throw invalidArgument(`${field} ${show(v)} must be 1 to 63 lowercase letters, digits or dashes, starting and ending with a letter or digit`);
  return v;
}

export function intInRange(v: number, field: string, min: number, max: number): number {
  if (!Number.isInteger(v) || v < min || v > max) throw invalidArgument(`${field} must be from ${min} to ${max}, got ${v}`);
  return v;
}

export function text(v: string, field: string, max: number): string {
  if (v.length > max) throw invalidArgument(`${field} is ${v.length} characters long; at most ${max} are allowed`);
  return v;
}

export function required<T>(v: T | undefined, field: string): T {
  if (v === undefined || v === null) throw invalidArgument(`${field} is required`);
  return v;
}
