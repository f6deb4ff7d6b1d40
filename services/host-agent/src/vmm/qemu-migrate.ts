// Writing and loading a machine's device state with QEMU migration over QMP.
// The x-ignore-shared capability leaves the shared, file-backed guest RAM out
// of the stream, so only device state (tens of KB) is written or read.
import * as fs from 'fs';
import { pidAlive, sleep } from './qemu-process';
import { QmpClient } from './qmp';

export function abortError(msg = 'suspend aborted'): Error {
  const e = new Error(msg);
  e.name = 'AbortError';
  return e;
}

/** Single-quotes s for the shell that runs an exec: migration URI. */
function shq(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

type MigrateStatus = { status?: string; 'error-desc'?: string };

/**
 * Writes the device state of a stopped guest to statePath (created 0600 first).
 * Throws abortError() when signal aborts before the state is complete (the
 * migration is then cancelled).
 */
export async function writeDeviceState(q: QmpClient, statePath: string, signal?: AbortSignal): Promise<void> {
  if (signal?.aborted) throw abortError();
  await q.execute('migrate-set-capabilities', {
    capabilities: [{ capability: 'x-ignore-shared', state: true }],
  });
  const fh = await fs.promises.open(statePath, 'w', 0o600);
  await fh.close();
  if (signal?.aborted) throw abortError();
  await q.execute('migrate', { uri: `exec:umask 077; cat > ${shq(statePath)}` });
  for (;;) {
    const st = await q.execute<MigrateStatus>('query-migrate');
    if (st.status === 'completed') break;
    if (st.status === 'failed' || st.status === 'cancelled') throw new Error(`migration ${st.status}: ${st['error-desc'] ?? ''}`);
    if (signal?.aborted) {
      await q.execute('migrate_cancel').catch(() => undefined);
      throw abortError();
    }
    await sleep(2);
  }
}

/**
 * Loads the device state from statePath into a QEMU started with -incoming defer
 * (process pid); throws if QEMU exits, the load fails, or deadline (epoch ms) passes.
 */
export async function loadDeviceState(q: QmpClient, statePath: string, pid: number, deadline: number): Promise<void> {
  await q.execute('migrate-set-capabilities', {
    capabilities: [{ capability: 'x-ignore-shared', state: true }],
  });
  await q.execute('migrate-incoming', { uri: `exec:cat ${shq(statePath)}` });
  for (;;) {
    const st = await q.execute<MigrateStatus>('query-migrate');
    if (st.status === 'completed') break;
    if (st.status === 'failed' || st.status === 'cancelled') throw new Error(`loading the snapshot failed: ${st['error-desc'] ?? st.status}`);
    if (!pidAlive(pid)) throw new Error('qemu exited while loading the snapshot');
    if (Date.now() > deadline) throw new Error('loading the snapshot timed out');
    await sleep(2);
  }
}
