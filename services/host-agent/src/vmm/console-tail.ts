// E2: tails a guest console log (appended to by QEMU across suspend/resume)
// from a persisted byte offset and hands out complete lines with a persisted
// per-machine sequence number. The position ({offset, seq, ino}) lives in a
// small JSON file (e.g. <vmDir>/console.tail.json) and is advanced only when the
// consumer acknowledges a batch, so after an agent restart the next batch starts
// right after the last acknowledged line: nothing lost, nothing repeated
// (a consumer that publishes with a message id derived from `seq` also
// deduplicates a batch published but not acknowledged before a crash).
//
//   const tail = new ConsoleTail(vmm.consolePath(vmDir), path.join(vmDir, 'console.tail.json'));
//   const stop = tail.follow(async (lines) => { await publish(lines); });   // acked when it resolves
//   ... stop();
import * as fs from 'fs';

export interface ConsoleLine {
  /** Per-machine sequence number, 1, 2, 3 ... continuing across suspend/resume and agent restarts. */
  seq: number;
  text: string;
}

export interface ConsoleBatch {
  lines: ConsoleLine[];
  /** Byte offset just after the last line of the batch. */
  endOffset: number;
}

interface TailState {
  offset: number;
  seq: number;
  /** Inode of the log when `offset` was taken; a different one means the log was replaced. */
  ino?: number;
}

/** Longest line handed out; a longer run of bytes without a newline is cut into pieces. */
const MAX_LINE = 64 * 1024;

export class ConsoleTail {
  private state: TailState;

  constructor(readonly logPath: string, readonly statePath: string) {
    this.state = ConsoleTail.load(statePath);
  }

  private static load(p: string): TailState {
    try {
      const s = JSON.parse(fs.readFileSync(p, 'utf8')) as TailState;
      if (Number.isInteger(s.offset) && s.offset >= 0 && Number.isInteger(s.seq) && s.seq >= 0) return s;
    } catch {
      /* missing or unreadable: start from the beginning */
    }
    return { offset: 0, seq: 0 };
  }

  /** Last acknowledged sequence number. */
  get lastSeq(): number {
    return this.state.seq;
  }

  /** Byte offset after the last acknowledged line. */
  get offset(): number {
    return this.state.offset;
  }

  /**
   * Reads up to `maxLines` complete lines after the acknowledged position. Does not
   * move the position: call ack(batch) once the lines are safely delivered; reading
   * again without an ack returns the same lines with the same numbers.
   */
  async read(maxLines = 1000, maxBytes = 1 << 20): Promise<ConsoleBatch> {
    let fh: fs.promises.FileHandle;
    try {
      fh = await fs.promises.open(this.logPath, 'r');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return { lines: [], endOffset: this.state.offset };
      throw e;
    }
    try {
      const st = await fh.stat();
      let start = this.state.offset;
      if ((this.state.ino !== undefined && st.ino !== this.state.ino) || st.size < start) {
        // The log was replaced or truncated: read the new one from its start, keep numbering.
        start = 0;
      }
      if (st.size <= start) return { lines: [], endOffset: start };
      const len = Math.min(st.size - start, maxBytes);
      const buf = Buffer.alloc(len);
      const { bytesRead } = await fh.read(buf, 0, len, start);
      const lines: ConsoleLine[] = [];
      let pos = 0;
      let seq = this.state.seq;
      while (lines.length < maxLines && pos < bytesRead) {
        let nl = buf.indexOf(0x0a, pos);
        if (nl < 0 || nl >= bytesRead) {
          if (bytesRead - pos >= MAX_LINE) nl = pos + MAX_LINE - 1;
          else break; // incomplete last line: wait for its newline
        }
        let text = buf.toString('utf8', pos, buf[nl] === 0x0a ? nl : nl + 1);
        if (text.endsWith('\r')) text = text.slice(0, -1);
        lines.push({ seq: ++seq, text });
        pos = nl + 1;
      }
      this.pendingIno = st.ino;
      return { lines, endOffset: start + pos };
    } finally {
      await fh.close();
    }
  }

  private pendingIno: number | undefined;

  /** Persists the position after `batch` (atomically, mode 0600). */
  async ack(batch: ConsoleBatch): Promise<void> {
    if (!batch.lines.length && batch.endOffset === this.state.offset) return;
    const next: TailState = {
      offset: batch.endOffset,
      seq: batch.lines.length ? batch.lines[batch.lines.length - 1].seq : this.state.seq,
      ino: this.pendingIno ?? this.state.ino,
    };
    const tmp = `${this.statePath}.tmp`;
    await fs.promises.writeFile(tmp, JSON.stringify(next), { mode: 0o600 });
    await fs.promises.rename(tmp, this.statePath);
    this.state = next;
  }

  /**
   * Calls `onLines` with each new batch (polling every `intervalMs`, and on file
   * change events) and acknowledges it when the returned promise resolves; a
   * rejected batch is offered again later. Returns a function that stops following.
   */
  follow(
    onLines: (lines: ConsoleLine[]) => Promise<void>,
    opts: { intervalMs?: number; maxLines?: number; onError?: (e: Error) => void } = {},
  ): () => void {
    let stopped = false;
    let running = false;
    let again = false;
    let timer: NodeJS.Timeout | null = null;
    let watcher: fs.FSWatcher | null = null;
    const tick = async () => {
      if (stopped) return;
      if (running) {
        again = true;
        return;
      }
      running = true;
      try {
        do {
          again = false;
          const batch = await this.read(opts.maxLines ?? 1000);
          if (!batch.lines.length) {
            if (batch.endOffset !== this.state.offset) await this.ack(batch);
            break;
          }
          await onLines(batch.lines);
          await this.ack(batch);
          again = true;
        } while (again && !stopped);
      } catch (e) {
        opts.onError?.(e as Error);
      } finally {
        running = false;
      }
    };
    const schedule = () => {
      if (stopped) return;
      timer = setTimeout(async () => {
        await tick();
        schedule();
      }, opts.intervalMs ?? 200);
    };
    try {
      watcher = fs.watch(this.logPath, () => void tick());
      watcher.on('error', () => undefined);
    } catch {
      /* file not there yet: polling finds it */
    }
    void tick();
    schedule();
    return () => {
      stopped = true;
      if (timer) clearTimeout(timer);
      watcher?.close();
    };
  }
}
