import { randomBytes, randomUUID } from 'node:crypto';

export const newMachineId = () => randomBytes(7).toString('hex');
export const newInstanceId = () => randomBytes(8).toString('hex').toUpperCase();
export const newSnapshotId = () => `snap_${randomBytes(8).toString('hex')}`;
export const newEventId = () => randomUUID();

export const MACHINE_ID_RE = /^[0-9a-f]{14}$/;
export const SNAPSHOT_ID_RE = /^snap_[0-9a-f]{16}$/;
