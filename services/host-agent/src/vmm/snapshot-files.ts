// S4: what is recorded about a snapshot's files when it is written, and the
// check made before it is loaded. The device-state file is small (tens of KB)
// and is hashed; the memory file (as large as the guest's RAM) is identified by
// size and identity (dev:inode:mtime_ns), which changes if it is replaced,
// rewritten or truncated.
import * as crypto from 'crypto';
import * as fs from 'fs';
import { SnapshotFileSet } from './vmm';

export async function sha256File(p: string): Promise<string> {
  const h = crypto.createHash('sha256');
  await new Promise<void>((resolve, reject) => {
    const s = fs.createReadStream(p);
    s.on('data', (d) => h.update(d));
    s.on('end', () => resolve());
    s.on('error', reject);
  });
  return h.digest('hex');
}

export function fileIdentity(st: fs.BigIntStats): string {
  return `${st.dev}:${st.ino}:${st.mtimeNs}`;
}

export async function describeSnapshotFiles(statePath: string, memoryPath: string): Promise<SnapshotFileSet> {
  const [sst, mst, stateSha256] = await Promise.all([
    fs.promises.stat(statePath, { bigint: true }),
    fs.promises.stat(memoryPath, { bigint: true }),
    sha256File(statePath),
  ]);
  return {
    statePath,
    stateSize: Number(sst.size),
    stateSha256,
    memoryPath,
    memorySize: Number(mst.size),
    memoryIdentity: fileIdentity(mst),
    sizeBytes: Number(sst.blocks * 512n + mst.blocks * 512n),
  };
}

async function statOrNull(p: string): Promise<fs.BigIntStats | null> {
  try {
    return await fs.promises.stat(p, { bigint: true });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw e;
  }
}

/** null when the files are as recorded; otherwise a reason a person can read. */
export async function verifySnapshotFiles(files: SnapshotFileSet): Promise<string | null> {
  try {
    const sst = await statOrNull(files.statePath);
    if (!sst) return `state file missing (${files.statePath})`;
    if (!sst.isFile()) return `state file is not a regular file (${files.statePath})`;
    const mst = await statOrNull(files.memoryPath);
    if (!mst) return `memory file missing (${files.memoryPath})`;
    if (!mst.isFile()) return `memory file is not a regular file (${files.memoryPath})`;
    if (Number(sst.size) !== files.stateSize) return `state file size mismatch: ${sst.size} of ${files.stateSize} bytes`;
    if (Number(mst.size) < files.memorySize) return `memory file truncated: ${mst.size} of ${files.memorySize} bytes`;
    if (Number(mst.size) !== files.memorySize) return `memory file size changed: ${mst.size}, expected ${files.memorySize} bytes`;
    const [dev, ino] = files.memoryIdentity.split(':');
    if (String(mst.dev) !== dev || String(mst.ino) !== ino) return 'memory file replaced (identity changed)';
    if (fileIdentity(mst) !== files.memoryIdentity) return 'memory file modified since the snapshot (mtime changed)';
    const sha = await sha256File(files.statePath);
    if (sha !== files.stateSha256) return 'state file sha256 mismatch';
    return null;
  } catch (e) {
    return `snapshot files unreadable: ${(e as Error).message}`;
  }
}
