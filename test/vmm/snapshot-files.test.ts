import * as assert from 'assert';
import * as fs from 'fs';
import * as path from 'path';
import { describeSnapshotFiles, verifySnapshotFiles } from '../../services/host-agent/src/vmm/snapshot-files';
import { tempDir } from './helpers';

describe('vmm/snapshot-files (S4)', () => {
  let dir: string;
  beforeEach(() => {
    dir = tempDir('torpor-snapfiles-');
    fs.writeFileSync(path.join(dir, 'state'), Buffer.from('device state '.repeat(100)), { mode: 0o600 });
    fs.writeFileSync(path.join(dir, 'memory'), Buffer.alloc(1 << 20, 7), { mode: 0o600 });
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  const files = () => describeSnapshotFiles(path.join(dir, 'state'), path.join(dir, 'memory'));

  it('S4: intact files verify', async () => {
    const f = await files();
    assert.strictEqual(f.stateSize, 1300);
    assert.strictEqual(f.memorySize, 1 << 20);
    assert.match(f.stateSha256, /^[0-9a-f]{64}$/);
    assert.match(f.memoryIdentity, /^\d+:\d+:\d+$/);
    assert.strictEqual(await verifySnapshotFiles(f), null);
  });

  it('S4: an altered state file (same size) is caught by its sha256', async () => {
    const f = await files();
    const fd = fs.openSync(f.statePath, 'r+');
    fs.writeSync(fd, Buffer.from('X'), 0, 1, 10);
    fs.closeSync(fd);
    assert.strictEqual(await verifySnapshotFiles(f), 'state file sha256 mismatch');
  });

  it('S4: a truncated memory file is caught', async () => {
    const f = await files();
    fs.truncateSync(f.memoryPath, 4096);
    assert.strictEqual(await verifySnapshotFiles(f), `memory file truncated: 4096 of ${1 << 20} bytes`);
  });

  it('S4: a replaced memory file (same size) is caught by its identity', async () => {
    const f = await files();
    fs.writeFileSync(f.memoryPath + '.new', Buffer.alloc(1 << 20, 7));
    fs.renameSync(f.memoryPath + '.new', f.memoryPath);
    assert.strictEqual(await verifySnapshotFiles(f), 'memory file replaced (identity changed)');
  });

  it('S4: a missing memory or state file is caught', async () => {
    const f = await files();
    fs.rmSync(f.memoryPath);
    assert.match((await verifySnapshotFiles(f))!, /^memory file missing/);
    fs.rmSync(f.statePath);
    assert.match((await verifySnapshotFiles(f))!, /^state file missing/);
  });
});
