import * as assert from 'assert';
import * as fs from 'fs';
import * as path from 'path';
import { ConsoleLine, ConsoleTail } from '../../services/host-agent/src/vmm/console-tail';
import { sleep, tempDir } from './helpers';

describe('vmm/console-tail (E2)', () => {
  let dir: string;
  let log: string;
  let state: string;
  beforeEach(() => {
    dir = tempDir('torpor-tail-');
    log = path.join(dir, 'console.log');
    state = path.join(dir, 'console.tail.json');
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('E2: hands out complete lines only, numbered, and repeats them until acknowledged', async () => {
    fs.writeFileSync(log, 'a\nb\r\npartial');
    const t = new ConsoleTail(log, state);
    const b1 = await t.read();
    assert.deepStrictEqual(b1.lines, [{ seq: 1, text: 'a' }, { seq: 2, text: 'b' }]);
    const again = await t.read();
    assert.deepStrictEqual(again.lines, b1.lines, 'not acknowledged: same lines, same numbers');
    await t.ack(b1);
    fs.appendFileSync(log, ' line\nc\n');
    const b2 = await t.read();
    assert.deepStrictEqual(b2.lines, [{ seq: 3, text: 'partial line' }, { seq: 4, text: 'c' }]);
    assert.strictEqual(fs.statSync(state).mode & 0o777, 0o600);
  });

  it('E2: an agent restart resumes after the last acknowledged line (nothing lost, nothing repeated)', async () => {
    fs.writeFileSync(log, '1\n2\n3\n');
    const t1 = new ConsoleTail(log, state);
    await t1.ack(await t1.read(2)); // lines 1, 2 acknowledged
    const unacked = await t1.read(); // line 3 read but the agent "crashes" before the ack
    assert.deepStrictEqual(unacked.lines, [{ seq: 3, text: '3' }]);
    fs.appendFileSync(log, '4\n');
    const t2 = new ConsoleTail(log, state);
    assert.strictEqual(t2.lastSeq, 2);
    const b = await t2.read();
    assert.deepStrictEqual(b.lines.map((l) => `${l.seq}:${l.text}`), ['3:3', '4:4']);
  });

  it('E2: a replaced log is read from its start and the numbering goes on', async () => {
    fs.writeFileSync(log, 'old1\nold2\n');
    const t = new ConsoleTail(log, state);
    await t.ack(await t.read());
    fs.rmSync(log);
    fs.writeFileSync(log, 'new1\n');
    const b = await t.read();
    assert.deepStrictEqual(b.lines, [{ seq: 3, text: 'new1' }]);
  });

  it('E2: follow() delivers every line once, in order, retrying a failed batch', async () => {
    const t = new ConsoleTail(log, state);
    const got: ConsoleLine[] = [];
    let failOnce = true;
    const stop = t.follow(
      async (lines) => {
        if (failOnce) {
          failOnce = false;
          throw new Error('publish failed');
        }
        got.push(...lines);
      },
      { intervalMs: 10 },
    );
    for (let i = 1; i <= 50; i++) fs.appendFileSync(log, `line ${i}\n`);
    for (let i = 0; i < 200 && got.length < 50; i++) await sleep(10);
    stop();
    assert.deepStrictEqual(got.map((l) => l.seq), Array.from({ length: 50 }, (_, i) => i + 1));
    assert.deepStrictEqual(got.map((l) => l.text), Array.from({ length: 50 }, (_, i) => `line ${i + 1}`));
  });
});
